// Package metrics is linkd's Prometheus instrumentation: every metric linkd exports is
// defined here, on a Recorder with a registry of its own (so several linkd in one
// process never collide), and the other packages receive the Recorder and report
// through its methods. A nil *Recorder records nothing, so code and tests without
// metrics need nothing.
//
// The methods on hot paths (requests, polls, store operations) are atomic adds on
// label children resolved in advance: no allocation and no label lookup per call.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// namespace prefixes every metric name.
const namespace = "linkd"

// DeviceAuthEvent is a step in a device authorization's life.
type DeviceAuthEvent uint8

// Device authorization events, the values of linkd_device_authorizations_total{event}.
const (
	DeviceAuthStarted  DeviceAuthEvent = iota // POST /device_authorization gave a user code
	DeviceAuthApproved                        // a person approved the code
	DeviceAuthDenied                          // a person denied the code
	DeviceAuthExpired                         // a poll found the code expired unanswered
	numDeviceAuthEvents
)

var deviceAuthEventNames = [numDeviceAuthEvents]string{"started", "approved", "denied", "expired"}

// PollAnswer is the answer to one device-token poll (RFC 8628 §3.5).
type PollAnswer uint8

// Poll answers, the values of linkd_token_polls_total{answer}.
const (
	PollPending  PollAnswer = iota // authorization_pending
	PollSlowDown                   // slow_down (too soon, or a storage fault)
	PollDenied                     // access_denied (denied, unknown or used code)
	PollExpired                    // expired_token
	PollSuccess                    // the tokens
	PollOther                      // any other error (a bad request or client)
	numPollAnswers
)

var pollAnswerNames = [numPollAnswers]string{"authorization_pending", "slow_down", "access_denied", "expired_token", "success", "other"}

// Limit is a kind of limit linkd enforces on callers.
type Limit uint8

// Limits, the values of linkd_limiter_trips_total{kind}.
const (
	LimitCodeLookups    Limit = iota // failed user-code lookups per account and address (RFC 8628 §5.1)
	LimitSignIns                     // failed sign-ins per account, address and pair
	LimitSignInsAtOnce               // sign-in steps in progress at once from one address
	LimitPasswordChecks              // the password-hashing pool was full
	LimitDeviceAuths                 // device authorizations per address, client or overall
	LimitWaits                       // POST /device/wait and /device/linked-wait running at once
	LimitStreams                     // event streams open at once per account
	numLimits
)

var limitNames = [numLimits]string{"code_lookups", "sign_ins", "sign_ins_at_once", "password_checks", "device_authorizations", "waits", "event_streams"}

// StoreOp names a store operation that is timed.
type StoreOp uint8

// The timed store operations, the values of linkd_store_operation_*{op}: those on the
// hot paths (polls, approvals, sign-ins, token checks).
const (
	OpDeviceAuthByDeviceCode StoreOp = iota
	OpCollectDeviceTokens
	OpCreateDeviceAuth
	OpPendingUserCode
	OpApproveUserCode
	OpDenyUserCode
	OpReserveAttempt
	OpReleaseAttempt
	OpAccessTokenByID
	OpRefreshToken
	OpUserByUsername
	OpUserBySubject
	OpClientByID
	OpCreateAuthRequest
	OpListGrants
	OpHealth
	numStoreOps
)

var storeOpNames = [numStoreOps]string{"device_auth_by_device_code", "collect_device_tokens", "create_device_auth",
	"pending_user_code", "approve_user_code", "deny_user_code", "reserve_attempt", "release_attempt",
	"access_token_by_id", "refresh_token", "user_by_username", "user_by_subject", "client_by_id",
	"create_auth_request", "list_grants", "health"}

// SignIn is the outcome of one sign-in step.
type SignIn uint8

// Sign-in outcomes, the values of linkd_sign_ins_total{result}.
const (
	SignInSuccess SignIn = iota // the account signed in
	SignInFailure               // wrong username, password or one-time code
	numSignIns
)

var signInNames = [numSignIns]string{"success", "failure"}

// maxRoutes bounds the distinct route labels; more patterns than this (there are
// a few dozen) share the label "other".
const maxRoutes = 128

// Recorder holds linkd's metrics on a private registry. Make one with New; a nil
// Recorder is valid and records nothing.
type Recorder struct {
	reg *prometheus.Registry

	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	routesMu sync.Mutex
	routes   atomic.Pointer[map[string]*Route]

	deviceAuths [numDeviceAuthEvents]prometheus.Counter
	polls       [numPollAnswers]prometheus.Counter
	limits      [numLimits]prometheus.Counter
	signIns     [numSignIns]prometheus.Counter
	storeTime   [numStoreOps]prometheus.Observer
	storeErrors [numStoreOps]prometheus.Counter
	waits       prometheus.Gauge
	streams     prometheus.Gauge
}

// counters registers on reg a counter vector with one label and returns its counter
// for each of values, resolved once so counting looks nothing up.
func counters(reg *prometheus.Registry, name, help, label string, values []string) []prometheus.Counter {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, []string{label})
	reg.MustRegister(v)
	out := make([]prometheus.Counter, len(values))
	for i, value := range values {
		out[i] = v.WithLabelValues(value)
	}
	return out
}

