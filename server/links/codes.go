package links

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/events"
	"github.com/linkdesk/linkdesk/server/metrics"
	"github.com/linkdesk/linkdesk/server/store"
)

// Code operations refuse a throttled caller before touching the code, normalise it
// (any form a person might type), and count every unknown, expired or used code
// against the caller's account and address.

// LookUp returns the pending request behind code for c to judge. Errors:
// *RateLimitError, ErrInvalidCode, ErrExpiredCode, ErrUsedCode, or internal ones.
func (s *Service) LookUp(ctx context.Context, c Caller, code string) (Request, error) {
	keys := c.keys()
	canon, err := s.normalize(ctx, keys, code)
	if err != nil {
		return Request{}, err
	}
	d, wait, err := s.cfg.Store.PendingUserCode(ctx, canon, s.limiter.codeLimits(keys), s.cfg.Now())
	if err := s.codeDone(ctx, keys, wait, err); err != nil {
		return Request{}, err
	}
	client, err := s.client(ctx, d.ClientID)
	if err != nil {
		return Request{}, fmt.Errorf("links: client of link request: %w", err)
	}
	return s.request(c, d, client), nil
}

// Approval is what the person approving a request said besides the code.
type Approval struct {
	// Name is what to call the device ("" keeps the device's own name).
	Name string
	// InFront: the person confirmed being in front of the device and having started
	// this (the confirm screens' tick). A request from another network than the
	// approver's is refused without it (ErrConfirmationRequired).
	InFront bool
}

// Approve links the device behind code to c's account, naming it a.Name (a given name
// must pass CleanName, else a *NameError). The approval's checks (approveChecks) are
// judged inside the approving transaction. It wakes the waiting device, tells the
// account's stream and logs the link. Errors as LookUp, ErrConfirmationRequired, and
// the client policy's ErrOtherNetwork and *TooManyDevicesError (the request stays
// pending).
func (s *Service) Approve(ctx context.Context, c Caller, code string, a Approval) (Link, error) {
	name := a.Name
	if name != "" {
		var err error
		if name, err = CleanName(name); err != nil {
			return Link{}, err
		}
	}
	keys := c.keys()
	canon, err := s.normalize(ctx, keys, code)
	if err != nil {
		return Link{}, err
	}
	var asked store.DeviceAuth // the request as the approving transaction read it
	seen := func(d store.DeviceAuth, _ func() (int, error)) error { asked = d; return nil }
	g, wait, err := s.cfg.Store.ApproveUserCode(ctx, canon, c.Subject, name, s.limiter.codeLimits(keys), s.cfg.Now(),
		approveChecks(seen, s.policyCheck(ctx, c), inFrontCheck(c, a)))
	if refused := s.policyRefused(ctx, c, err); refused != nil {
		return Link{}, refused
	}
	if errors.Is(err, ErrConfirmationRequired) {
		s.log.InfoContext(ctx, "approval from another network refused without confirmation", "subject", c.Subject)
		return Link{}, err
	}
	if err := s.codeDone(ctx, keys, wait, err); err != nil {
		return Link{}, err
	}
	s.cfg.Events.PublishDeviceAuth(events.DeviceAuthKey(canon), store.DeviceAuthApproved)
	s.cfg.Metrics.DeviceAuth(metrics.DeviceAuthApproved)
	s.log.InfoContext(ctx, "device linked", "subject", c.Subject, "device", g.ID, "client", g.ClientID)
	l := s.saved(ctx, g)
	// The address the device asked from (linkd keeps no copy on the link), so the
	// account's apps and the notifier can say where the new device is.
	l.Device.RequestIP, l.Device.RequestPlace = asked.RequestIP, s.place(asked.RequestIP)
	s.cfg.Events.PublishAccount(c.Subject, devices.Event{Type: devices.EventLinked, Device: l.Device})
	s.notify(c.Subject, l)
	return l, nil
}

