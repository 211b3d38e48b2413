package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/links"
	"github.com/linkdesk/linkdesk/server/metrics"
)

// LinkedStatus is the answer of POST /device/linked-wait.
type LinkedStatus struct {
	Status string `json:"status"` // links.LinkedStill or links.LinkedGone
}

// NewLinkedWait returns the linked device's push channel, POST /device/linked-wait (see
// docs/push-channel.md): a long poll, authenticated with the device's own access token,
// that answers as soon as the device's link is removed. It needs Verifier.
func NewLinkedWait(cfg Config) http.Handler {
	if cfg.Verifier == nil {
		panic("api: Config.Verifier is required")
	}
	s := newServer(cfg)
	return noStore(http.HandlerFunc(s.linkedWait))
}

func (s *server) linkedWait(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeProblem(w, http.StatusMethodNotAllowed, devices.CodeBadRequest, "Method not allowed", "use POST")
		return
	}
	// A dead token is also what an unlinked device hears: its tokens died with its link.
	at, ok := s.accessToken(w, r, "the device's bearer access token is required")
	if !ok {
		return
	}
	// A server-wide WriteTimeout shorter than the long poll would cut the answer off.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.cfg.WaitTimeout + 10*time.Second))
	s.cfg.Metrics.WaitOpened()
	st, err := s.links.WaitLinked(r.Context(), at.Subject, at.GrantID, s.cfg.WaitTimeout)
	s.cfg.Metrics.WaitClosed()
	switch {
	case errors.Is(err, links.ErrNotLinked):
		// The link may have gone between the token's check and the wait's look at it
		// (an unlink at that moment): then the token died with it, and the device hears
		// 401 as any unlinked device does, and checks its link at once.
		if _, ok := s.accessToken(w, r, "the device's bearer access token is required"); !ok {
			return
		}
		writeProblem(w, http.StatusNotFound, devices.CodeNotFound, "Not found", "this token belongs to no linked device")
	case errors.Is(err, links.ErrTooManyWaits):
		s.cfg.Metrics.LimitTrip(metrics.LimitWaits)
		w.Header().Set("Retry-After", "5")
		writeProblem(w, http.StatusTooManyRequests, devices.CodeRateLimited, "Too many waits",
			"this device already has as many waits running as linkd allows; wait before asking again")
	case err != nil:
		s.internal(w, r, "linked wait", err)
	default:
		writeJSON(w, http.StatusOK, LinkedStatus{Status: st})
	}
}
