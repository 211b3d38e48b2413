package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/linkdesk/linkdesk/server/store"
)

// testAuthCodeClaimedOnce checks that a code is issued once per request and claimed
// once, even by concurrent redemptions.
func testAuthCodeClaimedOnce(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := store.AuthRequest{ID: "ar1", ClientID: "linkdesk", RedirectURI: "http://127.0.0.1:53682/callback",
		ResponseType: "code", CreatedAt: base, ExpiresAt: base.Add(10 * time.Minute)}
	must(t, s.CreateAuthRequest(ctx, a))
	must(t, s.CompleteAuthRequest(ctx, "ar1", "sub-1", base, []string{"pwd"}))
	must(t, s.SaveAuthCode(ctx, "ar1", "code-1"))
	// A re-opened callback gets no second code, and the first one still works.
	wantErr(t, s.SaveAuthCode(ctx, "ar1", "code-2"), store.ErrAlreadyUsed)
	_, err := s.AuthRequestByCode(ctx, "code-2")
	wantErr(t, err, store.ErrNotFound)

	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { _, errs[i] = s.AuthRequestByCode(ctx, "code-1") })
	}
	wg.Wait()
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, store.ErrNotFound):
			t.Errorf("claim %d: %v", i, err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d of %d claims of one code won, want exactly 1", wins, n)
	}
	// Still no second code after the claim; the request itself stays until deleted.
	wantErr(t, s.SaveAuthCode(ctx, "ar1", "code-3"), store.ErrAlreadyUsed)
	got, err := s.AuthRequestByID(ctx, "ar1")
	must(t, err)
	if got.Subject != "sub-1" {
		t.Errorf("request after claim = %+v", got)
	}
}

// capped creates device authorization n from ip at at under caps.
func capped(s store.Store, n int, ip string, at time.Time, caps store.RequestCaps) error {
	d := newDeviceAuth(n)
	d.RequestIP, d.CreatedAt, d.ExpiresAt = ip, at, at.Add(10*time.Minute)
	return s.CreateDeviceAuthCapped(context.Background(), d, caps)
}

// testDeviceAuthCaps checks every cap of CreateDeviceAuthCapped and that it deletes
// never-approved requests Keep after they expired, and not before.
func testDeviceAuthCaps(t *testing.T, s store.Store) {
	ctx := context.Background()
	seedClient(t, s)
	// Rate per address: three a minute from A; B is counted apart; a minute later A
	// may again.
	rate := store.RequestCaps{Window: time.Minute, PerIPRate: 3}
	for i := range 3 {
		must(t, capped(s, i, "192.0.2.1", base.Add(time.Duration(i)*time.Second), rate))
	}
	wantErr(t, capped(s, 3, "192.0.2.1", base.Add(10*time.Second), rate), store.ErrLimited)
	must(t, capped(s, 4, "192.0.2.2", base.Add(10*time.Second), rate))
	must(t, capped(s, 5, "192.0.2.1", base.Add(61*time.Second), rate))

	// Waiting per address (5 pending and unexpired from A at base+2m): an approval
	// frees a place.
	at := base.Add(2 * time.Minute)
	wantErr(t, capped(s, 6, "192.0.2.1", at, store.RequestCaps{PerIP: 4}), store.ErrLimited)
	_, err := s.ApproveDeviceAuth(ctx, newDeviceAuth(0).UserCode, "sub-1", "", at)
	must(t, err)
	must(t, capped(s, 7, "192.0.2.1", at, store.RequestCaps{PerIP: 4}))
	// Waiting per client and overall: 5 pending of tvClient now (1, 2, 4, 5, 7).
	wantErr(t, capped(s, 8, "192.0.2.9", at, store.RequestCaps{PerClient: 5}), store.ErrLimited)
	wantErr(t, capped(s, 8, "192.0.2.9", at, store.RequestCaps{Total: 5}), store.ErrLimited)
	must(t, capped(s, 8, "192.0.2.9", at, store.RequestCaps{Total: 6}))
	// Expired requests no longer count.
	must(t, capped(s, 9, "192.0.2.1", base.Add(20*time.Minute), store.RequestCaps{PerIP: 1}))

	// Keep: requests that expired (at base+10m..) more than an hour ago go; the
	// approved one, and the one that expired less than an hour ago, stay.
	must(t, capped(s, 10, "192.0.2.3", base.Add(81*time.Minute), store.RequestCaps{Keep: time.Hour}))
	_, err = s.DeviceAuthByUserCode(ctx, newDeviceAuth(1).UserCode)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.DeviceAuthByUserCode(ctx, newDeviceAuth(0).UserCode)
	must(t, err)
	_, err = s.DeviceAuthByUserCode(ctx, newDeviceAuth(9).UserCode) // expired at base+30m
	must(t, err)
}

