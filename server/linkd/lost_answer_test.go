package linkd_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest"
	"github.com/linkdesk/linkdesk/server/store"
)

// answerThief is a transport that lets the token endpoint's next successful answer
// reach linkd's side completely and then loses it on the way back, as a crash or a
// dropped connection would; the test keeps what was lost.
type answerThief struct {
	next   http.RoundTripper
	armed  atomic.Bool
	mu     sync.Mutex
	stolen []byte
}

func (a *answerThief) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := a.next.RoundTrip(r)
	if err != nil || resp.StatusCode != http.StatusOK || !strings.HasSuffix(r.URL.Path, "/oauth/token") || !a.armed.Load() {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	a.armed.Store(false)
	a.mu.Lock()
	a.stolen = body
	a.mu.Unlock()
	return nil, errors.New("connection reset: the answer was lost")
}

// stolenTokens decodes the answer the thief kept.
func (a *answerThief) stolenTokens(t *testing.T) (access, refresh string) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	var body struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	if err := jsonDecode(&http.Response{Body: io.NopCloser(bytes.NewReader(a.stolen))}, &body); err != nil || body.AccessToken == "" {
		t.Fatalf("no stolen answer: %v (%s)", err, a.stolen)
	}
	return body.AccessToken, body.RefreshToken
}

func thievingContext(in *linkdtest.Instance) (context.Context, *answerThief) {
	thief := &answerThief{next: in.Client.Transport}
	return context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: thief}), thief
}

// TestLostDeviceTokenAnswer: the answer carrying a device's tokens is lost after linkd
// stored them. The device asks again with the same device code and links; the lost
// tokens are dead, and the account sees one device, seen.
func TestLostDeviceTokenAnswer(t *testing.T) {
	in := linkdtest.Start(t, linkdtest.Options{})
	fay := in.CreateUser(t, "fay", "pw")
	appTok := in.AppToken(t, "fay", "pw")
	ctx, thief := thievingContext(in)
	conf := deviceConfig(in, devices.KioskClientID)
	da, err := conf.DeviceAuth(ctx, oauth2.SetAuthURLParam(devices.ParamDeviceName, "Hall display"))
	if err != nil {
		t.Fatal(err)
	}
	approve(t, in, da.UserCode, fay.Subject)

	thief.armed.Store(true)
	if _, err := conf.DeviceAccessToken(ctx, da); err == nil {
		t.Fatal("the answer was not lost")
	}
	lostAccess, lostRefresh := thief.stolenTokens(t)

	tok, err := conf.DeviceAccessToken(ctx, da) // the device asks again with its code
	if err != nil {
		t.Fatalf("repeat after a lost answer: %v", err)
	}
	if code := call(t, in, "GET", "/userinfo", tok.AccessToken, "", nil); code != http.StatusOK {
		t.Fatalf("new access token: userinfo %d", code)
	}
	if code := call(t, in, "GET", "/userinfo", lostAccess, "", nil); code == http.StatusOK {
		t.Fatal("the lost answer's access token still works")
	}
	if _, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: lostRefresh}).Token(); oauthErrorCode(err) != "invalid_grant" {
		t.Fatalf("the lost answer's refresh token: %v, want invalid_grant", err)
	}
	// Presenting the dead refresh token is not reuse: the link lives on.
	if _, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err != nil {
		t.Fatalf("refresh with the repeat's token: %v", err)
	}
	var out struct{ Devices []devices.Device }
	if code := call(t, in, "GET", devices.APIPrefix+"/devices", appTok.AccessToken, "", &out); code != http.StatusOK {
		t.Fatalf("devices: %d", code)
	}
	list := out.Devices
	if len(list) != 1 || list[0].Name != "Hall display" || list[0].LastSeenAt == nil {
		t.Fatalf("devices after a lost answer = %+v, want one, seen", list)
	}
}

