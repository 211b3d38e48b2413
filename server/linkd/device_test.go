package linkd_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cli/oauth/device"
	"golang.org/x/oauth2"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/accounts"
	"github.com/linkdesk/linkdesk/server/linkd"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest"
	"github.com/linkdesk/linkdesk/server/provider"
	"github.com/linkdesk/linkdesk/server/store"
)

func deviceConfig(in *linkdtest.Instance, clientID string) *oauth2.Config {
	return &oauth2.Config{ClientID: clientID, Endpoint: in.Endpoint(),
		Scopes: []string{"openid", "profile", "offline_access"}}
}

func approve(t *testing.T, in *linkdtest.Instance, userCode, subject string) store.Grant {
	t.Helper()
	return in.Approve(t, userCode, subject)
}

func oauthErrorCode(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return ""
}

// tokenRequest posts one device-code token request and returns the OAuth error code
// (or "" on success).
func tokenRequest(t *testing.T, in *linkdtest.Instance, clientID, deviceCode string) string {
	t.Helper()
	resp, err := in.Client.PostForm(in.URL+"/oauth/token", url.Values{
		"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "client_id": {clientID}, "device_code": {deviceCode}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Error       string `json:"error"`
		AccessToken string `json:"access_token"`
	}
	if err := jsonDecode(resp, &body); err != nil {
		t.Fatal(err)
	}
	if body.Error == "" && body.AccessToken == "" {
		t.Fatalf("token answer %d has neither error nor token", resp.StatusCode)
	}
	return body.Error
}

func TestDeviceFlowWithXOAuth2(t *testing.T) {
	clock := linkdtest.NewClock(time.Time{})
	in := linkdtest.Start(t, linkdtest.Options{Dev: true, Clock: clock})
	alice := in.CreateUser(t, "alice", "pw")
	ctx := in.Context(context.Background())
	conf := deviceConfig(in, linkd.DemoClientID)
	da, err := conf.DeviceAuth(ctx,
		oauth2.SetAuthURLParam(devices.ParamDeviceName, "Living room TV"),
		oauth2.SetAuthURLParam(devices.ParamDeviceModel, "Bravia X90"),
		oauth2.SetAuthURLParam(devices.ParamDeviceKind, "toaster"))
	if err != nil {
		t.Fatal(err)
	}
	if len(da.UserCode) != 9 || da.UserCode[4] != '-' {
		t.Fatalf("user code %q is not XXXX-XXXX", da.UserCode)
	}
	if da.VerificationURI != in.URL+"/link" || da.VerificationURIComplete != in.URL+"/link?user_code="+da.UserCode {
		t.Fatalf("verification URIs %q %q", da.VerificationURI, da.VerificationURIComplete)
	}
	if len(da.DeviceCode) < 22 {
		t.Fatalf("device code too short: %d chars", len(da.DeviceCode))
	}
	code, _ := devices.NormalizeCode(da.UserCode)
	stored, err := in.Store.DeviceAuthByUserCode(context.Background(), code)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Device.Name != "Living room TV" || stored.Device.Model != "Bravia X90" || stored.Device.Kind != devices.KindOther || stored.RequestIP == "" {
		t.Fatalf("stored device info %+v ip %q", stored.Device, stored.RequestIP)
	}
	if got := tokenRequest(t, in, linkd.DemoClientID, da.DeviceCode); got != "authorization_pending" {
		t.Fatalf("before approval: %q", got)
	}
	g := approve(t, in, da.UserCode, alice.Subject)
	tok, err := conf.DeviceAccessToken(ctx, da)
	if err != nil {
		t.Fatal(err)
	}
	at, err := in.Server.Provider().VerifyAccessToken(context.Background(), tok.AccessToken)
	if err != nil || at.GrantID != g.ID || at.Subject != alice.Subject {
		t.Fatalf("token %+v %v, grant %s", at, err, g.ID)
	}
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token with offline_access")
	}

	// The code is single use once the lost-answer window is over.
	clock.Advance(provider.DefaultLostAnswerWindow)
	if got := tokenRequest(t, in, linkd.DemoClientID, da.DeviceCode); got != "access_denied" {
		t.Fatalf("second redemption answered %q", got)
	}

	// Refresh rotates; reusing the old refresh token revokes the whole link.
	old := tok.RefreshToken
	next, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: old}).Token()
	if err != nil {
		t.Fatal(err)
	}
	if next.RefreshToken == "" || next.RefreshToken == old {
		t.Fatal("refresh token did not rotate")
	}
	if _, err := in.Server.Provider().VerifyAccessToken(context.Background(), next.AccessToken); err != nil {
		t.Fatalf("refreshed access token: %v", err)
	}
	clock.Advance(provider.DefaultLostAnswerWindow) // past the grace for a lost answer
	_, err = conf.TokenSource(ctx, &oauth2.Token{RefreshToken: old}).Token()
	if oauthErrorCode(err) != "invalid_grant" {
		t.Fatalf("reused refresh token: %v", err)
	}
	if _, err := in.Store.GrantByID(context.Background(), "", g.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("grant survived refresh-token reuse: %v", err)
	}
	if _, err := in.Server.Provider().VerifyAccessToken(context.Background(), next.AccessToken); err == nil {
		t.Fatal("access token survived refresh-token reuse")
	}
}

