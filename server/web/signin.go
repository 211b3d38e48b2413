package web

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/linkdesk/linkdesk/server/accounts"
	"github.com/linkdesk/linkdesk/server/links"
	"github.com/linkdesk/linkdesk/server/metrics"
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
		p.Notice = translate(r, "You are signed out.")
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
	st.sess.PendingSubject, st.sess.PendingFor, st.sess.PendingUntil = "", "", 0
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

// maxSigninsPerAddress caps the sign-in steps one address (IPv6: one /64) may have in
// progress at once in this process (server.gate), so one caller cannot fill the
// password pool's queue.
const maxSigninsPerAddress = 4

// signinStep runs one posted step of flow f: the one-time code when the form has otp,
// else username and password. It is the one code path of every sign-in.
func (s *server) signinStep(w http.ResponseWriter, r *http.Request, st *state, f flow) {
	ip := s.cfg.ClientIP(r)
	addr := links.AddressKey(ip)
	if !s.gate.Enter(addr) {
		s.cfg.Metrics.LimitTrip(metrics.LimitSignInsAtOnce)
		s.log.WarnContext(r.Context(), "sign-in refused: too many at once from one address", "address", ip)
		s.signinBusy(w, r, st, f, http.StatusTooManyRequests, "1")
		return
	}
	defer s.gate.Leave(addr)
	if _, hasOTP := r.PostForm["otp"]; hasOTP {
		s.otpSubmit(w, r, st, f, ip)
		return
	}
	username := strings.TrimSpace(r.PostForm.Get("username"))
	password := r.PostForm.Get("password")
	page := signinPage{flow: f, Username: username, Linking: f.AuthRequestID == "" && st.sess.Code != ""}
	if username == "" || password == "" {
		page.Error = translate(r, "Enter your username and your password.")
		s.render(w, r, st, http.StatusUnprocessableEntity, "signin", page)
		return
	}
	tag := accounts.UserTag(username)
	att, ok := s.reserveSignin(w, r, st, f, links.SignInLimits(username, ip), "password", ip, tag)
	if !ok {
		return
	}
	u, err := s.cfg.Store.UserByUsername(r.Context(), username)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.release(r, att)
		s.internal(w, r, st, "look up user", err)
		return
	}
	var good bool
	perr := accounts.Passwords.Do(r.Context(), func() {
		if err != nil {
			// Unknown username: spend a password check's time (and place in the pool)
			// so both answers take as long.
			accounts.CheckNoUser(password)
		} else {
			good = u.PasswordHash != "" && s.cfg.VerifyPassword(u.PasswordHash, password)
		}
	})
	if perr != nil {
		// Not checked: the attempt does not count.
		s.release(r, att)
		s.cfg.Metrics.LimitTrip(metrics.LimitPasswordChecks)
		s.log.WarnContext(r.Context(), "sign-in refused: password checks busy", "address", ip, "user", tag, "err", perr)
		s.signinBusy(w, r, st, f, http.StatusServiceUnavailable, busyRetryAfter)
		return
	}
	if !good {
		s.cfg.Metrics.SignIn(metrics.SignInFailure)
		s.log.WarnContext(r.Context(), "sign-in failed: wrong username or password", "address", ip, "user", tag)
		page.Error = translate(r, accounts.WrongPasswordMessage)
		s.render(w, r, st, http.StatusUnauthorized, "signin", page)
		return
	}
	s.release(r, att)
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