// testAuthRequestCaps checks the caps of CreateAuthRequestCapped: requests signed in
// no longer wait, and never-signed-in ones go Keep after they expired.
func testAuthRequestCaps(t *testing.T, s store.Store) {
	ctx := context.Background()
	ar := func(id, ip string, at time.Time) store.AuthRequest {
		return store.AuthRequest{ID: id, ClientID: "linkdesk", RequestIP: ip, CreatedAt: at, ExpiresAt: at.Add(15 * time.Minute)}
	}
	rate := store.RequestCaps{Window: time.Minute, PerIPRate: 2}
	must(t, s.CreateAuthRequestCapped(ctx, ar("a1", "192.0.2.1", base), rate))
	must(t, s.CreateAuthRequestCapped(ctx, ar("a2", "192.0.2.1", base), rate))
	wantErr(t, s.CreateAuthRequestCapped(ctx, ar("a3", "192.0.2.1", base), rate), store.ErrLimited)
	must(t, s.CreateAuthRequestCapped(ctx, ar("b1", "192.0.2.2", base), rate))
	got, err := s.AuthRequestByID(ctx, "b1")
	must(t, err)
	if got.RequestIP != "192.0.2.2" {
		t.Errorf("RequestIP = %q", got.RequestIP)
	}

	waiting := store.RequestCaps{PerIP: 2}
	at := base.Add(5 * time.Minute)
	wantErr(t, s.CreateAuthRequestCapped(ctx, ar("a4", "192.0.2.1", at), waiting), store.ErrLimited)
	must(t, s.CompleteAuthRequest(ctx, "a1", "sub-1", at, []string{"pwd"}))
	must(t, s.CreateAuthRequestCapped(ctx, ar("a4", "192.0.2.1", at), waiting))
	wantErr(t, s.CreateAuthRequestCapped(ctx, ar("c1", "192.0.2.3", at), store.RequestCaps{Total: 3}), store.ErrLimited)

	// Keep: a2 and b1 expired at base+15m, a4 at base+20m; at base+80m with an hour's
	// keep, a2 and b1 go; a1 (signed in) and a4 stay.
	must(t, s.CreateAuthRequestCapped(ctx, ar("c2", "192.0.2.3", base.Add(80*time.Minute)), store.RequestCaps{Keep: time.Hour}))
	for id, want := range map[string]error{"a1": nil, "a2": store.ErrNotFound, "b1": store.ErrNotFound, "a4": nil, "c2": nil} {
		_, err := s.AuthRequestByID(ctx, id)
		if want == nil {
			must(t, err)
		} else {
			wantErr(t, err, want)
		}
	}
}

// testDeviceAuthCapsAnyOrder checks that the caps of CreateDeviceAuthCapped count
// exactly for each request's own time and window, whatever the order of the times a
// store sees (a clock stepped back, replicas a little apart) and whatever changed
// between two creates: approvals, denials and deletions free places.
func testDeviceAuthCapsAnyOrder(t *testing.T, s store.Store) {
	ctx := context.Background()
	seedClient(t, s)
	const a = "192.0.2.1"
	at := func(d time.Duration) time.Time { return base.Add(d) }
	perIP := func(n int) store.RequestCaps { return store.RequestCaps{PerIP: n} }
	// Requests 0, 1, 2 at base, +1m, +2m; each lives ten minutes.
	for i := range 3 {
		must(t, capped(s, i, a, at(time.Duration(i)*time.Minute), perIP(3)))
	}
	// At +11m30s only 2 is waiting.
	must(t, capped(s, 3, a, at(11*time.Minute+30*time.Second), perIP(2)))
	// Back at +30s, 0, 1, 2 and 3 are all waiting.
	wantErr(t, capped(s, 4, a, at(30*time.Second), perIP(4)), store.ErrLimited)
	must(t, capped(s, 4, a, at(30*time.Second), perIP(5)))
	// Forward again to +11m30s: 2 and 3 (4 expired at +10m30s).
	wantErr(t, capped(s, 5, a, at(11*time.Minute+30*time.Second), perIP(2)), store.ErrLimited)
	must(t, capped(s, 5, a, at(11*time.Minute+30*time.Second), perIP(3)))

	// The rate window is the caller's: an hour holds 0 to 5, a minute 3 and 5.
	now := at(11*time.Minute + 30*time.Second)
	hour := store.RequestCaps{Window: time.Hour, PerIPRate: 6}
	wantErr(t, capped(s, 6, a, now, hour), store.ErrLimited)
	hour.PerIPRate = 7
	must(t, capped(s, 6, a, now, hour))
	minute := store.RequestCaps{Window: time.Minute, PerIPRate: 3}
	wantErr(t, capped(s, 7, a, now, minute), store.ErrLimited)
	minute.PerIPRate = 4
	must(t, capped(s, 7, a, now, minute))

	// Waiting at now: 2, 3, 5, 6, 7. Approving 5 and denying 6 free two places.
	wantErr(t, capped(s, 8, a, now, perIP(5)), store.ErrLimited)
	_, err := s.ApproveDeviceAuth(ctx, newDeviceAuth(5).UserCode, "sub-1", "", now)
	must(t, err)
	must(t, s.DenyDeviceAuth(ctx, newDeviceAuth(6).UserCode, "sub-1", now))
	wantErr(t, capped(s, 8, a, now, perIP(3)), store.ErrLimited)
	must(t, capped(s, 8, a, now, perIP(4)))
	// Per client and overall count the same requests.
	wantErr(t, capped(s, 9, "192.0.2.2", now, store.RequestCaps{PerClient: 4}), store.ErrLimited)
	wantErr(t, capped(s, 9, "192.0.2.2", now, store.RequestCaps{Total: 4}), store.ErrLimited)

	// Purged requests no longer count, even read back at a time they would be waiting.
	must(t, s.Purge(ctx, at(time.Hour)))
	one := store.RequestCaps{Window: time.Hour, PerIPRate: 1, PerIP: 1, PerClient: 1, Total: 1}
	must(t, capped(s, 9, a, now, one))
	wantErr(t, capped(s, 10, "192.0.2.2", now, one), store.ErrLimited)
}

// testDeviceAuthCapsConcurrent checks that concurrent creates cannot pass a cap: of
// many at once from one address, exactly the cap's number are stored.
func testDeviceAuthCapsConcurrent(t *testing.T, s store.Store) {
	seedClient(t, s)
	const n, limit = 32, 10
	caps := store.RequestCaps{Window: time.Minute, PerIPRate: limit, PerIP: limit}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = capped(s, i, "192.0.2.1", base, caps) })
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
	if stored != limit {
		t.Fatalf("%d of %d concurrent creates stored under a cap of %d", stored, n, limit)
	}
}
