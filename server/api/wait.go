package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/events"
	"github.com/linkdesk/linkdesk/server/store"
)

// DeviceAuthReader is the optional store method the push channel needs: read a device
// authorization by (client, device code) without recording a poll, so waiting never
// triggers slow_down. Stores that lack it make POST /device/wait answer 501, and
// kiosks fall back to plain RFC 8628 polling.
type DeviceAuthReader interface {
	DeviceAuthByDeviceCode(ctx context.Context, clientID, deviceCode string) (store.DeviceAuth, error)
}

// WaitStatus is the answer of POST /device/wait.
type WaitStatus struct {
	Status string `json:"status"` // one of the Wait* constants
}

// Push-channel statuses.
const (
	WaitPending  = "pending"  // nothing yet: wait again (or poll as RFC 8628 says)
	WaitApproved = "approved" // poll the token endpoint now to collect the tokens
	WaitDenied   = "denied"   // the person said no; the next poll answers access_denied
	WaitExpired  = "expired"  // the code expired; start again
)

// waitStatus maps a stored request to what the waiting device is told.
func waitStatus(d store.DeviceAuth, now time.Time) string {
	switch d.State {
	case store.DeviceAuthApproved, store.DeviceAuthConsumed:
		return WaitApproved
	case store.DeviceAuthDenied:
		return WaitDenied
	}
	if !now.Before(d.ExpiresAt) {
		return WaitExpired
	}
	return WaitPending
}

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
	reader, ok := s.cfg.Store.(DeviceAuthReader)
	if !ok {
		writeProblem(w, http.StatusNotImplemented, devices.CodeInternal, "Not implemented", "this server cannot push; poll the token endpoint")
		return
	}

	ctx := r.Context()
	// A server-wide WriteTimeout shorter than the long poll would cut the answer off.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.cfg.WaitTimeout + 10*time.Second))
	// lookup re-reads the request once it is known to exist; if it has since been
	// purged it can only have expired.
	lookup := func() (string, error) {
		d, err := reader.DeviceAuthByDeviceCode(ctx, clientID, deviceCode)
		if errors.Is(err, store.ErrExpired) || errors.Is(err, store.ErrNotFound) {
			return WaitExpired, nil
		}
		if err != nil {
			return "", err
		}
		return waitStatus(d, s.cfg.Now()), nil
	}

	d, err := reader.DeviceAuthByDeviceCode(ctx, clientID, deviceCode)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeProblem(w, http.StatusNotFound, devices.CodeNotFound, "Not found", "unknown device code")
		return
	case errors.Is(err, store.ErrExpired):
		writeJSON(w, http.StatusOK, WaitStatus{Status: WaitExpired})
		return
	case err != nil:
		s.internal(w, r, "device wait", err)
		return
	}
	if st := waitStatus(d, s.cfg.Now()); st != WaitPending {
		writeJSON(w, http.StatusOK, WaitStatus{Status: st})
		return
	}

	// Subscribe first, then read again, so a change between the first read and the
	// subscription is not missed.
	sub := s.cfg.Events.SubscribeDeviceAuth(events.DeviceAuthKey(d.UserCode))
	defer sub.Close()

	timeout := min(s.cfg.WaitTimeout, d.ExpiresAt.Sub(s.cfg.Now())+10*time.Millisecond)
	timer := time.NewTimer(max(timeout, 0))
	defer timer.Stop()
	recheck := time.NewTicker(s.cfg.WaitRecheck)
	defer recheck.Stop()

	for {
		st, err := lookup()
		if err != nil {
			s.internal(w, r, "device wait", err)
			return
		}
		if st != WaitPending {
			writeJSON(w, http.StatusOK, WaitStatus{Status: st})
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-sub.C:
		case <-recheck.C:
		case <-timer.C:
			// The wait limit or the expiry: answer whatever the state is now.
			st, err := lookup()
			if err != nil {
				s.internal(w, r, "device wait", err)
				return
			}
			writeJSON(w, http.StatusOK, WaitStatus{Status: st})
			return
		}
	}
}