// otpSubmit is the one-time-code step. Wrong codes count in the store per account
// (links.OneTimeCodeLimits), not in the cookie, so replaying an earlier cookie gains
// no tries; a code's time step, once it signed in, is refused for good (the store's
// replay guard, shared by every page, restart and replica).
func (s *server) otpSubmit(w http.ResponseWriter, r *http.Request, st *state, f flow, ip string) {
	if !s.pendingFor(st, f) {
		s.clearPending(st)
		s.render(w, r, st, http.StatusUnprocessableEntity, "signin", signinPage{flow: f,
			Error: translate(r, "Signing in took too long. Enter your username and password again."), Linking: f.AuthRequestID == "" && st.sess.Code != "",
		})
		return
	}
	u, err := s.cfg.Store.UserBySubject(r.Context(), st.sess.PendingSubject)
	if err != nil {
		s.internal(w, r, st, "look up user", err)
		return
	}
	tag := accounts.UserTag(u.Username)
	att, ok := s.reserveSignin(w, r, st, f, links.OneTimeCodeLimits(u.Subject, ip), "one-time code", ip, tag)
	if !ok {
		return
	}
	otp := strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return -1
		}
		return r
	}, r.PostForm.Get("otp"))
	now := s.cfg.Now()
	good := otp != "" && s.cfg.VerifyTOTP(u.Subject, u.TOTPSecret, otp, now)
	used := false
	if good {
		step, matched := accounts.MatchTOTP(u.TOTPSecret, otp, now)
		if !matched {
			step = accounts.TOTPStep(now) // a verifier of its own: guard the current step
		}
		fresh, err := s.cfg.Store.UseTOTPStep(r.Context(), u.Subject, step)
		if err != nil {
			s.release(r, att)
			s.internal(w, r, st, "one-time code replay guard", err)
			return
		}
		good, used = fresh, !fresh
	}
	if !good {
		reason := "wrong one-time code"
		msg := translate(r, accounts.WrongTOTPMessage)
		if used {
			reason, msg = "one-time code already used", translate(r, accounts.TOTPUsedMessage)
		}
		s.cfg.Metrics.SignIn(metrics.SignInFailure)
		s.log.WarnContext(r.Context(), "sign-in failed: "+reason, "address", ip, "user", tag)
		s.render(w, r, st, http.StatusUnauthorized, "otp", otpPage{flow: f, Error: msg})
		return
	}
	s.release(r, att)
	s.completeSignin(w, r, st, f, u.Subject, []string{"pwd", "otp"})
}

// completeSignin ends flow f for subject: the web pages sign their session in and go
// back to what sent the person here; the app's sign-in tells the provider its auth
// request is done and follows the provider's callback to the app.
func (s *server) completeSignin(w http.ResponseWriter, r *http.Request, st *state, f flow, subject string, amr []string) {
	if f.AuthRequestID == "" {
		s.sessions.signIn(st, subject)
		s.cfg.Metrics.SignIn(metrics.SignInSuccess)
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
	s.cfg.Metrics.SignIn(metrics.SignInSuccess)
	s.log.InfoContext(r.Context(), "signed in", "subject", subject, "amr", strings.Join(amr, " "), "client", f.ClientName)
	s.redirect(w, r, st, to)
}

// busyRetryAfter is the Retry-After (seconds) when the password checks are busy.
const busyRetryAfter = "5"

// signinBusy answers that linkd is too busy for this sign-in now, with Retry-After.
func (s *server) signinBusy(w http.ResponseWriter, r *http.Request, st *state, f flow, status int, retryAfter string) {
	w.Header().Set("Retry-After", retryAfter)
	s.render(w, r, st, status, "message", messagePage{
		Title: translate(r, "Busy"), Heading: translate(r, "Too many sign-ins at once"), Kind: "error",
		Body: translate(r, "Too many sign-ins are being checked right now. Wait a few seconds, then try again."),
		Link: f.start(), LinkText: translate(r, "Back to sign-in"),
	})
}

// release uncounts an attempt that succeeded (or was never checked); a counter error
// is logged, not shown.
func (s *server) release(r *http.Request, att links.Attempt) {
	if err := s.cfg.SignInLimiter.Release(r.Context(), att); err != nil {
		s.log.ErrorContext(r.Context(), "release sign-in attempt", "err", err)
	}
}

// reserveSignin counts one try of step (password or one-time code) against limits
// before it is checked. Over a limit it answers 429 with Retry-After, logs the trip
// and reports false.
func (s *server) reserveSignin(w http.ResponseWriter, r *http.Request, st *state, f flow, limits []store.AttemptLimit, step, ip, tag string) (links.Attempt, bool) {
	att, retry, err := s.cfg.SignInLimiter.Reserve(r.Context(), limits...)
	if isRateLimited(retry, err) {
		s.cfg.Metrics.LimitTrip(metrics.LimitSignIns)
		s.log.WarnContext(r.Context(), "sign-in limited", "step", step, "address", ip, "user", tag, "retry_after", retry)
		mins := int((retry + time.Minute - 1) / time.Minute)
		s.clearPending(st)
		w.Header().Set("Retry-After", links.RetryAfterSeconds(retry))
		s.render(w, r, st, http.StatusTooManyRequests, "message", messagePage{
			Title: translate(r, "Too many tries"), Heading: translate(r, "Too many sign-in attempts"), Kind: "error",
			Body: translate(r, "For your safety, signing in to this account is paused. Wait {{.Count}} minutes, then try again.", "Count", max(mins, 1)),
			Link: f.start(), LinkText: translate(r, "Back to sign-in"),
		})
		return att, false
	}
	if err != nil {
		s.internal(w, r, st, "sign-in rate limit check", err)
		return att, false
	}
	return att, true
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
