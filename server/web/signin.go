package web

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/linkdesk/linkdesk/server/accounts"
	"github.com/linkdesk/linkdesk/server/links"
	"github.com/linkdesk/linkdesk/server/store"
)

// flow is one entry point of the one sign-in: the phone pages' /signin, which ends by
// signing the web session in, or the app's /login, which ends an auth request of the
// authorization-code flow (AuthRequestID set). Both show the same pages and run the
// same password and one-time-code steps.
type flow struct {
	Action        string // the forms' action: "/signin" or "/login"
	AuthRequestID string // /login: the auth request being signed in
	ClientName    string // /login: the app asking
}

var webFlow = flow{Action: "/signin"}

// start is the flow's first page.
func (f flow) start() string {
	if f.AuthRequestID == "" {
		return f.Action
	}
	return f.Action + "?authRequestID=" + url.QueryEscape(f.AuthRequestID)
}

type signinPage struct {
	flow
	Username string
	Error    string
	Notice   string
	Linking  bool // a code is waiting for this sign-in
}

func (signinPage) title() string { return "Sign in" }

type otpPage struct {
	flow
	Error string
}

func (otpPage) title() string { return "Enter your one-time code" }

type signoutPage struct{}

func (signoutPage) title() string { return "Sign out" }

// signinForm is GET /signin: the password form, or the one-time-code form when the
// password step is done.
func (s *server) signinForm(w http.ResponseWriter, r *http.Request, st *state) {
	if st.signedIn() {
		s.redirect(w, r, st, s.afterSignIn(st))
		return
	}
	p := signinPage{flow: webFlow}
	if r.URL.Query().Get("signed_out") == "1" {
		p.Notice = "You are signed out."
	}
	s.showSignin(w, r, st, p)
}

// showSignin renders the flow's current step: the one-time-code form when its password
// step is done, else the password form p.
func (s *server) showSignin(w http.ResponseWriter, r *http.Request, st *state, p signinPage) {
	if s.pendingFor(st, p.flow) {
		s.render(w, r, st, http.StatusOK, "otp", otpPage{flow: p.flow})
		return
	}
	p.Linking = p.AuthRequestID == "" && st.sess.Code != ""
	s.render(w, r, st, http.StatusOK, "signin", p)
}

// pendingFor reports whether st's password step is done, still fresh, and for flow f.
func (s *server) pendingFor(st *state, f flow) bool {
	return st.sess.PendingSubject != "" && st.sess.PendingFor == f.AuthRequestID && st.sess.PendingUntil > s.cfg.Now().Unix()
}

func (s *server) clearPending(st *state) {
	st.sess.PendingSubject, st.sess.PendingFor, st.sess.PendingUntil, st.sess.PendingTries = "", "", 0, 0
	st.dirty = true
}

// afterSignIn is where a freshly signed-in person goes: back to what sent them here.
func (s *server) afterSignIn(st *state) string {
	next := localPath(st.sess.Next)
	if next == "" {
		if st.sess.Code != "" {
			next = "/link/confirm"
		} else {
			next = "/devices"
		}
	}
	st.sess.Next = ""
	st.dirty = true
	return next
}

// signinSubmit is POST /signin: the password step, or (with otp) the second step.
func (s *server) signinSubmit(w http.ResponseWriter, r *http.Request, st *state) {
	if st.signedIn() {
		s.redirect(w, r, st, s.afterSignIn(st))
		return
	}
	s.signinStep(w, r, st, webFlow)
}

// signinStep runs one posted step of flow f: the one-time code when the form has otp,
// else username and password. It is the one code path of every sign-in.
func (s *server) signinStep(w http.ResponseWriter, r *http.Request, st *state, f flow) {
	if _, hasOTP := r.PostForm["otp"]; hasOTP {
		s.otpSubmit(w, r, st, f)
		return
	}
	username := strings.TrimSpace(r.PostForm.Get("username"))
	password := r.PostForm.Get("password")
	page := signinPage{flow: f, Username: username, Linking: f.AuthRequestID == "" && st.sess.Code != ""}
	if username == "" || password == "" {
		page.Error = "Enter your username and your password."
		s.render(w, r, st, http.StatusUnprocessableEntity, "signin", page)
		return
	}
	keys := links.SignInKeys(username, s.cfg.ClientIP(r))
	if !s.checkSigninLimit(w, r, st, f, keys) {
		return
	}
	u, err := s.cfg.Store.UserByUsername(r.Context(), username)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.internal(w, r, st, "look up user", err)
		return
	}
	var ok bool
	if err != nil {
		// Unknown username: spend a password check's time so both answers take as long.
		accounts.CheckNoUser(password)
	} else {
		ok = u.PasswordHash != "" && s.cfg.VerifyPassword(u.PasswordHash, password)
	}
	if !ok {
		s.signinFailed(r, keys)
		page.Error = accounts.WrongPasswordMessage
		s.render(w, r, st, http.StatusUnauthorized, "signin", page)
		return
	}
	if u.TOTPSecret != "" {
		if f.AuthRequestID == "" {
			// The web session is about to sign in: a new id, so a planted cookie never gets there.
			s.sessions.pendingSecondFactor(st, u.Subject)
		} else {
			// The app's sign-in leaves the web session as it is (signed in or not).
			s.clearPending(st)
			st.sess.PendingSubject = u.Subject
			st.sess.PendingUntil = s.cfg.Now().Add(totpLifetime).Unix()
		}
		st.sess.PendingFor = f.AuthRequestID
		s.redirect(w, r, st, f.start())
		return
	}
	s.completeSignin(w, r, st, f, u.Subject, []string{"pwd"})
}

