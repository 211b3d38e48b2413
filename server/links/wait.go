package links

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/linkdesk/linkdesk/server/events"
	"github.com/linkdesk/linkdesk/server/store"
)

// DeviceAuthReader is the optional store method the push channel needs: read a device
// authorization by (client, device code) without recording a poll, so waiting never
// triggers slow_down. With a store that lacks it Wait returns ErrPushUnsupported, and
// kiosks fall back to plain RFC 8628 polling.
type DeviceAuthReader interface {
	DeviceAuthByDeviceCode(ctx context.Context, clientID, deviceCode string) (store.DeviceAuth, error)
}

// What a waiting device is told (POST /device/wait).
const (
	WaitPending  = "pending"  // nothing yet: wait again (or poll as RFC 8628 says)
	WaitApproved = "approved" // poll the token endpoint now to collect the tokens
	WaitDenied   = "denied"   // the person said no; the next poll answers access_denied
	WaitExpired  = "expired"  // the code expired; start again
)

// Errors of Wait.
var (
	ErrPushUnsupported   = errors.New("links: this store cannot serve the push channel")
	ErrUnknownDeviceCode = errors.New("links: unknown device code")
)

// waitStatus maps a stored request to what the waiting device is told.
func waitStatus(d store.DeviceAuth, now time.Time) string {
	switch d.State {
	case store.DeviceAuthApproved, store.DeviceAuthConsumed:
		return WaitApproved
	case store.DeviceAuthDenied:
		return WaitDenied
	}
	if !now.Before(d.ExpiresAt) {
		return WaitExpired
	}
	return WaitPending
}

// Wait answers, as one of the Wait* statuses, as soon as clientID's device
// authorization deviceCode leaves the pending state, or WaitPending after timeout
// (WaitExpired at its expiry). Approvals and denials through this Service wake it at
// once; changes made elsewhere (another replica) are found by re-reading the store
// every Config.WaitRecheck. It returns ctx's error when ctx ends first.
func (s *Service) Wait(ctx context.Context, clientID, deviceCode string, timeout time.Duration) (string, error) {
	reader, ok := s.cfg.Store.(DeviceAuthReader)
	if !ok {
		return "", ErrPushUnsupported
	}
	// lookup re-reads the request once it is known to exist; if it has since been
	// purged it can only have expired.
	lookup := func() (string, error) {
		d, err := reader.DeviceAuthByDeviceCode(ctx, clientID, deviceCode)
		if errors.Is(err, store.ErrExpired) || errors.Is(err, store.ErrNotFound) {
			return WaitExpired, nil
		}
		if err != nil {
			return "", fmt.Errorf("links: device wait: %w", err)
		}
		return s.found(d), nil
	}

	d, err := reader.DeviceAuthByDeviceCode(ctx, clientID, deviceCode)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return "", ErrUnknownDeviceCode
	case errors.Is(err, store.ErrExpired):
		return WaitExpired, nil
	case err != nil:
		return "", fmt.Errorf("links: device wait: %w", err)
	}
	if st := s.found(d); st != WaitPending {
		return st, nil
	}

	// Subscribe first, then read again, so a change between the first read and the
	// subscription is not missed.
	sub := s.cfg.Events.SubscribeDeviceAuth(events.DeviceAuthKey(d.UserCode))
	defer sub.Close()

	timer := time.NewTimer(max(min(timeout, d.ExpiresAt.Sub(s.cfg.Now())+10*time.Millisecond), 0))
	defer timer.Stop()
	recheck := time.NewTicker(s.cfg.WaitRecheck)
	defer recheck.Stop()

	for {
		st, err := lookup()
		if err != nil || st != WaitPending {
			return st, err
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-sub.C:
		case <-recheck.C:
		case <-timer.C:
			// The wait limit or the expiry: answer whatever the state is now.
			return lookup()
		}
	}
}

// found is waitStatus of d, read from the store by a wait. An approval or denial found
// there is also told to this process's hub without relaying it (Hub.NoteDeviceAuth):
// the replica that made it may have died before relaying it, and until told, this
// process's cache of pending polls would keep answering the device "pending".
func (s *Service) found(d store.DeviceAuth) string {
	st := waitStatus(d, s.cfg.Now())
	if st == WaitApproved || st == WaitDenied {
		s.cfg.Events.NoteDeviceAuth(events.DeviceAuthKey(d.UserCode), d.State)
	}
	return st
}