// TestLostRefreshAnswer: a refresh answer lost after the rotation committed. The
// device retries with the refresh token it still holds and keeps its link; reuse after
// the successor was used still revokes it, and the warning names client and link.
func TestLostRefreshAnswer(t *testing.T) {
	var logs syncBuffer
	in := linkdtest.Start(t, linkdtest.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	gus := in.CreateUser(t, "gus", "pw")
	ctx, thief := thievingContext(in)
	conf := deviceConfig(in, devices.KioskClientID)
	da, err := conf.DeviceAuth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	g := approve(t, in, da.UserCode, gus.Subject)
	tok, err := conf.DeviceAccessToken(ctx, da)
	if err != nil {
		t.Fatal(err)
	}

	thief.armed.Store(true)
	if _, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
		t.Fatal("the refresh answer was not lost")
	}
	lostAccess, lostRefresh := thief.stolenTokens(t)
	next, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("retry of a lost refresh answer: %v", err)
	}
	if code := call(t, in, "GET", "/userinfo", next.AccessToken, "", nil); code != http.StatusOK {
		t.Fatalf("retried refresh: userinfo %d", code)
	}
	if code := call(t, in, "GET", "/userinfo", lostAccess, "", nil); code == http.StatusOK {
		t.Fatal("the lost refresh answer's access token still works")
	}
	if _, err := in.Store.GrantByID(context.Background(), "", g.ID); err != nil {
		t.Fatalf("a lost refresh answer cost the link: %v", err)
	}
	if _, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: lostRefresh}).Token(); oauthErrorCode(err) != "invalid_grant" {
		t.Fatalf("the lost successor: %v, want invalid_grant", err)
	}

	// The device uses its new refresh token; the old one coming back now is a copy.
	if _, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: next.RefreshToken}).Token(); err != nil {
		t.Fatal(err)
	}
	if _, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); oauthErrorCode(err) != "invalid_grant" {
		t.Fatalf("reuse after the successor was used: %v, want invalid_grant", err)
	}
	if _, err := in.Store.GrantByID(context.Background(), "", g.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("link survived refresh-token reuse: %v", err)
	}
	want := fmt.Sprintf("client=%s link=%s", devices.KioskClientID, g.ID)
	if !strings.Contains(logs.String(), want) {
		t.Fatalf("reuse warning does not name client and link (%q):\n%s", want, logs.String())
	}
}

// faultyStore fails chosen token-path operations with a passing storage fault, a given
// number of times each.
type faultyStore struct {
	store.Store
	pollFaults, collectFaults, rotateFaults, lookupFaults, createFaults atomic.Int32
}

func (f *faultyStore) CreateDeviceAuthCapped(ctx context.Context, d store.DeviceAuth, caps store.RequestCaps) error {
	if f.createFaults.Add(-1) >= 0 {
		return errDiskFull
	}
	return f.Store.CreateDeviceAuthCapped(ctx, d, caps)
}

var errDiskFull = fmt.Errorf("sqlite: commit: database or disk is full: %w", store.ErrUnavailable)

func (f *faultyStore) DeviceAuthByDeviceCode(ctx context.Context, clientID, deviceCode string) (store.DeviceAuth, error) {
	if f.pollFaults.Add(-1) >= 0 {
		return store.DeviceAuth{}, errDiskFull
	}
	return f.Store.DeviceAuthByDeviceCode(ctx, clientID, deviceCode)
}

func (f *faultyStore) CollectDeviceTokens(ctx context.Context, clientID, deviceCode string, tokens store.DeviceTokens, ip string, now time.Time, window time.Duration) (store.DeviceAuth, error) {
	if f.collectFaults.Add(-1) >= 0 {
		return store.DeviceAuth{}, errDiskFull
	}
	return f.Store.CollectDeviceTokens(ctx, clientID, deviceCode, tokens, ip, now, window)
}

func (f *faultyStore) RefreshTokenByToken(ctx context.Context, token string, now time.Time, grace time.Duration) (store.RefreshToken, error) {
	if f.lookupFaults.Add(-1) >= 0 {
		return store.RefreshToken{}, errDiskFull
	}
	return f.Store.RefreshTokenByToken(ctx, token, now, grace)
}

func (f *faultyStore) RotateRefreshToken(ctx context.Context, old string, next store.RefreshToken, access store.AccessToken, grace time.Duration) error {
	if f.rotateFaults.Add(-1) >= 0 {
		return errDiskFull
	}
	return f.Store.RotateRefreshToken(ctx, old, next, access, grace)
}

