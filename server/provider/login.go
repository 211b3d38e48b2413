package provider

import (
	"crypto/hmac"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/linkdesk/linkdesk/server/accounts"
	"github.com/linkdesk/linkdesk/server/links"
	"github.com/linkdesk/linkdesk/server/store"
)

//go:embed templates
var templateFS embed.FS

var loginTmpl = template.Must(template.ParseFS(templateFS, "templates/login.html"))

const (
	stepCookie   = "__Host-linkd_login"
	stepLifetime = 5 * time.Minute
)

// login serves /login, the sign-in page of the authorization-code flow: username and
// password, then a TOTP code when the account has one, then back to zitadel.
type login struct {
	p   *Provider
	key []byte
}

func newLogin(p *Provider, key []byte) *login { return &login{p: p, key: key} }

type loginPage struct {
	AuthRequestID string
	CSRF          string
	Step          string // "password" or "otp"
	Username      string
	ClientName    string
	Error         string
}

func (l *login) mac(parts ...string) string {
	m := hmac.New(sha256.New, l.key)
	m.Write([]byte(strings.Join(parts, "\x00")))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (l *login) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'")
	if r.URL.Path == "/login/login.css" {
		h.Set("Content-Type", "text/css; charset=utf-8")
		h.Set("Cache-Control", "public, max-age=3600")
		b, _ := templateFS.ReadFile("templates/login.css")
		w.Write(b)
		return
	}
	if r.URL.Path != "/login" {
		http.NotFound(w, r)
		return
	}
	switch r.Method {
	case http.MethodGet:
		l.show(w, r)
	case http.MethodPost:
		l.submit(w, r)
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func (l *login) page(w http.ResponseWriter, status int, pg loginPage) {
	if pg.Step == "" {
		pg.Step = "password"
	}
	if pg.AuthRequestID != "" {
		pg.CSRF = l.mac("csrf", pg.AuthRequestID)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := loginTmpl.Execute(w, pg); err != nil {
		l.p.log.Error("render login", "err", err)
	}
}

func (l *login) request(r *http.Request, id string) (store.AuthRequest, string, error) {
	if id == "" {
		return store.AuthRequest{}, "", errors.New("missing")
	}
	a, err := l.p.cfg.Store.AuthRequestByID(r.Context(), id)
	if err != nil {
		return a, "", err
	}
	if l.p.cfg.Now().After(a.ExpiresAt) || a.Done {
		return a, "", store.ErrExpired
	}
	c, err := l.p.storage.clientByID(r.Context(), a.ClientID)
	if err != nil {
		return a, "", err
	}
	return a, c.c.Name, nil
}

const startAgain = "This sign-in has expired or is not valid. Go back to the app and start signing in again."

func (l *login) show(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("authRequestID")
	_, name, err := l.request(r, id)
	if err != nil {
		l.page(w, http.StatusBadRequest, loginPage{Error: startAgain, Step: "gone"})
		return
	}
	l.page(w, http.StatusOK, loginPage{AuthRequestID: id, ClientName: name})
}

func (l *login) submit(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		l.page(w, http.StatusBadRequest, loginPage{Error: "The form could not be read. Please try again.", Step: "gone"})
		return
	}
	id := r.PostForm.Get("authRequestID")
	if !hmac.Equal([]byte(r.PostForm.Get("csrf")), []byte(l.mac("csrf", id))) || id == "" {
		l.page(w, http.StatusForbidden, loginPage{Error: "This form is out of date. Go back to the app and start signing in again.", Step: "gone"})
		return
	}
	_, name, err := l.request(r, id)
	if err != nil {
		l.page(w, http.StatusBadRequest, loginPage{Error: startAgain, Step: "gone"})
		return
	}
	ctx := r.Context()
	now := l.p.cfg.Now()
	ip := l.p.cfg.ClientIP(r)
	pg := loginPage{AuthRequestID: id, ClientName: name}

	if r.PostForm.Has("otp") {
		subject, ok := l.readStep(r, id, now)
		if !ok {
			pg.Error = "Signing in took too long. Enter your username and password again."
			l.page(w, http.StatusBadRequest, pg)
			return
		}
		u, err := l.p.cfg.Store.UserBySubject(ctx, subject)
		if err != nil {
			l.clearStep(w)
			pg.Error = "Signing in took too long. Enter your username and password again."
			l.page(w, http.StatusBadRequest, pg)
			return
		}
		keys := links.SignInKeys(u.Username, ip)
		if l.limited(w, r, &pg, keys) {
			return
		}
		otp := strings.Map(func(r rune) rune {
			if r == ' ' || r == '-' {
				return -1
			}
			return r
		}, r.PostForm.Get("otp"))
		replay := l.p.cfg.TOTPReplay
		used := otp != "" && replay.Seen(subject, otp, now)
		ok = !used && otp != "" && accounts.CheckTOTP(u.TOTPSecret, otp, now)
		if ok && !replay.Use(subject, otp, now) {
			ok, used = false, true // another sign-in took this code a moment ago
		}
		if !ok {
			l.fail(r, keys)
			pg.Step, pg.Error = "otp", accounts.WrongTOTPMessage
			if used {
				pg.Error = accounts.TOTPUsedMessage
			}
			l.page(w, http.StatusUnauthorized, pg)
			return
		}
		l.clearStep(w)
		l.complete(w, r, id, subject, now, []string{"pwd", "otp"})
		return
	}

	username := strings.TrimSpace(r.PostForm.Get("username"))
	password := r.PostForm.Get("password")
	pg.Username = username
	keys := links.SignInKeys(username, ip)
	if l.limited(w, r, &pg, keys) {
		return
	}
	u, err := l.p.cfg.Store.UserByUsername(ctx, username)
	ok := false
	if err == nil {
		ok = accounts.CheckPassword(u.PasswordHash, password)
	} else {
		accounts.CheckNoUser(password)
	}
	if !ok {
		l.fail(r, keys)
		pg.Error = accounts.WrongPasswordMessage
		l.page(w, http.StatusUnauthorized, pg)
		return
	}
	if u.TOTPSecret != "" {
		l.setStep(w, id, u.Subject, now)
		pg.Step = "otp"
		l.page(w, http.StatusOK, pg)
		return
	}
	l.complete(w, r, id, u.Subject, now, []string{"pwd"})
}

func (l *login) complete(w http.ResponseWriter, r *http.Request, id, subject string, now time.Time, amr []string) {
	if err := l.p.cfg.Store.CompleteAuthRequest(r.Context(), id, subject, now, amr); err != nil {
		l.p.log.Error("complete auth request", "err", err)
		l.page(w, http.StatusInternalServerError, loginPage{Error: "Something went wrong on our side. Please try again.", Step: "gone"})
		return
	}
	l.p.log.Info("signed in", "subject", subject)
	http.Redirect(w, r, l.p.authCallbackURL(id), http.StatusSeeOther)
}

// limited answers the page saying sign-in is paused when keys are over the sign-in
// limit (the same limiter and keys as the phone pages', links.SignInKeys), and reports
// whether it did.
func (l *login) limited(w http.ResponseWriter, r *http.Request, pg *loginPage, keys []string) bool {
	retry, err := l.p.cfg.SignInLimiter.Check(r.Context(), keys...)
	if errors.Is(err, links.ErrRateLimited) {
		l.clearStep(w)
		w.Header().Set("Retry-After", links.RetryAfterSeconds(retry))
		pg.Step = "password"
		pg.Error = accounts.SignInPausedMessage(int((retry + time.Minute - 1) / time.Minute))
		l.page(w, http.StatusTooManyRequests, *pg)
		return true
	}
	if err != nil {
		l.p.log.Error("sign-in rate limit check", "err", err)
		l.page(w, http.StatusInternalServerError, loginPage{Error: "Something went wrong on our side. Please try again.", Step: "gone"})
		return true
	}
	return false
}

func (l *login) fail(r *http.Request, keys []string) {
	if err := l.p.cfg.SignInLimiter.Fail(r.Context(), keys...); err != nil {
		l.p.log.Warn("count sign-in failure", "err", err)
	}
}

// The password step is remembered for the TOTP step in a short-lived cookie bound to
// the auth request: subject|expiry|mac.
func (l *login) setStep(w http.ResponseWriter, id, subject string, now time.Time) {
	exp := strconv.FormatInt(now.Add(stepLifetime).Unix(), 10)
	http.SetCookie(w, &http.Cookie{Name: stepCookie, Value: subject + "|" + exp + "|" + l.mac("step", id, subject, exp),
		Path: "/", MaxAge: int(stepLifetime.Seconds()), Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

func (l *login) clearStep(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: stepCookie, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

func (l *login) readStep(r *http.Request, id string, now time.Time) (string, bool) {
	c, err := r.Cookie(stepCookie)
	if err != nil {
		return "", false
	}
	parts := strings.Split(c.Value, "|")
	if len(parts) != 3 || !hmac.Equal([]byte(parts[2]), []byte(l.mac("step", id, parts[0], parts[1]))) {
		return "", false
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || now.Unix() > exp {
		return "", false
	}
	return parts[0], true
}
