package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/linkdesk/linkdesk/devices"
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
	at := tokenFrom(r.Context())
	grants, err := s.cfg.Store.ListGrants(r.Context(), at.Subject, store.FlowDevice)
	if err != nil {
		s.internal(w, r, "list devices", err)
		return
	}
	out := devices.DeviceList{Devices: make([]devices.Device, 0, len(grants))}
	for _, g := range grants {
		d, err := s.view().Device(r.Context(), g)
		if err != nil {
			s.internal(w, r, "list devices", err)
			return
		}
		out.Devices = append(out.Devices, d)
	}
	writeJSON(w, http.StatusOK, out)
}

// ownDevice loads the caller's device-flow grant {id}, answering 404 for anything
// else (another account's grant, or the app's own sign-in grant).
func (s *server) ownDevice(w http.ResponseWriter, r *http.Request) (store.Grant, bool) {
	at := tokenFrom(r.Context())
	g, err := s.cfg.Store.GrantByID(r.Context(), at.Subject, r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) || (err == nil && (g.Flow != store.FlowDevice || g.Subject != at.Subject)) {
		writeProblem(w, http.StatusNotFound, devices.CodeNotFound, "Not found", "there is no such linked device")
		return store.Grant{}, false
	}
	if err != nil {
		s.internal(w, r, "device by id", err)
		return store.Grant{}, false
	}
	return g, true
}

func (s *server) getDevice(w http.ResponseWriter, r *http.Request) {
	g, ok := s.ownDevice(w, r)
	if !ok {
		return
	}
	d, err := s.view().Device(r.Context(), g)
	if err != nil {
		s.internal(w, r, "device", err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (s *server) renameDevice(w http.ResponseWriter, r *http.Request) {
	req, err := decodeRename(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeProblem(w, http.StatusBadRequest, devices.CodeBadRequest, "Bad request", err.Error())
		return
	}
	if _, ok := s.ownDevice(w, r); !ok {
		return
	}
	at := tokenFrom(r.Context())
	g, err := s.cfg.Store.RenameGrant(r.Context(), at.Subject, r.PathValue("id"), req.Name)
	if errors.Is(err, store.ErrNotFound) {
		writeProblem(w, http.StatusNotFound, devices.CodeNotFound, "Not found", "there is no such linked device")
		return
	}
	if err != nil {
		s.internal(w, r, "rename device", err)
		return
	}
	d, err := s.view().Device(r.Context(), g)
	if err != nil {
		s.internal(w, r, "rename device", err)
		return
	}
	s.cfg.Events.PublishAccount(at.Subject, devices.Event{Type: devices.EventRenamed, Device: d})
	writeJSON(w, http.StatusOK, d)
}

func (s *server) deleteDevice(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.ownDevice(w, r); !ok {
		return
	}
	at := tokenFrom(r.Context())
	g, err := s.cfg.Store.DeleteGrant(r.Context(), at.Subject, r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		writeProblem(w, http.StatusNotFound, devices.CodeNotFound, "Not found", "there is no such linked device")
		return
	}
	if err != nil {
		s.internal(w, r, "unlink device", err)
		return
	}
	d, err := s.view().Device(r.Context(), g)
	if err != nil {
		// The link is gone already; still tell listeners, with what we know.
		d = devices.Device{ID: g.ID, Name: g.Name, Kind: devices.ParseKind(string(g.Device.Kind)), Model: g.Device.Model,
			Client: devices.ClientInfo{ID: g.ClientID, Name: g.ClientID}, Scopes: s.view().Scopes(g.Scopes), LinkedAt: g.CreatedAt.UTC()}
	}
	s.cfg.Events.PublishAccount(at.Subject, devices.Event{Type: devices.EventUnlinked, Device: d})
	s.log.InfoContext(r.Context(), "device unlinked", "subject", at.Subject, "device", g.ID, "client", g.ClientID)
	w.WriteHeader(http.StatusNoContent)
}

// events streams the account's device events as server-sent events until the client
// goes away, the token stops being valid, or the subscriber falls too far behind (then
// the client reconnects and should re-read the device list).
func (s *server) events(w http.ResponseWriter, r *http.Request) {
	at := tokenFrom(r.Context())
	tok, _ := bearer(r)
	rc := http.NewResponseController(w)
	// A server-wide WriteTimeout would cut a long stream; each write gets its own deadline.
	_ = rc.SetWriteDeadline(time.Time{})

	sub := s.cfg.Events.SubscribeAccount(at.Subject, 0)
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
