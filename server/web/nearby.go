package web

import (
	"errors"
	"net/http"
	"time"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/links"
)

// "Devices waiting near you" on /link: a signed-in person sees the pending requests
// from their own network and picks theirs; then they pick, among three codes, the one
// the device shows, and a right pick leads to the usual confirm page.
//
//	GET  /link/nearby/{id}   the three codes to pick from
//	POST /link/nearby/{id}   user_code=the picked one: on to /link/confirm, or the
//	                         request is ended

// nearbyItem is one waiting device as /link lists it; it never holds a code.
type nearbyItem struct {
	ID, Name, Kind, Model, Client, Age string
}

type pickPage struct {
	ID      string
	Device  nearbyItem
	Choices []string // XXXX-XXXX
}

func (pickPage) title() string { return "Which code does your device show?" }

// nearbySection fills p's list for a signed-in person when the list is on; a failure
// to read it only hides it (the code form still works) and is logged.
func (s *server) nearbySection(r *http.Request, st *state, p *linkPage) {
	if !st.signedIn() || !s.links.NearbyOn() {
		return
	}
	list, err := s.links.Nearby(r.Context(), s.caller(r, st))
	if err != nil {
		s.log.WarnContext(r.Context(), "nearby list on /link", "err", err)
		return
	}
	p.NearbyOn = true
	for _, n := range list {
		p.Nearby = append(p.Nearby, s.nearbyItem(r, n))
	}
}

func (s *server) nearbyItem(r *http.Request, n links.Nearby) nearbyItem {
	w := n.NearbyRequest()
	name := w.Device.Name
	if name == "" {
		name = translate(r, "Unnamed device")
	}
	return nearbyItem{ID: w.ID, Name: name, Kind: string(w.Device.Kind), Model: w.Device.Model,
		Client: w.Client.Name, Age: age(r, s.cfg.Now().Sub(w.RequestedAt))}
}

// age words how long ago a request was made.
func age(r *http.Request, d time.Duration) string {
	if m := int(d / time.Minute); m >= 1 {
		return translate(r, "{{.Count}} minutes ago", "Count", m)
	}
	return translate(r, "just now")
}

// nearbyPickForm is GET /link/nearby/{id}.
func (s *server) nearbyPickForm(w http.ResponseWriter, r *http.Request, st *state) {
	if !s.requireSignIn(w, r, st, "/link") {
		return
	}
	n, choices, err := s.links.NearbyChoices(r.Context(), s.caller(r, st), r.PathValue("id"))
	if err != nil {
		s.nearbyFailed(w, r, st, err)
		return
	}
	s.render(w, r, st, http.StatusOK, "pick", pickPage{ID: n.ID, Device: s.nearbyItem(r, n), Choices: choices})
}

// nearbyPickSubmit is POST /link/nearby/{id}: a right pick remembers the code and goes
// on to the confirm page, as a typed code does.
func (s *server) nearbyPickSubmit(w http.ResponseWriter, r *http.Request, st *state) {
	if !s.requireSignIn(w, r, st, "/link") {
		return
	}
	req, err := s.links.Pick(r.Context(), s.caller(r, st), r.PathValue("id"), r.PostForm.Get(devices.ParamUserCode))
	if err != nil {
		s.nearbyFailed(w, r, st, err)
		return
	}
	st.sess.Code = req.Auth.UserCode
	st.dirty = true
	s.redirect(w, r, st, "/link/confirm")
}

// nearbyFailed shows the plain-words page for an error of the nearby list.
func (s *server) nearbyFailed(w http.ResponseWriter, r *http.Request, st *state, err error) {
	switch {
	case errors.Is(err, links.ErrNearbyOff):
		s.render(w, r, st, http.StatusNotFound, "message", messagePage{
			Title: translate(r, "Page not found"), Heading: translate(r, "There is nothing here"),
			Body: translate(r, "Type the code your device shows instead."), Link: "/link", LinkText: translate(r, "Enter a code"),
		})
	case errors.Is(err, links.ErrNoNearby):
		s.render(w, r, st, http.StatusNotFound, "message", messagePage{
			Title: translate(r, "No longer waiting"), Heading: translate(r, "This device is no longer waiting"), Kind: "error",
			Body: translate(r, "It may have just been linked or refused, or its code timed out. If it is yours, start linking again on the device."),
			Link: "/link", LinkText: translate(r, "Back to linking"),
		})
	case errors.Is(err, links.ErrWrongPick):
		s.render(w, r, st, http.StatusConflict, "message", messagePage{
			Title: translate(r, "Wrong code"), Heading: translate(r, "That isn’t the code on the device"), Kind: "error",
			Body: translate(r, "For your safety, this request has been ended and the device was not linked. If it is your device, start linking again on it, then pick or type its new code."),
			Link: "/link", LinkText: translate(r, "Back to linking"),
		})
	default:
		s.codeFailed(w, r, st, err) // too many tries, or internal
	}
}
