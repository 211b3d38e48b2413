package api_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/api"
	"github.com/linkdesk/linkdesk/server/events"
	"github.com/linkdesk/linkdesk/server/links"
	"github.com/linkdesk/linkdesk/server/store"
	"github.com/linkdesk/linkdesk/server/store/sqlite"
)

// fakeVerifier maps fixed token strings to access-token records; tokens can be revoked,
// and a token in once passes one check only (it dies right after, as a device's tokens
// do when its link is removed).
type fakeVerifier struct {
	mu     sync.Mutex
	tokens map[string]store.AccessToken
	once   map[string]store.AccessToken
}

func (f *fakeVerifier) VerifyAccessToken(_ context.Context, token string) (store.AccessToken, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t, ok := f.once[token]; ok {
		delete(f.once, token)
		return t, nil
	}
	t, ok := f.tokens[token]
	if !ok {
		return store.AccessToken{}, store.ErrNotFound
	}
	return t, nil
}

func (f *fakeVerifier) revoke(token string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.tokens, token)
}

// The push channel needs the store's optional DeviceAuthByDeviceCode.
var _ links.DeviceAuthReader = (*sqlite.DB)(nil)

// config is what a test may tweak: the API's own settings and the links service's.
type config struct {
	api   api.Config
	links links.Config
}

type env struct {
	t   testing.TB
	srv *httptest.Server
	db  *sqlite.DB
	hub *events.Hub
	ver *fakeVerifier
}

const (
	tokAlice   = "tok-alice"
	tokBob     = "tok-bob"
	tokDevice  = "tok-tv"
	tokKiosk   = "tok-kiosk"
	tvClientID = "tv-app"
)

