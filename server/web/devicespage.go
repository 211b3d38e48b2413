package web

import (
	"errors"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/store"
)

// maxDeviceName bounds a device name, in characters.
const maxDeviceName = 64

type deviceRow struct {
	devices.Device
	DisplayName string
}

type devicesPage struct {
	Devices []deviceRow
}

func (devicesPage) title() string { return "Your linked devices" }

type unlinkPage struct {
	Device deviceRow
}

func (unlinkPage) title() string { return "Unlink device?" }

// devicesPage is GET /devices: the account's linked devices, newest first.
func (s *server) devicesPage(w http.ResponseWriter, r *http.Request, st *state) {
	if !s.requireSignIn(w, r, st, "/devices") {
		return
	}
	grants, err := s.cfg.Store.ListGrants(r.Context(), st.sess.Subject, store.FlowDevice)
	if err != nil {
		s.internal(w, r, st, "list devices", err)
		return
	}
	p := devicesPage{Devices: make([]deviceRow, 0, len(grants))}
	for _, g := range grants {
		d, err := s.view().Device(r.Context(), g)
		if err != nil {
			s.internal(w, r, st, "device of grant", err)
			return
		}
		p.Devices = append(p.Devices, deviceRow{Device: d, DisplayName: grantName(g)})
	}
	s.render(w, r, st, http.StatusOK, "devices", p)
}

// ownGrant loads one of the signed-in account's grants, or shows "not found".
func (s *server) ownGrant(w http.ResponseWriter, r *http.Request, st *state) (store.Grant, bool) {
	g, err := s.cfg.Store.GrantByID(r.Context(), st.sess.Subject, r.PathValue("id"))
	if err == nil && g.Flow != store.FlowDevice {
		err = store.ErrNotFound
	}
	if errors.Is(err, store.ErrNotFound) {
		s.render(w, r, st, http.StatusNotFound, "message", messagePage{
			Title: "Device not found", Heading: "That device is not linked", Kind: "error",
			Body: "It may have been unlinked already, perhaps from another screen.",
			Link: "/devices", LinkText: "See linked devices",
		})
		return g, false
	}
	if err != nil {
		s.internal(w, r, st, "load device", err)
		return g, false
	}
	return g, true
}

// cleanDeviceName trims a new device name and checks it is printable and not too long.
func cleanDeviceName(name string) (string, string) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", "Type a name for the device."
	case !utf8.ValidString(name) || strings.ContainsFunc(name, unicode.IsControl):
		return "", "That name has characters that can’t be shown. Use letters, digits and spaces."
	case utf8.RuneCountInString(name) > maxDeviceName:
		return "", "That name is too long. Use at most 64 characters."
	}
	return name, ""
}

// renameSubmit is POST /devices/{id}/rename with field name.
func (s *server) renameSubmit(w http.ResponseWriter, r *http.Request, st *state) {
	if !s.requireSignIn(w, r, st, "/devices") {
		return
	}
	if _, ok := s.ownGrant(w, r, st); !ok {
		return
	}
	name, problem := cleanDeviceName(r.PostForm.Get("name"))
	if problem != "" {
		st.sess.Flash, st.sess.FlashErr = problem, true
		st.dirty = true
		s.redirect(w, r, st, "/devices")
		return
	}
	g, err := s.cfg.Store.RenameGrant(r.Context(), st.sess.Subject, r.PathValue("id"), name)
	if err != nil {
		s.internal(w, r, st, "rename device", err)
		return
	}
	if d, err := s.view().Device(r.Context(), g); err == nil {
		s.cfg.Events.PublishAccount(st.sess.Subject, devices.Event{Type: devices.EventRenamed, Device: d})
	}
	st.sess.Flash = "Renamed to “" + name + "”."
	st.dirty = true
	s.redirect(w, r, st, "/devices")
}

// unlinkConfirm is GET /devices/{id}/unlink: the confirm step before unlinking.
func (s *server) unlinkConfirm(w http.ResponseWriter, r *http.Request, st *state) {
	if !s.requireSignIn(w, r, st, "/devices") {
		return
	}
	g, ok := s.ownGrant(w, r, st)
	if !ok {
		return
	}
	d, err := s.view().Device(r.Context(), g)
	if err != nil {
		s.internal(w, r, st, "device of grant", err)
		return
	}
	s.render(w, r, st, http.StatusOK, "unlink", unlinkPage{Device: deviceRow{Device: d, DisplayName: grantName(g)}})
}

// unlinkSubmit is POST /devices/{id}/unlink: delete the grant and all its tokens.
func (s *server) unlinkSubmit(w http.ResponseWriter, r *http.Request, st *state) {
	if !s.requireSignIn(w, r, st, "/devices") {
		return
	}
	g, ok := s.ownGrant(w, r, st)
	if !ok {
		return
	}
	g, err := s.cfg.Store.DeleteGrant(r.Context(), st.sess.Subject, g.ID)
	if errors.Is(err, store.ErrNotFound) {
		st.sess.Flash = "That device was already unlinked."
		st.dirty = true
		s.redirect(w, r, st, "/devices")
		return
	}
	if err != nil {
		s.internal(w, r, st, "unlink device", err)
		return
	}
	if d, err := s.view().Device(r.Context(), g); err == nil {
		s.cfg.Events.PublishAccount(st.sess.Subject, devices.Event{Type: devices.EventUnlinked, Device: d})
	}
	s.log.InfoContext(r.Context(), "device unlinked", "subject", st.sess.Subject, "device", g.ID)
	st.sess.Flash = "“" + grantName(g) + "” is unlinked. It can no longer use your account."
	st.dirty = true
	s.redirect(w, r, st, "/devices")
}