// Deny refuses the request behind code for c's account, wakes the waiting device and
// logs the refusal. It returns the request as it was, for naming it. Errors as LookUp.
func (s *Service) Deny(ctx context.Context, c Caller, code string) (Request, error) {
	keys := c.keys()
	canon, err := s.normalize(ctx, keys, code)
	if err != nil {
		return Request{}, err
	}
	d, wait, err := s.cfg.Store.DenyUserCode(ctx, canon, c.Subject, s.limiter.codeLimits(keys), s.cfg.Now())
	if err := s.codeDone(ctx, keys, wait, err); err != nil {
		return Request{}, err
	}
	s.cfg.Events.PublishDeviceAuth(events.DeviceAuthKey(canon), store.DeviceAuthDenied)
	s.cfg.Metrics.DeviceAuth(metrics.DeviceAuthDenied)
	s.log.InfoContext(ctx, "link request denied", "subject", c.Subject, "client", d.ClientID)
	client, err := s.client(ctx, d.ClientID)
	if err != nil {
		s.log.ErrorContext(ctx, "client of denied link request", "err", err)
		client = devices.ClientInfo{ID: d.ClientID, Name: devices.ClientName(d.ClientID)}
	}
	return s.request(c, d, client), nil
}

// approveChecks is every rule an approval must pass, judged inside the approving
// transaction so it holds against concurrent approvals; each rule is its own
// function, and the first refusal wins.
func approveChecks(checks ...store.ApproveCheck) store.ApproveCheck {
	return func(d store.DeviceAuth, linked func() (int, error)) error {
		for _, check := range checks {
			if err := check(d, linked); err != nil {
				return err
			}
		}
		return nil
	}
}

// inFrontCheck refuses a request made from another network than the approver's
// unless the person confirmed being in front of the device: the device-code
// phishing guard (an attacker starts the request on his own device far away and
// sends the victim the code).
func inFrontCheck(c Caller, a Approval) store.ApproveCheck {
	return func(d store.DeviceAuth, _ func() (int, error)) error {
		if a.InFront || SameNetwork(d.RequestIP, c.IP) {
			return nil
		}
		return ErrConfirmationRequired
	}
}

// Check tells whether code is a pending, unexpired link request, for a person not
// signed in yet: the web pages check a typed code before asking for a password and a
// one-time code, so an old code is reported first. Without an account it is throttled
// and counted by ip's address alone. Errors: *RateLimitError, ErrInvalidCode,
// ErrExpiredCode, ErrUsedCode, or internal ones.
func (s *Service) Check(ctx context.Context, ip, code string) error {
	keys := []string{AddressKey(ip)}
	canon, err := s.normalize(ctx, keys, code)
	if err != nil {
		return err
	}
	_, wait, err := s.cfg.Store.PendingUserCode(ctx, canon, s.limiter.codeLimits(keys), s.cfg.Now())
	return s.codeDone(ctx, keys, wait, err)
}

// normalize turns code into its canonical form. A malformed code is a failed lookup:
// it is counted against the limits of keys (durably, before the answer), or refused
// with a *RateLimitError when they are already reached.
func (s *Service) normalize(ctx context.Context, keys []string, code string) (string, error) {
	canon, err := devices.NormalizeCode(code)
	if err == nil {
		return canon, nil
	}
	_, retry, err := s.limiter.reserveCode(ctx, keys)
	if errors.Is(err, ErrRateLimited) {
		return "", s.limited(ctx, keys, retry)
	}
	if err != nil {
		return "", err
	}
	return "", ErrInvalidCode
}

// codeDone turns the outcome of a store operation on a user code, made behind the
// limits of keys (the store counted a failed lookup in the same transaction), into the
// Service's error: nil, *RateLimitError when the store found a limit reached (wait >
// 0), ErrInvalidCode, ErrExpiredCode, ErrUsedCode, or an internal error.
func (s *Service) codeDone(ctx context.Context, keys []string, wait time.Duration, err error) error {
	switch {
	case err == nil && wait > 0:
		return s.limited(ctx, keys, s.limiter.retryAfter(wait, s.limiter.codeLimits(keys)))
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return ErrInvalidCode
	case errors.Is(err, store.ErrExpired):
		return ErrExpiredCode
	case errors.Is(err, store.ErrAlreadyUsed):
		return ErrUsedCode
	}
	return fmt.Errorf("links: code: %w", err)
}

// limited logs and returns the refusal of a lookup over the limits of keys.
func (s *Service) limited(ctx context.Context, keys []string, retry time.Duration) error {
	s.cfg.Metrics.LimitTrip(metrics.LimitCodeLookups)
	s.log.WarnContext(ctx, "code lookups limited", "keys", strings.Join(keys, " "), "retry_after", retry)
	return &RateLimitError{RetryAfter: retry}
}
