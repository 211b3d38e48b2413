// Package web is linkd's browser front: the pages a person reaches after scanning a
// kiosk's QR code or typing the verification address, and the list of linked devices.
//
//	GET  /link                    code entry (field user_code)
//	GET  /link?user_code=…        the QR target: the code shown large, "Check that your
//	                              device shows this code" (RFC 8628 §3.3.1)
//	POST /link                    remember the code; on to /signin or /link/confirm
//	GET  /link/confirm            device, app, permissions, origin, account, "not you?"
//	POST /link/confirm            action=approve|deny, then the final result page; from
//	                              another network approve needs in_front (the tick)
//	GET|POST /link/nearby/{id}    pick a device waiting nearby by the code it shows (nearby.go)
//	GET|POST /signin              username + password, then otp when the account has TOTP
//	GET|POST /login               the same sign-in for the app's authorization-code flow
//	                              (authRequestID from the provider; Config.AuthRequests)
//	GET|POST /signout             sign out (switch=1 keeps the pending code: "not you?")
//	GET  /devices                 linked devices with rename (POST /devices/{id}/rename)
//	GET|POST /devices/{id}/unlink unlink, with a confirm step
//
// Choices: pages are rendered on the server with html/template and work without
// JavaScript; one small embedded script formats the code as it is typed. Responses
// carry a Content-Security-Policy without 'unsafe-inline', X-Frame-Options DENY and
// Referrer-Policy no-referrer (codes travel in URLs). Every form carries a per-session
// CSRF token, and http.CrossOriginProtection refuses cross-site posts on top. The code
// is looked up only once the person is signed in, and unknown, expired and used codes
// count against the per-account and per-address limits shared with the management API:
// every operation on links is server/links' (this package only decodes forms, renders
// pages and picks status codes); sign-in failures use the links service's limiter under
// their own keys ("signin:…"), so typos in a password never lock code entry. Sessions are AES-GCM sealed cookies (session.go), replaced on every sign-in.
// A one-time code that signed an account in is refused for the rest of its validity.
package web

