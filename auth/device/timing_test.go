package device

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// stepClock is a Clock the test advances by hand: every After call is handed to the test
// on waits, and fires only when the test says so.
type stepClock struct {
	mu    sync.Mutex
	now   time.Time
	waits chan stepWait
}

type stepWait struct {
	d    time.Duration
	fire chan time.Time
}

func newStepClock() *stepClock {
	return &stepClock{now: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC), waits: make(chan stepWait, 64)}
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.waits <- stepWait{d: d, fire: ch}
	return ch
}

// next returns the flow's next wait, failing the test if none comes.
func (c *stepClock) next(t *testing.T) stepWait {
	t.Helper()
	select {
	case w := <-c.waits:
		return w
	case <-time.After(30 * time.Second):
		t.Fatal("the flow did not wait")
		return stepWait{}
	}
}

// elapse lets w's time pass and fires it.
func (c *stepClock) elapse(w stepWait) {
	c.mu.Lock()
	c.now = c.now.Add(w.d)
	now := c.now
	c.mu.Unlock()
	w.fire <- now
}

// TestDeviceFlowHonoursIntervalAndSlowDown runs the flow against zitadel's example provider
// with a step clock; the first two token requests are answered slow_down. The flow must
// wait the interval before its first poll, add 5 s for each slow_down and keep the grown
// interval for all later polls (RFC 8628 §3.5), then link once approved.
func TestDeviceFlowHonoursIntervalAndSlowDown(t *testing.T) {
	issuer := startZitadelExample(t)
	var polls atomic.Int32
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if strings.HasSuffix(r.URL.Path, "/oauth/token") && polls.Add(1) <= 2 {
			// The provider says slow_down, as linkd does for a too-eager device.
			body := `{"error":"slow_down"}`
			return &http.Response{StatusCode: 400, Header: http.Header{"Content-Type": {"application/json"}},
				Body: ioNopCloser(body), Request: r}, nil
		}
		return http.DefaultTransport.RoundTrip(r)
	})}
	clock := newStepClock()
	flow, err := NewFlow(Config{Issuer: issuer, ClientID: "device", ClientSecret: "secret",
		Scopes: []string{"openid"}, HTTPClient: hc, Clock: clock, NoPush: true})
	if err != nil {
		t.Fatal(err)
	}
	log, stop := run(t, flow)

	s, i := log.waitFor(t, 0, 60*time.Second, isShowingCode)
	code := s.(ShowingCode).UserCode
	for n, want := range []time.Duration{5 * time.Second, 10 * time.Second, 15 * time.Second, 15 * time.Second} {
		w := clock.next(t)
		if w.d != want {
			t.Fatalf("wait %d: %v, want %v", n, w.d, want)
		}
		if n == 3 {
			zitadelAnswer(t, issuer, code, "allowed")
		}
		clock.elapse(w)
	}
	log.waitFor(t, i, 60*time.Second, isLinked)
	if got := polls.Load(); got != 4 {
		t.Errorf("%d token requests, want 4", got)
	}
	stop()
}

type stringBody struct{ *strings.Reader }

func (stringBody) Close() error { return nil }

func ioNopCloser(s string) stringBody { return stringBody{strings.NewReader(s)} }

// TestDeviceFlowRenewsExpiredCode lets a shown code's lifetime pass: the flow fetches and
// shows a new code by itself.
func TestDeviceFlowRenewsExpiredCode(t *testing.T) {
	issuer := startZitadelExample(t)
	clock := newStepClock()
	flow, err := NewFlow(Config{Issuer: issuer, ClientID: "device", ClientSecret: "secret",
		Scopes: []string{"openid"}, Clock: clock, NoPush: true})
	if err != nil {
		t.Fatal(err)
	}
	log, stop := run(t, flow)

	s, i := log.waitFor(t, 0, 60*time.Second, isShowingCode)
	first := s.(ShowingCode)
	w := clock.next(t)
	w.d = first.ExpiresAt.Sub(clock.Now()) + time.Second // the whole lifetime passes
	clock.elapse(w)
	s, _ = log.waitFor(t, i+1, 60*time.Second, isShowingCode)
	if next := s.(ShowingCode); next.UserCode == first.UserCode || !next.ExpiresAt.After(first.ExpiresAt) {
		t.Fatalf("no fresh code after expiry: %+v then %+v", first, next)
	}
	stop()
}
