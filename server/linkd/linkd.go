// Package linkd assembles the linking service: the OpenID provider (server/provider),
// the links service (server/links) with its two fronts, the management API and
// device-wait push channel (server/api) and the web pages (server/web), and the event
// hub, all over one store.Store, of which each part takes only what it needs.
package linkd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/net/netutil"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/accounts"
	"github.com/linkdesk/linkdesk/server/api"
	"github.com/linkdesk/linkdesk/server/events"
	"github.com/linkdesk/linkdesk/server/geoip"
	"github.com/linkdesk/linkdesk/server/links"
	"github.com/linkdesk/linkdesk/server/mail"
	"github.com/linkdesk/linkdesk/server/metrics"
	"github.com/linkdesk/linkdesk/server/provider"
	"github.com/linkdesk/linkdesk/server/sealing"
	"github.com/linkdesk/linkdesk/server/store"
	"github.com/linkdesk/linkdesk/server/web"
)

// Config is what linkd needs; Issuer and Store are required.
type Config struct {
	Issuer string // https URL clients see
	Store  store.Store
	// DeviceCodeLifetime is how long a user code can be entered (default 10 minutes).
	DeviceCodeLifetime time.Duration
	// PollInterval is the devices' polling interval (default 5 s).
	PollInterval time.Duration
	// LostAnswerWindow is how long a device may repeat a token request whose answer it
	// never received, with the same device code or refresh token (default 60 s).
	LostAnswerWindow time.Duration
	Logger           *slog.Logger // nil: slog.Default()
	// Dev seeds the demo user demo/demo and the demo TV client demo-tv.
	Dev bool
	// SessionKey seals the web pages' session cookies; empty: random per start.
	SessionKey []byte
	// SecretsKey is the 32-byte key kept outside the database (DIR/secrets.key, see
	// server/sealing); access tokens are sealed with a key derived from it. Open Store
	// with sqlite.WithSecretsKey(sealing.Derive(SecretsKey, sealing.LabelStore)).
	// Empty: a random key per start (access tokens end when linkd restarts).
	SecretsKey []byte
	// TrustedProxies are the reverse proxies whose X-Forwarded-For / Forwarded headers
	// name the caller (see ClientIP); empty: the direct peer is the caller.
	TrustedProxies []netip.Prefix
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// BodyReadTimeout bounds how long reading one request body may take, so a body
	// trickled a byte at a time cannot hold a connection (default 10 s).
	BodyReadTimeout time.Duration
	// MaxConnections bounds the connections Listener accepts at once (default 4096).
	MaxConnections int
	// DeviceAuthCaps bounds the device authorizations callers can make (zero: the
	// provider's DefaultDeviceAuthCaps); benchmarks lift it to measure the endpoint.
	DeviceAuthCaps store.RequestCaps
	// Places names the approximate place of request and last-seen addresses (the
	// --geoip-db location database); nil shows none.
	Places geoip.Locator
	// Relay, when set, shares the event hub's news with the other replicas on the same
	// database (events.Hub.StartRelay), until the context given to New ends; nil (one
	// linkd on SQLite) keeps events in this process.
	Relay events.Relay
	// IdleSweepEvery is how often links unused for longer than their client allows
	// (store.ClientPolicy.UnlinkAfter) are unlinked, besides once at start, until the
	// context given to New ends (default links.DefaultIdleSweepEvery).
	IdleSweepEvery time.Duration
	// AccessLog logs one line per request (method, route, status, duration, bytes,
	// request id, client address) at Info; off, routine requests are not logged.
	AccessLog bool
	// Mail, when its URL is set, emails the account's owner on every new link (see
	// server/mail); its sender runs until the context given to New ends.
	Mail mail.Settings
	// NearbyOff turns off the list of devices waiting near the approver (linkd serve
	// --nearby-devices=false); the API then answers nearby_off and the pages hide it.
	NearbyOff bool
}

// Defaults and fixed bounds of the HTTP side.
const (
	DefaultBodyReadTimeout = 10 * time.Second
	DefaultMaxConnections  = 4096
	// MaxBodyBytes bounds every request body: linkd takes only short forms and JSON.
	MaxBodyBytes = 64 << 10
	// hstsValue is sent on every answer of an https linkd.
	hstsValue = "max-age=31536000"
)

// Server is an assembled linkd; serve Handler over TLS.
type Server struct {
	cfg      Config
	provider *provider.Provider
	events   *events.Hub
	links    *links.Service
	metrics  *metrics.Recorder
	handler  http.Handler
	ready    readiness
}

// Demo account and client seeded with Config.Dev.
const (
	DemoUsername = "demo"
	DemoPassword = "demo"
	DemoClientID = "demo-tv"
)

