// Package linkdtest runs a real linkd for tests: the full handler on
// httptest.NewTLSServer over a temporary SQLite store (or a given PostgreSQL database), with helpers to create
// accounts and to get a linkdesk access token by signing in through the login page
// with the scripted browser of package browsertest (PKCE, loopback redirect captured).
package linkdtest

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/accounts"
	"github.com/linkdesk/linkdesk/server/events"
	"github.com/linkdesk/linkdesk/server/geoip"
	"github.com/linkdesk/linkdesk/server/linkd"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest/browsertest"
	"github.com/linkdesk/linkdesk/server/links"
	"github.com/linkdesk/linkdesk/server/mail"
	"github.com/linkdesk/linkdesk/server/sealing"
	"github.com/linkdesk/linkdesk/server/store"
	"github.com/linkdesk/linkdesk/server/store/postgres"
	"github.com/linkdesk/linkdesk/server/store/sqlite"
)

// Options tune the instance; the zero value is a fresh linkd with default lifetimes
// and a 1-second polling interval (so device-flow tests run quickly).
type Options struct {
	// Dir is the data directory (holding linkd.db, and secrets.key and session.key, made
	// on first start as linkd serve makes them); "" makes a temporary one. Pass an
	// earlier Instance's Dir to restart on the same data, keys included.
	Dir string
	// DeviceCodeLifetime is how long user codes live (default 10 minutes).
	DeviceCodeLifetime time.Duration
	// PollInterval is the devices' polling interval (default 1 s here).
	PollInterval time.Duration
	// LostAnswerWindow is linkd.Config.LostAnswerWindow (0: linkd's default).
	LostAnswerWindow time.Duration
	// Dev seeds the demo user and demo-tv client.
	Dev bool
	// WrapStore, if set, wraps the store linkd uses (for injecting failures); the
	// Instance's Store field stays the unwrapped one.
	WrapStore func(store.Store) store.Store
	// Logger; nil discards logs.
	Logger *slog.Logger
	// MaxConnections is linkd.Config.MaxConnections (0: linkd's default).
	MaxConnections int
	// TrustedProxies is linkd.Config.TrustedProxies (the --trusted-proxy networks).
	TrustedProxies []netip.Prefix
	// GeoIPDB is a location database to open as linkd serve --geoip-db does
	// (geoiptest.Write makes one); "": none.
	GeoIPDB string
	// Clock, if set, is the clock linkd reads for every expiry it judges (user and
	// device codes, tokens, sessions, rate-limit windows), so a test advances it instead
	// of waiting. nil: real time.
	Clock *Clock
	// AccessLog is linkd.Config.AccessLog: one Logger line per request.
	AccessLog bool
	// DB, if set, is a postgres:// URL: the instance uses the PostgreSQL store there
	// instead of Dir/linkd.db, and shares its events with the other instances on that
	// database through the store's relay, as linkd serve --db does; Start returns once
	// the relay listens. Instances meant as replicas of one service share Dir too (its
	// secrets.key).
	DB string
	// Mail is linkd.Config.Mail: set its URL (an SMTP server the test runs) to have
	// linkd email new-link notices.
	Mail mail.Settings
	// NearbyOff is linkd.Config.NearbyOff (--nearby-devices=false).
	NearbyOff bool
	// DeviceAuthCaps is linkd.Config.DeviceAuthCaps (zero: linkd's defaults). Benchmarks
	// that link a device many times a second lift the per-network caps with it.
	DeviceAuthCaps store.RequestCaps
}

// LiftedCaps is a DeviceAuthCaps for benchmarks that measure the endpoint rather than its
// refusals: every count is still made, none is reached.
var LiftedCaps = store.RequestCaps{Window: time.Minute, PerIPRate: 1 << 30, PerClientRate: 1 << 30,
	PerIP: 1 << 30, PerClient: 1 << 30, Total: 1 << 30, Keep: time.Hour}

// Clock is a manual clock for a linkd under test: it stands still until Advance or
// Set moves it. It is safe for concurrent use.
type Clock struct {
	mu    sync.Mutex
	now   time.Time
	moved []func() // called after every move, outside mu
}

