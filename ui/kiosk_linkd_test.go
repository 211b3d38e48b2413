package ui

import (
	"context"
	"testing"
	"time"

	"fyne.io/fyne/v2/test"
	"golang.org/x/oauth2"

	"github.com/linkdesk/linkdesk/auth/device"
	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest"
)

// TestKioskAgainstLinkd wires the kiosk screen to a real device flow against a real
// linkd: the QR code shown leads to this code on this issuer, approving it in the app
// shows "Linked to …", and "Unlink this display" unlinks it and shows a new code.
func TestKioskAgainstLinkd(t *testing.T) {
	in := linkdtest.Start(t, linkdtest.Options{})
	in.CreateUser(t, "ada", "correct horse battery")
	app := devices.NewClient(in.URL, oauth2.NewClient(in.Context(t.Context()),
		oauth2.StaticTokenSource(in.AppToken(t, "ada", "correct horse battery"))))

	flow, err := device.NewFlow(device.Config{Issuer: in.Issuer, ClientID: devices.KioskClientID,
		DeviceName: "Lobby screen", DeviceKind: "kiosk", HTTPClient: in.Client})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	k, w, _ := newKioskTest(t, func() {
		if err := flow.Unlink(ctx); err != nil {
			t.Errorf("unlink: %v", err)
		}
	})
	k.now = time.Now
	done := make(chan struct{})
	go func() { flow.Run(ctx, k.Show); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	waitFor(t, "a code", func() bool { return k.code.Visible() && k.code.Text != "" })
	var code, link string
	locked(func() {
		code = k.code.Text
		link = decodeKioskQR(t, k, w)
	})
	// The app accepts the scanned link for this issuer and finds the same code in it.
	got, err := devices.ParseCodeInput(link, in.Issuer)
	if err != nil || devices.FormatCode(got) != code {
		t.Fatalf("QR link %q gives code %q (%v), screen shows %q", link, got, err, code)
	}

	if _, err := app.Approve(t.Context(), code, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "linked", func() bool { return k.linked.Visible() && k.linked.Text == "Linked to Ada" })

	locked(func() {
		test.Tap(k.unlink)
		test.Tap(findButton(topOverlay(w), "Unlink"))
	})
	waitFor(t, "a new code", func() bool { return k.code.Visible() && k.code.Text != "" && k.code.Text != code })
	list, err := app.Devices(t.Context())
	if err != nil || len(list) != 0 {
		t.Fatalf("after unlink: %+v, %v", list, err)
	}
}