// New builds linkd over cfg.Store (seeding demo data when cfg.Dev).
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Store == nil || cfg.Issuer == "" {
		return nil, errors.New("linkd: Config.Issuer and Config.Store are required")
	}
	cfg.Issuer = strings.TrimRight(cfg.Issuer, "/")
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	// Every line logged for a request carries its id.
	cfg.Logger = slog.New(LogHandler(cfg.Logger.Handler()))
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.BodyReadTimeout <= 0 {
		cfg.BodyReadTimeout = DefaultBodyReadTimeout
	}
	if cfg.MaxConnections <= 0 {
		cfg.MaxConnections = DefaultMaxConnections
	}
	if cfg.Dev {
		if err := SeedDemo(ctx, cfg.Store); err != nil {
			return nil, err
		}
	}
	var tokenKey []byte
	if n := len(cfg.SecretsKey); n != 0 && n != sealing.KeySize {
		return nil, fmt.Errorf("linkd: Config.SecretsKey is %d bytes, want %d", n, sealing.KeySize)
	}
	if len(cfg.SecretsKey) > 0 {
		tokenKey = sealing.Derive(cfg.SecretsKey, sealing.LabelAccessTokens)
	}
	clientIP := ClientIP(cfg.TrustedProxies)
	// One registry per linkd, so several in one process (tests) keep their own counts.
	rec := metrics.New()
	cfg.Store = rec.Store(cfg.Store)
	hub := events.NewHub()
	if cfg.Relay != nil {
		hub.StartRelay(ctx, cfg.Relay, events.RelayOptions{Logger: cfg.Logger})
	}
	var notifier links.Notifier
	if cfg.Mail.Enabled() {
		m, err := mail.New(mail.Config{Settings: cfg.Mail, Issuer: cfg.Issuer, Store: cfg.Store, Logger: cfg.Logger, Now: cfg.Now})
		if err != nil {
			return nil, err
		}
		go m.Run(ctx)
		notifier = m
	}
	var nearbyKey []byte // random per start without a secrets key
	if len(cfg.SecretsKey) > 0 {
		nearbyKey = sealing.Derive(cfg.SecretsKey, "linkd nearby devices v1")
	}
	ls := links.New(links.Config{Store: cfg.Store, Events: hub, Logger: cfg.Logger, Now: cfg.Now,
		DescribeScope: provider.Describe, Metrics: rec, Notifier: notifier,
		NearbyOff: cfg.NearbyOff, NearbyKey: nearbyKey, Places: cfg.Places})
	p, err := provider.New(ctx, provider.Config{
		Issuer: cfg.Issuer, Store: cfg.Store, Logger: cfg.Logger,
		DeviceCodeLifetime: cfg.DeviceCodeLifetime, PollInterval: cfg.PollInterval, LostAnswerWindow: cfg.LostAnswerWindow, Now: cfg.Now,
		Links: ls, TokenKey: tokenKey, ClientIP: clientIP, DeviceAuthCaps: cfg.DeviceAuthCaps,
		Changes: hub, Metrics: rec,
	})
	if err != nil {
		return nil, err
	}
	apiCfg := api.Config{Links: ls, Store: cfg.Store, Verifier: p, Logger: cfg.Logger, Issuer: cfg.Issuer, ClientIP: clientIP, Metrics: rec}
	pages := web.New(web.Config{
		Links: ls, Store: cfg.Store, Issuer: cfg.Issuer, Logger: cfg.Logger,
		SecureCookies: true, SessionKey: cfg.SessionKey,
		VerifyPassword: accounts.CheckPassword,
		VerifyTOTP: func(_, secret, code string, now time.Time) bool {
			return accounts.CheckTOTP(secret, code, now)
		},
		// One sign-in for the phone pages (/signin) and the app (/login): one form,
		// one failure count (the links limiter), one one-time-code replay guard.
		AuthRequests: p,
		ClientIP:     clientIP,
		Now:          cfg.Now,
		Metrics:      rec,
	})

	mux := http.NewServeMux()
	mux.Handle(devices.APIPrefix+"/", api.New(apiCfg))
	mux.Handle("POST /device/wait", api.NewDeviceWait(apiCfg))
	mux.Handle("POST /device/linked-wait", api.NewLinkedWait(apiCfg))
	for _, path := range web.Paths {
		mux.Handle(path, pages)
	}
	// The provider's endpoints are named here too, all to the provider's handler, so
	// the request metrics and the access log tell them apart (its own mux routes a
	// copy of the request, whose pattern this mux does not see).
	ph := p.Handler()
	for _, pattern := range providerPatterns {
		mux.Handle(pattern, ph)
	}
	mux.Handle("/", ph)
	s := &Server{cfg: cfg, provider: p, events: hub, links: ls, metrics: rec}
	mux.HandleFunc("GET /healthz", healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	var access *slog.Logger
	if cfg.AccessLog {
		access = cfg.Logger
	}
	s.handler = &observer{next: harden(mux, cfg), ids: newRequestIDs(), trusted: cfg.TrustedProxies,
		metrics: rec, log: access, clientIP: clientIP}
	go ls.RunIdleSweeper(ctx, cfg.IdleSweepEvery)
	return s, nil
}