// NewClock returns a clock standing at start (the zero time means time.Now()).
func NewClock(start time.Time) *Clock {
	if start.IsZero() {
		start = time.Now()
	}
	return &Clock{now: start}
}

// Now is the clock's current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d. Devices waiting on POST /device/wait of every
// instance using the clock look again at once, so one whose code has now expired hears
// so without waiting for a recheck.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	moved := c.moved
	c.mu.Unlock()
	for _, f := range moved {
		f()
	}
}

// Set moves the clock to t, waking waiting devices as Advance does.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	moved := c.moved
	c.mu.Unlock()
	for _, f := range moved {
		f()
	}
}

func (c *Clock) onMove(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.moved = append(c.moved, f)
}

// Instance is a running linkd.
type Instance struct {
	URL    string       // base URL, also the issuer
	Issuer string       // same as URL
	Client *http.Client // trusts the instance's certificate
	CAFile string       // PEM file of the certificate, for --ca-file style options
	Dir    string       // data directory
	Store  store.Store  // the instance's store (unwrapped)
	Server *linkd.Server
	TLS    *httptest.Server
	Clock  *Clock // Options.Clock; nil when linkd reads real time

	closeOnce sync.Once
	stopRelay context.CancelFunc
}

// Now is the time as the instance sees it: its Clock's, else real time.
func (in *Instance) Now() time.Time {
	if in.Clock != nil {
		return in.Clock.Now()
	}
	return time.Now()
}

// Start runs a linkd until the test ends (or Close).
func Start(t testing.TB, opts Options) *Instance {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ctx := context.Background()
	// Like linkd serve: the secrets and session keys live in the data directory, made
	// on first start, so a restart on the same Dir keeps tokens, secrets and sessions.
	secretsKey, err := sealing.LoadOrCreateKey(filepath.Join(opts.Dir, "secrets.key"))
	if err != nil {
		t.Fatalf("linkdtest: secrets key: %v", err)
	}
	sessionKey, err := sealing.LoadOrCreateKey(filepath.Join(opts.Dir, "session.key"))
	if err != nil {
		t.Fatalf("linkdtest: session key: %v", err)
	}
	// The relay, if any, runs until the instance is closed.
	relayCtx, stopRelay := context.WithCancel(ctx)
	var db store.Store
	var relay events.Relay
	if opts.DB != "" {
		pg, err := postgres.Open(ctx, opts.DB, postgres.WithLogger(opts.Logger),
			postgres.WithSecretsKey(sealing.Derive(secretsKey, sealing.LabelStore)))
		if err != nil {
			stopRelay()
			t.Fatalf("linkdtest: open store: %v", err)
		}
		if relay, err = postgres.NewRelay(pg, opts.DB, opts.Logger); err != nil {
			stopRelay()
			pg.Close()
			t.Fatalf("linkdtest: relay: %v", err)
		}
		db = pg
	} else {
		sq, err := sqlite.Open(ctx, filepath.Join(opts.Dir, "linkd.db"), sqlite.WithLogger(opts.Logger),
			sqlite.WithSecretsKey(sealing.Derive(secretsKey, sealing.LabelStore)))
		if err != nil {
			stopRelay()
			t.Fatalf("linkdtest: open store: %v", err)
		}
		db = sq
	}
	var used store.Store = db
	if opts.WrapStore != nil {
		used = opts.WrapStore(db)
	}
	// Listen first, so linkd knows its issuer, then serve it with the listener bound and
	// the http.Server settings the linkd command uses.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		stopRelay()
		db.Close()
		t.Fatalf("linkdtest: listen: %v", err)
	}
	issuer := "https://" + ln.Addr().String()
	var now func() time.Time
	if opts.Clock != nil {
		now = opts.Clock.Now
	}
	var places geoip.Locator
	if opts.GeoIPDB != "" {
		gdb, err := geoip.Open(opts.GeoIPDB)
		if err != nil {
			stopRelay()
			ln.Close()
			db.Close()
			t.Fatalf("linkdtest: %v", err)
		}
		t.Cleanup(func() { gdb.Close() })
		places = gdb
	}
	s, err := linkd.New(relayCtx, linkd.Config{Issuer: issuer, Store: used, Logger: opts.Logger,
		DeviceCodeLifetime: opts.DeviceCodeLifetime, PollInterval: opts.PollInterval,
		LostAnswerWindow: opts.LostAnswerWindow, Dev: opts.Dev, Now: now,
		MaxConnections: opts.MaxConnections, Relay: relay,
		SecretsKey: secretsKey, SessionKey: sessionKey, TrustedProxies: opts.TrustedProxies,
		AccessLog: opts.AccessLog, Mail: opts.Mail, NearbyOff: opts.NearbyOff, Places: places,
		DeviceAuthCaps: opts.DeviceAuthCaps})
	if err != nil {
		stopRelay()
		ln.Close()
		db.Close()
		t.Fatalf("linkdtest: %v", err)
	}
	if relay != nil {
		select {
		case <-s.Events().RelayReady():
		case <-time.After(time.Minute):
			stopRelay()
			ln.Close()
			db.Close()
			t.Fatal("linkdtest: the event relay did not start listening within a minute")
		}
	}
	srv := &httptest.Server{Listener: s.Listener(ln), Config: s.HTTPServer(nil, nil)}
	srv.StartTLS()
	if opts.Clock != nil {
		opts.Clock.onMove(s.Events().WakeDeviceAuths)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	in := &Instance{URL: srv.URL, Issuer: srv.URL, Client: srv.Client(), CAFile: caFile, Dir: opts.Dir,
		Store: db, Server: s, TLS: srv, Clock: opts.Clock, stopRelay: stopRelay}
	t.Cleanup(in.Close)
	return in
}

