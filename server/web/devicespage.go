package web

import (
	"errors"
	"net/http"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/links"
)

type deviceRow struct {
	devices.Device
	DisplayName string
}

func row(l links.Link) deviceRow { return deviceRow{Device: l.Device, DisplayName: l.Name()} }

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
	list, err := s.links.List(r.Context(), st.sess.Subject)
	if err != nil {
		s.internal(w, r, st, "list devices", err)
		return
	}
	p := devicesPage{Devices: make([]deviceRow, 0, len(list))}
	for _, l := range list {
		p.Devices = append(p.Devices, row(l))
	}
	s.render(w, r, st, http.StatusOK, "devices", p)
}

// deviceFailed shows "not found" for links.ErrNotLinked and an apology otherwise.
func (s *server) deviceFailed(w http.ResponseWriter, r *http.Request, st *state, what string, err error) {
	if !errors.Is(err, links.ErrNotLinked) {
		s.internal(w, r, st, what, err)
		return
	}
	s.render(w, r, st, http.StatusNotFound, "message", messagePage{
		Title: translate(r, "Device not found"), Heading: translate(r, "That device is not linked"), Kind: "error",
		Body: translate(r, "It may have been unlinked already, perhaps from another screen."),
		Link: "/devices", LinkText: translate(r, "See linked devices"),
	})
}

// nameProblem says in plain words why a device name was refused.
func nameProblem(e *links.NameError) string {
	switch e.Reason {
	case links.NameEmpty:
		return "Type a name for the device."
	case links.NameTooLong:
		return "That name is too long. Use at most 64 characters."
	}
	return "That name has characters that can’t be shown. Use letters, digits and spaces."
}

// renameSubmit is POST /devices/{id}/rename with field name.
func (s *server) renameSubmit(w http.ResponseWriter, r *http.Request, st *state) {
	if !s.requireSignIn(w, r, st, "/devices") {
		return
	}
	l, err := s.links.Rename(r.Context(), st.sess.Subject, r.PathValue("id"), r.PostForm.Get("name"))
	var bad *links.NameError
	if errors.As(err, &bad) {
		st.sess.Flash, st.sess.FlashErr = nameProblem(bad), true
		st.dirty = true
		s.redirect(w, r, st, "/devices")
		return
	}
	if err != nil {
		s.deviceFailed(w, r, st, "rename device", err)
		return
	}
	st.sess.Flash = translate(r, "Renamed to “{{.Name}}”.", "Name", l.Name())
	st.dirty = true
	s.redirect(w, r, st, "/devices")
}

// unlinkConfirm is GET /devices/{id}/unlink: the confirm step before unlinking.
func (s *server) unlinkConfirm(w http.ResponseWriter, r *http.Request, st *state) {
	if !s.requireSignIn(w, r, st, "/devices") {
		return
	}
	l, err := s.links.Get(r.Context(), st.sess.Subject, r.PathValue("id"))
	if err != nil {
		s.deviceFailed(w, r, st, "load device", err)
		return
	}
	s.render(w, r, st, http.StatusOK, "unlink", unlinkPage{Device: row(l)})
}

// unlinkSubmit is POST /devices/{id}/unlink: the link and all its tokens end at once.
func (s *server) unlinkSubmit(w http.ResponseWriter, r *http.Request, st *state) {
	if !s.requireSignIn(w, r, st, "/devices") {
		return
	}
	l, err := s.links.Unlink(r.Context(), st.sess.Subject, r.PathValue("id"))
	if err != nil {
		s.deviceFailed(w, r, st, "unlink device", err)
		return
	}
	st.sess.Flash = translate(r, "“{{.Name}}” is unlinked. It can no longer use your account.", "Name", l.Name())
	st.dirty = true
	s.redirect(w, r, st, "/devices")
}
