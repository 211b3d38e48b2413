package web

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/linkdesk/linkdesk/server/accounts"
	"github.com/linkdesk/linkdesk/server/links"
	"github.com/linkdesk/linkdesk/server/store"
)

type signinPage struct {
	Username string
	Error    string
	Notice   string
	Linking  bool // a code is waiting for this sign-in
}

func (signinPage) title() string { return "Sign in" }

type otpPage struct {
	Error string
}

func (otpPage) title() string { return "Enter your one-time code" }

type signoutPage struct{}

func (signoutPage) title() string { return "Sign out" }

// signinKeys are the sign-in limiter keys (links.SignInKeys), shared with the app's
// sign-in page.
func (s *server) signinKeys(r *http.Request, username string) []string {
	return links.SignInKeys(username, s.cfg.ClientIP(r))
}

// signinForm is GET /signin: the password form, or the one-time-code form when the
// password step is done.
func (s *server) signinForm(w http.ResponseWriter, r *http.Request, st *state) {
	if st.signedIn() {
		s.redirect(w, r, st, s.afterSignIn(st))
		return
	}
	if s.pendingValid(st) {
		s.render(w, r, st, http.StatusOK, "otp", otpPage{})
		return
	}
	p := signinPage{Linking: st.sess.Code != ""}
	if r.URL.Query().Get("signed_out") == "1" {
		p.Notice = "You are signed out."
	}
	s.render(w, r, st, http.StatusOK, "signin", p)
}

func (s *server) pendingValid(st *state) bool {
	return st.sess.PendingSubject != "" && st.sess.PendingUntil > s.cfg.Now().Unix()
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
	if _, hasOTP := r.PostForm["otp"]; hasOTP {
		s.otpSubmit(w, r, st)
		return
	}
	username := strings.TrimSpace(r.PostForm.Get("username"))
	password := r.PostForm.Get("password")
	page := signinPage{Username: username, Linking: st.sess.Code != ""}
	if username == "" || password == "" {
		page.Error = "Enter your username and your password."
		s.render(w, r, st, http.StatusUnprocessableEntity, "signin", page)
		return
	}
	keys := s.signinKeys(r, username)
	if !s.checkSigninLimit(w, r, st, keys) {
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
		s.sessions.pendingSecondFactor(st, u.Subject)
		s.redirect(w, r, st, "/signin")
		return
	}
	s.sessions.signIn(st, u.Subject)
	s.log.InfoContext(r.Context(), "signed in", "subject", u.Subject, "amr", "pwd")
	s.redirect(w, r, st, s.afterSignIn(st))
}

func (s *server) otpSubmit(w http.ResponseWriter, r *http.Request, st *state) {
	if !s.pendingValid(st) {
		st.sess.PendingSubject = ""
		st.dirty = true
		s.render(w, r, st, http.StatusUnprocessableEntity, "signin", signinPage{
			Error: "Signing in took too long. Enter your username and password again.", Linking: st.sess.Code != "",
		})
		return
	}
	u, err := s.cfg.Store.UserBySubject(r.Context(), st.sess.PendingSubject)
	if err != nil {
		s.internal(w, r, st, "look up user", err)
		return
	}
	keys := s.signinKeys(r, u.Username)
	if !s.checkSigninLimit(w, r, st, keys) {
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
			st.sess.PendingSubject = ""
			s.render(w, r, st, http.StatusUnauthorized, "signin", signinPage{
				Error: "Too many wrong one-time codes. Enter your username and password again.", Linking: st.sess.Code != "",
			})
			return
		}
		msg := accounts.WrongTOTPMessage
		if used {
			msg = accounts.TOTPUsedMessage
		}
		s.render(w, r, st, http.StatusUnauthorized, "otp", otpPage{Error: msg})
		return
	}
	s.sessions.signIn(st, u.Subject)
	s.log.InfoContext(r.Context(), "signed in", "subject", u.Subject, "amr", "pwd otp")
	s.redirect(w, r, st, s.afterSignIn(st))
}

func (s *server) signinFailed(r *http.Request, keys []string) {
	if err := s.cfg.SignInLimiter.Fail(r.Context(), keys...); err != nil {
		s.log.ErrorContext(r.Context(), "count failed sign-in", "err", err)
	}
}

func (s *server) checkSigninLimit(w http.ResponseWriter, r *http.Request, st *state, keys []string) bool {
	retry, err := s.cfg.SignInLimiter.Check(r.Context(), keys...)
	if isRateLimited(retry, err) {
		mins := int((retry + time.Minute - 1) / time.Minute)
		if mins < 1 {
			mins = 1
		}
		st.sess.PendingSubject = ""
		st.dirty = true
		w.Header().Set("Retry-After", links.RetryAfterSeconds(retry))
		s.render(w, r, st, http.StatusTooManyRequests, "message", messagePage{
			Title: "Too many tries", Heading: "Too many sign-in attempts", Kind: "error",
			Body: accounts.SignInPausedMessage(mins),
			Link: "/signin", LinkText: "Back to sign-in",
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
