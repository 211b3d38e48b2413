package api

import (
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/links"
	"github.com/linkdesk/linkdesk/server/metrics"
)

// WaitStatus is the answer of POST /device/wait.
type WaitStatus struct {
	Status string `json:"status"` // one of the Wait* constants
}

// Push-channel statuses (links.Wait*), named here for the wire.
const (
	WaitPending  = links.WaitPending  // nothing yet: wait again (or poll as RFC 8628 says)
	WaitApproved = links.WaitApproved // poll the token endpoint now to collect the tokens
	WaitDenied   = links.WaitDenied   // the person said no; the next poll answers access_denied
	WaitExpired  = links.WaitExpired  // the code expired; start again
)

// deviceWait serves POST /device/wait: a long poll that answers as soon as the device
// authorization leaves the pending state, or "pending" after WaitTimeout.
func (s *server) deviceWait(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeProblem(w, http.StatusMethodNotAllowed, devices.CodeBadRequest, "Method not allowed", "use POST with a form body")
		return
	}
	if r.URL.Query().Has("device_code") {
		// A device code is a bearer secret; URLs end up in logs and histories.
		writeProblem(w, http.StatusBadRequest, devices.CodeBadRequest, "Bad request", "send device_code in the form body, never in the URL")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		writeProblem(w, http.StatusBadRequest, devices.CodeBadRequest, "Bad request", "the body is not a valid form")
		return
	}
	clientID, deviceCode := r.PostForm.Get("client_id"), r.PostForm.Get("device_code")
	if clientID == "" || deviceCode == "" {
		writeProblem(w, http.StatusBadRequest, devices.CodeBadRequest, "Bad request", "client_id and device_code are required")
		return
	}
	// Each wait holds a connection and a goroutine: bound them per address and per code.
	ip := s.cfg.ClientIP(r)
	if !s.waitsByIP.acquire(ip, s.cfg.MaxWaitsPerAddress) {
		s.tooManyWaits(w, metrics.LimitWaits, "waits", "this address already has as many waits running as linkd allows")
		return
	}
	defer s.waitsByIP.release(ip)
	codeKey := clientID + "\x00" + deviceCode
	if !s.waitsByCode.acquire(codeKey, s.cfg.MaxWaitsPerCode) {
		s.tooManyWaits(w, metrics.LimitWaits, "waits", "this device code already has as many waits running as linkd allows")
		return
	}
	defer s.waitsByCode.release(codeKey)
	// A server-wide WriteTimeout shorter than the long poll would cut the answer off.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.cfg.WaitTimeout + 10*time.Second))
	s.cfg.Metrics.WaitOpened()
	st, err := s.links.Wait(r.Context(), clientID, deviceCode, s.cfg.WaitTimeout)
	s.cfg.Metrics.WaitClosed()
	switch {
	case errors.Is(err, links.ErrPushUnsupported):
		writeProblem(w, http.StatusNotImplemented, devices.CodeInternal, "Not implemented", "this server cannot push; poll the token endpoint")
	case errors.Is(err, links.ErrUnknownDeviceCode):
		writeProblem(w, http.StatusNotFound, devices.CodeNotFound, "Not found", "unknown device code")
	case err != nil:
		s.internal(w, r, "device wait", err)
	default:
		writeJSON(w, http.StatusOK, WaitStatus{Status: st})
	}
}

// Defaults of the caps on long-lived requests (Config.MaxWaitsPerCode and the others).
const (
	DefaultMaxWaitsPerCode      = 3
	DefaultMaxWaitsPerAddress   = 20
	DefaultMaxStreamsPerAccount = 5
)

// gate counts the long-lived requests running per key, in this process (they are
// connections of this process), and refuses one over a cap.
type gate struct {
	mu sync.Mutex
	n  map[string]int
}

// acquire counts one more request for key unless max are running; it reports
// whether the request may go on (then release must follow).
func (g *gate) acquire(key string, max int) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.n == nil {
		g.n = make(map[string]int)
	}
	if g.n[key] >= max {
		return false
	}
	g.n[key]++
	return true
}

// release ends one request of key.
func (g *gate) release(key string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.n[key]--; g.n[key] <= 0 {
		delete(g.n, key)
	}
}

// tooManyWaits answers 429 with Retry-After for a request over a gate's cap.
func (s *server) tooManyWaits(w http.ResponseWriter, kind metrics.Limit, what, detail string) {
	s.cfg.Metrics.LimitTrip(kind)
	w.Header().Set("Retry-After", "5")
	writeProblem(w, http.StatusTooManyRequests, devices.CodeRateLimited, "Too many "+what, detail+"; wait before asking again")
}
