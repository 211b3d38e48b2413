package web

import (
	"errors"
	"net/http"
	"time"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/links"
)

// The /link flow: enter (or check a prefilled) code -> sign in if needed -> confirm what
// is asking -> approve or deny -> result. The code rides in the session between steps,
// never in a URL after the first one.

type linkPage struct {
	Value string // what was typed, shown back on error
	Error string
	// NearbyOn shows "Devices waiting near you" (signed in, list not turned off).
	NearbyOn bool
	Nearby   []nearbyItem
}

func (linkPage) title() string { return "Link a device" }

type checkPage struct {
	Code string // XXXX-XXXX
}

func (checkPage) title() string { return "Check the code" }

type confirmPage struct {
	Code       string // XXXX-XXXX
	DeviceName string
	Model      string
	Kind       string
	ClientName string
	LogoURI    string
	Scopes     []devices.Scope
	Origin     origin // where the request came from, in one line
	// Error says why the last submission was refused (the tick was missing).
	Error       string
	ExpiresAt   time.Time
	Minutes     int // minutes left, rounded up
	AccountName string
	Username    string
}

func (confirmPage) title() string { return "Link this device?" }

type resultPage struct {
	Approved   bool
	DeviceName string
	ClientName string
}

func (p resultPage) title() string {
	if p.Approved {
		return "Device linked"
	}
	return "Device not linked"
}

// linkForm is GET /link: the code entry form, or with ?user_code= (the QR target) the
// prefilled code shown large to be checked against the device (RFC 8628 §3.3.1).
func (s *server) linkForm(w http.ResponseWriter, r *http.Request, st *state) {
	raw, given := r.URL.Query()[devices.ParamUserCode]
	if !given || raw[0] == "" {
		var p linkPage
		s.nearbySection(r, st, &p)
		s.render(w, r, st, http.StatusOK, "link", p)
		return
	}
	code, err := devices.NormalizeCode(raw[0])
	if err != nil {
		s.render(w, r, st, http.StatusUnprocessableEntity, "link", linkPage{Value: raw[0], Error: codeInputError(r, err)})
		return
	}
	s.render(w, r, st, http.StatusOK, "check", checkPage{Code: devices.FormatCode(code)})
}

// codeInputError says in plain words what is wrong with a typed code.
func codeInputError(r *http.Request, err error) string {
	var bad *devices.InvalidCharError
	switch {
	case errors.As(err, &bad):
		return translate(r, "“{{.Char}}” is never used in codes. Codes use only the letters B C D F G H J K L M N P Q R S T V W X Z. Check the code on your device and type it again.",
			"Char", string(bad.Char))
	case errors.Is(err, devices.ErrCodeLength):
		return translate(r, "A code has 8 letters, like BCDF‑GHJK. Check the code on your device and type it again.")
	}
	return translate(r, "That is not a code. Check the code on your device and type it again.")
}

// linkSubmit is POST /link: check the code (before sign-in), remember it and go on to
// sign-in or confirmation.
func (s *server) linkSubmit(w http.ResponseWriter, r *http.Request, st *state) {
	raw := r.PostForm.Get(devices.ParamUserCode)
	code, err := devices.NormalizeCode(raw)
	if err != nil {
		msg := codeInputError(r, err)
		if raw == "" {
			msg = translate(r, "Type the code your device shows. It has 8 letters, like BCDF‑GHJK.")
		}
		s.render(w, r, st, http.StatusUnprocessableEntity, "link", linkPage{Value: raw, Error: msg})
		return
	}
	if !st.signedIn() {
		// Say that a code is old or wrong before asking for a password and a
		// one-time code, not after.
		if err := s.links.Check(r.Context(), s.cfg.ClientIP(r), code); err != nil {
			s.codeFailed(w, r, st, err)
			return
		}
	}
	st.sess.Code = code
	st.dirty = true
	if !s.requireSignIn(w, r, st, "/link/confirm") {
		return
	}
	s.redirect(w, r, st, "/link/confirm")
}

// caller is who asks the links service: the signed-in account and the address.
func (s *server) caller(r *http.Request, st *state) links.Caller {
	return links.Caller{Subject: st.sess.Subject, IP: s.cfg.ClientIP(r)}
}

// codeFailed shows the plain-words page for an error of a code operation: too many
// tries, or an unknown, expired or used code (the links service counted it). The code
// is forgotten. Other errors are internal.
func (s *server) codeFailed(w http.ResponseWriter, r *http.Request, st *state, err error) {
	var p messagePage
	var status int
	var limited *links.RateLimitError
	switch {
	case errors.As(err, &limited):
		mins := max(int((limited.RetryAfter+time.Minute-1)/time.Minute), 1)
		w.Header().Set("Retry-After", links.RetryAfterSeconds(limited.RetryAfter))
		status = http.StatusTooManyRequests
		p = messagePage{
			Title: translate(r, "Too many tries"), Heading: translate(r, "Too many wrong codes"), Kind: "error",
			Body: translate(r, "For your safety, code entry is paused after several wrong or old codes. Wait {{.Count}} minutes, then try again with the code your device shows now.",
				"Count", mins),
			Link: "/link", LinkText: translate(r, "Enter a code"),
		}
	case errors.Is(err, links.ErrInvalidCode):
		status = http.StatusNotFound
		p = messagePage{
			Title: translate(r, "Code not found"), Heading: translate(r, "We couldn’t find that code"), Kind: "error",
			Body: translate(r, "Check the code on your device’s screen and type it again. If your device shows no code, start linking again on the device."),
		}
	case errors.Is(err, links.ErrExpiredCode):
		status = http.StatusGone
		p = messagePage{
			Title: translate(r, "Code expired"), Heading: translate(r, "This code has expired"), Kind: "error",
			Body: translate(r, "Codes work for a few minutes only. On your device, start linking again to get a new code, then enter the new code here."),
		}
	case errors.Is(err, links.ErrUsedCode):
		status = http.StatusConflict
		p = messagePage{
			Title: translate(r, "Code already used"), Heading: translate(r, "This code has already been used"), Kind: "error",
			Body:  translate(r, "Each code works once. To link a device, get a new code on it and enter that. If you didn’t use this code yourself, check your linked devices."),
			Link2: "/devices", Link2Text: translate(r, "See linked devices"),
		}
	default:
		s.internal(w, r, st, "code lookup", err)
		return
	}
	if p.Link == "" {
		p.Link, p.LinkText = "/link", translate(r, "Enter a new code")
	}
	st.sess.Code = ""
	st.dirty = true
	s.render(w, r, st, status, "message", p)
}