func newEnv(t testing.TB, tweak func(*config)) *env {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "linkd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, u := range []store.User{
		{Subject: "sub-alice", Username: "alice", DisplayName: "Alice A.", Email: "alice@example.com", PasswordHash: "x", CreatedAt: time.Now()},
		{Subject: "sub-bob", Username: "bob", DisplayName: "Bob", Email: "bob@example.com", PasswordHash: "x", CreatedAt: time.Now()},
	} {
		if err := db.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []store.Client{
		{ID: devices.AppClientID, Name: "Linkdesk", CreatedAt: time.Now()},
		{ID: devices.KioskClientID, Name: "Linkdesk kiosk", CreatedAt: time.Now()},
		{ID: tvClientID, Name: "StreamBox", LogoURI: "https://tv.example/logo.png", Scopes: []string{"openid", "profile", "media"}, CreatedAt: time.Now()},
	} {
		if err := db.UpsertClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	e := &env{t: t, db: db, hub: events.NewHub()}
	e.ver = &fakeVerifier{tokens: map[string]store.AccessToken{
		tokAlice:  {ID: "a1", Subject: "sub-alice", ClientID: devices.AppClientID},
		tokBob:    {ID: "b1", Subject: "sub-bob", ClientID: devices.AppClientID},
		tokDevice: {ID: "t1", Subject: "sub-alice", ClientID: tvClientID},
		tokKiosk:  {ID: "k1", Subject: "sub-alice", ClientID: devices.KioskClientID},
	}}
	cfg := config{
		api: api.Config{
			Store:    db,
			Verifier: e.ver,
			Issuer:   "https://link.example",
			Logger:   slog.New(slog.DiscardHandler),
		},
		links: links.Config{
			Store:  db,
			Events: e.hub,
			Logger: slog.New(slog.DiscardHandler),
			DescribeScope: func(s string) string {
				if s == "media" {
					return "Play your media library"
				}
				return ""
			},
		},
	}
	if tweak != nil {
		tweak(&cfg)
	}
	cfg.api.Links = links.New(cfg.links)
	mux := http.NewServeMux()
	mux.Handle(devices.APIPrefix+"/", api.New(cfg.api))
	mux.Handle("/device/wait", api.NewDeviceWait(cfg.api))
	mux.Handle("/device/linked-wait", api.NewLinkedWait(cfg.api))
	e.srv = httptest.NewTLSServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

// pending stores a fresh device authorization and returns its user and device codes.
func (e *env) pending(clientID, ip string, expiresIn time.Duration) (userCode, deviceCode string) {
	e.t.Helper()
	uc, err := devices.NewUserCode()
	if err != nil {
		e.t.Fatal(err)
	}
	dc := rand.Text() + rand.Text()
	now := time.Now()
	created := now
	if expiresIn <= 0 {
		created = now.Add(expiresIn - time.Minute)
	}
	err = e.db.CreateDeviceAuth(context.Background(), store.DeviceAuth{
		DeviceCode: dc, UserCode: uc, ClientID: clientID, Scopes: []string{"openid", "media"},
		Device:    devices.DeviceInfo{Name: "Living room TV", Model: "SB-4K", Kind: devices.KindTV},
		RequestIP: ip, CreatedAt: created, ExpiresAt: now.Add(expiresIn), Interval: 5 * time.Second,
		State: store.DeviceAuthPending,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return uc, dc
}

func (e *env) do(method, path, token, body string) (*http.Response, []byte) {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp, b
}

// wantProblem checks an RFC 9457 answer with the given status and stable code.
func wantProblem(t *testing.T, resp *http.Response, body []byte, status int, code string) devices.Problem {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json", ct)
	}
	var p devices.Problem
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("problem body %s: %v", body, err)
	}
	if p.Code != code || p.Status != status || p.Title == "" {
		t.Fatalf("problem = %+v, want code %q status %d", p, code, status)
	}
	return p
}

func decode[T any](t testing.TB, resp *http.Response, body []byte, status int) T {
	t.Helper()
	var v T
	if resp.StatusCode != status {
		t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, status, body)
	}
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	return v
}

func TestAuthentication(t *testing.T) {
	e := newEnv(t, nil)
	resp, body := e.do("GET", "/api/v1/me", "", "")
	wantProblem(t, resp, body, 401, devices.CodeUnauthorized)
	if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("WWW-Authenticate = %q", resp.Header.Get("WWW-Authenticate"))
	}
	resp, body = e.do("GET", "/api/v1/devices", "not-a-token", "")
	wantProblem(t, resp, body, 401, devices.CodeUnauthorized)
	if !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("WWW-Authenticate = %q", resp.Header.Get("WWW-Authenticate"))
	}
	for _, tok := range []string{tokDevice, tokKiosk} {
		for _, path := range []string{"/api/v1/me", "/api/v1/devices", "/api/v1/events", "/api/v1/link-requests/BCDF-GHJK"} {
			resp, body = e.do("GET", path, tok, "")
			wantProblem(t, resp, body, 403, devices.CodeForbidden)
		}
	}
	resp, body = e.do("GET", "/api/v1/nope", tokAlice, "")
	wantProblem(t, resp, body, 404, devices.CodeNotFound)
}

func TestMe(t *testing.T) {
	e := newEnv(t, nil)
	resp, body := e.do("GET", "/api/v1/me", tokAlice, "")
	me := decode[devices.Me](t, resp, body, 200)
	want := devices.Me{Subject: "sub-alice", Username: "alice", DisplayName: "Alice A.", Email: "alice@example.com"}
	if me != want {
		t.Fatalf("me = %+v, want %+v", me, want)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("Cache-Control = %q", cc)
	}
}