func (s *server) otpSubmit(w http.ResponseWriter, r *http.Request, st *state, f flow) {
	if !s.pendingFor(st, f) {
		s.clearPending(st)
		s.render(w, r, st, http.StatusUnprocessableEntity, "signin", signinPage{flow: f,
			Error: "Signing in took too long. Enter your username and password again.", Linking: f.AuthRequestID == "" && st.sess.Code != "",
		})
		return
	}
	u, err := s.cfg.Store.UserBySubject(r.Context(), st.sess.PendingSubject)
	if err != nil {
		s.internal(w, r, st, "look up user", err)
		return
	}
	keys := links.SignInKeys(u.Username, s.cfg.ClientIP(r))
	if !s.checkSigninLimit(w, r, st, f, keys) {
		return
	}
	otp := strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return -1
		}
		return r
	}, r.PostForm.Get("otp"))
	now := s.cfg.Now()
	used := otp != "" && s.replay.Seen(u.Subject, otp, now)
	ok := !used && otp != "" && s.cfg.VerifyTOTP(u.Subject, u.TOTPSecret, otp, now)
	if ok && !s.replay.Use(u.Subject, otp, now) {
		ok, used = false, true // another sign-in took this code a moment ago
	}
	if !ok {
		s.signinFailed(r, keys)
		st.sess.PendingTries++
		st.dirty = true
		if st.sess.PendingTries >= maxTOTPTries {
			s.clearPending(st)
			s.render(w, r, st, http.StatusUnauthorized, "signin", signinPage{flow: f,
				Error: "Too many wrong one-time codes. Enter your username and password again.", Linking: f.AuthRequestID == "" && st.sess.Code != "",
			})
			return
		}
		msg := accounts.WrongTOTPMessage
		if used {
			msg = accounts.TOTPUsedMessage
		}
		s.render(w, r, st, http.StatusUnauthorized, "otp", otpPage{flow: f, Error: msg})
		return
	}
	s.completeSignin(w, r, st, f, u.Subject, []string{"pwd", "otp"})
}

// completeSignin ends flow f for subject: the web pages sign their session in and go
// back to what sent the person here; the app's sign-in tells the provider its auth
// request is done and follows the provider's callback to the app.
func (s *server) completeSignin(w http.ResponseWriter, r *http.Request, st *state, f flow, subject string, amr []string) {
	if f.AuthRequestID == "" {
		s.sessions.signIn(st, subject)
		s.log.InfoContext(r.Context(), "signed in", "subject", subject, "amr", strings.Join(amr, " "))
		s.redirect(w, r, st, s.afterSignIn(st))
		return
	}
	s.clearPending(st)
	to, err := s.cfg.AuthRequests.CompleteAuthRequest(r.Context(), f.AuthRequestID, subject, amr)
	if err != nil {
		s.internal(w, r, st, "complete auth request", err)
		return
	}
	s.log.InfoContext(r.Context(), "signed in", "subject", subject, "amr", strings.Join(amr, " "), "client", f.ClientName)
	s.redirect(w, r, st, to)
}

func (s *server) signinFailed(r *http.Request, keys []string) {
	if err := s.cfg.SignInLimiter.Fail(r.Context(), keys...); err != nil {
		s.log.ErrorContext(r.Context(), "count failed sign-in", "err", err)
	}
}

func (s *server) checkSigninLimit(w http.ResponseWriter, r *http.Request, st *state, f flow, keys []string) bool {
	retry, err := s.cfg.SignInLimiter.Check(r.Context(), keys...)
	if isRateLimited(retry, err) {
		mins := int((retry + time.Minute - 1) / time.Minute)
		if mins < 1 {
			mins = 1
		}
		s.clearPending(st)
		w.Header().Set("Retry-After", links.RetryAfterSeconds(retry))
		s.render(w, r, st, http.StatusTooManyRequests, "message", messagePage{
			Title: "Too many tries", Heading: "Too many sign-in attempts", Kind: "error",
			Body: accounts.SignInPausedMessage(mins),
			Link: f.start(), LinkText: "Back to sign-in",
		})
		return false
	}
	if err != nil {
		s.internal(w, r, st, "sign-in rate limit check", err)
		return false
	}
	return true
}

// signoutForm is GET /signout: a button, since signing out changes state (POST only).
func (s *server) signoutForm(w http.ResponseWriter, r *http.Request, st *state) {
	if !st.signedIn() {
		s.redirect(w, r, st, "/signin")
		return
	}
	s.render(w, r, st, http.StatusOK, "signout", signoutPage{})
}

// signoutSubmit is POST /signout. With switch=1 ("not you?") the code being linked is
// kept, and the next sign-in goes straight back to its confirmation.
func (s *server) signoutSubmit(w http.ResponseWriter, r *http.Request, st *state) {
	code := st.sess.Code
	s.sessions.signOut(st)
	if r.PostForm.Get("switch") == "1" && code != "" {
		st.sess.Code = code
		st.sess.Next = "/link/confirm"
		s.redirect(w, r, st, "/signin")
		return
	}
	s.redirect(w, r, st, "/signin?signed_out=1")
}
