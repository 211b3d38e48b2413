package device

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zalando/go-keyring"
	"golang.org/x/oauth2"

	"github.com/linkdesk/linkdesk/auth"
	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest"
)

// linkdRig is a real linkd with one account, "ada", and a management-API client signed in
// as her through the linkdesk app client, to approve, deny and unlink as the app does.
type linkdRig struct {
	in  *linkdtest.Instance
	app *devices.Client
}

func startLinkd(t testing.TB, opts linkdtest.Options) *linkdRig {
	t.Helper()
	in := linkdtest.Start(t, opts)
	in.CreateUser(t, "ada", "correct horse battery")
	tok := in.AppToken(t, "ada", "correct horse battery")
	hc := oauth2.NewClient(in.Context(context.Background()), oauth2.StaticTokenSource(tok))
	return &linkdRig{in: in, app: devices.NewClient(in.URL, hc)}
}

func (r *linkdRig) flow(t testing.TB, store TokenStore, mod func(*Config)) *Flow {
	t.Helper()
	cfg := Config{Issuer: r.in.Issuer, ClientID: devices.KioskClientID, DeviceName: "Lobby screen",
		DeviceKind: string(devices.KindKiosk), HTTPClient: r.in.Client, Store: store}
	if mod != nil {
		mod(&cfg)
	}
	f, err := NewFlow(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// run starts f and returns its state log and a stop function that cancels the flow and
// waits until Run has returned (so a restarted flow never overlaps it). The test's
// cleanup calls stop too; calling it twice is fine.
func run(t testing.TB, f *Flow) (*stateLog, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	log := newStateLog()
	done := make(chan struct{})
	go func() { f.Run(ctx, log.report); close(done) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return log, stop
}

func TestDeviceFlowLinkdApproveRevokeRestart(t *testing.T) {
	r := startLinkd(t, linkdtest.Options{})
	ctx := t.Context()
	// The app's real token store over the go-keyring mock.
	keyring.MockInit()
	store := auth.NewTokenStore(auth.OSKeyring(), auth.DefaultKeyringTimeout)
	f := r.flow(t, store, func(c *Config) { c.UserinfoInterval = 100 * time.Millisecond })
	log, stop := run(t, f)

	s, i := log.waitFor(t, 0, 60*time.Second, isShowingCode)
	code := s.(ShowingCode)
	if code.VerificationURI != r.in.URL+"/link" {
		t.Errorf("verification_uri %q", code.VerificationURI)
	}
	if u, err := url.Parse(code.VerificationURIComplete); err != nil || u.Query().Get("user_code") == "" {
		t.Errorf("verification_uri_complete %q", code.VerificationURIComplete)
	}
	// What the person sees in the app names this display, as the kiosk described itself.
	req, err := r.app.LinkRequest(ctx, code.UserCode)
	if err != nil {
		t.Fatal(err)
	}
	if req.Device.Name != "Lobby screen" || req.Device.Kind != devices.KindKiosk {
		t.Errorf("link request shows device %+v", req.Device)
	}
	dev, err := r.app.Approve(ctx, code.UserCode, "")
	if err != nil {
		t.Fatal(err)
	}
	s, i = log.waitFor(t, i, 60*time.Second, isLinked)
	if name := s.(Linked).DisplayName; name != "Ada" {
		t.Errorf("linked to %q, want Ada", name)
	}
	stop()

	// Restarting with the stored tokens goes straight to Linked.
	f2 := r.flow(t, store, func(c *Config) { c.UserinfoInterval = 100 * time.Millisecond })
	log2, _ := run(t, f2)
	s, j := log2.waitFor(t, 0, 60*time.Second, func(s State) bool { return isLinked(s) || isShowingCode(s) })
	if !isLinked(s) {
		t.Fatalf("restart showed a code: %+v", s)
	}

	// Unlinking it in the app is noticed (within the check interval) and a new code shows.
	if err := r.app.Unlink(ctx, dev.ID); err != nil {
		t.Fatal(err)
	}
	_, j = log2.waitFor(t, j, 60*time.Second, func(s State) bool { u, ok := s.(Unlinked); return ok && !u.ByUs })
	log2.waitFor(t, j, 60*time.Second, isShowingCode)
	if _, err := store.Load(ctx, f2.StoreKey()); err == nil {
		t.Error("tokens still stored after the link was revoked")
	}
	_ = i
}

// TestDeviceFlowLinkdOfflineWhileLinked cuts the network of a linked device: it reports
// Offline (still linked), and reports Linked again once the network is back, without
// losing its link.
func TestDeviceFlowLinkdOfflineWhileLinked(t *testing.T) {
	r := startLinkd(t, linkdtest.Options{})
	var offline atomic.Bool
	hc := &http.Client{Transport: roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if offline.Load() {
			return nil, errors.New("network is unreachable")
		}
		return r.in.Client.Transport.RoundTrip(req)
	})}
	f := r.flow(t, nil, func(c *Config) { c.HTTPClient = hc; c.UserinfoInterval = 50 * time.Millisecond })
	log, _ := run(t, f)
	s, i := log.waitFor(t, 0, 60*time.Second, isShowingCode)
	if _, err := r.app.Approve(t.Context(), s.(ShowingCode).UserCode, ""); err != nil {
		t.Fatal(err)
	}
	_, i = log.waitFor(t, i, 60*time.Second, isLinked)
	offline.Store(true)
	_, i = log.waitFor(t, i, 60*time.Second, func(s State) bool { o, ok := s.(Offline); return ok && o.Linked })
	offline.Store(false)
	_, i = log.waitFor(t, i, 60*time.Second, func(s State) bool { return isLinked(s) || isShowingCode(s) })
	log.mu.Lock()
	last := log.states[i]
	log.mu.Unlock()
	if !isLinked(last) {
		t.Fatalf("after the outage: %#v, want Linked", last)
	}
}

func TestDeviceFlowLinkdUnlinkThisDisplay(t *testing.T) {
	r := startLinkd(t, linkdtest.Options{})
	ctx := t.Context()
	f := r.flow(t, &memTokenStore{}, nil)
	log, _ := run(t, f)
	s, i := log.waitFor(t, 0, 60*time.Second, isShowingCode)
	if _, err := r.app.Approve(ctx, s.(ShowingCode).UserCode, ""); err != nil {
		t.Fatal(err)
	}
	s, i = log.waitFor(t, i, 60*time.Second, isLinked)
	tok := s.(Linked).Token
	if err := f.Unlink(ctx); err != nil {
		t.Fatalf("unlink: %v", err)
	}
	log.waitFor(t, i, 60*time.Second, isShowingCode)
	list, err := r.app.Devices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 0 {
		t.Errorf("still linked after unlink: %+v", list)
	}
	// Its refresh token is dead at the provider too.
	if _, err := f.oauthClient().Refresh(ctx, tok); !errors.Is(err, auth.ErrSessionEnded) {
		t.Errorf("refresh after unlink: %v, want revoked", err)
	}
}

func TestDeviceFlowLinkdDenied(t *testing.T) {
	r := startLinkd(t, linkdtest.Options{})
	ctx := t.Context()
	f := r.flow(t, nil, nil)
	log, _ := run(t, f)
	s, i := log.waitFor(t, 0, 60*time.Second, isShowingCode)
	first := s.(ShowingCode)
	if err := r.app.Deny(ctx, first.UserCode); err != nil {
		t.Fatal(err)
	}
	_, i = log.waitFor(t, i, 60*time.Second, func(s State) bool { _, ok := s.(Declined); return ok })
	s, _ = log.waitFor(t, i, 60*time.Second, isShowingCode)
	if next := s.(ShowingCode); next.UserCode == first.UserCode || !next.AfterDecline {
		t.Fatalf("no fresh code after decline: %+v", next)
	}
}

// TestDeviceFlowLinkdRenewsExpiredCode lets a shown code's lifetime pass on linkd's
// clock only: the flow learns of the expiry from linkd (on the push channel, or from the
// token endpoint when it only polls) and shows a fresh code. Its own countdown stands
// still; TestDeviceFlowRenewsExpiredCode covers that one.
func TestDeviceFlowLinkdRenewsExpiredCode(t *testing.T) {
	clock := linkdtest.NewClock(time.Time{})
	r := startLinkd(t, linkdtest.Options{Clock: clock})
	for _, push := range []bool{true, false} {
		deviceClock := newStepClock()
		f := r.flow(t, nil, func(c *Config) { c.NoPush = !push; c.Clock = deviceClock })
		log, stop := run(t, f)
		s, i := log.waitFor(t, 0, 60*time.Second, isShowingCode)
		first := s.(ShowingCode)
		var poll stepWait
		if !push {
			poll = deviceClock.next(t) // the flow waits the interval before its first poll
		}
		clock.Advance(10*time.Minute + time.Second)
		if !push {
			deviceClock.elapse(poll)
		}
		s, _ = log.waitFor(t, i+1, 60*time.Second, isShowingCode)
		if next := s.(ShowingCode); next.UserCode == first.UserCode {
			t.Fatalf("push=%v: same code after expiry", push)
		}
		stop()
	}
}

// TestDeviceFlowLinkdSlowDown makes the flow poll linkd faster than the interval (its
// step clock lets the interval pass at once, and linkd's clock stands still, so every
// poll after the first is too soon however slow the machine): linkd answers slow_down,
// and the flow adds 5 s to its interval each time and keeps it.
func TestDeviceFlowLinkdSlowDown(t *testing.T) {
	r := startLinkd(t, linkdtest.Options{PollInterval: time.Second, Clock: linkdtest.NewClock(time.Time{})})
	clock := newStepClock()
	f := r.flow(t, nil, func(c *Config) { c.Clock = clock; c.NoPush = true })
	log, _ := run(t, f)
	log.waitFor(t, 0, 60*time.Second, isShowingCode)
	// First poll after 1 s (no previous poll: pending), then each poll comes too soon
	// on linkd's clock: slow_down, +5 s.
	for n, want := range []time.Duration{time.Second, time.Second, 6 * time.Second, 11 * time.Second} {
		w := clock.next(t)
		if w.d != want {
			t.Fatalf("wait %d: %v, want %v", n, w.d, want)
		}
		clock.elapse(w)
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	for _, s := range log.states {
		if _, ok := s.(ShowingCode); !ok {
			if _, ok := s.(Connecting); !ok {
				t.Errorf("unexpected state %#v", s)
			}
		}
	}
}

// benchApproveToLinked measures approve (management API) -> kiosk reports Linked, and
// reports the median and 99th percentile besides the mean (issue 13: push wake-up p99).
func benchApproveToLinked(b *testing.B, push bool) {
	// Each iteration links a new device: lift the per-network caps, or b.N beyond 60
	// is refused within a minute.
	r := startLinkd(b, linkdtest.Options{PollInterval: time.Second, DeviceAuthCaps: linkdtest.LiftedCaps})
	ctx := context.Background()
	f := r.flow(b, nil, func(c *Config) { c.NoPush = !push })
	log, _ := run(b, f)
	from := 0
	took := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	b.StopTimer()
	for range b.N {
		s, i := log.waitFor(b, from, 10*time.Second, isShowingCode)
		b.StartTimer()
		start := time.Now()
		if _, err := r.app.Approve(ctx, s.(ShowingCode).UserCode, ""); err != nil {
			b.Fatal(err)
		}
		_, i = log.waitFor(b, i, 20*time.Second, isLinked)
		took = append(took, time.Since(start))
		b.StopTimer()
		if err := f.Unlink(ctx); err != nil {
			b.Fatal(err)
		}
		from = i + 1
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2])/1e6, "p50-ms")
	b.ReportMetric(float64(took[len(took)*99/100])/1e6, "p99-ms")
}

// BenchmarkApproveToLinkedPush: the kiosk hears the approval on linkd's push channel.
func BenchmarkApproveToLinkedPush(b *testing.B) { benchApproveToLinked(b, true) }

// BenchmarkApproveToLinkedPoll: plain RFC 8628 polling at linkd's interval (1 s here; the
// default is 5 s). The approval lands right after the code appears, so the kiosk hears of
// it at its first poll, one interval later: the interval bounds the latency.
func BenchmarkApproveToLinkedPoll(b *testing.B) { benchApproveToLinked(b, false) }