// TestStorageFaultsOnTheTokenPath: while the store fails, an approved device hears
// slow_down (never server_error or access_denied) and links once it is back; a refresh
// hears 503 with Retry-After and keeps its refresh token and link.
func TestStorageFaultsOnTheTokenPath(t *testing.T) {
	fs := &faultyStore{}
	in := linkdtest.Start(t, linkdtest.Options{WrapStore: func(s store.Store) store.Store {
		fs.Store = s
		return fs
	}})
	hal := in.CreateUser(t, "hal", "pw")
	ctx := in.Context(context.Background())
	conf := deviceConfig(in, devices.KioskClientID)
	fs.createFaults.Store(1)
	_, err := conf.DeviceAuth(ctx)
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response.StatusCode != http.StatusServiceUnavailable || re.Response.Header.Get("Retry-After") == "" {
		t.Fatalf("device authorization during a fault: %v, want 503 with Retry-After", err)
	}
	da, err := conf.DeviceAuth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	g := approve(t, in, da.UserCode, hal.Subject)
	fs.pollFaults.Store(1)
	fs.collectFaults.Store(2)
	for i := range 3 {
		if got := tokenRequest(t, in, devices.KioskClientID, da.DeviceCode); got != "slow_down" {
			t.Fatalf("fault %d answered %q, want slow_down", i+1, got)
		}
	}
	tok, err := conf.DeviceAccessToken(ctx, da)
	if err != nil {
		t.Fatalf("after the faults: %v", err)
	}

	for _, fault := range []*atomic.Int32{&fs.lookupFaults, &fs.rotateFaults} {
		fault.Store(1)
		_, err = conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		if !errors.As(err, &re) || re.Response.StatusCode != http.StatusServiceUnavailable || re.Response.Header.Get("Retry-After") == "" {
			t.Fatalf("refresh during a fault: %v, want 503 with Retry-After", err)
		}
	}
	next, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("refresh after the faults: %v", err)
	}
	if code := call(t, in, "GET", "/userinfo", next.AccessToken, "", nil); code != http.StatusOK {
		t.Fatalf("refreshed token: userinfo %d", code)
	}
	if _, err := in.Store.GrantByID(context.Background(), "", g.ID); err != nil {
		t.Fatalf("faults cost the link: %v", err)
	}
}

// syncBuffer is a log destination the test reads while linkd writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// requestCounter counts the token endpoint's requests and their OAuth error codes.
type requestCounter struct {
	next   http.RoundTripper
	mu     sync.Mutex
	tokens int
	errors map[string]int
}

func (c *requestCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(r)
	if err != nil || !strings.HasSuffix(r.URL.Path, "/oauth/token") {
		return resp, err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	var e struct {
		Error string `json:"error"`
	}
	_ = jsonDecode(&http.Response{Body: io.NopCloser(bytes.NewReader(body))}, &e)
	c.mu.Lock()
	c.tokens++
	if e.Error != "" {
		c.errors[e.Error]++
	}
	c.mu.Unlock()
	return resp, nil
}

// TestXOAuth2AutoDetectSendsEachRequestOnce: x/oauth2's default auth style first tries
// HTTP Basic (with an empty secret for a public client); linkd accepts it, so a device
// sends one request per poll and per refresh, never a refused one first.
func TestXOAuth2AutoDetectSendsEachRequestOnce(t *testing.T) {
	in := linkdtest.Start(t, linkdtest.Options{})
	ivy := in.CreateUser(t, "ivy", "pw")
	counter := &requestCounter{next: in.Client.Transport, errors: map[string]int{}}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: counter})
	conf := deviceConfig(in, devices.KioskClientID)
	conf.Endpoint.AuthStyle = oauth2.AuthStyleAutoDetect
	da, err := conf.DeviceAuth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	approve(t, in, da.UserCode, ivy.Subject)
	tok, err := conf.DeviceAccessToken(ctx, da)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err != nil {
		t.Fatal(err)
	}
	counter.mu.Lock()
	defer counter.mu.Unlock()
	if counter.tokens != 2 || len(counter.errors) != 0 {
		t.Fatalf("token endpoint saw %d requests, errors %v; want 2 (one collection, one refresh) and none refused",
			counter.tokens, counter.errors)
	}
}