func TestLinkRequest(t *testing.T) {
	e := newEnv(t, nil)
	uc, _ := e.pending(tvClientID, "127.0.0.1", 10*time.Minute)
	typed := strings.ToLower(uc[:4] + " - " + uc[4:]) // case and separators do not matter
	resp, body := e.do("GET", "/api/v1/link-requests/"+url.PathEscape(typed), tokAlice, "")
	lr := decode[devices.LinkRequest](t, resp, body, 200)
	if lr.UserCode != devices.FormatCode(uc) {
		t.Errorf("user_code = %q", lr.UserCode)
	}
	if lr.Client != (devices.ClientInfo{ID: tvClientID, Name: "StreamBox", LogoURI: "https://tv.example/logo.png"}) {
		t.Errorf("client = %+v", lr.Client)
	}
	if lr.Device != (devices.DeviceInfo{Name: "Living room TV", Model: "SB-4K", Kind: devices.KindTV}) {
		t.Errorf("device = %+v", lr.Device)
	}
	wantScopes := []devices.Scope{{Name: "openid", Description: "openid"}, {Name: "media", Description: "Play your media library"}}
	if len(lr.Scopes) != 2 || lr.Scopes[0] != wantScopes[0] || lr.Scopes[1] != wantScopes[1] {
		t.Errorf("scopes = %+v", lr.Scopes)
	}
	if lr.RequestedAt.IsZero() || !lr.ExpiresAt.After(lr.RequestedAt) {
		t.Errorf("requested_at %v, expires_at %v", lr.RequestedAt, lr.ExpiresAt)
	}
	if lr.Origin != (devices.Origin{IP: "127.0.0.1", SameNetwork: true}) {
		t.Errorf("origin = %+v", lr.Origin)
	}

	far, _ := e.pending(tvClientID, "203.0.113.9", 10*time.Minute)
	resp, body = e.do("GET", "/api/v1/link-requests/"+far, tokAlice, "")
	if lr := decode[devices.LinkRequest](t, resp, body, 200); lr.Origin != (devices.Origin{IP: "203.0.113.9"}) {
		t.Errorf("origin = %+v, want another network", lr.Origin)
	}
}

func TestLinkRequestErrors(t *testing.T) {
	e := newEnv(t, func(c *config) { c.links.Limits.AccountFailures = 50 })
	expired, _ := e.pending(tvClientID, "127.0.0.1", -time.Minute)
	used, _ := e.pending(tvClientID, "127.0.0.1", 10*time.Minute)
	resp, body := e.do("POST", "/api/v1/link-requests/"+used+"/deny", tokAlice, "")
	if resp.StatusCode != 204 {
		t.Fatalf("deny: %d %s", resp.StatusCode, body)
	}
	for _, tc := range []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "/api/v1/link-requests/AEIO-U123", 404, devices.CodeInvalidCode},
		{"GET", "/api/v1/link-requests/BCD", 404, devices.CodeInvalidCode},
		{"GET", "/api/v1/link-requests/BBBB-BBBB", 404, devices.CodeInvalidCode},
		{"POST", "/api/v1/link-requests/BBBB-BBBB/approve", 404, devices.CodeInvalidCode},
		{"POST", "/api/v1/link-requests/BBBB-BBBB/deny", 404, devices.CodeInvalidCode},
		{"GET", "/api/v1/link-requests/" + expired, 410, devices.CodeExpiredCode},
		{"POST", "/api/v1/link-requests/" + expired + "/approve", 410, devices.CodeExpiredCode},
		{"POST", "/api/v1/link-requests/" + expired + "/deny", 410, devices.CodeExpiredCode},
		{"GET", "/api/v1/link-requests/" + used, 409, devices.CodeAlreadyUsed},
		{"POST", "/api/v1/link-requests/" + used + "/approve", 409, devices.CodeAlreadyUsed},
		{"POST", "/api/v1/link-requests/" + used + "/deny", 409, devices.CodeAlreadyUsed},
	} {
		resp, body := e.do(tc.method, tc.path, tokAlice, "")
		t.Run(tc.method+" "+tc.path, func(t *testing.T) { wantProblem(t, resp, body, tc.status, tc.code) })
	}
	// Every one of those eleven failures counted against the account and the address.
	for _, key := range []string{links.AccountKey("sub-alice"), links.AddressKey("127.0.0.1")} {
		n, err := e.db.CountFailures(context.Background(), key, time.Now().Add(-time.Hour))
		if err != nil || n != 11 {
			t.Fatalf("%s failures = %d, %v; want 11", key, n, err)
		}
	}
}