func TestDeviceFlowWithCLIOAuth(t *testing.T) {
	in := linkdtest.Start(t, linkdtest.Options{})
	bob := in.CreateUser(t, "bob", "pw")
	code, err := device.RequestCode(in.Client, in.URL+"/device_authorization", devices.KioskClientID, []string{"openid", "offline_access"})
	if err != nil {
		t.Fatal(err)
	}
	approve(t, in, code.UserCode, bob.Subject)
	tok, err := device.Wait(context.Background(), in.Client, in.URL+"/oauth/token", device.WaitOptions{
		ClientID: devices.KioskClientID, DeviceCode: code, GrantType: "urn:ietf:params:oauth:grant-type:device_code"})
	if err != nil {
		t.Fatal(err)
	}
	if tok.Token == "" || tok.RefreshToken == "" {
		t.Fatalf("token %+v", tok)
	}
}

func TestDeviceDenyExpireSlowDown(t *testing.T) {
	clock := linkdtest.NewClock(time.Time{})
	in := linkdtest.Start(t, linkdtest.Options{Dev: true, PollInterval: 5 * time.Second, Clock: clock})
	carol := in.CreateUser(t, "carol", "pw")
	ctx := in.Context(context.Background())
	conf := deviceConfig(in, linkd.DemoClientID)

	// Deny.
	da, err := conf.DeviceAuth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	uc, _ := devices.NormalizeCode(da.UserCode)
	if err := in.Store.DenyDeviceAuth(context.Background(), uc, carol.Subject, in.Now()); err != nil {
		t.Fatal(err)
	}
	if got := tokenRequest(t, in, linkd.DemoClientID, da.DeviceCode); got != "access_denied" {
		t.Fatalf("denied: %q", got)
	}

	// Polling sooner than the interval answers slow_down.
	da2, err := conf.DeviceAuth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := tokenRequest(t, in, linkd.DemoClientID, da2.DeviceCode); got != "authorization_pending" {
		t.Fatalf("first poll: %q", got)
	}
	if got := tokenRequest(t, in, linkd.DemoClientID, da2.DeviceCode); got != "slow_down" {
		t.Fatalf("fast poll: %q", got)
	}

	// Expiry: one second before the code's 10 minutes are up it is still pending; at
	// the end it answers expired_token, even to a poll that comes too soon.
	da3, err := conf.DeviceAuth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(10*time.Minute - time.Second)
	if got := tokenRequest(t, in, linkd.DemoClientID, da3.DeviceCode); got != "authorization_pending" {
		t.Fatalf("just before expiry: %q", got)
	}
	clock.Advance(time.Second)
	if got := tokenRequest(t, in, linkd.DemoClientID, da3.DeviceCode); got != "expired_token" {
		t.Fatalf("at expiry: %q", got)
	}
}

