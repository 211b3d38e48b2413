package links_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/events"
	"github.com/linkdesk/linkdesk/server/links"
	"github.com/linkdesk/linkdesk/server/store"
	"github.com/linkdesk/linkdesk/server/store/sqlite"
)

// faultyStore is a real SQLite store whose client reads fail while failing is set,
// or from the moment an approval is saved while failAfterApprove is set.
type faultyStore struct {
	*sqlite.DB
	failing          atomic.Bool
	failAfterApprove atomic.Bool
}

func (f *faultyStore) ApproveUserCode(ctx context.Context, userCode, subject, name string, limits []store.AttemptLimit,
	now time.Time, check store.ApproveCheck) (store.Grant, time.Duration, error) {
	g, wait, err := f.DB.ApproveUserCode(ctx, userCode, subject, name, limits, now, check)
	if err == nil && f.failAfterApprove.Load() {
		f.failing.Store(true)
	}
	return g, wait, err
}

func (f *faultyStore) ClientByID(ctx context.Context, id string) (store.Client, error) {
	if f.failing.Load() {
		return store.Client{}, errors.New("injected: clients cannot be read")
	}
	return f.DB.ClientByID(ctx, id)
}

type env struct {
	st  *faultyStore
	hub *events.Hub
	svc *links.Service

	mu  sync.Mutex
	now time.Time
}

func (e *env) Now() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

func (e *env) advance(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now = e.now.Add(d)
}

func newEnv(t *testing.T, limits links.Limits) *env {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "linkd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.UpsertClient(ctx, store.Client{ID: "tv", Name: "StreamBox"}); err != nil {
		t.Fatal(err)
	}
	e := &env{st: &faultyStore{DB: db}, hub: events.NewHub(), now: time.Now()}
	e.svc = links.New(links.Config{Store: e.st, Events: e.hub, Logger: slog.New(slog.DiscardHandler),
		Now: e.Now, Limits: limits})
	return e
}

// pending stores a pending request of the tv client and returns its user code.
func (e *env) pending(t *testing.T, code string) string {
	t.Helper()
	now := e.Now()
	err := e.st.CreateDeviceAuth(context.Background(), store.DeviceAuth{DeviceCode: "dc-" + code, UserCode: code,
		ClientID: "tv", Device: devices.DeviceInfo{Name: "Den TV", Kind: devices.KindTV}, RequestIP: "192.0.2.7",
		CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute), Interval: 5 * time.Second, State: store.DeviceAuthPending})
	if err != nil {
		t.Fatal(err)
	}
	return code
}

func (e *env) grant(t *testing.T, subject string, flow store.GrantFlow, name string) store.Grant {
	t.Helper()
	g := store.Grant{ID: subject + "-" + name, Subject: subject, ClientID: "tv", Flow: flow, Name: name, CreatedAt: e.Now()}
	if err := e.st.CreateGrant(context.Background(), g); err != nil {
		t.Fatal(err)
	}
	return g
}

func TestApproveWakesDeviceAndStream(t *testing.T) {
	e := newEnv(t, links.Limits{})
	ctx := context.Background()
	code := e.pending(t, "BCDFGHJK")
	wake := e.hub.SubscribeDeviceAuth(events.DeviceAuthKey(code))
	defer wake.Close()
	stream := e.svc.SubscribeAccount("alice", 0)
	defer stream.Close()

	alice := links.Caller{Subject: "alice", IP: "192.0.2.9"}
	req, err := e.svc.LookUp(ctx, alice, "bcdf ghjk")
	if err != nil || req.Client.Name != "StreamBox" || !req.SameNetwork || req.LinkRequest().UserCode != "BCDF-GHJK" {
		t.Fatalf("LookUp = %+v, %v", req, err)
	}
	l, err := e.svc.Approve(ctx, alice, "BCDF-GHJK", links.Approval{Name: "  Kitchen  "})
	if err != nil || l.Name() != "Kitchen" || l.Device.Client.Name != "StreamBox" {
		t.Fatalf("Approve = %+v, %v", l, err)
	}
	select {
	case st := <-wake.C:
		if st != store.DeviceAuthApproved {
			t.Errorf("device woken with %q", st)
		}
	default:
		t.Error("waiting device not woken")
	}
	select {
	case ev := <-stream.C:
		if ev.Type != devices.EventLinked || ev.Device.ID != l.Grant.ID {
			t.Errorf("event %+v", ev)
		}
	default:
		t.Error("no linked event")
	}
	if _, err := e.svc.Approve(ctx, alice, code, links.Approval{}); !errors.Is(err, links.ErrUsedCode) {
		t.Errorf("second approve: %v, want ErrUsedCode", err)
	}
	if _, err := e.svc.Deny(ctx, alice, code); !errors.Is(err, links.ErrUsedCode) {
		t.Errorf("deny after approve: %v, want ErrUsedCode", err)
	}
}