// providerPatterns are the provider's endpoints (zitadel's defaults and linkd's own).
var providerPatterns = []string{"POST " + provider.DeviceAuthorizationPath, "POST /oauth/token",
	"GET /.well-known/openid-configuration", "GET /keys", "/authorize", "/authorize/", "/userinfo",
	"/oauth/introspect", "/revoke", "/end_session"}

// harden wraps every request linkd serves: HSTS on every answer of an https issuer,
// bodies over MaxBodyBytes refused (413 when the length is declared, a read error
// that handlers answer 400 otherwise), and a deadline on reading the body. The
// deadline ends when the body has been read: net/http clears it then to watch for
// the client going away, so long waits and event streams are not cut.
func harden(next http.Handler, cfg Config) http.Handler {
	hsts := strings.HasPrefix(cfg.Issuer, "https://")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hsts {
			w.Header().Set("Strict-Transport-Security", hstsValue)
		}
		if r.ContentLength > MaxBodyBytes {
			w.Header().Set("Connection", "close")
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(cfg.BodyReadTimeout))
			r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		}
		next.ServeHTTP(w, r)
	})
}

// HTTPServer returns the http.Server linkd is served with: its handler, tlsConfig,
// timeouts for headers, whole requests and idle connections, and errorLog. Serve it on
// Listener's listener.
func (s *Server) HTTPServer(tlsConfig *tls.Config, errorLog *log.Logger) *http.Server {
	return &http.Server{
		Handler:           s.handler,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 10 * time.Second,
		// A backstop behind the body deadline of harden; net/http lifts it once the
		// body is read, so long waits and streams are not cut.
		ReadTimeout: 2 * s.cfg.BodyReadTimeout,
		IdleTimeout: 2 * time.Minute,
		ErrorLog:    errorLog,
	}
}

// Listener bounds ln to Config.MaxConnections connections at once; further callers
// wait in the kernel's backlog until one closes.
func (s *Server) Listener(ln net.Listener) net.Listener {
	return netutil.LimitListener(ln, s.cfg.MaxConnections)
}

// Handler serves everything linkd offers; mount it at "/".
func (s *Server) Handler() http.Handler { return s.handler }

// Provider returns the OpenID provider (for its VerifyAccessToken).
func (s *Server) Provider() *provider.Provider { return s.provider }

// Links returns the service every operation on links goes through.
func (s *Server) Links() *links.Service { return s.links }

// Events returns the hub that carries device events to the API's streams.
func (s *Server) Events() *events.Hub { return s.events }

// DemoStore is the part of linkd's store that SeedDemo needs.
type DemoStore interface {
	CreateUser(ctx context.Context, u store.User) error
	UserByUsername(ctx context.Context, username string) (store.User, error)
	UpsertClient(ctx context.Context, c store.Client) error
	ClientByID(ctx context.Context, id string) (store.Client, error)
}

// SeedDemo creates the demo user (demo/demo) and the demo TV client if they are
// missing; it is safe to call on every start.
func SeedDemo(ctx context.Context, s DemoStore) error {
	if _, err := s.UserByUsername(ctx, DemoUsername); errors.Is(err, store.ErrNotFound) {
		hash, err := accounts.HashPassword(DemoPassword)
		if err != nil {
			return err
		}
		err = s.CreateUser(ctx, store.User{Subject: NewSubject(), Username: DemoUsername,
			DisplayName: "Demo User", Email: "demo@example.com", PasswordHash: hash, CreatedAt: time.Now()})
		if err != nil && !errors.Is(err, store.ErrDuplicate) {
			return err
		}
	} else if err != nil {
		return err
	}
	if _, err := s.ClientByID(ctx, DemoClientID); errors.Is(err, store.ErrNotFound) {
		return s.UpsertClient(ctx, store.Client{ID: DemoClientID, Name: "Demo TV",
			Scopes:     []string{"openid", "profile", "offline_access"},
			GrantTypes: []string{"urn:ietf:params:oauth:grant-type:device_code", "refresh_token"},
			CreatedAt:  time.Now()})
	} else {
		return err
	}
}