// flakyStore fails every device poll while failing is set.
type flakyStore struct {
	store.Store
	failing atomic.Bool
}

func (f *flakyStore) DeviceAuthByDeviceCode(ctx context.Context, clientID, deviceCode string) (store.DeviceAuth, error) {
	if f.failing.Load() {
		return store.DeviceAuth{}, errors.New("database is locked")
	}
	return f.Store.DeviceAuthByDeviceCode(ctx, clientID, deviceCode)
}

func TestStorageErrorWhilePollingIsSlowDown(t *testing.T) {
	var fs *flakyStore
	in := linkdtest.Start(t, linkdtest.Options{WrapStore: func(s store.Store) store.Store {
		fs = &flakyStore{Store: s}
		return fs
	}})
	dave := in.CreateUser(t, "dave", "pw")
	conf := deviceConfig(in, devices.KioskClientID)
	ctx := in.Context(context.Background())
	da, err := conf.DeviceAuth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fs.failing.Store(true)
	if got := tokenRequest(t, in, devices.KioskClientID, da.DeviceCode); got != "slow_down" {
		t.Fatalf("storage failure answered %q, want slow_down", got)
	}
	fs.failing.Store(false)
	approve(t, in, da.UserCode, dave.Subject)
	if _, err := conf.DeviceAccessToken(ctx, da); err != nil {
		t.Fatalf("after the hiccup: %v", err)
	}
}

func TestDeviceSurvivesRestart(t *testing.T) {
	in := linkdtest.Start(t, linkdtest.Options{})
	erin := in.CreateUser(t, "erin", "pw")
	conf := deviceConfig(in, devices.KioskClientID)
	da, err := conf.DeviceAuth(in.Context(context.Background()))
	if err != nil {
		t.Fatal(err)
	}
	approve(t, in, da.UserCode, erin.Subject)
	dir := in.Dir
	in.Close()

	again := linkdtest.Start(t, linkdtest.Options{Dir: dir})
	conf = deviceConfig(again, devices.KioskClientID)
	tok, err := conf.DeviceAccessToken(again.Context(context.Background()), da)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := again.Server.Provider().VerifyAccessToken(context.Background(), tok.AccessToken); err != nil {
		t.Fatal(err)
	}
}

