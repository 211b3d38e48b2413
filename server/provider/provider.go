// Package provider is linkd's OpenID provider: zitadel/oidc's op.Provider over
// store.Store, with the device authorization grant (RFC 8628) carrying device_name,
// device_model and device_kind, opaque access tokens checked against storage on every
// use, and rotating refresh tokens. The sign-in page of the linkdesk app's
// authorization-code flow (/login, the login URL) is server/web's one sign-in, which
// finishes an auth request through AuthRequestClient and CompleteAuthRequest.
package provider

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"

	"github.com/linkdesk/linkdesk/server/links"
	"github.com/linkdesk/linkdesk/server/metrics"
	"github.com/linkdesk/linkdesk/server/store"
)

// Defaults of Config's durations.
const (
	DefaultDeviceCodeLifetime   = 10 * time.Minute
	DefaultPollInterval         = 5 * time.Second
	DefaultAccessTokenLifetime  = time.Hour
	DefaultRefreshTokenLifetime = 90 * 24 * time.Hour
	DefaultLostAnswerWindow     = time.Minute
)

// Config is what the provider needs; Issuer and Store are required.
type Config struct {
	Issuer string // https URL clients see, without a trailing slash
	Store  Store
	Logger *slog.Logger // nil: slog.Default()
	// DeviceCodeLifetime is how long a user code can be entered (default 10 minutes).
	DeviceCodeLifetime time.Duration
	// PollInterval is the device's minimum polling interval (default 5 s, whole seconds).
	PollInterval         time.Duration
	AccessTokenLifetime  time.Duration // default 1 hour
	RefreshTokenLifetime time.Duration // default 90 days
	// LostAnswerWindow is how long a device may repeat a token request whose answer it
	// never received: the same device code collects its tokens again, or a rotated
	// refresh token works again while its successor is unused (default 60 s).
	LostAnswerWindow time.Duration
	// ClientIP returns the caller's address; nil uses r.RemoteAddr's host.
	ClientIP func(r *http.Request) string
	// TokenKey (32 bytes) seals opaque access tokens. It must not come from the database
	// (linkd derives it from the secrets key file), so a copy of the database cannot
	// forge tokens; give every replica the same. Empty: a random key per start, so
	// access tokens stop working when the provider restarts (refresh tokens still do).
	TokenKey []byte
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// DeviceAuthCaps bounds the device authorizations unauthenticated callers can make
	// linkd store (zero: DefaultDeviceAuthCaps); AuthRequestCaps likewise the
	// authorization requests of GET /authorize (zero: DefaultAuthRequestCaps).
	DeviceAuthCaps, AuthRequestCaps store.RequestCaps
	// Metrics counts device authorizations and poll answers; nil counts nothing.
	Metrics *metrics.Recorder
	// Links, when set, ends a device's link when the device revokes its own refresh
	// token, so the unlink is logged and published like any other (server/links). nil:
	// the grant is deleted in the store alone.
	Links SelfUnlinker
	// Changes, when set, reports every change of a device authorization's state (the
	// hub that wakes /device/wait, which also carries other replicas' changes): polls
	// of a code it reported no change for answer from memory. nil: every poll reads
	// the store.
	Changes DeviceAuthWatcher
}

// DeviceAuthWatcher calls fn with the hub key (events.DeviceAuthKey) of every device
// authorization that changes state, or "" when any may have changed; events.Hub has it.
type DeviceAuthWatcher interface {
	WatchDeviceAuths(fn func(key string)) (stop func())
}

// SelfUnlinker ends a device's own link, or an idle one before it is refreshed
// (links.Service.EndIfIdle): links.Service has it.
type SelfUnlinker interface {
	UnlinkSelf(ctx context.Context, clientID, subject, grantID string) (links.Link, error)
	EndIfIdle(ctx context.Context, clientID, grantID string) (bool, error)
}

// DefaultDeviceAuthCaps bound device authorizations: 60 a minute and 50 waiting per
// address (a shop setting up a few dozen screens behind one NAT fits), 600 a minute
// and 1,000 waiting per client, 10,000 waiting overall; a never-approved one is kept
// an hour after it expired, so its code answers "expired".
var DefaultDeviceAuthCaps = store.RequestCaps{Window: time.Minute, PerIPRate: 60, PerClientRate: 600,
	PerIP: 50, PerClient: 1000, Total: 10000, Keep: time.Hour}

// DefaultAuthRequestCaps bound authorization requests (GET /authorize): 30 a minute and
// 50 waiting for a sign-in per address, 10,000 waiting overall, kept an hour after
// they expired.
var DefaultAuthRequestCaps = store.RequestCaps{Window: time.Minute, PerIPRate: 30, PerIP: 50, Total: 10000,
	Keep: time.Hour}

