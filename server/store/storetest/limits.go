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

// ReserveAttempt allows Max attempts per window over all its keys, refuses the next
// with the time until the oldest leaves the window, and a released attempt frees its
// place.
func testReserveAttempt(t *testing.T, s store.Store) {
	ctx := context.Background()
	limits := []store.AttemptLimit{
		{Key: "pair", Max: 3, Window: time.Minute},
		{Key: "addr", Max: 5, Window: time.Minute},
	}
	reserveAllowed(t, s, limits, 0, 1, 2)
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

// reserveAllowed reserves one attempt under limits at each of secs seconds after base,
// and fails the test if any is refused.
func reserveAllowed(t *testing.T, s store.Store, limits []store.AttemptLimit, secs ...int) {
	t.Helper()
	for _, sec := range secs {
		wait, err := s.ReserveAttempt(context.Background(), limits, base.Add(time.Duration(sec)*time.Second))
		must(t, err)
		if wait != 0 {
			t.Fatalf("attempt at %ds refused (wait %v)", sec, wait)
		}
	}
}

// Attempts recorded out of time order (replicas whose clocks differ by a little)
// still refuse with the time until the oldest leaves the window, for the limit that
// is reached.
func testReserveAttemptOutOfOrder(t *testing.T, s store.Store) {
	ctx := context.Background()
	limits := []store.AttemptLimit{
		{Key: "pair", Max: 9, Window: time.Minute},
		{Key: "net", Max: 3, Window: time.Minute},
	}
	reserveAllowed(t, s, limits, 20, 5, 10)
	wait, err := s.ReserveAttempt(ctx, limits, base.Add(30*time.Second))
	must(t, err)
	if want := 35*time.Second + time.Nanosecond; wait != want {
		t.Fatalf("fourth attempt: wait %v, want %v (until the attempt at 5s leaves the window)", wait, want)
	}
}

// ApproveUserCode, DenyUserCode and PendingUserCode count a failed lookup (unknown,
// expired, used) once under each key in the same transaction, record nothing for a
// success, and once a limit is reached refuse with the wait, doing nothing.
func testUserCodeLimits(t *testing.T, s store.Store) {
	ctx := context.Background()
	seedClient(t, s)
	limits := []store.AttemptLimit{
		{Key: "sub:a", Max: 4, Window: time.Hour},
		{Key: "ip:a", Max: 10, Window: time.Hour},
		{Key: "sub:a", Max: 4, Window: time.Hour}, // a key listed twice counts once
	}
	count := func(key string, want int) {
		t.Helper()
		if n, err := s.CountFailures(ctx, key, base.Add(-time.Hour)); err != nil || n != want {
			t.Fatalf("%s count %d, %v; want %d", key, n, err, want)
		}
	}
	d := createDeviceAuth(t, s, 1)
	at := base.Add(time.Minute)

	got, wait, err := s.PendingUserCode(ctx, d.UserCode, limits, at)
	must(t, err)
	if wait != 0 || got.UserCode != d.UserCode || got.State != store.DeviceAuthPending {
		t.Fatalf("PendingUserCode = %+v, wait %v", got, wait)
	}
	g, wait, err := s.ApproveUserCode(ctx, d.UserCode, "sub-1", "", limits, at, nil)
	must(t, err)
	if wait != 0 || g.ID == "" || g.Name != d.Device.Name || g.Subject != "sub-1" {
		t.Fatalf("ApproveUserCode = %+v, wait %v", g, wait)
	}
	count("sub:a", 0) // successes record nothing
	count("ip:a", 0)

	_, _, err = s.ApproveUserCode(ctx, "ZZZZZZZZ", "sub-1", "", limits, at, nil)
	wantErr(t, err, store.ErrNotFound)
	count("sub:a", 1)
	count("ip:a", 1)
	_, _, err = s.DenyUserCode(ctx, d.UserCode, "sub-1", limits, at)
	wantErr(t, err, store.ErrAlreadyUsed)
	d2 := createDeviceAuth(t, s, 2)
	_, _, err = s.PendingUserCode(ctx, d2.UserCode, limits, d2.ExpiresAt)
	wantErr(t, err, store.ErrExpired)
	count("sub:a", 3)

	// The denial hands back the request as it was.
	d3 := createDeviceAuth(t, s, 3)
	was, wait, err := s.DenyUserCode(ctx, d3.UserCode, "sub-1", limits, at)
	must(t, err)
	if wait != 0 || was.State != store.DeviceAuthPending || was.UserCode != d3.UserCode || was.ClientID != tvClient {
		t.Fatalf("DenyUserCode = %+v, wait %v", was, wait)
	}
	if now, err := s.DeviceAuthByUserCode(ctx, d3.UserCode); err != nil || now.State != store.DeviceAuthDenied {
		t.Fatalf("after DenyUserCode: %+v, %v", now, err)
	}

	// The fourth failure reaches the account's limit; then even a good code waits,
	// and nothing is done or counted.
	_, _, err = s.PendingUserCode(ctx, "ZZZZZZZZ", limits, at)
	wantErr(t, err, store.ErrNotFound)
	count("sub:a", 4)
	d4 := createDeviceAuth(t, s, 4)
	_, wait, err = s.ApproveUserCode(ctx, d4.UserCode, "sub-1", "", limits, at, nil)
	must(t, err)
	if wait != time.Hour+time.Nanosecond {
		t.Fatalf("approval over the limit: wait %v, want 1h (until the first failure leaves)", wait)
	}
	if _, wait, err := s.DenyUserCode(ctx, d4.UserCode, "sub-1", limits, at); err != nil || wait == 0 {
		t.Fatalf("denial over the limit: wait %v, %v", wait, err)
	}
	if _, wait, err := s.PendingUserCode(ctx, d4.UserCode, limits, at); err != nil || wait == 0 {
		t.Fatalf("lookup over the limit: wait %v, %v", wait, err)
	}
	if now, err := s.DeviceAuthByUserCode(ctx, d4.UserCode); err != nil || now.State != store.DeviceAuthPending {
		t.Fatalf("refused approval changed the request: %+v, %v", now, err)
	}
	count("sub:a", 4)
	count("ip:a", 4)
}

// Concurrent approvals of wrong codes behind the same limit: exactly Max are looked up
// (and counted), the rest refused with a wait; concurrent good approvals behind their
// own limits all succeed.
func testUserCodeLimitsConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	seedClient(t, s)
	wrong := []store.AttemptLimit{{Key: "sub:burst", Max: 10, Window: time.Hour}}
	const n = 40
	for i := range n {
		createDeviceAuth(t, s, i)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	looked, refused, approved := 0, 0, 0
	for i := range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, wait, err := s.ApproveUserCode(ctx, fmt.Sprintf("ZZZZ%04d", i), "sub-x", "", wrong, base.Add(time.Minute), nil)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, store.ErrNotFound):
				looked++
			case err == nil && wait > 0:
				refused++
			default:
				t.Errorf("wrong code %d: wait %v, %v", i, wait, err)
			}
		}()
		go func() {
			defer wg.Done()
			own := []store.AttemptLimit{{Key: fmt.Sprintf("sub:%d", i), Max: 1, Window: time.Hour}}
			_, wait, err := s.ApproveUserCode(ctx, newDeviceAuth(i).UserCode, "sub-ok", "", own, base.Add(time.Minute), nil)
			mu.Lock()
			defer mu.Unlock()
			if err != nil || wait != 0 {
				t.Errorf("good code %d: wait %v, %v", i, wait, err)
				return
			}
			approved++
		}()
	}
	wg.Wait()
	if looked != 10 || refused != n-10 || approved != n {
		t.Fatalf("%d wrong codes looked up, %d refused, %d good approved; want 10, %d, %d", looked, refused, approved, n-10, n)
	}
	if c, err := s.CountFailures(ctx, "sub:burst", base); err != nil || c != 10 {
		t.Fatalf("burst counted %d, %v; want 10", c, err)
	}
}