import (
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/linkdesk/linkdesk/server/accounts"
	"github.com/linkdesk/linkdesk/server/links"
	"github.com/linkdesk/linkdesk/server/metrics"
	"github.com/linkdesk/linkdesk/server/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Limiter throttles sign-in guessing; *links.Limiter implements it. Reserve counts an
// attempt before the password or code is checked, or returns links.ErrRateLimited
// and how long to wait; Release uncounts an attempt that succeeded.
type Limiter interface {
	Reserve(ctx context.Context, limits ...store.AttemptLimit) (links.Attempt, time.Duration, error)
	Release(ctx context.Context, a links.Attempt) error
}

// PasswordVerifier checks a password against a stored PHC hash (an unknown username never
// reaches it: the pages then spend accounts.CheckNoUser's time instead). TOTPVerifier
// checks a one-time code for an account's base32 secret at now; the pages refuse a code
// that was already used on top of it.
type (
	PasswordVerifier func(hash, password string) bool
	TOTPVerifier     func(subject, secret, code string, now time.Time) bool
)

// Store is the part of linkd's store the pages read themselves: accounts, for signing
// in and for naming the signed-in person. Everything about links goes through
// Config.Links.
type Store interface {
	UserByUsername(ctx context.Context, username string) (store.User, error)
	UserBySubject(ctx context.Context, subject string) (store.User, error)
	// UseTOTPStep is the one-time-code replay guard, in the store so it holds across
	// restarts and replicas.
	UseTOTPStep(ctx context.Context, subject string, step int64) (bool, error)
	SignOutStore
}

var _ Store = store.Store(nil) // linkd's whole store serves as one

// Config is what the pages need. Links and Store are required.
type Config struct {
	Links *links.Service
	Store Store
	// Issuer is linkd's issuer URL; it is shown on pages as the service's address.
	Issuer string
	Logger *slog.Logger // nil: slog.Default()
	// SecureCookies marks cookies Secure and names the session cookie with the
	// __Host- prefix. Always true in production (linkd serves TLS only).
	SecureCookies bool
	// SessionKey seals session cookies. Give every replica the same key so a session
	// works on all of them; empty means a random key made at start (sessions then end
	// when linkd restarts).
	SessionKey []byte
	// SessionLifetime bounds a signed-in session; default 8 hours.
	SessionLifetime time.Duration
	// SignInLimiter throttles password and TOTP guessing. nil uses the links service's
	// limiter with keys of their own ("signin:…"), so sign-in failures never lock code
	// entry.
	SignInLimiter Limiter
	// VerifyPassword and VerifyTOTP check credentials; nil uses server/accounts
	// (argon2id; RFC 6238).
	VerifyPassword PasswordVerifier
	VerifyTOTP     TOTPVerifier
	// AuthRequests, when set, lets the same sign-in pages serve the app's sign-in at
	// /login (the provider's login URL); nil: /login is not served.
	AuthRequests AuthRequests
	// ClientIP returns the caller's address; nil uses r.RemoteAddr's host.
	ClientIP func(r *http.Request) string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Metrics counts sign-ins, failed ones and refused ones; nil counts nothing.
	Metrics *metrics.Recorder
}

// Paths are the URL patterns New's handler serves; linkd mounts the handler on each.
var Paths = []string{"/link", "/link/", "/devices", "/devices/", "/signin", "/signout", "/login", "/lang", "/static/"}

type server struct {
	cfg      Config
	links    *links.Service
	log      *slog.Logger
	sessions *sessions
	pages    map[string]map[string]*template.Template // by language, then name
	gate     *accounts.Gate                           // sign-ins in progress per address
}

// New returns the handler of the web pages. It serves the full paths listed in Paths.
func New(cfg Config) http.Handler {
	if cfg.Store == nil || cfg.Links == nil {
		panic("web: Config.Links and Config.Store are required")
	}
	if cfg.VerifyPassword == nil {
		cfg.VerifyPassword = accounts.CheckPassword
	}
	if cfg.VerifyTOTP == nil {
		cfg.VerifyTOTP = checkTOTP
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ClientIP == nil {
		cfg.ClientIP = remoteIP
	}
	if cfg.SessionLifetime <= 0 {
		cfg.SessionLifetime = 8 * time.Hour
	}
	if cfg.SignInLimiter == nil {
		cfg.SignInLimiter = cfg.Links.Limiter()
	}
	sess, err := newSessions(cfg.SessionKey, cfg.SecureCookies, cfg.SessionLifetime, cfg.Now, cfg.Store, cfg.Logger.With("component", "web"))
	if err != nil {
		panic("web: " + err.Error())
	}
	s := &server{
		cfg:      cfg,
		links:    cfg.Links,
		log:      cfg.Logger.With("component", "web"),
		sessions: sess,
		pages:    parsePages(),
		gate:     accounts.NewGate(maxSigninsPerAddress),
	}

	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", filesOnly(static, cacheStatic(http.FileServerFS(static)))))

	mux.HandleFunc("GET /link", s.withSession(s.linkForm))
	mux.HandleFunc("POST /link", s.withSession(s.csrf(s.linkSubmit)))
	mux.HandleFunc("GET /link/confirm", s.withSession(s.confirmPage))
	mux.HandleFunc("POST /link/confirm", s.withSession(s.csrf(s.confirmSubmit)))
	mux.HandleFunc("GET /link/nearby/{id}", s.withSession(s.nearbyPickForm))
	mux.HandleFunc("POST /link/nearby/{id}", s.withSession(s.csrf(s.nearbyPickSubmit)))

	mux.HandleFunc("GET /signin", s.withSession(s.signinForm))
	mux.HandleFunc("POST /signin", s.withSession(s.csrf(s.signinSubmit)))
	if cfg.AuthRequests != nil {
		mux.HandleFunc("GET /login", s.withSession(s.loginForm))
		mux.HandleFunc("POST /login", s.withSession(s.csrf(s.loginSubmit)))
	}
	mux.HandleFunc("GET /signout", s.withSession(s.signoutForm))
	mux.HandleFunc("POST /signout", s.withSession(s.csrf(s.signoutSubmit)))

	mux.HandleFunc("GET /lang", s.langSwitch)
	mux.HandleFunc("GET /devices", s.withSession(s.devicesPage))
	mux.HandleFunc("POST /devices/{id}/rename", s.withSession(s.csrf(s.renameSubmit)))
	mux.HandleFunc("GET /devices/{id}/unlink", s.withSession(s.unlinkConfirm))
	mux.HandleFunc("POST /devices/{id}/unlink", s.withSession(s.csrf(s.unlinkSubmit)))

	mux.HandleFunc("/", s.withSession(func(w http.ResponseWriter, r *http.Request, st *state) {
		s.render(w, r, st, http.StatusNotFound, "message", messagePage{
			Title:   translate(r, "Page not found"),
			Heading: translate(r, "There is nothing here"),
			Body:    translate(r, "Check the address, or go to the code entry page."),
			Link:    "/link", LinkText: translate(r, "Enter a code"),
		})
	}))

	// Cross-origin protection (Sec-Fetch-Site / Origin) guards unsafe methods on top of
	// the per-form CSRF token.
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		securityHeaders(w)
		http.Error(w, translate(r, "Cross-origin form posts are not accepted."), http.StatusForbidden)
	}))
	return headers(cop.Handler(mux))
}

// contentSecurityPolicy allows only this origin's own script and style, and images from
// this origin or https (client logos). No inline script or style anywhere.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' https: data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func securityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	// Codes travel in /link?user_code=…; never leak them to another site.
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
}

func headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		securityHeaders(w)
		next.ServeHTTP(w, r)
	})
}

// filesOnly answers 404 for anything in fsys that is not a file, so no directory of
// the static files is listed.
func filesOnly(fsys fs.FS, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fi, err := fs.Stat(fsys, strings.TrimSuffix(r.URL.Path, "/"))
		if err != nil || fi.IsDir() {
			http.NotFound(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func cacheStatic(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		next.ServeHTTP(w, r)
	})
}

// isRateLimited tells a limiter's "over the limit" answer from a storage error.
func isRateLimited(retry time.Duration, err error) bool {
	return errors.Is(err, links.ErrRateLimited) || (err != nil && retry > 0)
}

// remoteIP is the host part of r.RemoteAddr: the peer address, trusting no headers.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