func TestRevokeRefreshTokenDeletesGrant(t *testing.T) {
	in := linkdtest.Start(t, linkdtest.Options{})
	u := in.CreateUser(t, "frank", "pw")
	conf := deviceConfig(in, devices.KioskClientID)
	ctx := in.Context(context.Background())
	da, err := conf.DeviceAuth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	g := approve(t, in, da.UserCode, u.Subject)
	tok, err := conf.DeviceAccessToken(ctx, da)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := in.Client.PostForm(in.URL+"/revoke", url.Values{"token": {tok.RefreshToken}, "client_id": {devices.KioskClientID}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	if _, err := in.Store.GrantByID(context.Background(), "", g.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("grant after revoke: %v", err)
	}
	if _, err := in.Server.Provider().VerifyAccessToken(context.Background(), tok.AccessToken); err == nil {
		t.Fatal("access token alive after its grant was revoked")
	}
}

func TestSignInWithTOTPAndErrors(t *testing.T) {
	in := linkdtest.Start(t, linkdtest.Options{})
	_, secret := in.CreateUserWithTOTP(t, "gina", "pw")
	tok := in.AppTokenWithTOTP(t, "gina", "pw", secret)
	if tok.AccessToken == "" {
		t.Fatal("no token")
	}
	if _, err := in.SignIn(context.Background(), "gina", "wrong", ""); err == nil || !strings.Contains(err.Error(), "don’t match") {
		t.Fatalf("wrong password: %v", err)
	}
	// Without the TOTP step no code is issued.
	if _, err := in.SignIn(context.Background(), "gina", "pw", ""); err == nil {
		t.Fatal("signed in without the second factor")
	}
}

func TestUnknownClientAndPlainPKCERejected(t *testing.T) {
	in := linkdtest.Start(t, linkdtest.Options{})
	conf := deviceConfig(in, "nobody")
	if _, err := conf.DeviceAuth(in.Context(context.Background())); err == nil {
		t.Fatal("unknown client got a code")
	}
	// The app client may not use the device grant.
	conf = deviceConfig(in, devices.AppClientID)
	if _, err := conf.DeviceAuth(in.Context(context.Background())); err == nil {
		t.Fatal("linkdesk client got a device code")
	}
	// PKCE plain is refused for the app.
	app := in.AppConfig("http://127.0.0.1:5555/callback")
	noRedirect := &http.Client{Transport: in.Client.Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(app.AuthCodeURL("st", oauth2.SetAuthURLParam("code_challenge", strings.Repeat("a", 43)), oauth2.SetAuthURLParam("code_challenge_method", "plain")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); !strings.Contains(loc, "error=") {
		t.Fatalf("plain PKCE redirected to %q", loc)
	}
}

// clashStore makes the first few device authorizations clash on their user code.
type clashStore struct {
	store.Store
	clashes atomic.Int32
}

func (c *clashStore) CreateDeviceAuthCapped(ctx context.Context, d store.DeviceAuth, caps store.RequestCaps) error {
	if c.clashes.Add(-1) >= 0 {
		return store.ErrDuplicateUserCode
	}
	return c.Store.CreateDeviceAuthCapped(ctx, d, caps)
}

func TestUserCodeClashIsRetried(t *testing.T) {
	cs := &clashStore{}
	cs.clashes.Store(3)
	in := linkdtest.Start(t, linkdtest.Options{WrapStore: func(s store.Store) store.Store {
		cs.Store = s
		return cs
	}})
	da, err := deviceConfig(in, devices.KioskClientID).DeviceAuth(in.Context(context.Background()))
	if err != nil {
		t.Fatalf("clash became an error: %v", err)
	}
	if da.UserCode == "" {
		t.Fatal("no user code")
	}
}

func TestConfidentialDeviceClient(t *testing.T) {
	in := linkdtest.Start(t, linkdtest.Options{})
	u := in.CreateUser(t, "kim", "pw")
	hash, err := accounts.HashPassword("tv-secret")
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Store.UpsertClient(context.Background(), store.Client{ID: "secret-tv", Name: "Secret TV", SecretHash: hash,
		Scopes: []string{"openid", "offline_access"}, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	ctx := in.Context(context.Background())
	conf := deviceConfig(in, "secret-tv")
	conf.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
	if _, err := conf.DeviceAuth(ctx); err == nil {
		t.Fatal("confidential client got a code without its secret")
	}
	conf.ClientSecret = "tv-secret"
	// x/oauth2's DeviceAuth sends no client authentication of its own (RFC 8628 §3.1
	// requires it of confidential clients), so the secret goes in as a parameter.
	da, err := conf.DeviceAuth(ctx, oauth2.SetAuthURLParam("client_secret", "tv-secret"))
	if err != nil {
		t.Fatal(err)
	}
	approve(t, in, da.UserCode, u.Subject)
	// A token request without the secret is refused without burning the code.
	if got := tokenRequest(t, in, "secret-tv", da.DeviceCode); got != "invalid_client" {
		t.Fatalf("no secret: %q", got)
	}
	// Nor is one with a wrong secret in HTTP Basic.
	req, err := http.NewRequest(http.MethodPost, in.URL+"/oauth/token", strings.NewReader(url.Values{
		"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {da.DeviceCode}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("secret-tv", "not-the-secret")
	resp, err := in.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var wrong struct {
		Error string `json:"error"`
	}
	if err := jsonDecode(resp, &wrong); err != nil || resp.StatusCode < 400 || wrong.Error == "" {
		t.Fatalf("wrong secret in Basic: %d %q %v", resp.StatusCode, wrong.Error, err)
	}
	if _, err := conf.DeviceAccessToken(ctx, da); err != nil {
		t.Fatal(err)
	}
}
