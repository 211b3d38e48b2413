package links

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/linkdesk/linkdesk/devices"
)

// What a linked device waiting on its own link is told (POST /device/linked-wait).
const (
	LinkedStill = "linked"   // nothing happened within the wait: wait again
	LinkedGone  = "unlinked" // the link was removed: the device's tokens are dead
)

// DefaultMaxLinkedWaits is how many waits on one link may run at once (Config.MaxLinkedWaits).
const DefaultMaxLinkedWaits = 3

// ErrTooManyWaits: the link already has Config.MaxLinkedWaits waits running; the
// device should wait a little before asking again. It bounds what one stolen or buggy
// token can make linkd hold open.
var ErrTooManyWaits = errors.New("links: too many waits on this link")

// WaitLinked answers LinkedGone as soon as subject's linked device grantID is unlinked
// (by the account, by the device itself, on any front), or LinkedStill after timeout.
// Unlinks through this Service wake it at once; unlinks on another replica are found
// by re-reading the store every Config.WaitRecheck. ErrNotLinked when grantID is not a
// linked device of subject to begin with; ErrTooManyWaits over the per-link cap; ctx's
// error when ctx ends first.
func (s *Service) WaitLinked(ctx context.Context, subject, grantID string, timeout time.Duration) (string, error) {
	if _, err := s.own(ctx, subject, grantID); err != nil {
		return "", err
	}
	if !s.acquireLinkedWait(grantID) {
		return "", ErrTooManyWaits
	}
	defer s.releaseLinkedWait(grantID)

	gone := func() (bool, error) {
		_, err := s.own(ctx, subject, grantID)
		if errors.Is(err, ErrNotLinked) {
			return true, nil
		}
		if err != nil {
			return false, fmt.Errorf("links: linked wait: %w", err)
		}
		return false, nil
	}
	answer := func() (string, error) {
		g, err := gone()
		if err != nil || g {
			return LinkedGone, err
		}
		return LinkedStill, nil
	}

	// Subscribe first, then read again, so an unlink in between is not missed.
	sub := s.cfg.Events.SubscribeAccount(subject, 0)
	defer func() { sub.Close() }()
	timer := time.NewTimer(max(timeout, 0))
	defer timer.Stop()
	recheck := time.NewTicker(s.cfg.WaitRecheck)
	defer recheck.Stop()
	if g, err := gone(); err != nil || g {
		return answer()
	}
	for {
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case ev, ok := <-sub.C:
			if !ok {
				// Dropped for falling behind a busy account: listen again and look.
				sub = s.cfg.Events.SubscribeAccount(subject, 0)
				if g, err := gone(); err != nil || g {
					return answer()
				}
				continue
			}
			if ev.Type == devices.EventUnlinked && ev.Device.ID == grantID {
				return LinkedGone, nil
			}
		case <-recheck.C:
			if g, err := gone(); err != nil || g {
				return answer()
			}
		case <-timer.C:
			return answer()
		}
	}
}

func (s *Service) acquireLinkedWait(grantID string) bool {
	s.waitMu.Lock()
	defer s.waitMu.Unlock()
	if s.linkedWaits[grantID] >= s.cfg.MaxLinkedWaits {
		return false
	}
	s.linkedWaits[grantID]++
	return true
}

func (s *Service) releaseLinkedWait(grantID string) {
	s.waitMu.Lock()
	defer s.waitMu.Unlock()
	if s.linkedWaits[grantID]--; s.linkedWaits[grantID] <= 0 {
		delete(s.linkedWaits, grantID)
	}
}