// ApproveUserCode's check sees the pending request and the account's link count in
// the approving transaction; its refusal writes nothing and comes back as is.
func testApproveCheck(t *testing.T, s store.Store) {
	ctx := context.Background()
	seedClient(t, s)
	limits := []store.AttemptLimit{{Key: "sub:c", Max: 4, Window: time.Hour}}
	at := base.Add(time.Minute)
	refused := errors.New("policy says no")
	var counts []int
	atMostOne := func(d store.DeviceAuth, linked func() (int, error)) error {
		n, err := linked()
		if err != nil {
			return err
		}
		counts = append(counts, n)
		if d.State != store.DeviceAuthPending || d.ClientID == "" {
			t.Errorf("check saw %+v", d)
		}
		if n >= 1 {
			return refused
		}
		return nil
	}
	d1, d2 := createDeviceAuth(t, s, 1), createDeviceAuth(t, s, 2)
	if _, _, err := s.ApproveUserCode(ctx, d1.UserCode, "sub-c", "", limits, at, atMostOne); err != nil {
		t.Fatal(err)
	}
	_, _, err := s.ApproveUserCode(ctx, d2.UserCode, "sub-c", "", limits, at, atMostOne)
	if !errors.Is(err, refused) {
		t.Fatalf("second approve: %v, want the check's error", err)
	}
	if len(counts) != 2 || counts[0] != 0 || counts[1] != 1 {
		t.Fatalf("linked counts %v, want [0 1]", counts)
	}
	got, wait, err := s.PendingUserCode(ctx, d2.UserCode, limits, at)
	must(t, err)
	if wait != 0 || got.State != store.DeviceAuthPending {
		t.Fatalf("refused request is %+v (wait %v), want still pending", got, wait)
	}
	if n, err := s.CountFailures(ctx, "sub:c", base.Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("refusal recorded %d attempts, %v", n, err)
	}
}
