package metrics

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// A nil Recorder records nothing and never panics, so parts without metrics need none.
func TestNilRecorder(t *testing.T) {
	var r *Recorder
	r.Poll(PollPending)
	r.DeviceAuth(DeviceAuthStarted)
	r.LimitTrip(LimitWaits)
	r.SignIn(SignInFailure)
	r.WaitOpened()
	r.WaitClosed()
	r.StreamOpened()
	r.StreamClosed()
	r.StoreDone(OpHealth, time.Now(), true)
	r.Route("GET /x").Observe(200, time.Millisecond)
	if r.Store(nil) != nil || r.Route("GET /x").Name() != "" {
		t.Fatal("nil recorder made something")
	}
}

// The hot-path methods allocate nothing once a route's status code was seen.
func TestHotPathsDoNotAllocate(t *testing.T) {
	r := New()
	rt := r.Route("POST /oauth/token")
	rt.Observe(400, time.Millisecond)
	start := time.Now()
	if n := testing.AllocsPerRun(1000, func() {
		r.Route("POST /oauth/token").Observe(400, time.Millisecond)
		r.Poll(PollPending)
		r.StoreDone(OpDeviceAuthByDeviceCode, start, false)
		r.WaitOpened()
		r.WaitClosed()
	}); n != 0 {
		t.Fatalf("%v allocations per request", n)
	}
	if got := testutil.ToFloat64(r.polls[PollPending]); got != 1000+1 { // AllocsPerRun runs once more to warm up
		t.Fatalf("pending polls %v", got)
	}
}

// Routes beyond the bound share the label "other", so callers cannot grow the labels.
func TestRoutesBounded(t *testing.T) {
	r := New()
	for i := range maxRoutes + 50 {
		r.Route(fmt.Sprintf("GET /r%d", i)).Observe(200, time.Millisecond)
	}
	if n := testutil.CollectAndCount(r.duration); n != maxRoutes+1 {
		t.Fatalf("%d route label values, want %d", n, maxRoutes+1)
	}
	if r.Route("").Name() != "none" || r.Route("GET /r1").Name() != "GET /r1" {
		t.Fatal("route names")
	}
}