func TestApproveBodyErrors(t *testing.T) {
	e := newEnv(t, nil)
	uc, _ := e.pending(tvClientID, "127.0.0.1", 10*time.Minute)
	for _, body := range []string{`{`, `[]`, `{"device_name": 5}`, `{"device_name":"a\u0007b"}`, `{"device_name":"` + strings.Repeat("x", 65) + `"}`, `{} {}`, `{"device_name":"` + strings.Repeat("x", 20000) + `"}`} {
		resp, b := e.do("POST", "/api/v1/link-requests/"+uc+"/approve", tokAlice, body)
		wantProblem(t, resp, b, 400, devices.CodeBadRequest)
	}
	// Still pending after all those bad bodies.
	resp, b := e.do("GET", "/api/v1/link-requests/"+uc, tokAlice, "")
	decode[devices.LinkRequest](t, resp, b, 200)
}

// fakeClock is a settable clock for the limiter's window arithmetic.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestRateLimitPerAccount(t *testing.T) {
	clock := &fakeClock{now: time.Now()}
	e := newEnv(t, func(c *config) {
		c.links.Now = clock.Now
		c.links.Limits = links.Limits{AccountFailures: 3, AddressFailures: 100, Window: 7 * time.Minute}
	})
	good, _ := e.pending(tvClientID, "127.0.0.1", 10*time.Minute)
	for range 3 {
		resp, body := e.do("GET", "/api/v1/link-requests/BBBB-BBBB", tokAlice, "")
		wantProblem(t, resp, body, 404, devices.CodeInvalidCode)
		clock.Advance(time.Minute)
	}
	// Throttled before the lookup: even the right code is refused now. The first
	// failure (3 minutes ago) leaves the 7-minute window in a little over 4 minutes.
	for _, path := range []string{"/api/v1/link-requests/" + good, "/api/v1/link-requests/" + good + "/approve"} {
		method := "GET"
		if strings.HasSuffix(path, "/approve") {
			method = "POST"
		}
		resp, body := e.do(method, path, tokAlice, "")
		wantProblem(t, resp, body, 429, devices.CodeRateLimited)
		if ra := resp.Header.Get("Retry-After"); ra != "241" {
			t.Fatalf("Retry-After = %q, want 241", ra)
		}
	}
	// Refused attempts do not count: once the first failure leaves the window, the
	// right code works again.
	clock.Advance(241 * time.Second)
	resp, body := e.do("GET", "/api/v1/link-requests/"+good, tokAlice, "")
	decode[devices.LinkRequest](t, resp, body, 200)
	// Another account is not affected by Alice's account limit.
	resp, body = e.do("GET", "/api/v1/link-requests/"+good, tokBob, "")
	decode[devices.LinkRequest](t, resp, body, 200)
}

func TestRateLimitPerAddress(t *testing.T) {
	clock := &fakeClock{now: time.Now()}
	e := newEnv(t, func(c *config) {
		c.links.Now = clock.Now
		c.links.Limits = links.Limits{AccountFailures: 100, AddressFailures: 2}
	})
	good, _ := e.pending(tvClientID, "127.0.0.1", 10*time.Minute)
	e.do("GET", "/api/v1/link-requests/BBBB-BBBB", tokAlice, "")
	e.do("GET", "/api/v1/link-requests/CCCC-CCCC", tokAlice, "")
	// Bob shares the address (127.0.0.1), so he is throttled too.
	resp, body := e.do("GET", "/api/v1/link-requests/"+good, tokBob, "")
	wantProblem(t, resp, body, 429, devices.CodeRateLimited)
	if ra := resp.Header.Get("Retry-After"); ra != "900" {
		t.Fatalf("Retry-After = %q, want 900 (the default 15-minute window)", ra)
	}
}

