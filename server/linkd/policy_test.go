package linkd_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/linkd"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest/browsertest"
	"github.com/linkdesk/linkdesk/server/store"
)

// The operator's rules per device client (linkd clients add/update), seen through a
// real linkd behind a trusted proxy on 127.0.0.1 whose X-Forwarded-For places each
// caller on a network: the TVs on 192.0.2.0/24, phones at home on the same network or
// away on 198.51.100.0/24.
const (
	policyTVIP = "192.0.2.10"
	homeIP     = "192.0.2.20"
	awayIP     = "198.51.100.5"
	policyTV   = "shop-tv"
	policyPass = "pw-alice"
)

func policyLinkd(t *testing.T, clock *linkdtest.Clock, p store.ClientPolicy) *linkdtest.Instance {
	t.Helper()
	trusted, err := linkd.ParseTrustedProxies([]string{"127.0.0.0/8", "::1"})
	if err != nil {
		t.Fatal(err)
	}
	in := linkdtest.Start(t, linkdtest.Options{TrustedProxies: trusted, Clock: clock, PollInterval: time.Second})
	if err := in.Store.UpsertClient(context.Background(), store.Client{ID: policyTV, Name: "Shop TV",
		Scopes:     []string{"openid", "profile", "offline_access"},
		GrantTypes: []string{"urn:ietf:params:oauth:grant-type:device_code", "refresh_token"},
		CreatedAt:  time.Now(), Policy: p}); err != nil {
		t.Fatal(err)
	}
	return in
}

// askToLink is a TV at ip starting the device flow with x/oauth2.
func askToLink(in *linkdtest.Instance, ip, name string) (*oauth2.DeviceAuthResponse, error) {
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, from(in, ip))
	return deviceConfig(in, policyTV).DeviceAuth(ctx, oauth2.SetAuthURLParam(devices.ParamDeviceName, name))
}

// appAt is the linkdesk app of username, calling the management API from ip.
func appAt(t *testing.T, in *linkdtest.Instance, username, ip string) *devices.Client {
	t.Helper()
	tok := in.AppToken(t, username, policyPass)
	return devices.NewClient(in.Issuer, &http.Client{Transport: &oauth2.Transport{
		Source: oauth2.StaticTokenSource(tok), Base: viaProxy{in.Client.Transport, http.Header{"X-Forwarded-For": {ip}}}}})
}

func refusal(t *testing.T, err error) *oauth2.RetrieveError {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("device authorization: %v, want an OAuth error", err)
	}
	return re
}

func apiProblem(t *testing.T, err error, code string) *devices.APIError {
	t.Helper()
	var pe *devices.APIError
	if !errors.As(err, &pe) || pe.Code != code {
		t.Fatalf("error %v, want problem %s", err, code)
	}
	return pe
}

