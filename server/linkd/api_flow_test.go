package linkd_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/linkd"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest"
)

func call(t *testing.T, in *linkdtest.Instance, method, path, token string, body string, out any) int {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, in.URL+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := in.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

// TestLinkThroughAPIAndUnlink is the whole story: a TV asks for a code with its
// extension parameters, the app (signed in with PKCE) looks the code up and approves
// it, the TV gets tokens, its token is refused by the management API, and unlinking
// kills the TV's tokens at once.
func TestLinkThroughAPIAndUnlink(t *testing.T) {
	in := linkdtest.Start(t, linkdtest.Options{Dev: true})
	in.CreateUser(t, "hana", "pw")
	app := in.AppToken(t, "hana", "pw")
	ctx := in.Context(context.Background())
	tv := deviceConfig(in, linkd.DemoClientID)
	da, err := tv.DeviceAuth(ctx, oauth2.SetAuthURLParam(devices.ParamDeviceName, "Kitchen TV"),
		oauth2.SetAuthURLParam(devices.ParamDeviceKind, "tv"))
	if err != nil {
		t.Fatal(err)
	}
	var lr devices.LinkRequest
	if code := call(t, in, "GET", "/api/v1/link-requests/"+url.PathEscape(strings.ToLower(da.UserCode)), app.AccessToken, "", &lr); code != 200 {
		t.Fatalf("link request: %d", code)
	}
	if lr.Client.ID != linkd.DemoClientID || lr.Client.Name != "Demo TV" || lr.Device.Name != "Kitchen TV" || lr.Device.Kind != devices.KindTV {
		t.Fatalf("link request %+v", lr)
	}
	var stay bool
	for _, s := range lr.Scopes {
		stay = stay || (s.Name == "offline_access" && s.Description == "Stay signed in")
	}
	if !stay {
		t.Fatalf("scopes %+v", lr.Scopes)
	}
	var ar devices.ApproveResponse
	if code := call(t, in, "POST", "/api/v1/link-requests/"+da.UserCode+"/approve", app.AccessToken, `{"device_name":"Kitchen"}`, &ar); code != 200 {
		t.Fatalf("approve: %d", code)
	}
	tok, err := tv.DeviceAccessToken(ctx, da)
	if err != nil {
		t.Fatal(err)
	}
	if code := call(t, in, "GET", "/userinfo", tok.AccessToken, "", nil); code != 200 {
		t.Fatalf("device userinfo: %d", code)
	}
	if code := call(t, in, "GET", "/api/v1/devices", tok.AccessToken, "", nil); code != http.StatusForbidden {
		t.Fatalf("device token on the API: %d, want 403", code)
	}
	if code := call(t, in, "DELETE", "/api/v1/devices/"+ar.Device.ID, app.AccessToken, "", nil); code != http.StatusNoContent {
		t.Fatalf("unlink: %d", code)
	}
	if code := call(t, in, "GET", "/userinfo", tok.AccessToken, "", nil); code == 200 {
		t.Fatal("unlinked device's token still works")
	}
	if _, err := tv.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); oauthErrorCode(err) != "invalid_grant" {
		t.Fatalf("unlinked device refreshed: %v", err)
	}
}

func TestLoginPageRefusesForgedFormsAndBadRedirects(t *testing.T) {
	in := linkdtest.Start(t, linkdtest.Options{})
	in.CreateUser(t, "ivan", "pw")
	noRedirect := &http.Client{Transport: in.Client.Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	for _, redirect := range []string{"http://127.0.0.1:5555/other", "https://evil.example/callback", "http://192.168.1.2:5555/callback"} {
		u := in.AppConfig(redirect).AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
		resp, err := noRedirect.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); strings.HasPrefix(loc, "/login") || strings.Contains(loc, "evil") || strings.Contains(loc, "192.168") {
			t.Errorf("redirect %s accepted (Location %q)", redirect, loc)
		}
	}

	resp, err := noRedirect.Get(in.AppConfig("http://127.0.0.1:5555/callback").AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	id := loc.Query().Get("authRequestID")
	if loc.Path != "/login" || id == "" {
		t.Fatalf("authorize redirected to %v", loc)
	}
	page, err := in.Client.Get(in.URL + "/login?authRequestID=" + url.QueryEscape(id))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(page.Body)
	page.Body.Close()
	if page.StatusCode != 200 || !strings.Contains(string(b), `name="username"`) || !strings.Contains(string(b), `name="csrf_token"`) || !strings.Contains(string(b), "Linkdesk") {
		t.Fatalf("login page %d: %s", page.StatusCode, b)
	}
	if csp := page.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Fatalf("CSP %q", csp)
	}
	resp, err = noRedirect.PostForm(in.URL+"/login", url.Values{"authRequestID": {id}, "csrf_token": {"forged"}, "username": {"ivan"}, "password": {"pw"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("forged CSRF token: %d", resp.StatusCode)
	}
	page, err = in.Client.Get(in.URL + "/login?authRequestID=nonsense")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(page.Body)
	page.Body.Close()
	if page.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "start signing in again") {
		t.Fatalf("unknown auth request: %d %s", page.StatusCode, b)
	}
}

func TestAppTokenSurvivesRestart(t *testing.T) {
	in := linkdtest.Start(t, linkdtest.Options{})
	in.CreateUser(t, "jo", "pw")
	tok := in.AppToken(t, "jo", "pw")
	dir := in.Dir
	in.Close()
	again := linkdtest.Start(t, linkdtest.Options{Dir: dir})
	if _, err := again.Server.Provider().VerifyAccessToken(context.Background(), tok.AccessToken); err != nil {
		t.Fatalf("access token after restart: %v", err)
	}
	if code := call(t, again, "GET", "/api/v1/me", tok.AccessToken, "", nil); code != 200 {
		t.Fatalf("/api/v1/me after restart: %d", code)
	}
}

// TestKioskWaitsOnPushChannel checks linkd mounts POST /device/wait: the kiosk's
// wait answers "approved" once the code is approved, and the next poll gets tokens.
func TestKioskWaitsOnPushChannel(t *testing.T) {
	in := linkdtest.Start(t, linkdtest.Options{})
	u := in.CreateUser(t, "lee", "pw")
	ctx := in.Context(context.Background())
	kiosk := deviceConfig(in, devices.KioskClientID)
	da, err := kiosk.DeviceAuth(ctx, oauth2.SetAuthURLParam(devices.ParamDeviceKind, "kiosk"))
	if err != nil {
		t.Fatal(err)
	}
	status := make(chan string, 1)
	go func() {
		resp, err := in.Client.PostForm(in.URL+"/device/wait", url.Values{"client_id": {devices.KioskClientID}, "device_code": {da.DeviceCode}})
		if err != nil {
			status <- err.Error()
			return
		}
		defer resp.Body.Close()
		var ws struct {
			Status string `json:"status"`
		}
		json.NewDecoder(resp.Body).Decode(&ws)
		status <- ws.Status
	}()
	in.Approve(t, da.UserCode, u.Subject)
	if got := <-status; got != "approved" {
		t.Fatalf("wait answered %q", got)
	}
	if _, err := kiosk.DeviceAccessToken(ctx, da); err != nil {
		t.Fatal(err)
	}
}
