// Package api is linkd's management API for the linkdesk app (/api/v1/...: the
// account, pending link requests, linked devices and a server-sent event stream) and
// the kiosk's push channels (POST /device/wait, POST /device/linked-wait). It is the
// JSON front of server/links: it authenticates (only access tokens of the linkdesk
// client, or the device's own on its push channel), decodes requests and
// answers with status codes and RFC 9457 problem details with a stable code; every
// operation on links, their throttling and their events are the links.Service's.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/links"
	"github.com/linkdesk/linkdesk/server/metrics"
	"github.com/linkdesk/linkdesk/server/store"
)

// TokenVerifier checks a bearer access token against storage on every use and returns
// its record; any error means the token is unknown, revoked or expired.
type TokenVerifier interface {
	VerifyAccessToken(ctx context.Context, token string) (store.AccessToken, error)
}

// Store is the part of linkd's store the API reads itself: the account behind a token.
// Everything about links goes through Config.Links.
type Store interface {
	UserBySubject(ctx context.Context, subject string) (store.User, error)
}

var _ Store = store.Store(nil) // linkd's whole store serves as one

// Config is what the handlers need. Links is required; New also needs Store and
// Verifier.
type Config struct {
	Links    *links.Service
	Store    Store
	Verifier TokenVerifier
	Logger   *slog.Logger // nil: slog.Default()
	Issuer   string       // linkd's issuer URL
	// ClientIP returns the caller's address; nil uses r.RemoteAddr's host. Set it only
	// behind a proxy you trust to set forwarding headers.
	ClientIP func(r *http.Request) string
	// Heartbeat is the interval of SSE comment lines that keep proxies from closing an
	// idle stream; default 25 s.
	Heartbeat time.Duration
	// WaitTimeout bounds one POST /device/wait; default 25 s.
	WaitTimeout time.Duration
	// MaxWaitsPerCode and MaxWaitsPerAddress cap the POST /device/wait calls running at
	// once on one device code and from one address (defaults 3 and 20).
	MaxWaitsPerCode, MaxWaitsPerAddress int
	// MaxStreamsPerAccount caps the event streams open at once for one account
	// (default 5).
	MaxStreamsPerAccount int
	// Metrics tracks the waits and streams open and the refusals over their caps;
	// nil tracks nothing.
	Metrics *metrics.Recorder
}

// maxBody bounds request bodies: every body this API takes is a few short fields.
const maxBody = 16 << 10

type server struct {
	cfg   Config
	log   *slog.Logger
	links *links.Service

	waitsByIP, waitsByCode, streams gate
}

func newServer(cfg Config) *server {
	if cfg.Links == nil {
		panic("api: Config.Links is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
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
	if cfg.MaxWaitsPerCode <= 0 {
		cfg.MaxWaitsPerCode = DefaultMaxWaitsPerCode
	}
	if cfg.MaxWaitsPerAddress <= 0 {
		cfg.MaxWaitsPerAddress = DefaultMaxWaitsPerAddress
	}
	if cfg.MaxStreamsPerAccount <= 0 {
		cfg.MaxStreamsPerAccount = DefaultMaxStreamsPerAccount
	}
	return &server{cfg: cfg, log: cfg.Logger.With("component", "api"), links: cfg.Links}
}

// New returns the management API handler. It serves the full paths under /api/v1, so
// mount it at "/api/v1/".
func New(cfg Config) http.Handler {
	if cfg.Verifier == nil || cfg.Store == nil {
		panic("api: Config.Verifier and Config.Store are required")
	}
	s := newServer(cfg)
	mux := http.NewServeMux()
	p := devices.APIPrefix
	mux.Handle("GET "+p+"/me", s.authed(s.me))
	mux.Handle("GET "+p+"/link-requests/{code}", s.authed(s.linkRequest))
	mux.Handle("GET "+p+"/link-requests/nearby", s.authed(s.nearby))
	mux.Handle("GET "+p+"/link-requests/nearby/{id}/choices", s.authed(s.nearbyChoices))
	mux.Handle("POST "+p+"/link-requests/nearby/{id}/pick", s.authed(s.nearbyPick))
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

// accessToken is the live access token r carries as a bearer. Without one it answers
// 401 (missing says what was expected) and false; a dead token (expired, revoked, or
// its link gone) gets 401 invalid_token.
func (s *server) accessToken(w http.ResponseWriter, r *http.Request, missing string) (store.AccessToken, bool) {
	tok, ok := bearer(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="linkd"`)
		writeProblem(w, http.StatusUnauthorized, devices.CodeUnauthorized, "Unauthorized", missing)
		return store.AccessToken{}, false
	}
	at, err := s.cfg.Verifier.VerifyAccessToken(r.Context(), tok)
	if errors.Is(err, store.ErrUnavailable) {
		// The token could not be checked, which says nothing about the token: the
		// caller must not sign out over it.
		s.unavailable(w, r, "verify access token", err)
		return store.AccessToken{}, false
	}
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="linkd", error="invalid_token"`)
		writeProblem(w, http.StatusUnauthorized, devices.CodeUnauthorized, "Unauthorized", "the access token is invalid, expired or revoked")
		return store.AccessToken{}, false
	}
	return at, true
}

// authed accepts only live access tokens of the linkdesk app.
func (s *server) authed(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at, ok := s.accessToken(w, r, "a bearer access token is required")
		if !ok {
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

// internal logs err (never secrets: callers pass store errors only) and answers 500,
// or 503 unavailable for a storage fault that may pass (store.ErrUnavailable).
func (s *server) internal(w http.ResponseWriter, r *http.Request, what string, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return // the client went away; nobody to answer
	}
	if errors.Is(err, store.ErrUnavailable) {
		s.unavailable(w, r, what, err)
		return
	}
	s.log.ErrorContext(r.Context(), what, "method", r.Method, "path", redactPath(r.URL.Path), "err", err)
	writeProblem(w, http.StatusInternalServerError, devices.CodeInternal, "Internal error", "")
}

// unavailableRetryAfter is the Retry-After linkd sends with a 503 for a storage fault
// that may pass (a full disk, a busy database): long enough not to hammer it, short
// enough that a person retrying by hand finds it working.
const unavailableRetryAfter = 5 * time.Second

// unavailableDetail is the detail of the 503 unavailable problem, worded for whoever
// reads it.
const unavailableDetail = "linkd could not save this right now; nothing was changed, try again in a moment"

// unavailable answers 503 unavailable with Retry-After for a storage fault that may
// pass, logging it at WARN once for this request. The store logs the fault itself
// (a full disk once at ERROR), so this line only says which request it cost.
func (s *server) unavailable(w http.ResponseWriter, r *http.Request, what string, err error) {
	s.log.WarnContext(r.Context(), what+": storage unavailable, asked the caller to retry",
		"method", r.Method, "path", redactPath(r.URL.Path), "err", err)
	w.Header().Set("Retry-After", links.RetryAfterSeconds(unavailableRetryAfter))
	writeProblem(w, http.StatusServiceUnavailable, devices.CodeUnavailable, "Service unavailable", unavailableDetail)
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
	w.Header().Set("Retry-After", links.RetryAfterSeconds(retry))
	writeProblem(w, http.StatusTooManyRequests, devices.CodeRateLimited, "Too many attempts",
		"too many wrong or stale codes; wait before trying again")
}