// confirmPage is GET /link/confirm: what is asking, for whom, from where.
func (s *server) confirmPage(w http.ResponseWriter, r *http.Request, st *state) {
	if !s.requireSignIn(w, r, st, "/link/confirm") {
		return
	}
	if st.sess.Code == "" {
		s.redirect(w, r, st, "/link")
		return
	}
	s.showConfirm(w, r, st, st.sess.Code, http.StatusOK, "")
}

// showConfirm renders the confirm page for code with status, saying errMsg (if any)
// about the last submission.
func (s *server) showConfirm(w http.ResponseWriter, r *http.Request, st *state, code string, status int, errMsg string) {
	req, err := s.links.LookUp(r.Context(), s.caller(r, st), code)
	if err != nil {
		s.codeFailed(w, r, st, err)
		return
	}
	acct := s.currentAccount(r.Context(), st)
	if acct == nil {
		// The account was deleted under a live session.
		s.sessions.signOut(st)
		s.redirect(w, r, st, "/signin")
		return
	}
	d := req.Auth
	left := d.ExpiresAt.Sub(s.cfg.Now())
	p := confirmPage{
		Code:        devices.FormatCode(d.UserCode),
		DeviceName:  d.Device.Name,
		Model:       d.Device.Model,
		Kind:        string(devices.ParseKind(string(d.Device.Kind))),
		ClientName:  req.Client.Name,
		LogoURI:     req.Client.LogoURI,
		Scopes:      req.Scopes,
		Origin:      originLine(r, req.LinkRequest().Origin),
		Error:       errMsg,
		ExpiresAt:   d.ExpiresAt,
		Minutes:     int((left + time.Minute - 1) / time.Minute),
		AccountName: acct.Name(),
		Username:    acct.Username,
	}
	if p.DeviceName == "" {
		p.DeviceName = translate(r, "A device")
	}
	s.render(w, r, st, status, "confirm", p)
}

// confirmSubmit is POST /link/confirm with action=approve or action=deny; approving a
// request from another network needs the in_front tick (the links service judges it).
func (s *server) confirmSubmit(w http.ResponseWriter, r *http.Request, st *state) {
	if !s.requireSignIn(w, r, st, "/link/confirm") {
		return
	}
	code, err := devices.NormalizeCode(r.PostForm.Get(devices.ParamUserCode))
	if err != nil {
		code = st.sess.Code
	}
	if code == "" {
		s.redirect(w, r, st, "/link")
		return
	}
	action := r.PostForm.Get("action")
	if action != "approve" && action != "deny" {
		st.sess.Code = code
		st.dirty = true
		s.redirect(w, r, st, "/link/confirm")
		return
	}
	var res resultPage
	if action == "approve" {
		inFront := r.PostForm.Get("in_front") != ""
		l, err := s.links.Approve(r.Context(), s.caller(r, st), code, links.Approval{InFront: inFront})
		if err != nil && s.policyFailed(w, r, st, code, err) {
			return
		}
		if errors.Is(err, links.ErrConfirmationRequired) {
			st.sess.Code = code
			st.dirty = true
			// Link device was pressed without the tick a request from another
			// network needs.
			s.showConfirm(w, r, st, code, http.StatusUnprocessableEntity, translate(r,
				"This request came from another network. Tick “{{.Tick}}” to link it, or choose {{.Decline}}.",
				"Tick", translate(r, "I am in front of this device and I started this"), "Decline", translate(r, "Don’t link")))
			return
		}
		if err != nil {
			s.codeFailed(w, r, st, err)
			return
		}
		res = resultPage{Approved: true, DeviceName: l.Name(), ClientName: l.Device.Client.Name}
	} else {
		req, err := s.links.Deny(r.Context(), s.caller(r, st), code)
		if err != nil {
			s.codeFailed(w, r, st, err)
			return
		}
		res = resultPage{DeviceName: req.Auth.Device.Name, ClientName: req.Client.Name}
		if res.DeviceName == "" {
			res.DeviceName = translate(r, "The device")
		}
	}
	st.sess.Code = ""
	st.dirty = true
	s.render(w, r, st, http.StatusOK, "result", res)
}

// origin is where a link request came from, as the confirm page shows it.
type origin struct {
	Line        string
	SameNetwork bool
}

// originLine words o in the request's language, as devices.Origin.Line does in
// English: "Requested from Lisbon, Portugal (203.0.113.7) — not your network".
func originLine(r *http.Request, o devices.Origin) origin {
	where := translate(r, "an unknown address")
	switch p := o.Place.String(); {
	case p != "" && o.IP != "":
		where = p + " (" + o.IP + ")"
	case p != "":
		where = p
	case o.IP != "":
		where = o.IP
	}
	if o.SameNetwork {
		return origin{Line: translate(r, "Requested from {{.Where}} — your network", "Where", where), SameNetwork: true}
	}
	return origin{Line: translate(r, "Requested from {{.Where}} — not your network", "Where", where)}
}
