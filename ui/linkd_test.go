package ui

import (
	"context"
	"errors"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"golang.org/x/oauth2"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest"
)

// realLinkd starts a linkd, signs ada in to the app client and returns the
// instance, a management API client for her, and her account.
func realLinkd(t *testing.T) (*linkdtest.Instance, *devices.Client, devices.Me) {
	t.Helper()
	in := linkdtest.Start(t, linkdtest.Options{})
	in.CreateUser(t, "ada", "correct horse battery")
	tok := in.AppToken(t, "ada", "correct horse battery")
	api := devices.NewClient(in.URL, in.AppConfig("").Client(in.Context(context.Background()), tok))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	me, err := api.Me(ctx)
	if err != nil {
		t.Fatalf("me: %v", err)
	}
	return in, api, me
}

// startDevice asks linkd for a code as a kiosk would (x/oauth2 DeviceAuth) and
// polls for tokens in the background (DeviceAccessToken).
func startDevice(t *testing.T, in *linkdtest.Instance, name string) (*oauth2.DeviceAuthResponse, <-chan error, <-chan *oauth2.Token) {
	t.Helper()
	conf := &oauth2.Config{ClientID: devices.KioskClientID, Endpoint: in.Endpoint(),
		Scopes: []string{"openid", "profile", "offline_access"}}
	ctx, cancel := context.WithTimeout(in.Context(context.Background()), time.Minute)
	t.Cleanup(cancel)
	da, err := conf.DeviceAuth(ctx,
		oauth2.SetAuthURLParam(devices.ParamDeviceName, name),
		oauth2.SetAuthURLParam(devices.ParamDeviceModel, "Lobby screen 2"),
		oauth2.SetAuthURLParam(devices.ParamDeviceKind, string(devices.KindKiosk)))
	if err != nil {
		t.Fatalf("device authorization: %v", err)
	}
	errs := make(chan error, 1)
	toks := make(chan *oauth2.Token, 1)
	go func() {
		tok, err := conf.DeviceAccessToken(ctx, da)
		if err != nil {
			errs <- err
			return
		}
		toks <- tok
	}()
	return da, errs, toks
}

// TestRealLinkdPasteApproveAndManage drives the code, confirm and devices
// screens against a real linkd: the pasted verification link is accepted, the
// confirm screen names the device and account, approving gives the device its
// tokens, and the device then shows up (and unlinks) in the devices list.
func TestRealLinkdPasteApproveAndManage(t *testing.T) {
	in, api, me := realLinkd(t)
	da, errs, toks := startDevice(t, in, "Lobby kiosk")

	test.NewTempApp(t)
	w := test.NewWindow(nil)
	flow := NewLinkFlow(api, func() string { return in.Issuer }, func() devices.Me { return me }, w)
	w.SetContent(flow.Content())
	w.Resize(fyne.NewSize(720, 760))
	t.Cleanup(func() { locked(func() { flow.Stop(); w.Close() }) })

	locked(func() {
		flow.Code.entry.SetText(da.VerificationURIComplete)
		if flow.Code.cont.Disabled() {
			t.Fatalf("verification link %q not accepted: %q", da.VerificationURIComplete, flow.Code.hint.Text)
		}
		test.Tap(flow.Code.cont)
	})
	var c *ConfirmScreen
	waitFor(t, "the confirm screen", func() bool { c = flow.confirm; return c != nil })
	locked(func() {
		for _, want := range []string{"Lobby kiosk", "Lobby screen 2", accountName(me), "Code expires in"} {
			if !hasText(w.Content(), want) {
				t.Errorf("confirm screen lacks %q", want)
			}
		}
	})
	shot(t, w, "real-confirm")
	locked(func() { test.Tap(c.approve) })
	waitFor(t, "the success screen", func() bool { return hasText(w.Content(), "Device linked") })

	select {
	case tok := <-toks:
		if tok.AccessToken == "" {
			t.Fatal("device got an empty access token")
		}
	case err := <-errs:
		t.Fatalf("device poll: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("device got no tokens")
	}

	// The linked device is listed, and unlinking it after confirming removes it.
	dw := test.NewWindow(nil)
	ds := NewDevicesScreen(api, dw, nil)
	dw.SetContent(ds.Content())
	dw.Resize(fyne.NewSize(900, 600))
	t.Cleanup(func() { locked(func() { ds.Stop(); dw.Close() }) })
	locked(ds.Reload)
	waitFor(t, "the device list", func() bool { return len(ds.all) == 1 })
	locked(func() {
		if ds.all[0].Name != "Lobby kiosk" || ds.all[0].Kind != devices.KindKiosk {
			t.Errorf("listed %+v", ds.all[0])
		}
		ds.list.Select(0)
		test.Tap(findButton(ds.detail, "Unlink"))
		test.Tap(findButton(topOverlay(dw), "Unlink"))
	})
	waitFor(t, "the device to be unlinked", func() bool { return len(ds.all) == 0 && ds.empty.Visible() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if list, err := api.Devices(ctx); err != nil || len(list) != 0 {
		t.Fatalf("after unlink the service lists %v (%v)", list, err)
	}
}

// TestRealLinkdDenyAndBadCodes checks deny reaches the device as access_denied,
// and a code the service doesn't know is explained on the code screen.
func TestRealLinkdDenyAndBadCodes(t *testing.T) {
	in, api, me := realLinkd(t)
	da, errs, toks := startDevice(t, in, "Hall kiosk")

	test.NewTempApp(t)
	w := test.NewWindow(nil)
	flow := NewLinkFlow(api, func() string { return in.Issuer }, func() devices.Me { return me }, w)
	w.SetContent(flow.Content())
	t.Cleanup(func() { locked(func() { flow.Stop(); w.Close() }) })

	// A well-formed code nobody issued.
	unknown := "BCDFGHJK"
	if n, _ := devices.NormalizeCode(da.UserCode); n == unknown {
		unknown = "ZXWVTSRQ"
	}
	locked(func() {
		test.Type(flow.Code.entry, unknown)
		test.Tap(flow.Code.cont)
	})
	waitFor(t, "the invalid-code hint", func() bool { return contains(flow.Code.hint.Text, "Check the code on your device") })

	locked(func() {
		flow.Code.entry.SetText("")
		test.Type(flow.Code.entry, da.UserCode)
		test.Tap(flow.Code.cont)
	})
	var c *ConfirmScreen
	waitFor(t, "the confirm screen", func() bool { c = flow.confirm; return c != nil })
	locked(func() { test.Tap(c.deny) })
	waitFor(t, "the denied screen", func() bool { return hasText(w.Content(), "Request declined") })
	select {
	case err := <-errs:
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.ErrorCode != "access_denied" {
			t.Fatalf("device poll ended with %v, want access_denied", err)
		}
	case <-toks:
		t.Fatal("denied device got tokens")
	case <-time.After(30 * time.Second):
		t.Fatal("device poll did not end")
	}

	// The same code again: it was used up.
	locked(func() {
		flow.Code.Reset()
		test.Type(flow.Code.entry, da.UserCode)
		test.Tap(flow.Code.cont)
	})
	waitFor(t, "the used-code hint", func() bool { return flow.Code.hint.Visible() })
	locked(func() {
		if got := flow.Code.hint.Text; !contains(got, "new code") {
			t.Errorf("hint for a used code = %q", got)
		}
	})
}