// Provider is the OpenID provider; serve it with Handler.
type Provider struct {
	cfg     Config
	log     *slog.Logger
	storage *storage
	op      *op.Provider
	handler http.Handler
	pacer   *pacer
	pending *pendingCache // nil without Config.Changes
	polls   pollCounters
}

// DeviceAuthorizationPath is where devices ask for a code (RFC 8628 §3.1).
const DeviceAuthorizationPath = "/device_authorization"

// New loads (or, on first start, creates) the signing key and builds the provider.
func New(ctx context.Context, cfg Config) (*Provider, error) {
	if cfg.Store == nil || cfg.Issuer == "" {
		return nil, errors.New("provider: Config.Store and Config.Issuer are required")
	}
	cfg.Issuer = strings.TrimRight(cfg.Issuer, "/")
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.DeviceCodeLifetime <= 0 {
		cfg.DeviceCodeLifetime = DefaultDeviceCodeLifetime
	}
	if cfg.PollInterval < time.Second {
		cfg.PollInterval = DefaultPollInterval
	}
	cfg.PollInterval = cfg.PollInterval.Truncate(time.Second)
	if cfg.AccessTokenLifetime <= 0 {
		cfg.AccessTokenLifetime = DefaultAccessTokenLifetime
	}
	if cfg.RefreshTokenLifetime <= 0 {
		cfg.RefreshTokenLifetime = DefaultRefreshTokenLifetime
	}
	if cfg.LostAnswerWindow <= 0 {
		cfg.LostAnswerWindow = DefaultLostAnswerWindow
	}
	if cfg.ClientIP == nil {
		cfg.ClientIP = remoteIP
	}
	if cfg.DeviceAuthCaps == (store.RequestCaps{}) {
		cfg.DeviceAuthCaps = DefaultDeviceAuthCaps
	}
	if cfg.AuthRequestCaps == (store.RequestCaps{}) {
		cfg.AuthRequestCaps = DefaultAuthRequestCaps
	}
	p := &Provider{cfg: cfg, log: cfg.Logger.With("component", "provider"), pacer: newPacer(cfg.Now)}
	if cfg.Changes != nil {
		// The watch lasts as long as the hub, which lives and dies with this provider.
		p.pending = newPendingCache(cfg.Now)
		cfg.Changes.WatchDeviceAuths(p.pending.forget)
	}
	p.storage = &storage{store: cfg.Store, log: p.log, now: cfg.Now, cfg: &p.cfg,
		loginURL: func(id string) string { return "/login?authRequestID=" + url.QueryEscape(id) }}
	if err := p.storage.loadKeys(ctx); err != nil {
		return nil, fmt.Errorf("provider: signing keys: %w", err)
	}
	var secret [32]byte
	switch len(cfg.TokenKey) {
	case 0:
		rand.Read(secret[:]) // never fails (crypto/rand panics instead)
	case len(secret):
		copy(secret[:], cfg.TokenKey)
	default:
		return nil, fmt.Errorf("provider: Config.TokenKey is %d bytes, want %d", len(cfg.TokenKey), len(secret))
	}
	opCfg := &op.Config{
		CryptoKey:             secret,
		CodeMethodS256:        true,
		GrantTypeRefreshToken: true,
		SupportedScopes:       DefaultScopes,
		SupportedUILocales:    []language.Tag{language.English},
		DeviceAuthorization: op.DeviceAuthorizationConfig{
			Lifetime:     cfg.DeviceCodeLifetime,
			PollInterval: cfg.PollInterval,
			UserFormPath: "/link",
			UserCode:     op.UserCodeBase20,
		},
	}
	var opts []op.Option
	if u, err := url.Parse(cfg.Issuer); err == nil && u.Scheme == "http" {
		opts = append(opts, op.WithAllowInsecure())
	}
	// No CORS from zitadel: its default echoes any Origin with credentials allowed.
	// Only the public metadata is readable from other sites (publicCORS).
	opts = append(opts, op.WithLogger(p.log), op.WithCORSOptions(nil))
	o, err := op.NewProvider(opCfg, p.storage, op.StaticIssuer(cfg.Issuer), opts...)
	if err != nil {
		return nil, err
	}
	p.op = o

	mux := http.NewServeMux()
	mux.HandleFunc("POST "+DeviceAuthorizationPath, p.deviceAuthorization)
	mux.Handle("POST /oauth/token", p.tokenEndpoint(o))
	mux.Handle("GET /.well-known/openid-configuration", publicCORS(o))
	mux.Handle("GET /keys", publicCORS(o))
	mux.Handle("/authorize", appRedirectOnly(o))
	mux.Handle("/", o)
	p.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The caller's address and the issuer, which zitadel's helpers read from the
		// context, set once for every endpoint (one copy of the request, not one each).
		ctx := op.ContextWithIssuer(context.WithValue(r.Context(), ipKey{}, p.cfg.ClientIP(r)), cfg.Issuer)
		mux.ServeHTTP(w, r.WithContext(ctx))
	})
	return p, nil
}

