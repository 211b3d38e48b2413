package linkd_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/html"
	"golang.org/x/oauth2"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/geoip/geoiptest"
	"github.com/linkdesk/linkdesk/server/linkd"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest/browsertest"
)

// originEnv is a linkd behind a trusted proxy on 127.0.0.1, so each caller's address
// is the one its X-Forwarded-For names: a TV and a phone on different networks.
type originEnv struct {
	in    *linkdtest.Instance
	alice string // subject
	token *oauth2.Token
}

func newOriginEnv(t *testing.T, geoDB string) *originEnv {
	t.Helper()
	trusted, err := linkd.ParseTrustedProxies([]string{"127.0.0.1/32"})
	if err != nil {
		t.Fatal(err)
	}
	in := linkdtest.Start(t, linkdtest.Options{TrustedProxies: trusted, GeoIPDB: geoDB})
	u := in.CreateUser(t, "alice", "correct horse battery")
	return &originEnv{in: in, alice: u.Subject, token: in.AppToken(t, "alice", "correct horse battery")}
}

// from is an HTTP client whose requests come from ip, as the proxy tells linkd.
func (e *originEnv) from(ip string) *http.Client {
	return &http.Client{Transport: viaProxy{e.in.Client.Transport, http.Header{"X-Forwarded-For": {ip}}}}
}

// app is the Linkdesk app's API client on ip.
func (e *originEnv) app(ip string) *devices.Client {
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, e.from(ip))
	return devices.NewClient(e.in.Issuer, oauth2.NewClient(ctx, oauth2.StaticTokenSource(e.token)))
}

// device asks for a code as a kiosk on ip.
func (e *originEnv) device(t *testing.T, ip string) *oauth2.DeviceAuthResponse {
	t.Helper()
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, e.from(ip))
	da, err := deviceConfig(e.in, devices.KioskClientID).DeviceAuth(ctx,
		oauth2.SetAuthURLParam(devices.ParamDeviceName, "Hall TV"))
	if err != nil {
		t.Fatal(err)
	}
	return da
}

// poll is one token request of the device on ip: its OAuth error, or "" with tokens.
func (e *originEnv) poll(t *testing.T, ip, deviceCode string) string {
	t.Helper()
	resp, err := e.from(ip).PostForm(e.in.URL+"/oauth/token", url.Values{
		"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "client_id": {devices.KioskClientID}, "device_code": {deviceCode}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Error       string `json:"error"`
		AccessToken string `json:"access_token"`
	}
	if err := jsonDecode(resp, &body); err != nil || (body.Error == "" && body.AccessToken == "") {
		t.Fatalf("token answer %d: %+v %v", resp.StatusCode, body, err)
	}
	return body.Error
}

// rawAPI is the body of an authenticated GET of the management API from ip.
func (e *originEnv) rawAPI(t *testing.T, ip, path string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.in.URL+devices.APIPrefix+path, nil)
	req.Header.Set("Authorization", "Bearer "+e.token.AccessToken)
	resp, err := e.from(ip).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return string(b)
}

const (
	tvIP    = "203.0.113.7"   // Lisbon, Portugal in the test database
	phoneIP = "198.51.100.9"  // Bavaria, Germany: another network
	nearIP  = "203.0.113.200" // the TV's network
)