// An approval the store saved stands even when the device cannot be rendered: the
// caller is told it worked and the stream hears of it, with the client's id for a name.
func TestApproveSavedButUnrendered(t *testing.T) {
	e := newEnv(t, links.Limits{})
	stream := e.svc.SubscribeAccount("alice", 0)
	defer stream.Close()
	code := e.pending(t, "BCDFGHJL")
	// Clients are read before the approval is saved (its client's policy), so they
	// become unreadable only once it is.
	e.st.failAfterApprove.Store(true)
	l, err := e.svc.Approve(context.Background(), links.Caller{Subject: "alice", IP: "192.0.2.9"}, code, links.Approval{})
	if err != nil || l.Device.ID == "" || l.Device.Client.Name != "tv" || l.Name() != "Den TV" {
		t.Fatalf("Approve = %+v, %v", l, err)
	}
	select {
	case ev := <-stream.C:
		if ev.Type != devices.EventLinked || ev.Device.ID != l.Grant.ID {
			t.Errorf("event %+v", ev)
		}
	default:
		t.Error("no linked event")
	}
}

func TestCodeFailuresAreThrottled(t *testing.T) {
	e := newEnv(t, links.Limits{AccountFailures: 3, AddressFailures: 100, Window: 15 * time.Minute})
	ctx := context.Background()
	old := e.pending(t, "BCDFGHJM")
	alice := links.Caller{Subject: "alice", IP: "192.0.2.9"}
	for _, bad := range []string{"not a code", "BBBB-BBBB"} {
		if _, err := e.svc.LookUp(ctx, alice, bad); !errors.Is(err, links.ErrInvalidCode) {
			t.Fatalf("LookUp(%q) = %v, want ErrInvalidCode", bad, err)
		}
	}
	e.advance(10 * time.Minute)
	if _, err := e.svc.Deny(ctx, alice, old); !errors.Is(err, links.ErrExpiredCode) {
		t.Fatalf("Deny of an expired code = %v, want ErrExpiredCode", err)
	}
	// Three failures: the account is paused, even for a good code, until the first
	// two leave the 15-minute window (the failure at exactly the window's edge counts).
	good := e.pending(t, "BCDFGHJN")
	var limited *links.RateLimitError
	if _, err := e.svc.LookUp(ctx, alice, good); !errors.As(err, &limited) || !errors.Is(err, links.ErrRateLimited) || limited.RetryAfter != 5*time.Minute+time.Second {
		t.Fatalf("LookUp while throttled = %v, want a 5m1s RateLimitError", err)
	}
	// Another account from another address is not affected.
	if _, err := e.svc.LookUp(ctx, links.Caller{Subject: "bob", IP: "198.51.100.1"}, good); err != nil {
		t.Fatalf("bob: %v", err)
	}
	e.advance(5*time.Minute + time.Second)
	if _, err := e.svc.LookUp(ctx, alice, good); err != nil {
		t.Fatalf("alice after the wait: %v", err)
	}
}

func TestUnlinkAll(t *testing.T) {
	e := newEnv(t, links.Limits{})
	ctx := context.Background()
	tv := e.grant(t, "alice", store.FlowDevice, "TV")
	box := e.grant(t, "alice", store.FlowDevice, "Box")
	app := e.grant(t, "alice", store.FlowSignIn, "app")
	bobs := e.grant(t, "bob", store.FlowDevice, "TV")
	stream := e.svc.SubscribeAccount("alice", 0)
	defer stream.Close()

	gone, err := e.svc.UnlinkAll(ctx, "alice")
	if err != nil || len(gone) != 2 {
		t.Fatalf("UnlinkAll = %+v, %v", gone, err)
	}
	for _, g := range []store.Grant{tv, box} {
		if _, err := e.st.GrantByID(ctx, "alice", g.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s still linked: %v", g.ID, err)
		}
		if ev := <-stream.C; ev.Type != devices.EventUnlinked {
			t.Errorf("event %+v", ev)
		}
	}
	for _, g := range []store.Grant{app, bobs} {
		if _, err := e.st.GrantByID(ctx, g.Subject, g.ID); err != nil {
			t.Errorf("%s was removed: %v", g.ID, err)
		}
	}
	if list, err := e.svc.List(ctx, "alice"); err != nil || len(list) != 0 {
		t.Errorf("List after UnlinkAll = %+v, %v", list, err)
	}
	if _, err := e.svc.Unlink(ctx, "", bobs.ID); !errors.Is(err, links.ErrNotLinked) {
		t.Errorf("unlink with no account = %v, want ErrNotLinked", err)
	}
}