// Close stops the server and closes the store; it is safe to call more than once.
func (in *Instance) Close() {
	in.closeOnce.Do(func() {
		in.TLS.CloseClientConnections()
		in.TLS.Close()
		in.stopRelay()
		in.Store.Close()
	})
}

// Context returns a context whose oauth2 HTTP client trusts the instance.
func (in *Instance) Context(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, in.Client)
}

// Endpoint returns the instance's OAuth endpoints.
func (in *Instance) Endpoint() oauth2.Endpoint { return endpoint(in.URL) }

// endpoint is the OAuth endpoints of the linkd at baseURL.
func endpoint(baseURL string) oauth2.Endpoint {
	return oauth2.Endpoint{
		AuthURL:       baseURL + "/authorize",
		TokenURL:      baseURL + "/oauth/token",
		DeviceAuthURL: baseURL + "/device_authorization",
		AuthStyle:     oauth2.AuthStyleInParams,
	}
}

// CreateUser adds an account with display name and email derived from username.
func (in *Instance) CreateUser(t testing.TB, username, password string) store.User {
	t.Helper()
	u, err := linkd.AddUser(context.Background(), in.Store, linkd.NewUser{Username: username, Password: password,
		DisplayName: strings.ToUpper(username[:1]) + username[1:], Email: username + "@example.com"})
	if err != nil {
		t.Fatalf("linkdtest: create user: %v", err)
	}
	return u
}

// CreateUserWithTOTP adds an account with a TOTP second factor and returns its secret.
func (in *Instance) CreateUserWithTOTP(t testing.TB, username, password string) (store.User, string) {
	t.Helper()
	u := in.CreateUser(t, username, password)
	secret, err := linkd.EnableTOTP(context.Background(), in.Store, username)
	if err != nil {
		t.Fatalf("linkdtest: totp: %v", err)
	}
	u.TOTPSecret = secret
	return u, secret
}

// AppToken signs in to the linkdesk client as a browser would and returns its tokens
// (access, refresh, id token).
func (in *Instance) AppToken(t testing.TB, username, password string) *oauth2.Token {
	t.Helper()
	tok, err := in.SignIn(context.Background(), username, password, "")
	if err != nil {
		t.Fatalf("linkdtest: sign in: %v", err)
	}
	return tok
}

// AppTokenWithTOTP is AppToken for an account with a TOTP secret.
func (in *Instance) AppTokenWithTOTP(t testing.TB, username, password, totpSecret string) *oauth2.Token {
	t.Helper()
	tok, err := in.SignIn(context.Background(), username, password, totpSecret)
	if err != nil {
		t.Fatalf("linkdtest: sign in: %v", err)
	}
	return tok
}

