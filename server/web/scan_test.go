package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest"
	"github.com/linkdesk/linkdesk/server/store"
)

// TestBrowserScanPath is the whole story on a real linkd: a TV asks for a code (x/oauth2
// DeviceAuth), a person opens its verification_uri_complete in Chromium as a phone
// would after scanning the QR code, checks the code, signs in with password and TOTP,
// confirms, and the TV's poll (DeviceAccessToken) gets tokens that work. Then the
// person unlinks the TV on /devices and the TV's very next request fails.
func TestBrowserScanPath(t *testing.T) {
	in := linkdtest.Start(t, linkdtest.Options{})
	ctx := chrome(t)
	const pw = "correct horse battery staple"
	_, secret := in.CreateUserWithTOTP(t, "carol", pw)
	if err := in.Store.UpsertClient(context.Background(), store.Client{
		ID: "tvapp", Name: "Example TV", Scopes: []string{"openid", "profile", "offline_access"},
		GrantTypes: []string{"urn:ietf:params:oauth:grant-type:device_code", "refresh_token"},
	}); err != nil {
		t.Fatal(err)
	}

	// The TV asks for a code.
	tv := &oauth2.Config{ClientID: "tvapp", Endpoint: in.Endpoint(), Scopes: []string{"openid", "profile", "offline_access"}}
	octx := in.Context(context.Background())
	da, err := tv.DeviceAuth(octx,
		oauth2.SetAuthURLParam(devices.ParamDeviceName, "Living room TV"),
		oauth2.SetAuthURLParam(devices.ParamDeviceModel, "Bravia X90"),
		oauth2.SetAuthURLParam(devices.ParamDeviceKind, "tv"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(da.VerificationURIComplete, in.URL+"/link?user_code=") {
		t.Fatalf("verification_uri_complete %q", da.VerificationURIComplete)
	}
	// ...and polls, as it would, while the person acts.
	type result struct {
		tok *oauth2.Token
		err error
	}
	polled := make(chan result, 1)
	pollCtx, stopPoll := context.WithTimeout(octx, 2*time.Minute)
	defer stopPoll()
	go func() {
		tok, err := tv.DeviceAccessToken(pollCtx, da)
		polled <- result{tok, err}
	}()

	run := func(actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatal(err)
		}
	}
	run(chromedp.EmulateViewport(360, 740, chromedp.EmulateMobile), chromedp.Navigate(da.VerificationURIComplete),
		chromedp.WaitVisible(chromedp.CSS(".bigcode")))
	code, _ := devices.NormalizeCode(da.UserCode)
	mustContain(t, ctx, "Check that your device shows this code", devices.FormatCode(code))
	shoot(t, ctx, "scan-check", false)
	run(chromedp.Click(chromedp.CSS(`main form button[type="submit"]`)), chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#username"), "carol"),
		chromedp.SendKeys(chromedp.CSS("#password"), pw),
		chromedp.Submit(chromedp.CSS("#password")),
		chromedp.WaitVisible(chromedp.CSS("#otp")))
	otp := totpAt(secret, time.Now())
	run(chromedp.SendKeys(chromedp.CSS("#otp"), otp), chromedp.Submit(chromedp.CSS("#otp")),
		chromedp.WaitVisible(chromedp.CSS(`button[value="approve"]`)))
	mustContain(t, ctx, "Living room TV", "TV · Bravia X90", "Example TV", "Carol (carol)", "Not you? Switch account")
	shoot(t, ctx, "scan-confirm", false)
	run(chromedp.Click(chromedp.CSS(`button[value="approve"]`)), chromedp.WaitVisible(chromedp.CSS("#res-h")))
	mustContain(t, ctx, "Device linked", "Living room TV is now linked to your account through Example TV")
	shoot(t, ctx, "scan-linked", false)

	var res result
	select {
	case res = <-polled:
	case <-pollCtx.Done():
		t.Fatal("the TV's poll never got an answer")
	}
	if res.err != nil {
		t.Fatalf("the TV's poll: %v", res.err)
	}
	if res.tok.AccessToken == "" || res.tok.RefreshToken == "" {
		t.Fatalf("the TV got %+v, want access and refresh tokens", res.tok)
	}
	userinfo := discover(t, in).UserinfoEndpoint
	if got := bearerStatus(t, in, userinfo, res.tok.AccessToken); got != http.StatusOK {
		t.Fatalf("the TV's token on userinfo: %d, want 200", got)
	}

	// Unlink it from /devices, through the confirm step.
	run(chromedp.Navigate(in.URL+"/devices"), chromedp.WaitVisible(chromedp.CSS(".device")))
	mustContain(t, ctx, "Living room TV", "Example TV")
	run(chromedp.Click(chromedp.CSS("a.button.danger")), chromedp.WaitVisible(chromedp.CSS("button.danger")))
	mustContain(t, ctx, "Unlink Living room TV?")
	run(chromedp.Click(chromedp.CSS("button.danger")), chromedp.WaitVisible(chromedp.CSS(".notice")))
	mustContain(t, ctx, "“Living room TV” is unlinked", "No devices are linked")

	// The TV's next request fails, and so does its refresh.
	if got := bearerStatus(t, in, userinfo, res.tok.AccessToken); got != http.StatusUnauthorized && got != http.StatusForbidden {
		t.Fatalf("the unlinked TV's token on userinfo: %d, want 401 or 403", got)
	}
	if _, err := tv.TokenSource(octx, &oauth2.Token{RefreshToken: res.tok.RefreshToken}).Token(); err == nil {
		t.Fatal("the unlinked TV could still refresh its token")
	}
}

type discovery struct {
	UserinfoEndpoint string `json:"userinfo_endpoint"`
}

func discover(t *testing.T, in *linkdtest.Instance) discovery {
	t.Helper()
	resp, err := in.Client.Get(in.URL + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d discovery
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil || d.UserinfoEndpoint == "" {
		t.Fatalf("discovery: %v %+v", err, d)
	}
	return d
}

func bearerStatus(t *testing.T, in *linkdtest.Instance, endpoint, token string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, endpoint, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := in.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
