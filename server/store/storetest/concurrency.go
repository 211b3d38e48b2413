package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/linkdesk/linkdesk/server/store"
)

// Claims that must hold exactly once however many callers race, on a store that runs
// many transactions at once (PostgreSQL) as on one that runs one at a time (SQLite).

// testConcurrentRotateRetries: many retries of one lost rotation answer at once, all
// within grace: each is allowed (each revokes the previous answer), and afterwards
// exactly one successor refresh token and one access token of them live.
func testConcurrentRotateRetries(t *testing.T, s store.Store) {
	ctx := context.Background()
	must(t, s.CreateGrant(ctx, newGrant("g1", "sub-1", store.FlowDevice, base)))
	exp := base.Add(time.Hour)
	must(t, s.CreateRefreshToken(ctx, refreshToken("rt1", "g1", exp)))
	const n = 12
	now := base.Add(time.Minute)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			next := refreshToken(fmt.Sprint("rt2-", i), "g1", exp)
			next.CreatedAt = now
			errs[i] = s.RotateRefreshToken(ctx, "rt1", next, accessToken(fmt.Sprint("at2-", i), "g1", exp), time.Hour)
		})
	}
	wg.Wait()
	liveRefresh, liveAccess := 0, 0
	for i, err := range errs {
		must(t, err)
		if _, err := s.RefreshTokenByToken(ctx, fmt.Sprint("rt2-", i), now, time.Hour); err == nil {
			liveRefresh++
		} else if !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("successor %d: %v", i, err)
		}
		if _, err := s.AccessTokenByID(ctx, fmt.Sprint("at2-", i), now); err == nil {
			liveAccess++
		}
	}
	if liveRefresh != 1 || liveAccess != 1 {
		t.Fatalf("after %d concurrent retries: %d successors and %d access tokens live, want 1 and 1", n, liveRefresh, liveAccess)
	}
}

// testConcurrentRotateNoGrace: without a grace period, of concurrent rotations of one
// refresh token exactly one succeeds; every other is reuse, which deletes the grant.
func testConcurrentRotateNoGrace(t *testing.T, s store.Store) {
	ctx := context.Background()
	must(t, s.CreateGrant(ctx, newGrant("g1", "sub-1", store.FlowDevice, base)))
	exp := base.Add(time.Hour)
	must(t, s.CreateRefreshToken(ctx, refreshToken("rt1", "g1", exp)))
	const n = 12
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = s.RotateRefreshToken(ctx, "rt1", refreshToken(fmt.Sprint("rt2-", i), "g1", exp),
				accessToken(fmt.Sprint("at2-", i), "g1", exp), 0)
		})
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case errors.Is(err, store.ErrRefreshReused), errors.Is(err, store.ErrNotFound):
			// reuse; or the grant (and so the token) was already deleted by a reuse
		default:
			t.Errorf("rotation %d: %v", i, err)
		}
	}
	if won != 1 {
		t.Fatalf("%d of %d concurrent rotations succeeded, want exactly 1", won, n)
	}
	if _, err := s.GrantByID(ctx, "", "g1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("grant after reuse: %v, want deleted", err)
	}
}

// testConcurrentTOTPStep: of concurrent sign-ins with one one-time code, exactly one
// is accepted.
func testConcurrentTOTPStep(t *testing.T, s store.Store) {
	ctx := context.Background()
	const n = 16
	oks := make([]bool, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { oks[i], errs[i] = s.UseTOTPStep(ctx, "sub-1", 1000) })
	}
	wg.Wait()
	accepted := 0
	for i := range n {
		must(t, errs[i])
		if oks[i] {
			accepted++
		}
	}
	if accepted != 1 {
		t.Fatalf("%d of %d concurrent uses of one code accepted, want exactly 1", accepted, n)
	}
}

// testConcurrentCaps: a burst of capped creates from one address never passes the
// cap: exactly the cap's number are stored, the rest are refused.
func testConcurrentCaps(t *testing.T, s store.Store) {
	seedClient(t, s)
	caps := store.RequestCaps{Window: time.Minute, PerIPRate: 5}
	const n = 20
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = capped(s, i+1, "198.51.100.7", base, caps) })
	}
	wg.Wait()
	stored := 0
	for i, err := range errs {
		switch {
		case err == nil:
			stored++
		case !errors.Is(err, store.ErrLimited):
			t.Errorf("create %d: %v", i, err)
		}
	}
	if stored != caps.PerIPRate {
		t.Fatalf("%d of %d concurrent creates stored under a cap of %d", stored, n, caps.PerIPRate)
	}
}