func TestDevicesLifecycle(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	uc, _ := e.pending(tvClientID, "127.0.0.1", 10*time.Minute)
	resp, body := e.do("POST", "/api/v1/link-requests/"+uc+"/approve", tokAlice, `{"device_name":"  Kitchen TV  "}`)
	dev := decode[devices.ApproveResponse](t, resp, body, 200).Device
	if dev.ID == "" || dev.Name != "Kitchen TV" || dev.Kind != devices.KindTV || dev.Model != "SB-4K" ||
		dev.Client != (devices.ClientInfo{ID: tvClientID, Name: "StreamBox"}) || len(dev.Scopes) != 2 || dev.LinkedAt.IsZero() {
		t.Fatalf("approved device = %+v", dev)
	}
	if dev.LastSeenAt != nil {
		t.Fatalf("last_seen_at = %v before any use", dev.LastSeenAt)
	}
	// A second device approved without a body keeps its own name.
	uc2, _ := e.pending(tvClientID, "127.0.0.1", 10*time.Minute)
	resp, body = e.do("POST", "/api/v1/link-requests/"+uc2+"/approve", tokAlice, "")
	dev2 := decode[devices.ApproveResponse](t, resp, body, 200).Device
	if dev2.Name != "Living room TV" {
		t.Fatalf("name = %q, want the device's own", dev2.Name)
	}
	if err := e.db.TouchGrant(ctx, dev2.ID, "198.51.100.7", time.Now()); err != nil {
		t.Fatal(err)
	}
	// The app's own sign-in grant is not a device.
	if err := e.db.CreateGrant(ctx, store.Grant{ID: "signin-1", Subject: "sub-alice", ClientID: devices.AppClientID,
		Flow: store.FlowSignIn, Name: "Linkdesk", CreatedAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}

	resp, body = e.do("GET", "/api/v1/devices", tokAlice, "")
	list := decode[devices.DeviceList](t, resp, body, 200).Devices
	if len(list) != 2 || list[0].ID != dev2.ID || list[1].ID != dev.ID {
		t.Fatalf("devices = %+v, want [%s %s] newest first", list, dev2.ID, dev.ID)
	}
	if list[0].LastSeenAt == nil || list[0].LastIP != "198.51.100.7" {
		t.Fatalf("touched device = %+v", list[0])
	}
	resp, body = e.do("GET", "/api/v1/devices/signin-1", tokAlice, "")
	wantProblem(t, resp, body, 404, devices.CodeNotFound)

	resp, body = e.do("GET", "/api/v1/devices", tokBob, "")
	if got := decode[devices.DeviceList](t, resp, body, 200); got.Devices == nil || len(got.Devices) != 0 {
		t.Fatalf("bob's devices = %s, want an empty list", body)
	}
	for _, m := range []string{"GET", "DELETE"} {
		resp, body = e.do(m, "/api/v1/devices/"+dev.ID, tokBob, "")
		wantProblem(t, resp, body, 404, devices.CodeNotFound)
	}
	resp, body = e.do("PATCH", "/api/v1/devices/"+dev.ID, tokBob, `{"name":"mine now"}`)
	wantProblem(t, resp, body, 404, devices.CodeNotFound)

	resp, body = e.do("GET", "/api/v1/devices/"+dev.ID, tokAlice, "")
	if got := decode[devices.Device](t, resp, body, 200); got.Name != "Kitchen TV" {
		t.Fatalf("device = %+v", got)
	}
	for _, bad := range []string{`{"name":""}`, `{"name":"   "}`, `{"name":"a\nb"}`, `{"name":"` + strings.Repeat("é", 65) + `"}`, `nope`, ``, `{"name":"x"}junk`} {
		resp, body = e.do("PATCH", "/api/v1/devices/"+dev.ID, tokAlice, bad)
		wantProblem(t, resp, body, 400, devices.CodeBadRequest)
	}
	resp, body = e.do("PATCH", "/api/v1/devices/"+dev.ID, tokAlice, `{"name":" `+strings.Repeat("é", 64)+` "}`)
	if got := decode[devices.Device](t, resp, body, 200); got.Name != strings.Repeat("é", 64) {
		t.Fatalf("renamed = %q", got.Name)
	}

	// Unlinking kills every token of the link.
	if err := e.db.CreateAccessToken(ctx, store.AccessToken{ID: "at-tv", GrantID: dev.ID, Subject: "sub-alice",
		ClientID: tvClientID, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	resp, body = e.do("DELETE", "/api/v1/devices/"+dev.ID, tokAlice, "")
	if resp.StatusCode != 204 || len(body) != 0 {
		t.Fatalf("delete: %d %s", resp.StatusCode, body)
	}
	if _, err := e.db.AccessTokenByID(ctx, "at-tv", time.Now()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("token after unlink: %v, want not found", err)
	}
	resp, body = e.do("GET", "/api/v1/devices/"+dev.ID, tokAlice, "")
	wantProblem(t, resp, body, 404, devices.CodeNotFound)
	resp, body = e.do("DELETE", "/api/v1/devices/"+dev.ID, tokAlice, "")
	wantProblem(t, resp, body, 404, devices.CodeNotFound)
}

// sseStream reads server-sent events from GET /api/v1/events.
type sseStream struct {
	cancel context.CancelFunc
	events chan sseEvent
	done   chan struct{}
}

type sseEvent struct {
	name, data string
	comment    bool
}

func (e *env) openEvents(token string) *sseStream {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		cancel()
		e.t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		e.t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &sseStream{cancel: cancel, events: make(chan sseEvent, 64), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.name != "" || ev.data != "" {
					s.events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, ":"):
				s.events <- sseEvent{comment: true, data: line}
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data = strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	return s
}

// next returns the next non-comment event, failing after a generous deadline.
func (s *sseStream) next(t *testing.T) devices.Event {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-s.events:
			if ev.comment {
				continue
			}
			var out devices.Event
			if err := json.Unmarshal([]byte(ev.data), &out); err != nil {
				t.Fatalf("event data %q: %v", ev.data, err)
			}
			if out.Type != ev.name {
				t.Fatalf("event name %q but type %q", ev.name, out.Type)
			}
			return out
		case <-s.done:
			t.Fatal("stream ended")
		case <-deadline:
			t.Fatal("no event within 10s")
		}
	}
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestEventsStream(t *testing.T) {
	e := newEnv(t, nil)
	e.srv.Client().CloseIdleConnections()
	baseline := runtime.NumGoroutine()

	s := e.openEvents(tokAlice)
	bob := e.openEvents(tokBob)
	waitFor(t, "two subscribers", func() bool { return e.hub.Subscribers() == 2 })

	uc, _ := e.pending(tvClientID, "127.0.0.1", 10*time.Minute)
	resp, body := e.do("POST", "/api/v1/link-requests/"+uc+"/approve", tokAlice, "")
	dev := decode[devices.ApproveResponse](t, resp, body, 200).Device
	if ev := s.next(t); ev.Type != devices.EventLinked || ev.Device.ID != dev.ID || ev.Device.Name != dev.Name {
		t.Fatalf("event = %+v", ev)
	}
	e.do("PATCH", "/api/v1/devices/"+dev.ID, tokAlice, `{"name":"Den TV"}`)
	if ev := s.next(t); ev.Type != devices.EventRenamed || ev.Device.Name != "Den TV" {
		t.Fatalf("event = %+v", ev)
	}
	e.do("DELETE", "/api/v1/devices/"+dev.ID, tokAlice, "")
	if ev := s.next(t); ev.Type != devices.EventUnlinked || ev.Device.ID != dev.ID {
		t.Fatalf("event = %+v", ev)
	}
	select {
	case ev := <-bob.events:
		if !ev.comment {
			t.Fatalf("bob received alice's event %+v", ev)
		}
	default:
	}

	// Clients going away end their handlers and subscriptions: no leak.
	s.cancel()
	bob.cancel()
	<-s.done
	<-bob.done
	waitFor(t, "subscriptions to end", func() bool { return e.hub.Subscribers() == 0 })
	e.srv.Client().CloseIdleConnections()
	waitFor(t, "goroutines to return to baseline", func() bool { return runtime.NumGoroutine() <= baseline })
}

func TestEventsHeartbeatAndRevocation(t *testing.T) {
	e := newEnv(t, func(c *config) { c.api.Heartbeat = 20 * time.Millisecond })
	s := e.openEvents(tokAlice)
	defer s.cancel()
	deadline := time.After(10 * time.Second)
	for beats := 0; beats < 2; {
		select {
		case ev := <-s.events:
			if ev.comment && ev.data == ": keep-alive" {
				beats++
			}
		case <-deadline:
			t.Fatal("no heartbeats")
		}
	}
	// A revoked token ends the stream at the next heartbeat.
	e.ver.revoke(tokAlice)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		t.Fatal("stream kept going after the token was revoked")
	}
	waitFor(t, "subscription to end", func() bool { return e.hub.Subscribers() == 0 })
}

// wait posts to /device/wait and returns the status or problem code.
func (e *env) wait(ctx context.Context, form url.Values, query string) (int, string) {
	req, _ := http.NewRequestWithContext(ctx, "POST", e.srv.URL+"/device/wait"+query, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var v struct{ Status, Code string }
	_ = json.NewDecoder(resp.Body).Decode(&v)
	if resp.StatusCode != 200 {
		return resp.StatusCode, v.Code
	}
	return 200, v.Status
}

func TestDeviceWaitWakes(t *testing.T) {
	for _, action := range []string{"approve", "deny"} {
		t.Run(action, func(t *testing.T) {
			// Recheck and timeout far beyond the test's patience: only the hub can wake it.
			e := newEnv(t, func(c *config) { c.links.WaitRecheck = time.Hour; c.api.WaitTimeout = time.Hour })
			uc, dc := e.pending(devices.KioskClientID, "127.0.0.1", 10*time.Minute)
			type answer struct {
				status int
				body   string
			}
			got := make(chan answer, 1)
			go func() {
				st, b := e.wait(context.Background(), url.Values{"client_id": {devices.KioskClientID}, "device_code": {dc}}, "")
				got <- answer{st, b}
			}()
			waitFor(t, "the waiter to subscribe", func() bool { return e.hub.Subscribers() == 1 })
			resp, body := e.do("POST", "/api/v1/link-requests/"+uc+"/"+action, tokAlice, "")
			if resp.StatusCode >= 300 {
				t.Fatalf("%s: %d %s", action, resp.StatusCode, body)
			}
			want := map[string]string{"approve": api.WaitApproved, "deny": api.WaitDenied}[action]
			select {
			case a := <-got:
				if a.status != 200 || a.body != want {
					t.Fatalf("wait = %d %q, want 200 %q", a.status, a.body, want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("waiter was not woken")
			}
			waitFor(t, "the waiter to unsubscribe", func() bool { return e.hub.Subscribers() == 0 })
			// Once decided, a new wait answers at once.
			if st, b := e.wait(context.Background(), url.Values{"client_id": {devices.KioskClientID}, "device_code": {dc}}, ""); st != 200 || b != want {
				t.Fatalf("second wait = %d %q", st, b)
			}
		})
	}
}

func TestDeviceWaitFallbacksAndErrors(t *testing.T) {
	e := newEnv(t, func(c *config) { c.links.WaitRecheck = 10 * time.Millisecond; c.api.WaitTimeout = time.Hour })
	ctx := context.Background()
	form := func(client, dc string) url.Values { return url.Values{"client_id": {client}, "device_code": {dc}} }

	// A change made elsewhere (another replica: no hub publish) is seen by the recheck.
	uc, dc := e.pending(devices.KioskClientID, "127.0.0.1", 10*time.Minute)
	got := make(chan string, 1)
	go func() { _, b := e.wait(ctx, form(devices.KioskClientID, dc), ""); got <- b }()
	waitFor(t, "the waiter to subscribe", func() bool { return e.hub.Subscribers() == 1 })
	if _, err := e.db.ApproveDeviceAuth(ctx, uc, "sub-alice", "", time.Now()); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-got:
		if b != api.WaitApproved {
			t.Fatalf("wait = %q", b)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("recheck did not notice the approval")
	}

	if st, code := e.wait(ctx, form(devices.KioskClientID, "no-such-code"), ""); st != 404 || code != devices.CodeNotFound {
		t.Fatalf("unknown code: %d %q", st, code)
	}
	if st, code := e.wait(ctx, form("other-client", dc), ""); st != 404 || code != devices.CodeNotFound {
		t.Fatalf("wrong client: %d %q", st, code)
	}
	if st, code := e.wait(ctx, form(devices.KioskClientID, ""), ""); st != 400 || code != devices.CodeBadRequest {
		t.Fatalf("missing code: %d %q", st, code)
	}
	if st, code := e.wait(ctx, url.Values{"client_id": {devices.KioskClientID}}, "?device_code="+dc); st != 400 || code != devices.CodeBadRequest {
		t.Fatalf("code in URL: %d %q", st, code)
	}
	_, expired := e.pending(devices.KioskClientID, "127.0.0.1", -time.Minute)
	if st, b := e.wait(ctx, form(devices.KioskClientID, expired), ""); st != 200 || b != api.WaitExpired {
		t.Fatalf("expired: %d %q", st, b)
	}
	req, _ := http.NewRequest("GET", e.srv.URL+"/device/wait", nil)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
		t.Fatalf("GET: %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}

	// A request that expires while waiting answers "expired" at its expiry.
	_, soon := e.pending(devices.KioskClientID, "127.0.0.1", 300*time.Millisecond)
	if st, b := e.wait(ctx, form(devices.KioskClientID, soon), ""); st != 200 || b != api.WaitExpired {
		t.Fatalf("expiring: %d %q", st, b)
	}

	// A client that goes away releases its subscription.
	_, dc2 := e.pending(devices.KioskClientID, "127.0.0.1", 10*time.Minute)
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { e.wait(cctx, form(devices.KioskClientID, dc2), ""); close(done) }()
	waitFor(t, "the waiter to subscribe", func() bool { return e.hub.Subscribers() == 1 })
	cancel()
	<-done
	waitFor(t, "the waiter to unsubscribe", func() bool { return e.hub.Subscribers() == 0 })
}

func TestDeviceWaitTimesOutPending(t *testing.T) {
	e := newEnv(t, func(c *config) { c.api.WaitTimeout = 30 * time.Millisecond })
	_, dc := e.pending(devices.KioskClientID, "127.0.0.1", 10*time.Minute)
	if st, b := e.wait(context.Background(), url.Values{"client_id": {devices.KioskClientID}, "device_code": {dc}}, ""); st != 200 || b != api.WaitPending {
		t.Fatalf("wait = %d %q, want pending", st, b)
	}
}

// BenchmarkDeviceWaitWake measures how long a waiting kiosk takes to hear of an
// approval: from the approve call to the wait's answer, over real HTTP and SQLite.
func BenchmarkDeviceWaitWake(b *testing.B) {
	e := newEnv(b, func(c *config) { c.links.WaitRecheck = time.Hour; c.api.WaitTimeout = time.Hour })
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		uc, dc := e.pending(devices.KioskClientID, "127.0.0.1", 10*time.Minute)
		got := make(chan string, 1)
		go func() {
			_, st := e.wait(ctx, url.Values{"client_id": {devices.KioskClientID}, "device_code": {dc}}, "")
			got <- st
		}()
		waitFor(b, "the waiter to subscribe", func() bool { return e.hub.Subscribers() == 1 })
		b.StartTimer()
		resp, body := e.do("POST", "/api/v1/link-requests/"+uc+"/approve", tokAlice, "")
		if resp.StatusCode != 200 {
			b.Fatalf("approve: %d %s", resp.StatusCode, body)
		}
		if st := <-got; st != api.WaitApproved {
			b.Fatalf("wait = %q", st)
		}
		b.StopTimer()
		waitFor(b, "the waiter to unsubscribe", func() bool { return e.hub.Subscribers() == 0 })
		b.StartTimer()
	}
}

// A device whose link goes between the check of its token and the wait's look at the
// link hears 401, as any unlinked device does (its token died with the link), and so
// checks its link at once; 404, "not a device's token", would have turned the channel
// off. A live token that is no device's (the app's own) still hears 404.
func TestLinkedWaitOfALinkGoneMeanwhile(t *testing.T) {
	e := newEnv(t, nil)
	e.ver.mu.Lock()
	e.ver.once = map[string]store.AccessToken{"tok-gone": {ID: "g1", Subject: "sub-alice",
		ClientID: devices.KioskClientID, GrantID: "grant-just-unlinked"}}
	e.ver.mu.Unlock()
	for _, c := range []struct {
		token string
		want  int
	}{{"tok-gone", http.StatusUnauthorized}, {tokAlice, http.StatusNotFound}} {
		req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/device/linked-wait", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+c.token)
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("linked wait with %s: %d, want %d", c.token, resp.StatusCode, c.want)
		}
	}
}