// AppConfig is the oauth2 configuration of the linkdesk app against this instance.
func (in *Instance) AppConfig(redirectURL string) *oauth2.Config {
	return appConfig(in.URL, redirectURL)
}

func appConfig(baseURL, redirectURL string) *oauth2.Config {
	return &oauth2.Config{ClientID: devices.AppClientID, Endpoint: endpoint(baseURL), RedirectURL: redirectURL,
		Scopes: []string{"openid", "profile", "email", "offline_access"}}
}

// Browser returns a new scripted browser, with cookies of its own, that trusts the
// instance and resolves paths against its URL.
func (in *Instance) Browser() *browsertest.Browser {
	return browsertest.New(in.URL, in.Client.Transport)
}

// SignIn runs the authorization-code flow with PKCE for the linkdesk client in a fresh
// Browser, as SignInAt does, with the TOTP code for the instance's time.
func (in *Instance) SignIn(ctx context.Context, username, password, totpSecret string) (*oauth2.Token, error) {
	return SignInAt(ctx, in.URL, in.Client, in.Now, username, password, totpSecret)
}

// SignInAt signs in to the linkdesk client of the linkd at baseURL (any linkd, also one
// running in another process) through client: a fresh scripted browser fills in the
// login form (and the TOTP step when totpSecret is set, with the code for now(); nil
// means time.Now), the loopback redirect is captured without listening on it, and the
// code is exchanged with PKCE. Errors describe what the pages said.
func SignInAt(ctx context.Context, baseURL string, client *http.Client, now func() time.Time, username, password, totpSecret string) (*oauth2.Token, error) {
	const loopback = "127.0.0.1:49999"
	if now == nil {
		now = time.Now
	}
	conf := appConfig(baseURL, "http://"+loopback+"/callback")
	verifier := oauth2.GenerateVerifier()
	state := oauth2.GenerateVerifier()
	b := browsertest.New(baseURL, client.Transport)
	b.StopAt = func(u *url.URL) bool { return u.Host == loopback }
	var otp func() (string, error)
	if totpSecret != "" {
		otp = func() (string, error) { return accounts.TOTPCode(totpSecret, now()) }
	}
	p, err := b.SignIn(conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)), username, password, otp)
	if err != nil {
		return nil, err
	}
	loc := p.Location()
	if loc == nil || loc.Host != loopback {
		return nil, fmt.Errorf("sign-in answered %d: %s", p.Status, p.ErrorText())
	}
	q := loc.Query()
	if q.Get("error") != "" {
		return nil, fmt.Errorf("authorize: %s: %s", q.Get("error"), q.Get("error_description"))
	}
	if q.Get("state") != state || q.Get("code") == "" {
		return nil, errors.New("callback without code or with the wrong state")
	}
	return conf.Exchange(context.WithValue(ctx, oauth2.HTTPClient, client), q.Get("code"), oauth2.VerifierOption(verifier))
}

// Approve approves a pending user code (any format the person might type) for the
// account subject through linkd's links service, as the management API would (so a
// device waiting on POST /device/wait wakes and the account's stream hears of it), and
// returns the new link's grant. The person approves from 127.0.0.1 and has ticked "I am
// in front of this device", so a device asking from another network is linked too.
func (in *Instance) Approve(t testing.TB, userCode, subject string) store.Grant {
	t.Helper()
	l, err := in.Server.Links().Approve(context.Background(), links.Caller{Subject: subject, IP: "127.0.0.1"}, userCode, links.Approval{InFront: true})
	if err != nil {
		t.Fatalf("linkdtest: approve %q: %v", userCode, err)
	}
	return l.Grant
}

// Deny denies a pending user code for the account subject, as Approve approves.
func (in *Instance) Deny(t testing.TB, userCode, subject string) {
	t.Helper()
	if _, err := in.Server.Links().Deny(context.Background(), links.Caller{Subject: subject, IP: "127.0.0.1"}, userCode); err != nil {
		t.Fatalf("linkdtest: deny %q: %v", userCode, err)
	}
}
