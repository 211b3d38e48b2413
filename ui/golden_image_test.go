package ui

import (
	"image"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/theme"

	"github.com/linkdesk/linkdesk/devices"
)

// Golden images of the main screens, in the app's real theme at fixed sizes,
// with fixed data and a fixed clock. A changed look fails and leaves the new
// picture in testdata/failed/ to look at and, when intended, copy over.

// goldenWindow shows content in a w×h window of a test app using the default theme.
func goldenWindow(t *testing.T, w, h float32, build func() fyne.CanvasObject) fyne.Window {
	t.Helper()
	a := test.NewTempApp(t)
	var win fyne.Window
	// Under the UI lock: a screen's ticker may fire while the window is made.
	locked(func() {
		a.Settings().SetTheme(theme.DefaultTheme())
		win = test.NewWindow(build())
		win.Resize(fyne.NewSize(w, h))
	})
	t.Cleanup(func() { locked(win.Close) })
	return win
}

// assertGolden compares the window's picture with testdata/name.
func assertGolden(t *testing.T, w fyne.Window, name string) {
	t.Helper()
	var img image.Image
	locked(func() { img = w.Canvas().Capture() })
	test.AssertImageMatches(t, name, img)
}

// goldenNow is the fixed clock of the golden images.
var goldenNow = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func TestGoldenImageSignIn(t *testing.T) {
	var s *SignInScreen
	w := goldenWindow(t, 640, 520, func() fyne.CanvasObject {
		s = NewSignInScreen(&fakeSession{}, testIssuer, nil, func() {})
		return s.Content()
	})
	t.Cleanup(func() { locked(s.Stop) })
	assertGolden(t, w, "signin.png")
}

func TestGoldenImageCode(t *testing.T) {
	var s *CodeScreen
	w := goldenWindow(t, 640, 480, func() fyne.CanvasObject {
		s = NewCodeScreen(&fakeLink{}, func() string { return testIssuer }, nil)
		return s.Content()
	})
	locked(func() { test.Type(s.entry, "bcdfghjk") })
	assertGolden(t, w, "code.png")
}

func TestGoldenImageConfirm(t *testing.T) {
	req := demoRequest()
	req.ExpiresAt = time.Now().Add(time.Hour) // far enough not to expire while the test runs
	var s *ConfirmScreen
	w := goldenWindow(t, 640, 720, func() fyne.CanvasObject {
		s = NewConfirmScreen(&fakeLink{req: req}, "BCDFGHJK", req, demoAccount(), nil, nil)
		return s.Content()
	})
	t.Cleanup(func() { locked(s.Stop) })
	locked(func() {
		// Freeze the countdown at 9:30 left, whenever the ticker fires.
		s.now = func() time.Time { return req.ExpiresAt.Add(-9*time.Minute - 30*time.Second) }
		s.tick()
	})
	assertGolden(t, w, "confirm.png")
}

func TestGoldenImageLinkedDevices(t *testing.T) {
	seen := goldenNow.Add(-3 * time.Hour)
	linked := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC) // midday: the same date in nearly every time zone
	list := []devices.Device{
		{ID: "d1", Name: "Living room TV", Kind: devices.KindTV, Model: "OLED55",
			Client: devices.ClientInfo{ID: "tv", Name: "Cinema Plus"}, LinkedAt: linked, LastSeenAt: &seen},
		{ID: "d2", Name: "Kitchen kiosk", Kind: devices.KindKiosk,
			Client: devices.ClientInfo{ID: "linkdesk-kiosk", Name: "Linkdesk kiosk"}, LinkedAt: linked},
		{ID: "d3", Kind: devices.KindConsole, Model: "Series Z",
			Client: devices.ClientInfo{ID: "games"}, LinkedAt: linked, LastSeenAt: &seen},
	}
	var s *DevicesScreen
	w := goldenWindow(t, 900, 560, func() fyne.CanvasObject {
		s = NewDevicesScreen(&fakeDevices{list: list, events: make(chan devices.Event)}, nil, nil)
		s.now = func() time.Time { return goldenNow }
		return s.Content()
	})
	t.Cleanup(func() { locked(s.Stop) })
	locked(s.Reload)
	waitFor(t, "the list to load", func() bool { return !s.progress.Visible() && len(s.all) == 3 })
	assertGolden(t, w, "devices.png")
}

func TestGoldenImageKiosk(t *testing.T) {
	clock := &kioskClock{now: goldenNow}
	var k *KioskScreen
	w := goldenWindow(t, 960, 540, func() fyne.CanvasObject {
		k = NewKioskScreen(nil)
		k.now = clock.Now
		k.Stop() // the countdown is driven by hand
		return k.Content()
	})
	locked(func() { k.show(kioskCode(clock, "BCDF-GHJK")) })
	assertGolden(t, w, "kiosk.png")
}