// A client limited to some networks refuses device requests from elsewhere with
// unauthorized_client (naming no network), and accepts its own; with the device flow
// turned off it refuses every one.
func TestClientPolicyNetworksAndFlowOff(t *testing.T) {
	in := policyLinkd(t, nil, store.ClientPolicy{AllowedNetworks: []string{"192.0.2.0/24"}})
	if da, err := askToLink(in, policyTVIP, "Shop TV 1"); err != nil || da.UserCode == "" {
		t.Fatalf("from an allowed network: %v", err)
	}
	_, err := askToLink(in, awayIP, "Elsewhere TV")
	re := refusal(t, err)
	if re.ErrorCode != "unauthorized_client" || re.Response.StatusCode != http.StatusBadRequest ||
		!strings.Contains(re.ErrorDescription, "network") || strings.Contains(re.ErrorDescription, "192.0.2") {
		t.Fatalf("from another network: %d %s %q", re.Response.StatusCode, re.ErrorCode, re.ErrorDescription)
	}

	c, err := in.Store.ClientByID(context.Background(), policyTV)
	if err != nil {
		t.Fatal(err)
	}
	c.Policy.DeviceFlowOff = true
	if err := in.Store.UpsertClient(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	_, err = askToLink(in, policyTVIP, "Shop TV 2")
	if re := refusal(t, err); re.ErrorCode != "unauthorized_client" || !strings.Contains(re.ErrorDescription, "turned off") {
		t.Fatalf("flow off: %s %q", re.ErrorCode, re.ErrorDescription)
	}
}

// With approval only from the device's network, an approver elsewhere is refused with
// a stable problem code (API) and plain words (web), the request stays pending, and an
// approver at home links it.
func TestClientPolicyApproveSameNetwork(t *testing.T) {
	in := policyLinkd(t, nil, store.ClientPolicy{ApproveSameNetwork: true})
	in.CreateUser(t, "alice", policyPass)
	da, err := askToLink(in, policyTVIP, "Shop TV")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err = appAt(t, in, "alice", awayIP).Approve(ctx, da.UserCode, "")
	if pe := apiProblem(t, err, devices.CodeOtherNetwork); pe.Status != http.StatusForbidden {
		t.Fatalf("status %d", pe.Status)
	}

	phone := webAt(t, in, awayIP)
	page := confirmOnWeb(t, phone, da.UserCode)
	if !strings.Contains(page, "Approve this from the device") || !strings.Contains(page, "still waiting") {
		t.Fatalf("web page from another network:\n%s", page)
	}

	code, _ := devices.NormalizeCode(da.UserCode)
	if d, err := in.Store.DeviceAuthByUserCode(ctx, code); err != nil || d.State != store.DeviceAuthPending {
		t.Fatalf("after refusals the request is %v (%v), want pending", d.State, err)
	}
	if dev, err := appAt(t, in, "alice", homeIP).Approve(ctx, da.UserCode, ""); err != nil || dev.Name != "Shop TV" {
		t.Fatalf("approve from the device's network: %+v %v", dev, err)
	}
}

// With at most two devices per account, the third is refused with the two linked
// ones named (API problem member, web list with links); after unlinking one it links.
func TestClientPolicyMaxDevices(t *testing.T) {
	in := policyLinkd(t, nil, store.ClientPolicy{MaxDevices: 2})
	in.CreateUser(t, "alice", policyPass)
	bob := in.CreateUser(t, "bob", policyPass)
	ctx := context.Background()
	app := appAt(t, in, "alice", homeIP)
	var linked []devices.Device
	for _, name := range []string{"Kitchen TV", "Bedroom TV"} {
		da, err := askToLink(in, policyTVIP, name)
		if err != nil {
			t.Fatal(err)
		}
		d, err := app.Approve(ctx, da.UserCode, "")
		if err != nil {
			t.Fatal(err)
		}
		linked = append(linked, d)
	}
	// Another account's link and a link of another client do not count.
	other, err := askToLink(in, policyTVIP, "Bob's TV")
	if err != nil {
		t.Fatal(err)
	}
	in.Approve(t, other.UserCode, bob.Subject)

	third, err := askToLink(in, policyTVIP, "Hall TV")
	if err != nil {
		t.Fatal(err)
	}
	_, err = app.Approve(ctx, third.UserCode, "")
	pe := apiProblem(t, err, devices.CodeTooManyDevices)
	if pe.Status != http.StatusConflict || len(pe.LinkedDevices) != 2 {
		t.Fatalf("problem %+v", pe)
	}
	names := map[string]string{}
	for _, d := range pe.LinkedDevices {
		names[d.ID] = d.Name
	}
	if names[linked[0].ID] != "Kitchen TV" || names[linked[1].ID] != "Bedroom TV" {
		t.Fatalf("the problem names %v, want alice's two TVs", names)
	}

	page := confirmOnWeb(t, webAt(t, in, homeIP), third.UserCode)
	for _, want := range []string{"Unlink a device first", "Kitchen TV", "Bedroom TV", "/devices/" + linked[0].ID + "/unlink", `href="/devices"`} {
		if !strings.Contains(page, want) {
			t.Fatalf("web page lacks %q:\n%s", want, page)
		}
	}

	if err := app.Unlink(ctx, linked[0].ID); err != nil {
		t.Fatal(err)
	}
	if d, err := app.Approve(ctx, third.UserCode, ""); err != nil || d.Name != "Hall TV" {
		t.Fatalf("after unlinking one: %+v %v", d, err)
	}
}

// Links unused for longer than the client allows end: at the device's next refresh
// (even before a sweep) and by the sweeper; either way the account's stream hears
// device.unlinked and the API no longer lists the device.
func TestClientPolicyIdleUnlink(t *testing.T) {
	clock := linkdtest.NewClock(time.Time{})
	in := policyLinkd(t, clock, store.ClientPolicy{UnlinkAfter: 720 * time.Hour})
	alice := in.CreateUser(t, "alice", policyPass)
	ctx := context.Background()
	conf := deviceConfig(in, policyTV)
	tvCtx := context.WithValue(ctx, oauth2.HTTPClient, from(in, policyTVIP))

	// Two TVs: one keeps refreshing, one never comes back.
	used, err := askToLink(in, policyTVIP, "Used TV")
	if err != nil {
		t.Fatal(err)
	}
	usedGrant := in.Approve(t, used.UserCode, alice.Subject)
	tok, err := conf.DeviceAccessToken(tvCtx, used)
	if err != nil {
		t.Fatal(err)
	}
	idle, err := askToLink(in, policyTVIP, "Idle TV")
	if err != nil {
		t.Fatal(err)
	}
	idleGrant := in.Approve(t, idle.UserCode, alice.Subject)
	idleTok, err := conf.DeviceAccessToken(tvCtx, idle)
	if err != nil {
		t.Fatal(err)
	}

	// 20 days on the used TV refreshes; 20 more and the idle one is 40 days unused.
	clock.Advance(20 * 24 * time.Hour)
	if tok, err = conf.TokenSource(tvCtx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err != nil {
		t.Fatalf("refresh after 20 days: %v", err)
	}
	clock.Advance(20 * 24 * time.Hour)

	sub := in.Server.Events().SubscribeAccount(alice.Subject, 0)
	defer sub.Close()
	_, err = conf.TokenSource(tvCtx, &oauth2.Token{RefreshToken: idleTok.RefreshToken}).Token()
	if oauthErrorCode(err) != "invalid_grant" {
		t.Fatalf("refresh of the idle link: %v, want invalid_grant", err)
	}
	if ev := policyEvent(t, sub.C, "unlink at refresh"); ev.Type != devices.EventUnlinked || ev.Device.ID != idleGrant.ID {
		t.Fatalf("event %+v, want the idle TV unlinked", ev)
	}

	// The used TV idles too; the sweeper ends it without any refresh.
	clock.Advance(31 * 24 * time.Hour)
	n, err := in.Server.Links().SweepIdle(ctx)
	if err != nil || n != 1 {
		t.Fatalf("sweep: %d %v, want 1", n, err)
	}
	if ev := policyEvent(t, sub.C, "unlink by sweep"); ev.Type != devices.EventUnlinked || ev.Device.ID != usedGrant.ID {
		t.Fatalf("event %+v, want the used TV unlinked", ev)
	}
	list, err := appAt(t, in, "alice", homeIP).Devices(ctx)
	if err != nil || len(list) != 0 {
		t.Fatalf("devices after idle unlinking: %+v %v", list, err)
	}
	if _, err := conf.TokenSource(tvCtx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); oauthErrorCode(err) != "invalid_grant" {
		t.Fatalf("refresh after the sweep: %v", err)
	}
}

func policyEvent(t *testing.T, evs <-chan devices.Event, what string) devices.Event {
	t.Helper()
	select {
	case ev := <-evs:
		return ev
	case <-time.After(30 * time.Second):
		t.Fatalf("no event for %s within 30 s", what)
	}
	return devices.Event{}
}

// webAt is alice's phone browser, signed in to the web pages from ip.
func webAt(t *testing.T, in *linkdtest.Instance, ip string) *browsertest.Browser {
	t.Helper()
	b := browsertest.New(in.URL, viaProxy{in.Client.Transport, http.Header{"X-Forwarded-For": {ip}}})
	if _, err := b.SignIn("/signin", "alice", policyPass, nil); err != nil {
		t.Fatal(err)
	}
	return b
}

// confirmOnWeb enters userCode on /link and presses Link device; it returns the page
// that answers.
func confirmOnWeb(t *testing.T, b *browsertest.Browser, userCode string) string {
	t.Helper()
	p, err := b.Get("/link")
	if err != nil {
		t.Fatal(err)
	}
	if p, err = b.Submit(p, "/link", url.Values{"user_code": {userCode}}); err != nil {
		t.Fatal(err)
	}
	if p, err = b.Submit(p, "/link/confirm", url.Values{"action": {"approve"}}); err != nil {
		t.Fatal(err)
	}
	return p.Body
}
