package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/linkdesk/linkdesk/server/store"
)

// ReserveAttempt allows Max attempts per window over all its keys, refuses the next
// with the time until the oldest leaves the window, and a released attempt frees its
// place.
func testReserveAttempt(t *testing.T, s store.Store) {
	ctx := context.Background()
	limits := []store.AttemptLimit{
		{Key: "pair", Max: 3, Window: time.Minute},
		{Key: "addr", Max: 5, Window: time.Minute},
	}
	for i := range 3 {
		wait, err := s.ReserveAttempt(ctx, limits, base.Add(time.Duration(i)*time.Second))
		must(t, err)
		if wait != 0 {
			t.Fatalf("attempt %d refused (wait %v)", i, wait)
		}
	}
	wait, err := s.ReserveAttempt(ctx, limits, base.Add(10*time.Second))
	must(t, err)
	if wait != 50*time.Second+time.Nanosecond {
		t.Fatalf("fourth attempt: wait %v, want 50s (until the first leaves the window)", wait)
	}
	// The refused attempt was not recorded: the address has 3, not 4.
	if n, err := s.CountFailures(ctx, "addr", base.Add(-time.Minute)); err != nil || n != 3 {
		t.Fatalf("addr count %d, %v; want 3", n, err)
	}
	must(t, s.ReleaseAttempt(ctx, []string{"pair", "addr"}, base.Add(2*time.Second)))
	wait, err = s.ReserveAttempt(ctx, limits, base.Add(10*time.Second))
	must(t, err)
	if wait != 0 {
		t.Fatalf("attempt after a release refused (wait %v)", wait)
	}
	// The window moves on.
	wait, err = s.ReserveAttempt(ctx, limits, base.Add(61*time.Second))
	must(t, err)
	if wait != 0 {
		t.Fatalf("attempt after the window refused (wait %v)", wait)
	}
}

// Concurrent reservations get exactly Max places between them.
func testReserveAttemptConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	limits := []store.AttemptLimit{{Key: "burst", Max: 10, Window: time.Hour}}
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wait, err := s.ReserveAttempt(ctx, limits, base.Add(time.Duration(i)*time.Millisecond))
			if err != nil {
				t.Error(err)
				return
			}
			if wait == 0 {
				mu.Lock()
				allowed++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if allowed != 10 {
		t.Fatalf("%d of 40 concurrent attempts reserved, want exactly 10", allowed)
	}
}

// After Free attempts each further one waits Backoff after the latest, doubling.
func testReserveAttemptBackoff(t *testing.T, s store.Store) {
	ctx := context.Background()
	limits := []store.AttemptLimit{{Key: "b", Max: 10, Window: time.Hour, Free: 2, Backoff: 10 * time.Second}}
	at := base
	try := func(want time.Duration) {
		t.Helper()
		wait, err := s.ReserveAttempt(ctx, limits, at)
		must(t, err)
		if wait != want {
			t.Fatalf("at +%v: wait %v, want %v", at.Sub(base), wait, want)
		}
	}
	try(0)
	try(0)
	try(10 * time.Second)
	at = at.Add(10 * time.Second)
	try(0)
	try(20 * time.Second)
	at = at.Add(20 * time.Second)
	try(0)
	try(40 * time.Second)
}

// A one-time-code step is used once; older steps are refused after a newer one.
func testUseTOTPStep(t *testing.T, s store.Store) {
	ctx := context.Background()
	use := func(subject string, step int64, want bool) {
		t.Helper()
		ok, err := s.UseTOTPStep(ctx, subject, step)
		must(t, err)
		if ok != want {
			t.Fatalf("UseTOTPStep(%s, %d) = %v, want %v", subject, step, ok, want)
		}
	}
	use("a", 100, true)
	use("a", 100, false)
	use("a", 99, false)
	use("b", 100, true)
	use("a", 101, true)
	use("a", 101, false)
}