// A waiting device hears of its code's expiry when the hub wakes all waiters after the
// clock moved (linkdtest's Clock does so), not only at its timer or the next recheck.
func TestWaitWokenByClockJump(t *testing.T) {
	e := newEnv(t, links.Limits{})
	// Recheck and timeout far beyond the test's patience: only the wake-up can end it.
	svc := links.New(links.Config{Store: e.st, Events: e.hub, Logger: slog.New(slog.DiscardHandler),
		Now: e.Now, WaitRecheck: time.Hour})
	code := e.pending(t, "BCDFGHJP")
	got := make(chan string, 1)
	go func() {
		st, err := svc.Wait(context.Background(), "tv", "dc-"+code, time.Hour)
		if err != nil {
			st = err.Error()
		}
		got <- st
	}()
	deadline := time.Now().Add(10 * time.Second)
	for e.hub.Subscribers() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the waiter never subscribed")
		}
		time.Sleep(time.Millisecond)
	}
	e.advance(10 * time.Minute)
	e.hub.WakeDeviceAuths()
	select {
	case st := <-got:
		if st != links.WaitExpired {
			t.Fatalf("Wait = %q, want %q", st, links.WaitExpired)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiter was not woken")
	}
}

// Forty approvals of wrong codes at once by one account: exactly the account's limit
// are looked up (and stay counted, so the right code is refused next), the rest
// refused before any lookup.
func TestApproveBurstChecksOnlyTheLimit(t *testing.T) {
	e := newEnv(t, links.Limits{AccountFailures: 5, AddressFailures: 100})
	ctx := context.Background()
	mallory := links.Caller{Subject: "mallory", IP: "203.0.113.5"}
	const n = 40
	var wg sync.WaitGroup
	var mu sync.Mutex
	answers := map[string]int{}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code := string([]byte{'B', 'B', 'B', 'B', "BCDFGHJK"[i%8], "BCDFG"[i/8], 'B', 'B'})
			_, err := e.svc.Approve(ctx, mallory, code, links.Approval{})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, links.ErrInvalidCode):
				answers["invalid"]++
			case errors.Is(err, links.ErrRateLimited):
				answers["limited"]++
			default:
				t.Errorf("Approve = %v", err)
			}
		}()
	}
	wg.Wait()
	if answers["invalid"] != 5 || answers["limited"] != n-5 {
		t.Fatalf("answers %v, want 5 invalid and %d limited", answers, n-5)
	}
	good := e.pending(t, "BCDFGHJM")
	if _, err := e.svc.Approve(ctx, mallory, good, links.Approval{}); !errors.Is(err, links.ErrRateLimited) {
		t.Fatalf("Approve of the right code after the burst = %v, want rate limited", err)
	}
	if _, err := e.svc.Approve(ctx, links.Caller{Subject: "alice", IP: "192.0.2.9"}, good, links.Approval{}); err != nil {
		t.Fatalf("alice: %v", err)
	}
}

// placeBook is a location database of one address.
type placeBook map[string]devices.Place

func (b placeBook) Place(ip string) devices.Place { return b[ip] }