// New returns a Recorder with every metric registered (at zero) on a registry of its
// own, with the Go runtime's and the process's collectors.
func New() *Recorder {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	r := &Recorder{reg: reg}
	r.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "http_requests_total",
		Help: "HTTP requests answered, by route pattern and status code."}, []string{"route", "code"})
	r.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: "http_request_duration_seconds",
		Help:    "Time from a request's arrival to its handler's return, by route pattern (long polls and streams included).",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}}, []string{"route"})
	f(r.requests)
	f(r.duration)
	empty := map[string]*Route{}
	r.routes.Store(&empty)

	copy(r.deviceAuths[:], counters(reg, "device_authorizations_total",
		"Device authorizations by event: started, approved, denied, expired (a poll found it expired).", "event", deviceAuthEventNames[:]))
	copy(r.polls[:], counters(reg, "token_polls_total", "Device-token polls (RFC 8628 §3.4) by answer.", "answer", pollAnswerNames[:]))
	copy(r.limits[:], counters(reg, "limiter_trips_total",
		"Requests refused because a limit was reached, by kind of limit.", "kind", limitNames[:]))
	copy(r.signIns[:], counters(reg, "sign_ins_total",
		"Sign-in steps checked (password or one-time code), by result.", "result", signInNames[:]))
	storeTime := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: "store_operation_duration_seconds",
		Help:    "Time of the store operations on hot paths, by operation.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5}}, []string{"op"})
	storeErrors := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "store_operation_errors_total",
		Help: "Store operations on hot paths that failed (not counting answers such as not found or expired), by operation."}, []string{"op"})
	f(storeTime)
	f(storeErrors)
	for i, n := range storeOpNames {
		r.storeTime[i] = storeTime.WithLabelValues(n)
		r.storeErrors[i] = storeErrors.WithLabelValues(n)
	}
	r.waits = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "device_waits_open",
		Help: "Push-channel long polls (POST /device/wait and /device/linked-wait) waiting now."})
	r.streams = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "event_streams_open",
		Help: "Management API event streams (GET /api/v1/events) open now."})
	f(r.waits)
	f(r.streams)
	return r
}

// Registry is the Recorder's own registry, for tests and extra collectors.
func (r *Recorder) Registry() *prometheus.Registry { return r.reg }

// Handler serves the metrics in the Prometheus text format; a nil Recorder answers 404.
func (r *Recorder) Handler() http.Handler {
	if r == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{})
}

// Route is the request metrics of one route pattern, resolved once.
type Route struct {
	name     string
	requests *prometheus.CounterVec
	duration prometheus.Observer
	codes    [600]atomic.Pointer[prometheus.Counter] // by status code, resolved on first use
}

// Route returns the metrics of the route pattern (as http.Request.Pattern has it; ""
// for a request no pattern matched); nil for a nil Recorder. Patterns beyond a bound
// share one Route, so the labels stay few whatever the callers send.
func (r *Recorder) Route(pattern string) *Route {
	if r == nil {
		return nil
	}
	if rt, ok := (*r.routes.Load())[pattern]; ok {
		return rt
	}
	r.routesMu.Lock()
	defer r.routesMu.Unlock()
	old := *r.routes.Load()
	if rt, ok := old[pattern]; ok {
		return rt
	}
	name := pattern
	switch {
	case name == "":
		name = "none"
	case len(old) >= maxRoutes:
		name = "other"
	}
	rt := &Route{name: name, requests: r.requests, duration: r.duration.WithLabelValues(name)}
	next := make(map[string]*Route, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[pattern] = rt
	r.routes.Store(&next)
	return rt
}

// Name is the route's label value.
func (rt *Route) Name() string {
	if rt == nil {
		return ""
	}
	return rt.name
}

// Observe records one answered request of the route with its status code and time.
func (rt *Route) Observe(code int, d time.Duration) {
	if rt == nil {
		return
	}
	rt.duration.Observe(d.Seconds())
	if code < 100 || code >= len(rt.codes) {
		code = 0
	}
	c := rt.codes[code].Load()
	if c == nil {
		n := rt.requests.WithLabelValues(rt.name, strconv.Itoa(code))
		rt.codes[code].Store(&n)
		c = &n
	}
	(*c).Inc()
}

// DeviceAuth counts a device authorization event.
func (r *Recorder) DeviceAuth(e DeviceAuthEvent) {
	if r != nil && e < numDeviceAuthEvents {
		r.deviceAuths[e].Inc()
	}
}

// Poll counts a device-token poll's answer.
func (r *Recorder) Poll(a PollAnswer) {
	if r != nil && a < numPollAnswers {
		r.polls[a].Inc()
	}
}

// LimitTrip counts a request refused by a limit of kind k.
func (r *Recorder) LimitTrip(k Limit) {
	if r != nil && k < numLimits {
		r.limits[k].Inc()
	}
}

// SignIn counts a checked sign-in step.
func (r *Recorder) SignIn(s SignIn) {
	if r != nil && s < numSignIns {
		r.signIns[s].Inc()
	}
}

// WaitOpened and WaitClosed track the push-channel long polls waiting now.
func (r *Recorder) WaitOpened() {
	if r != nil {
		r.waits.Inc()
	}
}

// WaitClosed ends a wait WaitOpened counted.
func (r *Recorder) WaitClosed() {
	if r != nil {
		r.waits.Dec()
	}
}

// StreamOpened and StreamClosed track the event streams open now.
func (r *Recorder) StreamOpened() {
	if r != nil {
		r.streams.Inc()
	}
}

// StreamClosed ends a stream StreamOpened counted.
func (r *Recorder) StreamClosed() {
	if r != nil {
		r.streams.Dec()
	}
}

// StoreDone records one store operation that started at start; failed says whether it
// failed (an answer such as not found is no failure).
func (r *Recorder) StoreDone(op StoreOp, start time.Time, failed bool) {
	if r == nil || op >= numStoreOps {
		return
	}
	r.storeTime[op].Observe(time.Since(start).Seconds())
	if failed {
		r.storeErrors[op].Inc()
	}
}