// A request from another network than the approver's cannot be approved through the
// API without "confirmed_in_front": linkd answers the stable confirmation_required
// problem, and the request stays pending (the device keeps hearing
// authorization_pending). With it, the device links. The request's place and the
// linked device's last place come from the location database.
func TestAPIApproveFromAnotherNetworkNeedsConfirmation(t *testing.T) {
	e := newOriginEnv(t, geoiptest.Write(t))
	ctx := context.Background()
	da := e.device(t, tvIP)
	app := e.app(phoneIP)

	req, err := app.LinkRequest(ctx, da.UserCode)
	if err != nil {
		t.Fatal(err)
	}
	want := devices.Place{City: "Lisbon", Region: "Lisbon", Country: "Portugal", CountryCode: "PT"}
	if req.Origin.IP != tvIP || req.Origin.SameNetwork || req.Origin.Place != want {
		t.Errorf("origin %+v, want %s, another network, %+v", req.Origin, tvIP, want)
	}
	if got, line := req.Origin.Line(), "Requested from Lisbon, Portugal (203.0.113.7) — not your network"; got != line {
		t.Errorf("origin line %q, want %q", got, line)
	}
	raw := e.rawAPI(t, phoneIP, "/link-requests/"+da.UserCode)
	if !strings.Contains(raw, `"place":{"city":"Lisbon","region":"Lisbon","country":"Portugal","country_code":"PT"}`) {
		t.Errorf("link request JSON without the place: %s", raw)
	}

	for _, body := range []devices.ApproveRequest{{}, {DeviceName: "Hall"}} {
		_, err = app.ApproveWith(ctx, da.UserCode, body)
		var apiErr *devices.APIError
		if !errors.As(err, &apiErr) || apiErr.Code != devices.CodeConfirmationRequired || apiErr.Status != http.StatusUnprocessableEntity {
			t.Fatalf("approve %+v without confirmation: %v, want 422 %s", body, err, devices.CodeConfirmationRequired)
		}
	}
	if got := e.poll(t, tvIP, da.DeviceCode); got != "authorization_pending" {
		t.Fatalf("device after the refused approval: %q, want authorization_pending", got)
	}
	if _, err := app.LinkRequest(ctx, da.UserCode); err != nil {
		t.Fatalf("request no longer pending after the refused approval: %v", err)
	}
	if list, err := app.Devices(ctx); err != nil || len(list) != 0 {
		t.Fatalf("devices after the refused approval: %v %v", list, err)
	}

	dev, err := app.ApproveWith(ctx, da.UserCode, devices.ApproveRequest{ConfirmedInFront: true})
	if err != nil {
		t.Fatalf("approve with confirmation: %v", err)
	}
	if got := e.poll(t, tvIP, da.DeviceCode); got != "" {
		t.Fatalf("device after approval: %q", got)
	}
	list, err := app.Devices(ctx)
	if err != nil || len(list) != 1 || list[0].ID != dev.ID {
		t.Fatalf("devices %+v %v", list, err)
	}
	if d := list[0]; d.LastIP != tvIP || d.LastPlace != want {
		t.Errorf("linked device last seen at %q %+v, want %s %+v", d.LastIP, d.LastPlace, tvIP, want)
	}
	if raw := e.rawAPI(t, phoneIP, "/devices"); !strings.Contains(raw, `"last_place":{"city":"Lisbon"`) {
		t.Errorf("devices JSON without last_place: %s", raw)
	}

	// From the device's own network no confirmation is needed.
	da = e.device(t, tvIP)
	if _, err := e.app(nearIP).Approve(ctx, da.UserCode, ""); err != nil {
		t.Fatalf("approve from the device's network: %v", err)
	}
}

// Without a location database nothing about places is shown, and the rule holds all
// the same.
func TestNoPlaceWithoutDatabase(t *testing.T) {
	e := newOriginEnv(t, "")
	ctx := context.Background()
	da := e.device(t, tvIP)
	app := e.app(phoneIP)
	req, err := app.LinkRequest(ctx, da.UserCode)
	if err != nil {
		t.Fatal(err)
	}
	if req.Origin.Place != (devices.Place{}) || req.Origin.Line() != "Requested from 203.0.113.7 — not your network" {
		t.Errorf("origin %+v: %q", req.Origin, req.Origin.Line())
	}
	if raw := e.rawAPI(t, phoneIP, "/link-requests/"+da.UserCode); strings.Contains(raw, "place") {
		t.Errorf("link request JSON names a place: %s", raw)
	}
	if _, err := app.Approve(ctx, da.UserCode, ""); !isProblem(err, devices.CodeConfirmationRequired) {
		t.Fatalf("approve without confirmation: %v", err)
	}
	if _, err := app.ApproveWith(ctx, da.UserCode, devices.ApproveRequest{ConfirmedInFront: true}); err != nil {
		t.Fatal(err)
	}
	if got := e.poll(t, tvIP, da.DeviceCode); got != "" {
		t.Fatalf("device after approval: %q", got)
	}
	if raw := e.rawAPI(t, phoneIP, "/devices"); strings.Contains(raw, "place") || !strings.Contains(raw, tvIP) {
		t.Errorf("devices JSON: %s", raw)
	}
}

