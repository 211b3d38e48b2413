package ui

import (
	"context"
	"fmt"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest"
)

// startRealApp runs the whole app for ada against a real linkd (sessions are
// faked; links and devices are the real management API) and waits until its one
// event stream is connected, so no event is missed.
func startRealApp(t *testing.T, in *linkdtest.Instance, api *devices.Client, me devices.Me) (*App, fyne.Window) {
	t.Helper()
	a := test.NewTempApp(t)
	sess := &fakeSession{accounts: []devices.Me{me}, current: me.Subject}
	desk, w := startApp(t, a, Services{Connector: &fakeConnector{good: in.Issuer}, Session: sess, Link: api, Devices: api},
		Options{Issuer: in.Issuer})
	waitFor(t, "the app's event stream", func() bool { return in.Server.Events().Subscribers() == 1 })
	return desk, w
}

// A device linked from another app of the account: this app shows a desktop
// notification and a banner naming the device, app, address and time; the banner's
// "Not you? Unlink", reached and pressed with the keyboard, unlinks it in linkd and
// drops it from the device list; then it only offers Dismiss.
func TestNoticeFromAnotherAppUnlinksThroughLinkd(t *testing.T) {
	in, api, me := realLinkd(t)
	desk, w := startRealApp(t, in, api, me)
	da, errs, toks := startDevice(t, in, "Lobby kiosk")

	test.AssertNotificationSent(t, fyne.NewNotification("Device linked",
		"Lobby kiosk is now linked to "+accountName(me)+". Not you? Unlink it in Linkdesk."), func() {
		in.Approve(t, da.UserCode, me.Subject) // as another app of the account would
		waitFor(t, "the notice", func() bool { return desk.notices != nil && len(desk.notices.cards) == 1 })
	})
	select {
	case <-toks:
	case err := <-errs:
		t.Fatalf("device poll: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("the device got no tokens")
	}
	var card *noticeCard
	locked(func() {
		card = desk.notices.cards[0]
		for _, want := range []string{"New device linked: Lobby kiosk", "Linkdesk kiosk · from 127.0.0.1 · today "} {
			if !hasText(w.Content(), want) {
				t.Errorf("the banner does not say %q", want)
			}
		}
		buttonsWithin(t, w, card.unlink, card.dismissB)
	})
	waitFor(t, "the device in the list", func() bool { return len(desk.devs.all) == 1 })
	shot(t, w, "new-link-notice")

	// The keyboard reaches the banner's Unlink (Tab order), and Space presses it.
	locked(func() {
		c := w.Canvas()
		for range 40 {
			c.FocusNext()
			if c.Focused() == fyne.Focusable(card.unlink) {
				break
			}
		}
		if c.Focused() != fyne.Focusable(card.unlink) {
			t.Fatalf("Tab never reaches the banner's Unlink (stuck on %T)", c.Focused())
		}
		c.Focused().TypedKey(&fyne.KeyEvent{Name: fyne.KeySpace})
	})
	waitFor(t, "the banner to say it is unlinked", func() bool { return card.done })
	waitFor(t, "the device to leave the list", func() bool { return len(desk.devs.all) == 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if list, err := api.Devices(ctx); err != nil || len(list) != 0 {
		t.Fatalf("after the banner's Unlink linkd lists %v (%v)", list, err)
	}
	locked(func() {
		if card.unlink.Visible() || !hasText(w.Content(), "Unlinked: Lobby kiosk") {
			t.Error("the banner does not say the device was unlinked")
		}
	})
	shot(t, w, "new-link-notice-unlinked")
	locked(func() { test.Tap(card.dismissB) })
	locked(func() {
		if len(desk.notices.cards) != 0 || desk.notices.root.Visible() {
			t.Error("Dismiss leaves the notice")
		}
	})
}

// The banner's Unlink failing (the device was unlinked, then linkd went away)
// says why in plain words and offers to try again.
func TestNoticeUnlinkErrorInPlainWords(t *testing.T) {
	devs := &fakeDevices{events: make(chan devices.Event)}
	a := test.NewTempApp(t)
	sess := &fakeSession{accounts: []devices.Me{demoAccount()}, current: "u1"}
	desk, w := startApp(t, a, Services{Connector: &fakeConnector{good: testIssuer}, Session: sess, Link: &fakeLink{},
		Devices: failingUnlink{devs}}, Options{Issuer: testIssuer})
	waitFor(t, "the events stream", func() bool { return desk.account.Subject == "u1" && desk.devs.events.running() })
	devs.events <- devices.Event{Type: devices.EventLinked, Device: sampleDevices(2)[0]}
	waitFor(t, "the notice", func() bool { return len(desk.notices.cards) == 1 })
	card := desk.notices.cards[0]
	locked(func() { test.Tap(card.unlink) })
	waitFor(t, "the error", func() bool { return card.unlink.Text == "Try again to unlink" })
	locked(func() {
		if want := Explain(failingUnlink{}.Unlink(context.Background(), "")); card.done || card.detail.Text != want || !hasText(w.Content(), want) {
			t.Errorf("the banner says %q, want %q", card.detail.Text, want)
		}
		t.Logf("the banner says: %s", card.detail.Text)
		if card.unlink.Disabled() {
			t.Error("Unlink cannot be tried again")
		}
	})
}

// failingUnlink is a device service whose Unlink cannot reach the service.
type failingUnlink struct{ *fakeDevices }

func (failingUnlink) Unlink(context.Context, string) error {
	return &devices.NetworkError{Op: "DELETE /api/v1/devices/x", Err: fmt.Errorf("connection refused")}
}

// A burst of links: one banner shows, the rest are summed up, and the
// screen below keeps its room, with every banner button inside the window.
func TestNoticesBurstKeepsScreen(t *testing.T) {
	devs := &fakeDevices{events: make(chan devices.Event)}
	a := test.NewTempApp(t)
	sess := &fakeSession{accounts: []devices.Me{demoAccount()}, current: "u1"}
	desk, w := startApp(t, a, Services{Connector: &fakeConnector{good: testIssuer}, Session: sess, Link: &fakeLink{},
		Devices: devs}, Options{Issuer: testIssuer})
	locked(func() { w.Resize(fyne.NewSize(640, 480)) })
	waitFor(t, "the events stream", func() bool { return desk.account.Subject == "u1" && desk.devs.events.running() })
	list := sampleDevices(5)
	list[2].Name = longLabel
	for _, d := range list {
		devs.events <- devices.Event{Type: devices.EventLinked, Device: d}
	}
	waitFor(t, "five notices", func() bool { return len(desk.notices.cards) == 5 })
	locked(func() {
		if n := len(desk.notices.root.Objects); n != maxNoticeCards+1 {
			t.Errorf("the strip shows %d rows, want %d card(s) and a summary", n, maxNoticeCards)
		}
		if !hasText(desk.notices.root, "4 more new links") {
			t.Error("the summary does not count the other links")
		}
		for _, c := range desk.notices.cards[:maxNoticeCards] {
			buttonsWithin(t, w, c.unlink, c.dismissB)
		}
		if h := desk.tabs.Size().Height; h < 200 {
			t.Errorf("the tabs keep only %v px of a 480 px window", h)
		}
		if min := w.Content().MinSize(); min.Width > 640 {
			t.Errorf("the notices widen the window to %v", min.Width)
		}
	})
	shot(t, w, "new-link-notices-burst")
	locked(func() { test.Tap(findButton(desk.notices.root, "Dismiss all")) })
	locked(func() {
		if desk.notices.root.Visible() {
			t.Error("Dismiss all leaves notices")
		}
	})
}

// buttonsWithin fails unless every button is laid out whole inside w.
func buttonsWithin(t *testing.T, w fyne.Window, buttons ...*widget.Button) {
	t.Helper()
	win := w.Canvas().Size()
	for _, b := range buttons {
		pos := fyne.CurrentApp().Driver().AbsolutePositionForObject(b)
		size, min := b.Size(), b.MinSize()
		if pos.X < 0 || pos.Y < 0 || pos.X+size.Width > win.Width || pos.Y+size.Height > win.Height {
			t.Errorf("%s at %v, %v is outside the %v window", b.Text, pos, size, win)
		}
		if size.Width < min.Width || size.Height < min.Height {
			t.Errorf("%s is squeezed to %v (needs %v)", b.Text, size, min)
		}
	}
}

// hostileName is a device name with a right-to-left override, zero-width and
// isolate characters, which must never reach a screen.
const hostileName = "Den TV \u202e(krowten ruoy)\u200b \u2066Lobby\u2069\ufeff"

// hiddenRuneIn reports a control, format (bidi, zero-width) or separator
// character in s, or 0; the app's own multi-line texts may break lines.
func hiddenRuneIn(s string) rune {
	for _, r := range s {
		if r == '\n' {
			continue
		}
		if unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) || r == utf8.RuneError {
			return r
		}
	}
	return 0
}

// plainEverywhere fails when any text shown under o carries a hidden character,
// and reports how many texts it read.
func plainEverywhere(t *testing.T, where string, o fyne.CanvasObject) int {
	t.Helper()
	n := 0
	walk(o, func(c fyne.CanvasObject) bool {
		var s string
		switch v := c.(type) {
		case *widget.Label:
			s = v.Text
		case *widget.RichText:
			s = v.String()
		case *widget.Entry:
			s = v.Text
		case *canvas.Text:
			s = v.Text
		default:
			return false
		}
		n++
		if r := hiddenRuneIn(s); r != 0 {
			t.Errorf("%s shows %q, with U+%04X", where, s, r)
		}
		return false
	})
	return n
}

// Devices whose names carry bidi overrides and zero-width characters, through real
// linkd: the app's confirm screen, its device list and details, and the new-link
// banner show them as plain text. A link made in this window is not announced in
// it (no banner, no desktop notification), even when its event comes before the
// approval's answer.
func TestNoticeOwnLinkQuietAndHostileNamesPlain(t *testing.T) {
	in, api, me := realLinkd(t)
	desk, w := startRealApp(t, in, api, me)

	// This window links the first device itself.
	da, _, _ := startDevice(t, in, hostileName)
	test.AssertNotificationSent(t, nil, func() {
		locked(func() {
			desk.link.Code.entry.SetText(da.UserCode)
			test.Tap(desk.link.Code.cont)
		})
		var c *ConfirmScreen
		waitFor(t, "the confirm screen", func() bool { c = desk.link.confirm; return c != nil })
		locked(func() {
			if n := plainEverywhere(t, "the confirm screen", w.Content()); n < 5 {
				t.Errorf("read only %d texts on the confirm screen", n)
			}
			if !hasText(w.Content(), "Den TV (krowten ruoy) Lobby") {
				t.Error("the confirm screen does not name the device in plain text")
			}
			test.Tap(c.approve)
		})
		waitFor(t, "the result and the device in the list", func() bool {
			return hasText(w.Content(), "Device linked") && len(desk.devs.all) == 1
		})
	})
	locked(func() {
		if len(desk.notices.cards) != 0 || desk.notices.root.Visible() {
			// Say which link was announced and what this window knew of it, so a rare
			// failure explains itself.
			for _, c := range desk.notices.cards {
				t.Errorf("the link made in this window is announced in it: notice for %q (made here: %v); the confirm screen linked %q",
					c.dev.ID, desk.notices.own.made(c.dev.ID), desk.link.lastLinked)
			}
			if len(desk.notices.cards) == 0 {
				t.Error("the notice strip shows with no notice in it")
			}
		}
	})

	// Another app links a second one: the banner and the list show it plainly.
	db, _, _ := startDevice(t, in, hostileName+" 2")
	in.Approve(t, db.UserCode, me.Subject)
	waitFor(t, "the notice", func() bool { return len(desk.notices.cards) == 1 && len(desk.devs.all) == 2 })
	locked(func() {
		plainEverywhere(t, "the new-link banner", desk.notices.root)
		desk.tabs.SelectIndex(1)
		desk.devs.list.Select(0)
	})
	locked(func() {
		if n := plainEverywhere(t, "the linked-devices tab", w.Content()); n < 10 {
			t.Errorf("read only %d texts on the linked-devices tab", n)
		}
		if !hasText(desk.devs.detail, "Den TV (krowten ruoy) Lobby") {
			t.Error("the details do not name the device in plain text")
		}
	})
	shot(t, w, "new-link-notice-hostile-name")
}

// A notice reaches the person on any screen where they are signed in: on the
// settings screen the banner shows under the bar; a sign-out drops it.
func TestNoticeOnSettingsScreen(t *testing.T) {
	devs := &fakeDevices{events: make(chan devices.Event)}
	a := test.NewTempApp(t)
	sess := &fakeSession{accounts: []devices.Me{demoAccount()}, current: "u1"}
	desk, w := startApp(t, a, Services{Connector: &fakeConnector{good: testIssuer}, Session: sess, Link: &fakeLink{},
		Devices: devs}, Options{Issuer: testIssuer})
	waitFor(t, "the events stream", func() bool { return desk.account.Subject == "u1" && desk.devs.events.running() })
	locked(desk.showSettings)
	devs.events <- devices.Event{Type: devices.EventLinked, Device: sampleDevices(2)[0]}
	waitFor(t, "the notice on the settings screen", func() bool {
		return desk.setup != nil && hasText(w.Content(), "New device linked: Living room TV")
	})
	locked(func() { buttonsWithin(t, w, desk.notices.cards[0].unlink, desk.notices.cards[0].dismissB) })
	shot(t, w, "new-link-notice-settings")
	locked(func() { desk.accountChanged(nil) }) // signed out
	locked(func() {
		if hasText(w.Content(), "New device linked") {
			t.Error("the notice outlives the sign-out")
		}
	})
}

// The banner names the place the device asked from, when linkd knows it, before its
// address.
func TestNoticeDetailNamesThePlace(t *testing.T) {
	now := time.Date(2026, 12, 1, 14, 5, 0, 0, time.Local)
	d := devices.Device{Client: devices.ClientInfo{ID: "tv", Name: "Demo TV"}, LinkedAt: now,
		RequestIP: "203.0.113.7", RequestPlace: devices.Place{City: "Lisbon", Country: "Portugal"}}
	if got, want := noticeDetail(d, now), "Demo TV · from Lisbon, Portugal (203.0.113.7) · today 14:05"; got != want {
		t.Errorf("noticeDetail = %q, want %q", got, want)
	}
	d.RequestPlace = devices.Place{}
	if got, want := noticeDetail(d, now), "Demo TV · from 203.0.113.7 · today 14:05"; got != want {
		t.Errorf("without a place: %q, want %q", got, want)
	}
}
