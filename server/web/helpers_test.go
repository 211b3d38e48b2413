package web_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/accounts"
	"github.com/linkdesk/linkdesk/server/events"
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
}

type envOption func(*env)

func withLimits(l links.Limits) envOption { return func(e *env) { e.limits = l } }

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

// browser is a cookie-jar client that follows redirects, as a person's browser does.
type browser struct {
	e *env
	c *http.Client
}

func (e *env) browser() *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	c := *e.srv.Client() // a copy: the server's client is shared
	c.Jar = jar
	return &browser{e: e, c: &c}
}

// page is one fetched HTML page.
type page struct {
	status int
	url    *url.URL
	header http.Header
	body   string
	doc    *html.Node
}

func (b *browser) do(req *http.Request) *page {
	b.e.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		b.e.t.Fatal(err)
	}
	doc, _ := html.Parse(strings.NewReader(string(raw)))
	return &page{status: resp.StatusCode, url: resp.Request.URL, header: resp.Header, body: string(raw), doc: doc}
}

func (b *browser) get(path string) *page {
	b.e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.e.srv.URL+path, nil)
	if err != nil {
		b.e.t.Fatal(err)
	}
	return b.do(req)
}

func (b *browser) post(path string, form url.Values) *page {
	b.e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.e.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// submit fills the page's form whose action is action (first one) and posts it with the
// form's hidden fields plus fields.
func (b *browser) submit(p *page, action string, fields url.Values) *page {
	b.e.t.Helper()
	form := p.form(action)
	if form == nil {
		b.e.t.Fatalf("no form with action %q on %s:\n%s", action, p.url, p.body)
	}
	vals := url.Values{}
	walk(form, func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "input" && attr(n, "type") == "hidden" {
			vals.Set(attr(n, "name"), attr(n, "value"))
		}
	})
	for k, v := range fields {
		vals[k] = v
	}
	return b.post(action, vals)
}

func (p *page) form(action string) *html.Node {
	var found *html.Node
	walk(p.doc, func(n *html.Node) {
		if found == nil && n.Type == html.ElementNode && n.Data == "form" && attr(n, "action") == action {
			found = n
		}
	})
	return found
}

// text is the page's visible text with whitespace collapsed.
func (p *page) text() string {
	var b strings.Builder
	walk(p.doc, func(n *html.Node) {
		if n.Type == html.TextNode && (n.Parent == nil || (n.Parent.Data != "script" && n.Parent.Data != "style" && n.Parent.Data != "title")) {
			b.WriteString(n.Data)
			b.WriteByte(' ')
		}
	})
	return strings.Join(strings.Fields(b.String()), " ")
}

func (p *page) mustSay(t *testing.T, wants ...string) {
	t.Helper()
	txt := p.text()
	for _, w := range wants {
		if !strings.Contains(txt, w) {
			t.Errorf("page %s (status %d) does not say %q; it says:\n%s", p.url.Path, p.status, w, txt)
		}
	}
}

func (p *page) wantStatus(t *testing.T, status int) {
	t.Helper()
	if p.status != status {
		t.Fatalf("%s: status %d, want %d; page says:\n%s", p.url, p.status, status, p.text())
	}
}

func walk(n *html.Node, f func(*html.Node)) {
	if n == nil {
		return
	}
	f(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, f)
	}
}

func attr(n *html.Node, name string) string {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
}

// totpAt is the code an authenticator app shows at t.
func totpAt(secret string, t time.Time) string {
	code, err := accounts.TOTPCode(secret, t)
	if err != nil {
		panic(err)
	}
	return code
}

type htmlNode = html.Node

const elementNode = html.ElementNode
