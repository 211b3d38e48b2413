package links

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/linkdesk/linkdesk/server/store"
)

// IdleSweepBatch bounds the links one transaction of the idle sweep deletes, so a
// sweep never holds the database's writer for long.
const IdleSweepBatch = 100

// DefaultIdleSweepEvery is how often RunIdleSweeper looks for idle links.
const DefaultIdleSweepEvery = 10 * time.Minute

// SweepIdle unlinks every device link unused (last seen, else linked) for longer than
// its client's UnlinkAfter, IdleSweepBatch at a time: each goes with its tokens, is
// logged and published to its account's stream as an unlink. It returns how many went.
func (s *Service) SweepIdle(ctx context.Context) (int, error) {
	clients, err := s.cfg.Store.ListClients(ctx)
	if err != nil {
		return 0, fmt.Errorf("links: idle sweep: %w", err)
	}
	n := 0
	for _, c := range clients {
		if c.Policy.UnlinkAfter <= 0 {
			continue
		}
		for {
			gs, err := s.cfg.Store.DeleteIdleGrants(ctx, c.ID, s.cfg.Now().Add(-c.Policy.UnlinkAfter), IdleSweepBatch)
			if err != nil {
				return n, fmt.Errorf("links: idle sweep of %s: %w", c.ID, err)
			}
			for _, g := range gs {
				s.unlinked(ctx, g, "idle")
			}
			n += len(gs)
			if len(gs) < IdleSweepBatch {
				break
			}
		}
	}
	return n, nil
}

// RunIdleSweeper runs SweepIdle at once and then every every (<= 0:
// DefaultIdleSweepEvery) until ctx ends, logging what it did.
func (s *Service) RunIdleSweeper(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = DefaultIdleSweepEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if n, err := s.SweepIdle(ctx); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "idle sweep", "err", err)
		} else if n > 0 {
			s.log.InfoContext(ctx, "idle links unlinked", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// EndIfIdle unlinks grant id of clientID, as the sweep would, when it has been unused
// for longer than the client's UnlinkAfter, and reports whether it did: the token
// endpoint asks before a refresh, so an idle link cannot be used between sweeps.
func (s *Service) EndIfIdle(ctx context.Context, clientID, id string) (bool, error) {
	p, err := s.policy(ctx, clientID)
	if err != nil || p.UnlinkAfter <= 0 {
		return false, err
	}
	g, err := s.cfg.Store.GrantByID(ctx, "", id)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("links: idle check: %w", err)
	}
	if g.Flow != store.FlowDevice || !g.LastUsed().Before(s.cfg.Now().Add(-p.UnlinkAfter)) {
		return false, nil
	}
	g, err = s.cfg.Store.DeleteGrant(ctx, g.Subject, g.ID)
	if errors.Is(err, store.ErrNotFound) {
		return true, nil // unlinked meanwhile (the sweep, or the person)
	}
	if err != nil {
		return false, fmt.Errorf("links: unlink idle device: %w", err)
	}
	s.unlinked(ctx, g, "idle")
	return true, nil
}