func isProblem(err error, code string) bool {
	var apiErr *devices.APIError
	return errors.As(err, &apiErr) && apiErr.Code == code
}

// The web confirm page says where the request came from in one line and, from another
// network, asks for the tick: a submission without it is refused with a clear message
// and links nothing; with it, the device links. From the device's own network there
// is no tick.
func TestWebConfirmFromAnotherNetworkNeedsTick(t *testing.T) {
	e := newOriginEnv(t, geoiptest.Write(t))
	da := e.device(t, tvIP)

	phone := browsertest.New(e.in.URL, viaProxy{e.in.Client.Transport, http.Header{"X-Forwarded-For": {phoneIP}}})
	if _, err := phone.SignIn("/signin", "alice", "correct horse battery", nil); err != nil {
		t.Fatal(err)
	}
	p, err := phone.Get("/link")
	if err != nil {
		t.Fatal(err)
	}
	p, err = phone.Submit(p, "/link", url.Values{"user_code": {da.UserCode}})
	if err != nil {
		t.Fatal(err)
	}
	p.WantStatus(t, http.StatusOK)
	p.MustSay(t, "Requested from Lisbon, Portugal (203.0.113.7) — not your network",
		"I am in front of this device and I started this")
	if !hasInput(p, "in_front") {
		t.Fatal("no in_front tick on the confirm page from another network")
	}

	refused, err := phone.Submit(p, "/link/confirm", url.Values{"action": {"approve"}})
	if err != nil {
		t.Fatal(err)
	}
	refused.WantStatus(t, http.StatusUnprocessableEntity)
	refused.MustSay(t, "Tick “I am in front of this device and I started this” to link it")
	if got := e.poll(t, tvIP, da.DeviceCode); got != "authorization_pending" {
		t.Fatalf("device after the refused approval: %q, want authorization_pending", got)
	}

	linked, err := phone.Submit(refused, "/link/confirm", url.Values{"action": {"approve"}, "in_front": {"1"}})
	if err != nil {
		t.Fatal(err)
	}
	linked.WantStatus(t, http.StatusOK)
	linked.MustSay(t, "Device linked")
	if got := e.poll(t, tvIP, da.DeviceCode); got != "" {
		t.Fatalf("device after approval: %q", got)
	}

	// The TV's own network: no tick, and approving needs none.
	da = e.device(t, tvIP)
	near := browsertest.New(e.in.URL, viaProxy{e.in.Client.Transport, http.Header{"X-Forwarded-For": {nearIP}}})
	if _, err := near.SignIn("/signin", "alice", "correct horse battery", nil); err != nil {
		t.Fatal(err)
	}
	p, err = near.Get("/link?user_code=" + da.UserCode)
	if err != nil {
		t.Fatal(err)
	}
	p.MustSay(t, "Check that your device shows this code")
	p, err = near.Submit(p, "/link", nil)
	if err != nil {
		t.Fatal(err)
	}
	p.MustSay(t, "Requested from Lisbon, Portugal (203.0.113.7) — your network")
	if hasInput(p, "in_front") {
		t.Error("a tick on the confirm page from the device's own network")
	}
	p, err = near.Submit(p, "/link/confirm", url.Values{"action": {"approve"}})
	if err != nil {
		t.Fatal(err)
	}
	p.MustSay(t, "Device linked")
}

func hasInput(p *browsertest.Page, name string) bool {
	found := false
	browsertest.Walk(p.Doc, func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "input" && browsertest.Attr(n, "name") == name {
			found = true
		}
	})
	return found
}
