package devices_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/linkd"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest"
)

// The management client against a whole real linkd: a TV (golang.org/x/oauth2's
// device flow) asks for a code, the app looks it up and approves it, lists,
// renames and unlinks the device, and the TV's tokens die with the link.
func TestClientAgainstRealLinkd(t *testing.T) {
	in := linkdtest.Start(t, linkdtest.Options{Dev: true})
	in.CreateUser(t, "alice", "correct horse battery staple")
	appTok := in.AppToken(t, "alice", "correct horse battery staple")
	ctx := t.Context()
	app := devices.NewClient(in.Issuer, oauth2.NewClient(in.Context(ctx), oauth2.StaticTokenSource(appTok)))

	me, err := app.Me(ctx)
	if err != nil || me.Username != "alice" {
		t.Fatalf("Me = %+v, %v", me, err)
	}
	evs, err := app.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}

	tv := &oauth2.Config{ClientID: linkd.DemoClientID, Endpoint: in.Endpoint(), Scopes: []string{"openid", "profile", "offline_access"}}
	da, err := tv.DeviceAuth(in.Context(ctx),
		oauth2.SetAuthURLParam(devices.ParamDeviceName, "Kitchen TV"),
		oauth2.SetAuthURLParam(devices.ParamDeviceModel, "KT-1"),
		oauth2.SetAuthURLParam(devices.ParamDeviceKind, "tv"))
	if err != nil {
		t.Fatal(err)
	}
	type polled struct {
		tok *oauth2.Token
		err error
	}
	poll := make(chan polled, 1)
	go func() {
		tok, err := tv.DeviceAccessToken(in.Context(ctx), da)
		poll <- polled{tok, err}
	}()

	// The person pastes the verification link; it points at this issuer.
	code, err := devices.ParseCodeInput(da.VerificationURIComplete, in.Issuer)
	if err != nil {
		t.Fatalf("ParseCodeInput(%q): %v", da.VerificationURIComplete, err)
	}
	lr, err := app.LinkRequest(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	if lr.Client.ID != linkd.DemoClientID || lr.Device.Name != "Kitchen TV" || lr.Device.Kind != devices.KindTV {
		t.Fatalf("LinkRequest = %+v", lr)
	}
	dev, err := app.Approve(ctx, code, "Den TV")
	if err != nil || dev.Name != "Den TV" {
		t.Fatalf("Approve = %+v, %v", dev, err)
	}
	var tvTok *oauth2.Token
	select {
	case p := <-poll:
		if p.err != nil {
			t.Fatalf("device poll: %v", p.err)
		}
		tvTok = p.tok
	case <-time.After(30 * time.Second):
		t.Fatal("device got no token within 30 s of approval")
	}
	if ev := nextEvent(t, evs); ev.Type != devices.EventLinked || ev.Device.ID != dev.ID {
		t.Fatalf("event = %+v", ev)
	}
	_, err = app.Approve(ctx, code, "")
	wantAPIError(t, err, http.StatusConflict, devices.CodeAlreadyUsed)

	// The TV's own token can't use the management API.
	tvAPI := devices.NewClient(in.Issuer, oauth2.NewClient(in.Context(ctx), oauth2.StaticTokenSource(tvTok)))
	_, err = tvAPI.Devices(ctx)
	wantAPIError(t, err, http.StatusForbidden, devices.CodeForbidden)

	list, err := app.Devices(ctx)
	if err != nil || len(list) != 1 || list[0].ID != dev.ID || list[0].Client.ID != linkd.DemoClientID {
		t.Fatalf("Devices = %+v, %v", list, err)
	}
	if d, err := app.Rename(ctx, dev.ID, "Bedroom TV"); err != nil || d.Name != "Bedroom TV" {
		t.Fatalf("Rename = %+v, %v", d, err)
	}
	if ev := nextEvent(t, evs); ev.Type != devices.EventRenamed || ev.Device.Name != "Bedroom TV" {
		t.Fatalf("event = %+v", ev)
	}
	if err := app.Unlink(ctx, dev.ID); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, evs); ev.Type != devices.EventUnlinked || ev.Device.ID != dev.ID {
		t.Fatalf("event = %+v", ev)
	}
	if list, err := app.Devices(ctx); err != nil || len(list) != 0 {
		t.Fatalf("Devices after unlink = %+v, %v", list, err)
	}
	// The TV's refresh token died with the link.
	if _, err := tv.TokenSource(in.Context(ctx), &oauth2.Token{RefreshToken: tvTok.RefreshToken}).Token(); err == nil {
		t.Fatal("unlinked device could still refresh")
	}

	// A second TV is denied: its poll ends with access_denied.
	da2, err := tv.DeviceAuth(in.Context(ctx))
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Deny(ctx, da2.UserCode); err != nil {
		t.Fatal(err)
	}
	pctx, cancel := context.WithTimeout(in.Context(ctx), 30*time.Second)
	defer cancel()
	_, err = tv.DeviceAccessToken(pctx, da2)
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "access_denied" {
		t.Fatalf("denied device poll: %v", err)
	}

	// Unknown codes are problems the UI can word.
	_, err = app.LinkRequest(ctx, "BCDF-GHJK")
	wantAPIError(t, err, http.StatusNotFound, devices.CodeInvalidCode)
}
