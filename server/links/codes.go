package links

import (
	"context"
	"errors"
	"fmt"
	"strings"

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
	canon, att, err := s.openCode(ctx, c, code)
	if err != nil {
		return Request{}, err
	}
	d, err := s.pending(ctx, canon)
	if err != nil {
		return Request{}, s.codeFailed(ctx, att, err)
	}
	s.release(ctx, att)
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
	canon, att, err := s.openCode(ctx, c, code)
	if err != nil {
		return Link{}, err
	}
	g, err := s.cfg.Store.ApproveDeviceAuth(ctx, canon, c.Subject, name, s.cfg.Now())
	if err != nil {
		return Link{}, s.codeFailed(ctx, att, err)
	}
	s.release(ctx, att)
	s.cfg.Events.PublishDeviceAuth(events.DeviceAuthKey(canon), store.DeviceAuthApproved)
	s.log.InfoContext(ctx, "device linked", "subject", c.Subject, "device", g.ID, "client", g.ClientID)
	l := s.saved(ctx, g)
	s.cfg.Events.PublishAccount(c.Subject, devices.Event{Type: devices.EventLinked, Device: l.Device})
	return l, nil
}

// Deny refuses the request behind code for c's account, wakes the waiting device and
// logs the refusal. It returns the request as it was, for naming it. Errors as LookUp.
func (s *Service) Deny(ctx context.Context, c Caller, code string) (Request, error) {
	canon, att, err := s.openCode(ctx, c, code)
	if err != nil {
		return Request{}, err
	}
	d, err := s.pending(ctx, canon)
	if err != nil {
		return Request{}, s.codeFailed(ctx, att, err)
	}
	if err := s.cfg.Store.DenyDeviceAuth(ctx, canon, c.Subject, s.cfg.Now()); err != nil {
		return Request{}, s.codeFailed(ctx, att, err)
	}
	s.release(ctx, att)
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
	canon, att, err := s.openCodeKeys(ctx, []string{AddressKey(ip)}, code)
	if err != nil {
		return err
	}
	if _, err := s.pending(ctx, canon); err != nil {
		return s.codeFailed(ctx, att, err)
	}
	s.release(ctx, att)
	return nil
}

// openCode reserves one lookup against c's limits and normalises code (a malformed
// code keeps its reservation: it counts as a failure).
func (s *Service) openCode(ctx context.Context, c Caller, code string) (string, Attempt, error) {
	return s.openCodeKeys(ctx, c.keys(), code)
}

// openCodeKeys reserves one lookup against the limits of keys, before the code is
// looked at, and normalises code. The caller releases the reservation when the code
// worked; a failed lookup keeps it, counted.
func (s *Service) openCodeKeys(ctx context.Context, keys []string, code string) (string, Attempt, error) {
	att, retry, err := s.limiter.reserveCode(ctx, keys)
	if errors.Is(err, ErrRateLimited) {
		s.log.WarnContext(ctx, "code lookups limited", "keys", strings.Join(keys, " "), "retry_after", retry)
		return "", Attempt{}, &RateLimitError{RetryAfter: retry}
	}
	if err != nil {
		return "", Attempt{}, err
	}
	canon, err := devices.NormalizeCode(code)
	if err != nil {
		return "", Attempt{}, ErrInvalidCode
	}
	return canon, att, nil
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

// codeFailed turns a store error of a code operation into the Service's error. A
// lookup failure stays counted (att's reservation); any other error releases it.
func (s *Service) codeFailed(ctx context.Context, att Attempt, err error) error {
	var out error
	switch {
	case errors.Is(err, store.ErrNotFound):
		out = ErrInvalidCode
	case errors.Is(err, store.ErrExpired):
		out = ErrExpiredCode
	case errors.Is(err, store.ErrAlreadyUsed):
		out = ErrUsedCode
	default:
		s.release(ctx, att)
		return fmt.Errorf("links: code: %w", err)
	}
	return out
}

// release uncounts a lookup that worked; a counter error is logged, not shown to the
// caller.
func (s *Service) release(ctx context.Context, att Attempt) {
	if err := s.limiter.Release(ctx, att); err != nil {
		s.log.ErrorContext(ctx, "release code lookup", "err", err)
	}
}
