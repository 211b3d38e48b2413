package links

import (
	"context"
	"errors"
	"fmt"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/events"
	"github.com/linkdesk/linkdesk/server/store"
)

// Code operations refuse a throttled caller before touching the code, normalise it
// (any form a person might type), and count every unknown, expired or used code
// against the caller's account and address.

// LookUp returns the pending request behind code for c to judge. Errors:
// *RateLimitError, ErrInvalidCode, ErrExpiredCode, ErrUsedCode, or internal ones.
func (s *Service) LookUp(ctx context.Context, c Caller, code string) (Request, error) {
	canon, keys, err := s.openCode(ctx, c, code)
	if err != nil {
		return Request{}, err
	}
	d, err := s.pending(ctx, canon)
	if err != nil {
		return Request{}, s.codeFailed(ctx, keys, err)
	}
	client, err := s.client(ctx, d.ClientID)
	if err != nil {
		return Request{}, fmt.Errorf("links: client of link request: %w", err)
	}
	return Request{Auth: d, Client: client, Scopes: s.scopes(d.Scopes),
		SameNetwork: SameNetwork(d.RequestIP, c.IP)}, nil
}

// Approve links the device behind code to c's account, naming it name ("" keeps the
// device's own name; a given name must pass CleanName, else a *NameError). It wakes
// the waiting device, tells the account's stream and logs the link. Errors as LookUp.
func (s *Service) Approve(ctx context.Context, c Caller, code, name string) (Link, error) {
	if name != "" {
		var err error
		if name, err = CleanName(name); err != nil {
			return Link{}, err
		}
	}
	canon, keys, err := s.openCode(ctx, c, code)
	if err != nil {
		return Link{}, err
	}
	g, err := s.cfg.Store.ApproveDeviceAuth(ctx, canon, c.Subject, name, s.cfg.Now())
	if err != nil {
		return Link{}, s.codeFailed(ctx, keys, err)
	}
	s.cfg.Events.PublishDeviceAuth(events.DeviceAuthKey(canon), store.DeviceAuthApproved)
	s.log.InfoContext(ctx, "device linked", "subject", c.Subject, "device", g.ID, "client", g.ClientID)
	l := s.saved(ctx, g)
	s.cfg.Events.PublishAccount(c.Subject, devices.Event{Type: devices.EventLinked, Device: l.Device})
	return l, nil
}

// Deny refuses the request behind code for c's account, wakes the waiting device and
// logs the refusal. It returns the request as it was, for naming it. Errors as LookUp.
func (s *Service) Deny(ctx context.Context, c Caller, code string) (Request, error) {
	canon, keys, err := s.openCode(ctx, c, code)
	if err != nil {
		return Request{}, err
	}
	d, err := s.pending(ctx, canon)
	if err != nil {
		return Request{}, s.codeFailed(ctx, keys, err)
	}
	if err := s.cfg.Store.DenyDeviceAuth(ctx, canon, c.Subject, s.cfg.Now()); err != nil {
		return Request{}, s.codeFailed(ctx, keys, err)
	}
	s.cfg.Events.PublishDeviceAuth(events.DeviceAuthKey(canon), store.DeviceAuthDenied)
	s.log.InfoContext(ctx, "link request denied", "subject", c.Subject, "client", d.ClientID)
	client, err := s.client(ctx, d.ClientID)
	if err != nil {
		s.log.ErrorContext(ctx, "client of denied link request", "err", err)
		client = devices.ClientInfo{ID: d.ClientID, Name: devices.ClientName(d.ClientID)}
	}
	return Request{Auth: d, Client: client, Scopes: s.scopes(d.Scopes),
		SameNetwork: SameNetwork(d.RequestIP, c.IP)}, nil
}

// Check tells whether code is a pending, unexpired link request, for a person not
// signed in yet: the web pages check a typed code before asking for a password and a
// one-time code, so an old code is reported first. Without an account it is throttled
// and counted by ip's address alone. Errors: *RateLimitError, ErrInvalidCode,
// ErrExpiredCode, ErrUsedCode, or internal ones.
func (s *Service) Check(ctx context.Context, ip, code string) error {
	canon, keys, err := s.openCodeKeys(ctx, []string{AddressKey(ip)}, code)
	if err != nil {
		return err
	}
	if _, err := s.pending(ctx, canon); err != nil {
		return s.codeFailed(ctx, keys, err)
	}
	return nil
}

// openCode checks c's limits and normalises code, counting a malformed code.
func (s *Service) openCode(ctx context.Context, c Caller, code string) (string, []string, error) {
	return s.openCodeKeys(ctx, c.keys(), code)
}

// openCodeKeys checks the limits of keys and normalises code, counting a malformed code
// against them.
func (s *Service) openCodeKeys(ctx context.Context, keys []string, code string) (string, []string, error) {
	retry, err := s.limiter.Check(ctx, keys...)
	if errors.Is(err, ErrRateLimited) {
		return "", nil, &RateLimitError{RetryAfter: retry}
	}
	if err != nil {
		return "", nil, err
	}
	canon, err := devices.NormalizeCode(code)
	if err != nil {
		s.fail(ctx, keys)
		return "", nil, ErrInvalidCode
	}
	return canon, keys, nil
}

// pending reads a request by canonical code and turns one that is no longer pending,
// or has expired, into store.ErrAlreadyUsed or store.ErrExpired.
func (s *Service) pending(ctx context.Context, code string) (store.DeviceAuth, error) {
	d, err := s.cfg.Store.DeviceAuthByUserCode(ctx, code)
	if err != nil {
		return d, err
	}
	if d.State != store.DeviceAuthPending {
		return d, store.ErrAlreadyUsed
	}
	if !s.cfg.Now().Before(d.ExpiresAt) {
		return d, store.ErrExpired
	}
	return d, nil
}

// codeFailed turns a store error of a code operation into the Service's error,
// counting lookup failures against keys.
func (s *Service) codeFailed(ctx context.Context, keys []string, err error) error {
	var out error
	switch {
	case errors.Is(err, store.ErrNotFound):
		out = ErrInvalidCode
	case errors.Is(err, store.ErrExpired):
		out = ErrExpiredCode
	case errors.Is(err, store.ErrAlreadyUsed):
		out = ErrUsedCode
	default:
		return fmt.Errorf("links: code: %w", err)
	}
	s.fail(ctx, keys)
	return out
}

// fail counts a failed lookup; a counter error is logged, not shown to the caller.
func (s *Service) fail(ctx context.Context, keys []string) {
	if err := s.limiter.Fail(ctx, keys...); err != nil {
		s.log.ErrorContext(ctx, "count failed code lookup", "err", err)
	}
}
