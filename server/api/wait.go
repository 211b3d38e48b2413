package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/links"
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
	// A server-wide WriteTimeout shorter than the long poll would cut the answer off.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.cfg.WaitTimeout + 10*time.Second))
	st, err := s.links.Wait(r.Context(), clientID, deviceCode, s.cfg.WaitTimeout)
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
