package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/metrics"
	"github.com/linkdesk/linkdesk/server/store"
)

func (s *server) me(w http.ResponseWriter, r *http.Request) {
	at := tokenFrom(r.Context())
	u, err := s.cfg.Store.UserBySubject(r.Context(), at.Subject)
	if errors.Is(err, store.ErrNotFound) {
		// The account was removed while a token of it was still live.
		w.Header().Set("WWW-Authenticate", `Bearer realm="linkd", error="invalid_token"`)
		writeProblem(w, http.StatusUnauthorized, devices.CodeUnauthorized, "Unauthorized", "the account no longer exists")
		return
	}
	if err != nil {
		s.internal(w, r, "me", err)
		return
	}
	writeJSON(w, http.StatusOK, devices.Me{
		Subject:     u.Subject,
		Username:    u.Username,
		DisplayName: u.DisplayName,
		Email:       u.Email,
	})
}

func (s *server) listDevices(w http.ResponseWriter, r *http.Request) {
	list, err := s.links.List(r.Context(), tokenFrom(r.Context()).Subject)
	if err != nil {
		s.internal(w, r, "list devices", err)
		return
	}
	out := devices.DeviceList{Devices: make([]devices.Device, 0, len(list))}
	for _, l := range list {
		out.Devices = append(out.Devices, l.Device)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) getDevice(w http.ResponseWriter, r *http.Request) {
	l, err := s.links.Get(r.Context(), tokenFrom(r.Context()).Subject, r.PathValue("id"))
	if err != nil {
		s.linkProblem(w, r, "device", err)
		return
	}
	writeJSON(w, http.StatusOK, l.Device)
}

func (s *server) renameDevice(w http.ResponseWriter, r *http.Request) {
	req, err := decodeRename(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeProblem(w, http.StatusBadRequest, devices.CodeBadRequest, "Bad request", err.Error())
		return
	}
	l, err := s.links.Rename(r.Context(), tokenFrom(r.Context()).Subject, r.PathValue("id"), req.Name)
	if err != nil {
		s.linkProblem(w, r, "rename device", err)
		return
	}
	writeJSON(w, http.StatusOK, l.Device)
}

func (s *server) deleteDevice(w http.ResponseWriter, r *http.Request) {
	if _, err := s.links.Unlink(r.Context(), tokenFrom(r.Context()).Subject, r.PathValue("id")); err != nil {
		s.linkProblem(w, r, "unlink device", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// events streams the account's device events as server-sent events until the client
// goes away, the token stops being valid, or the subscriber falls too far behind (then
// the client reconnects and should re-read the device list).
func (s *server) events(w http.ResponseWriter, r *http.Request) {
	at := tokenFrom(r.Context())
	tok, _ := bearer(r)
	if !s.streams.acquire(at.Subject, s.cfg.MaxStreamsPerAccount) {
		s.tooManyWaits(w, metrics.LimitStreams, "event streams", "this account already has as many event streams open as linkd allows")
		return
	}
	defer s.streams.release(at.Subject)
	s.cfg.Metrics.StreamOpened()
	defer s.cfg.Metrics.StreamClosed()
	rc := http.NewResponseController(w)
	// A server-wide WriteTimeout would cut a long stream; each write gets its own deadline.
	_ = rc.SetWriteDeadline(time.Time{})

	sub := s.links.SubscribeAccount(at.Subject, 0)
	defer sub.Close()

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // ask nginx not to buffer the stream
	w.WriteHeader(http.StatusOK)
	// retry: how long an EventSource waits before reconnecting.
	if !s.sseWrite(w, rc, "retry: 3000\n: linkd events\n\n") {
		return
	}

	beat := time.NewTicker(s.cfg.Heartbeat)
	defer beat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case ev, ok := <-sub.C:
			if !ok {
				return // dropped for lagging; the client reconnects
			}
			data, err := json.Marshal(ev)
			if err != nil {
				s.log.ErrorContext(r.Context(), "encode event", "err", err)
				continue
			}
			if !s.sseWrite(w, rc, fmt.Sprintf("event: %s\ndata: %s\n\n", ev.Type, data)) {
				return
			}
		case <-beat.C:
			// Re-check the token so an unlinked or signed-out app stops hearing news.
			if _, err := s.cfg.Verifier.VerifyAccessToken(r.Context(), tok); err != nil {
				return
			}
			if !s.sseWrite(w, rc, ": keep-alive\n\n") {
				return
			}
		}
	}
}

// sseWrite writes and flushes one chunk with a bounded write deadline, reporting
// whether the client is still there.
func (s *server) sseWrite(w http.ResponseWriter, rc *http.ResponseController, chunk string) bool {
	_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := w.Write([]byte(chunk)); err != nil {
		return false
	}
	if err := rc.Flush(); err != nil {
		return false
	}
	return true
}