// A request from another network is approved only with the person's confirmation
// that they are in front of the device; without it nothing changes and nothing is
// counted against the caller. The request's place comes from the location database.
func TestApproveFromAnotherNetworkNeedsConfirmation(t *testing.T) {
	e := newEnv(t, links.Limits{})
	e.svc = links.New(links.Config{Store: e.st, Events: e.hub, Logger: slog.New(slog.DiscardHandler),
		Now: e.Now, Places: placeBook{"192.0.2.7": {City: "Lisbon", Country: "Portugal", CountryCode: "PT"}}})
	ctx := context.Background()
	code := e.pending(t, "BCDFGHJK")
	far := links.Caller{Subject: "alice", IP: "198.51.100.4"}
	for range 12 { // more than the per-account failure limit: refusals are not failures
		if _, err := e.svc.Approve(ctx, far, code, links.Approval{Name: "Den"}); !errors.Is(err, links.ErrConfirmationRequired) {
			t.Fatalf("approve without confirmation: %v", err)
		}
	}
	req, err := e.svc.LookUp(ctx, far, code)
	if err != nil {
		t.Fatalf("still pending? %v", err)
	}
	o := req.LinkRequest().Origin
	if o.SameNetwork || o.Place.String() != "Lisbon, Portugal" || o.Line() != "Requested from Lisbon, Portugal (192.0.2.7) — not your network" {
		t.Errorf("origin %+v: %q", o, o.Line())
	}
	l, err := e.svc.Approve(ctx, far, code, links.Approval{Name: "Den", InFront: true})
	if err != nil {
		t.Fatal(err)
	}
	if l.Device.Name != "Den" {
		t.Errorf("linked %+v", l.Device)
	}

	// The same network needs no confirmation.
	code = e.pending(t, "CDFGHJKL")
	if _, err := e.svc.Approve(ctx, links.Caller{Subject: "alice", IP: "192.0.2.200"}, code, links.Approval{}); err != nil {
		t.Errorf("same network: %v", err)
	}
}

// TestClientNamesReusedForAMinute: a client's display name, once read, is shown for a
// minute even when clients cannot be read (links.clientNames); after that, an
// unreadable client shows its id again, and a readable one its current name.
func TestClientNamesReusedForAMinute(t *testing.T) {
	e := newEnv(t, links.Limits{})
	ctx := context.Background()
	// approve links code; with unreadable, clients cannot be read once it is saved
	// (the client's policy is read before), so its name comes from memory or not at all.
	approve := func(code string, unreadable bool) string {
		t.Helper()
		e.st.failing.Store(false)
		e.st.failAfterApprove.Store(unreadable)
		defer e.st.failAfterApprove.Store(false)
		l, err := e.svc.Approve(ctx, links.Caller{Subject: "alice", IP: "192.0.2.9"}, e.pending(t, code), links.Approval{})
		if err != nil {
			t.Fatal(err)
		}
		return l.Device.Client.Name
	}
	if got := approve("BCDFGHJK", false); got != "StreamBox" {
		t.Fatalf("first link's client %q, want StreamBox", got)
	}
	if got := approve("BCDFGHJM", true); got != "StreamBox" {
		t.Fatalf("unreadable client shown as %q, want StreamBox from memory", got)
	}
	e.advance(time.Minute)
	if got := approve("BCDFGHJN", true); got != "tv" {
		t.Fatalf("unreadable client a minute later shown as %q, want its id", got)
	}
	e.st.failing.Store(false)
	if err := e.st.UpsertClient(ctx, store.Client{ID: "tv", Name: "StreamBox 2"}); err != nil {
		t.Fatal(err)
	}
	if got := approve("BCDFGHJP", false); got != "StreamBox 2" {
		t.Fatalf("renamed client shown as %q, want StreamBox 2", got)
	}
}

// An approval the hub never heard of (the replica that made it died before relaying
// it) is found by a wait's re-read, which also tells this process's hub without
// relaying it, so the provider's cache of pending polls forgets the code at once.
func TestWaitTellsTheHubOfAChangeFoundInTheStore(t *testing.T) {
	e := newEnv(t, links.Limits{})
	svc := links.New(links.Config{Store: e.st, Events: e.hub, Logger: slog.New(slog.DiscardHandler),
		Now: e.Now, WaitRecheck: 10 * time.Millisecond})
	code := e.pending(t, "BCDFGHJQ")
	told := make(chan string, 4)
	stop := e.hub.WatchDeviceAuths(func(key string) { told <- key })
	defer stop()
	if _, _, err := e.st.ApproveUserCode(context.Background(), code, "alice", "", nil, e.Now(), nil); err != nil {
		t.Fatal(err)
	}
	st, err := svc.Wait(context.Background(), "tv", "dc-"+code, time.Hour)
	if err != nil || st != links.WaitApproved {
		t.Fatalf("Wait = %q, %v; want %q", st, err, links.WaitApproved)
	}
	select {
	case key := <-told:
		if key != events.DeviceAuthKey(code) {
			t.Fatalf("the hub's watchers were told of %q, want %q", key, events.DeviceAuthKey(code))
		}
	default:
		t.Fatal("the hub's watchers were not told of the approval the wait found")
	}
}