// tokenEndpoint serves the device_code grant itself (deviceToken) and hands every other
// grant to zitadel. A storage fault there must not read as a final answer: zitadel turns
// any failed refresh-token lookup into invalid_grant, which ends a device's link, so
// such an answer (marked by the storage through the request's context), and any
// server_error, goes out as 503 with Retry-After instead; the client keeps its tokens
// and tries again.
func (p *Provider) tokenEndpoint(zitadel http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err == nil && r.PostForm.Get("grant_type") == string(oidc.GrantTypeDeviceCode) {
			p.deviceToken(w, r)
			return
		}
		fault := new(atomic.Bool)
		buf := &bufferedAnswer{header: make(http.Header), status: http.StatusOK}
		zitadel.ServeHTTP(buf, r.WithContext(context.WithValue(r.Context(), storeFaultKey{}, fault)))
		if fault.Load() || buf.status == http.StatusInternalServerError {
			w.Header().Set("Retry-After", "5")
			w.Header().Set("Cache-Control", "no-store")
			writeJSON(w, http.StatusServiceUnavailable, oidc.ErrServerError().
				WithDescription("linkd could not read or save just now; try again in a moment"))
			return
		}
		for k, v := range buf.header {
			w.Header()[k] = v
		}
		w.WriteHeader(buf.status)
		w.Write(buf.body.Bytes())
	})
}

// storeFaultKey marks, in a token request's context, a flag the storage sets when a
// storage fault (not the token itself) made the request fail.
type storeFaultKey struct{}

// markStoreFault records on ctx's request that a storage fault made it fail.
func markStoreFault(ctx context.Context) {
	if f, ok := ctx.Value(storeFaultKey{}).(*atomic.Bool); ok {
		f.Store(true)
	}
}

// bufferedAnswer holds zitadel's token answer until tokenEndpoint has decided to send it.
type bufferedAnswer struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedAnswer) Header() http.Header         { return b.header }
func (b *bufferedAnswer) WriteHeader(status int)      { b.status = status }
func (b *bufferedAnswer) Write(p []byte) (int, error) { return b.body.Write(p) }

// Handler serves the provider's endpoints (discovery, authorize, token, userinfo,
// introspection, revocation, keys, device authorization); mount it at "/". /login is served by
// server/web (Config.AuthRequests).
func (p *Provider) Handler() http.Handler { return p.handler }

// Issuer returns the issuer URL.
func (p *Provider) Issuer() string { return p.cfg.Issuer }

// ErrInvalidToken is returned by VerifyAccessToken for any token that is not a live
// access token of this provider.
var ErrInvalidToken = errors.New("provider: invalid access token")

// VerifyAccessToken opens an opaque bearer access token and checks it against storage
// at this moment, so revoked (unlinked) and expired tokens fail at once.
func (p *Provider) VerifyAccessToken(ctx context.Context, token string) (store.AccessToken, error) {
	if token == "" || len(token) > 4096 {
		return store.AccessToken{}, ErrInvalidToken
	}
	plain, err := p.op.Crypto().Decrypt(token)
	if err != nil {
		return store.AccessToken{}, ErrInvalidToken
	}
	id, subject, ok := strings.Cut(plain, ":")
	if !ok || id == "" || subject == "" {
		return store.AccessToken{}, ErrInvalidToken
	}
	at, err := p.cfg.Store.AccessTokenByID(ctx, id, p.cfg.Now())
	if errors.Is(err, store.ErrNotFound) {
		return store.AccessToken{}, ErrInvalidToken
	}
	if err != nil {
		return store.AccessToken{}, err
	}
	if at.Subject != subject {
		return store.AccessToken{}, ErrInvalidToken
	}
	return at, nil
}

// authCallbackURL is where the sign-in page sends the browser once the person is
// signed in; zitadel then redirects to the client with the code.
func (p *Provider) authCallbackURL(id string) string {
	return op.AuthCallbackURL(p.op)(op.ContextWithIssuer(context.Background(), p.cfg.Issuer), id)
}
