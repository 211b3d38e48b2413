// Package api is linkd's management API for the linkdesk app (/api/v1/...: the
// account, pending link requests, linked devices and a server-sent event stream) and
// the kiosk's push channel (POST /device/wait). It speaks JSON, answers errors as RFC
// 9457 problem details with a stable code, accepts only access tokens of the linkdesk
// client, and throttles user-code guessing per account and per address.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/events"
	"github.com/linkdesk/linkdesk/server/store"
)

// TokenVerifier checks a bearer access token against storage on every use and returns
// its record; any error means the token is unknown, revoked or expired.
type TokenVerifier interface {
	VerifyAccessToken(ctx context.Context, token string) (store.AccessToken, error)
}

// Config is what the handlers need. Store, Verifier and Events are required.
type Config struct {
	Store    store.Store
	Verifier TokenVerifier
	Events   *events.Hub
	Logger   *slog.Logger // nil: slog.Default()
	Issuer   string       // linkd's issuer URL
	Now      func() time.Time
	// DescribeScope gives a scope's plain-words description; nil or "" falls back to
	// the scope name.
	DescribeScope func(string) string
	Limits        Limits
	// ClientIP returns the caller's address; nil uses r.RemoteAddr's host. Set it only
	// behind a proxy you trust to set forwarding headers.
	ClientIP func(r *http.Request) string
	// Heartbeat is the interval of SSE comment lines that keep proxies from closing an
	// idle stream; default 25 s.
	Heartbeat time.Duration
	// WaitTimeout bounds one POST /device/wait; default 25 s.
	WaitTimeout time.Duration
	// WaitRecheck is how often a waiter re-reads the store in case the change happened
	// on another replica; default 3 s.
	WaitRecheck time.Duration
}

// maxBody bounds request bodies: every body this API takes is a few short fields.
const maxBody = 16 << 10

type server struct {
	cfg     Config
	log     *slog.Logger
	limiter *Limiter
}

func newServer(cfg Config) *server {
	if cfg.Store == nil || cfg.Events == nil {
		panic("api: Config.Store and Config.Events are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ClientIP == nil {
		cfg.ClientIP = RemoteIP
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 25 * time.Second
	}
	if cfg.WaitTimeout <= 0 {
		cfg.WaitTimeout = 25 * time.Second
	}
	if cfg.WaitRecheck <= 0 {
		cfg.WaitRecheck = 3 * time.Second
	}
	cfg.Limits = cfg.Limits.withDefaults()
	return &server{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "api"),
		limiter: NewLimiter(cfg.Store, cfg.Limits, cfg.Now),
	}
}

// New returns the management API handler. It serves the full paths under /api/v1, so
// mount it at "/api/v1/".
func New(cfg Config) http.Handler {
	if cfg.Verifier == nil {
		panic("api: Config.Verifier is required")
	}
	s := newServer(cfg)
	mux := http.NewServeMux()
	p := devices.APIPrefix
	mux.Handle("GET "+p+"/me", s.authed(s.me))
	mux.Handle("GET "+p+"/link-requests/{code}", s.authed(s.linkRequest))
	mux.Handle("POST "+p+"/link-requests/{code}/approve", s.authed(s.approve))
	mux.Handle("POST "+p+"/link-requests/{code}/deny", s.authed(s.deny))
	mux.Handle("GET "+p+"/devices", s.authed(s.listDevices))
	mux.Handle("GET "+p+"/devices/{id}", s.authed(s.getDevice))
	mux.Handle("PATCH "+p+"/devices/{id}", s.authed(s.renameDevice))
	mux.Handle("DELETE "+p+"/devices/{id}", s.authed(s.deleteDevice))
	mux.Handle("GET "+p+"/events", s.authed(s.events))
	mux.HandleFunc(p+"/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, http.StatusNotFound, devices.CodeNotFound, "Not found", "no such API endpoint")
	})
	return noStore(mux)
}

// NewDeviceWait returns the kiosk push-channel handler for POST /device/wait (see
// docs/push-channel.md). It needs no Verifier: the device code authenticates the call.
func NewDeviceWait(cfg Config) http.Handler {
	s := newServer(cfg)
	return noStore(http.HandlerFunc(s.deviceWait))
}

func noStore(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		h.ServeHTTP(w, r)
	})
}

// RemoteIP is the host part of r.RemoteAddr: the peer address, trusting no headers.
func RemoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// SameNetwork reports whether two addresses are plausibly the same place: equal, both
// loopback, in one IPv4 /24, or in one IPv6 /64. Either may carry a port.
func SameNetwork(a, b string) bool {
	x, okx := parseIP(a)
	y, oky := parseIP(b)
	if !okx || !oky {
		return false
	}
	if x == y || (x.IsLoopback() && y.IsLoopback()) {
		return true
	}
	if x.Is4() != y.Is4() {
		return false
	}
	bits := 64
	if x.Is4() {
		bits = 24
	}
	px, err1 := x.Prefix(bits)
	py, err2 := y.Prefix(bits)
	return err1 == nil && err2 == nil && px == py
}

func parseIP(s string) (netip.Addr, bool) {
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}

type ctxKey struct{}

// tokenFrom returns the verified access token the authed middleware stored.
func tokenFrom(ctx context.Context) store.AccessToken {
	t, _ := ctx.Value(ctxKey{}).(store.AccessToken)
	return t
}

// bearer extracts the token of an "Authorization: Bearer …" header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// authed accepts only live access tokens of the linkdesk app.
func (s *server) authed(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := bearer(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="linkd"`)
			writeProblem(w, http.StatusUnauthorized, devices.CodeUnauthorized, "Unauthorized", "a bearer access token is required")
			return
		}
		at, err := s.cfg.Verifier.VerifyAccessToken(r.Context(), tok)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="linkd", error="invalid_token"`)
			writeProblem(w, http.StatusUnauthorized, devices.CodeUnauthorized, "Unauthorized", "the access token is invalid, expired or revoked")
			return
		}
		if at.ClientID != devices.AppClientID {
			writeProblem(w, http.StatusForbidden, devices.CodeForbidden, "Forbidden", "only the linkdesk app may use this API")
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, at)))
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeProblem answers an RFC 9457 problem details body with a stable code.
func writeProblem(w http.ResponseWriter, status int, code, title, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(devices.Problem{
		Type:   "about:blank",
		Title:  title,
		Status: status,
		Detail: detail,
		Code:   code,
	})
}

// internal logs err (never secrets: callers pass store errors only) and answers 500.
func (s *server) internal(w http.ResponseWriter, r *http.Request, what string, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return // the client went away; nobody to answer
	}
	s.log.ErrorContext(r.Context(), what, "method", r.Method, "path", redactPath(r.URL.Path), "err", err)
	writeProblem(w, http.StatusInternalServerError, devices.CodeInternal, "Internal error", "")
}

// redactPath hides a user code in a logged path.
func redactPath(p string) string {
	const lr = devices.APIPrefix + "/link-requests/"
	if rest, ok := strings.CutPrefix(p, lr); ok {
		_, tail, _ := strings.Cut(rest, "/")
		if tail != "" {
			return lr + "…/" + tail
		}
		return lr + "…"
	}
	return p
}

func (s *server) rateLimited(w http.ResponseWriter, retry time.Duration) {
	w.Header().Set("Retry-After", RetryAfterSeconds(retry))
	writeProblem(w, http.StatusTooManyRequests, devices.CodeRateLimited, "Too many attempts",
		"too many wrong or stale codes; wait before trying again")
}
