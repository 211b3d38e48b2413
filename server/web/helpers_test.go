package web_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/accounts"
	"github.com/linkdesk/linkdesk/server/events"
	"github.com/linkdesk/linkdesk/server/geoip"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest/browsertest"
	"github.com/linkdesk/linkdesk/server/links"
	"github.com/linkdesk/linkdesk/server/store"
	"github.com/linkdesk/linkdesk/server/store/sqlite"
	"github.com/linkdesk/linkdesk/server/web"
)

const (
	totpSecret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	password   = "correct horse battery staple"
)

// env is a real web handler over real HTTP (TLS) on a real SQLite store.
type env struct {
	t      *testing.T
	srv    *httptest.Server
	store  store.Store
	hub    *events.Hub
	mu     sync.Mutex
	now    time.Time // the clock the handler reads; advance with env.advance
	limits links.Limits
	places geoip.Locator
}

type envOption func(*env)

func withLimits(l links.Limits) envOption { return func(e *env) { e.limits = l } }

// withPlaces gives the links service a location database.
func withPlaces(p geoip.Locator) envOption { return func(e *env) { e.places = p } }

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "linkd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := &env{t: t, store: db, hub: events.NewHub(), now: time.Now()}
	for _, o := range opts {
		o(e)
	}
	hash, err := accounts.HashPassword(password)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []store.User{
		{Subject: "sub-alice", Username: "alice", DisplayName: "Alice Example", Email: "alice@example.com", PasswordHash: hash},
		{Subject: "sub-bob", Username: "bob", DisplayName: "Bob", PasswordHash: hash, TOTPSecret: totpSecret},
	} {
		if err := db.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.UpsertClient(ctx, store.Client{ID: "tvapp", Name: "Example TV", Scopes: []string{"openid", "profile", "media"}}); err != nil {
		t.Fatal(err)
	}
	nowFn := func() time.Time { e.mu.Lock(); defer e.mu.Unlock(); return e.now }
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := web.New(web.Config{
		Links: links.New(links.Config{
			Store:  db,
			Events: e.hub,
			Logger: logger,
			Now:    nowFn,
			Limits: e.limits,
			Places: e.places,
			DescribeScope: func(s string) string {
				return map[string]string{"openid": "Know who you are", "media": "Play your music and videos"}[s]
			},
		}),
		Store:         db,
		Issuer:        "https://linkd.test",
		Logger:        logger,
		SecureCookies: true,
		Now:           nowFn,
	})
	mux := http.NewServeMux()
	for _, p := range web.Paths {
		mux.Handle(p, h)
	}
	e.srv = httptest.NewTLSServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

func (e *env) clock() time.Time { e.mu.Lock(); defer e.mu.Unlock(); return e.now }

// newDeviceAuth stores a pending request from the TV app and returns its canonical code.
func (e *env) newDeviceAuth(mods ...func(*store.DeviceAuth)) string {
	e.t.Helper()
	code, err := devices.NewUserCode()
	if err != nil {
		e.t.Fatal(err)
	}
	now := e.clock()
	d := store.DeviceAuth{
		DeviceCode: "dc-" + code,
		UserCode:   code,
		ClientID:   "tvapp",
		Scopes:     []string{"openid", "media"},
		Device:     devices.DeviceInfo{Name: "Living room TV", Model: "Bravia X90", Kind: devices.KindTV},
		RequestIP:  "127.0.0.1",
		CreatedAt:  now,
		ExpiresAt:  now.Add(10 * time.Minute),
		Interval:   5 * time.Second,
		State:      store.DeviceAuthPending,
	}
	for _, m := range mods {
		m(&d)
	}
	if err := e.store.CreateDeviceAuth(context.Background(), d); err != nil {
		e.t.Fatal(err)
	}
	return code
}

// browser is the shared scripted browser (cookies, redirects followed, as a person's
// browser does) with the test's env: it stops the test on a transport error.
type browser struct {
	e *env
	*browsertest.Browser
}

// page is one fetched HTML page.
type page = browsertest.Page

func (e *env) browser() *browser {
	return &browser{e: e, Browser: browsertest.New(e.srv.URL, e.srv.Client().Transport)}
}

func (b *browser) must(p *page, err error) *page {
	b.e.t.Helper()
	if err != nil {
		b.e.t.Fatal(err)
	}
	return p
}

func (b *browser) do(req *http.Request) *page { b.e.t.Helper(); return b.must(b.Do(req)) }

func (b *browser) get(path string) *page { b.e.t.Helper(); return b.must(b.Get(path)) }

func (b *browser) post(path string, form url.Values) *page {
	b.e.t.Helper()
	return b.must(b.Post(path, form))
}

// submit fills the page's form whose action is action (first one) and posts it with the
// form's hidden fields plus fields.
func (b *browser) submit(p *page, action string, fields url.Values) *page {
	b.e.t.Helper()
	return b.must(b.Submit(p, action, fields))
}

// totpAt is the code an authenticator app shows at t.
func totpAt(secret string, t time.Time) string {
	code, err := accounts.TOTPCode(secret, t)
	if err != nil {
		panic(err)
	}
	return code
}
