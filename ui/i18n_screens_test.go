package ui

import (
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/lang"

	"github.com/linkdesk/linkdesk/devices"
)

// useLanguage shows the app in language l for the rest of the test, the way a
// person's system does: Fyne reads the locale from the environment (LANGUAGE
// first) each time translations are registered, so the test sets LANGUAGE and
// registers the catalogues again; afterwards the environment is restored and
// they are registered once more. Fyne v2.7 has no other public way to pick
// a language, and tests in this package do not run in parallel.
func useLanguage(t *testing.T, l string) {
	t.Helper()
	t.Cleanup(loadTranslations) // runs after t.Setenv has restored LANGUAGE
	t.Setenv("LANGUAGE", l)
	loadTranslations()
	if got := lang.L("Sign in with your browser"); l != "en" && got == "Sign in with your browser" {
		t.Fatalf("LANGUAGE=%s: still English after registering the translations", l)
	}
}

// i18nDevices are the golden test's devices, one with a long name.
func i18nDevices() []devices.Device {
	seen := goldenNow.Add(-3 * time.Hour)
	linked := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	return []devices.Device{
		{ID: "d1", Name: "Wohnzimmer-Fernseher im Erdgeschoss", Kind: devices.KindTV, Model: "OLED55",
			Client: devices.ClientInfo{ID: "tv", Name: "Cinema Plus"}, LinkedAt: linked, LastSeenAt: &seen},
		{ID: "d2", Name: "Kitchen kiosk", Kind: devices.KindKiosk,
			Client: devices.ClientInfo{ID: "linkdesk-kiosk"}, LinkedAt: linked},
		{ID: "d3", Kind: devices.KindConsole, Model: "Series Z",
			Client: devices.ClientInfo{ID: "games"}, LinkedAt: linked, LastSeenAt: &seen},
	}
}

// fits fails the test when content needs more room than the window gives it,
// which is how a too long word shows in Fyne: the window would have to grow
// (or, at a fixed size, text is cut off at the edge).
func fits(t *testing.T, w fyne.Window, content fyne.CanvasObject, what string) {
	t.Helper()
	var min, size fyne.Size
	locked(func() { min, size = content.MinSize(), w.Canvas().Size() })
	if min.Width > size.Width || min.Height > size.Height {
		t.Errorf("%s needs %v, more than the window's %v", what, min, size)
	}
}

// With the German or Spanish catalogue in force the screens speak it, and the
// longer words still fit the window; screenshots are saved for a look by eye
// (ui/i18n-*.png under $ARTIFACTS or the temporary directory).
func TestScreensInGermanAndSpanish(t *testing.T) {
	words := map[string]struct{ signIn, heading, ago, consoleName, kioskApp string }{
		"de": {"Mit dem Browser anmelden", "Bei Linkdesk anmelden", "vor 3 Stunden", "Unbenannte Spielkonsole", "Linkdesk-Kiosk"},
		"es": {"Iniciar sesión con el navegador", "Inicia sesión en Linkdesk", "hace 3 horas", "Consola sin nombre", "Quiosco de Linkdesk"},
	}
	before := lang.L("Sign in with your browser")
	for _, l := range []string{"de", "es"} {
		want := words[l]
		t.Run(l, func(t *testing.T) {
			useLanguage(t, l)

			var si *SignInScreen
			w := goldenWindow(t, 640, 520, func() fyne.CanvasObject {
				si = NewSignInScreen(&fakeSession{}, testIssuer, nil, func() {})
				return si.Content()
			})
			t.Cleanup(func() { locked(si.Stop) })
			var label string
			locked(func() { label = si.start.Text })
			if label != want.signIn {
				t.Errorf("sign-in button says %q, want %q", label, want.signIn)
			}
			if !hasText(si.Content(), want.heading) {
				t.Errorf("sign-in screen does not show %q", want.heading)
			}
			fits(t, w, si.Content(), "the sign-in screen")
			shot(t, w, "i18n-signin-"+l)

			var ds *DevicesScreen
			w = goldenWindow(t, 900, 560, func() fyne.CanvasObject {
				ds = NewDevicesScreen(&fakeDevices{list: i18nDevices(), events: make(chan devices.Event)}, nil, nil)
				ds.now = func() time.Time { return goldenNow }
				return ds.Content()
			})
			t.Cleanup(func() { locked(ds.Stop) })
			locked(ds.Reload)
			waitFor(t, "the list to load", func() bool { return !ds.progress.Visible() && len(ds.all) == 3 })
			locked(func() { ds.list.Select(0) })
			var summary, title, app string
			locked(func() {
				summary = ds.summary(ds.all[0])
				title = linkedLabel(ds.all[2]).title()
				app = clientName(ds.all[1].Client)
			})
			if !contains(summary, want.ago) {
				t.Errorf("device summary %q does not say %q", summary, want.ago)
			}
			if title != want.consoleName || app != want.kioskApp {
				t.Errorf("unnamed console is %q, the kiosk app %q; want %q, %q", title, app, want.consoleName, want.kioskApp)
			}
			fits(t, w, ds.Content(), "the device list")
			shot(t, w, "i18n-devices-"+l)

			// The narrowest the app's window gets in practice: half a 1280-wide screen.
			locked(func() { w.Resize(fyne.NewSize(640, 560)) })
			fits(t, w, ds.Content(), "the device list at 640 wide")
			shot(t, w, "i18n-devices-640-"+l)
		})
	}
	// Back to the system's language afterwards (the cleanup registered the catalogues again).
	if after := lang.L("Sign in with your browser"); after != before {
		t.Errorf("the language stayed changed after the test: %q, was %q", after, before)
	}
}

// The linking screens in German and Spanish: the confirm screen for a request
// from another network (ticked), and the code screen listing the devices waiting
// nearby. Their words are translated and fit the window at 640 wide; screenshots
// are saved for a look by eye (ui/i18n-confirm-remote-*.png, ui/i18n-code-nearby-*.png).
func TestLinkingScreensInGermanAndSpanish(t *testing.T) {
	words := map[string]struct{ heading, tick, origin, nearby, facts string }{
		"de": {"Dieses Gerät verknüpfen?", "Ich bin bei diesem Gerät und habe das selbst gestartet",
			"Angefragt von Lisbon, Portugal (203.0.113.7) – nicht Ihr Netzwerk", "Wartende Geräte in Ihrer Nähe",
			"Fernseher · OLED55 · Cinema Plus · vor 2 Minuten"},
		"es": {"¿Vincular este dispositivo?", "Estoy delante de este dispositivo y lo he iniciado yo",
			"Solicitado desde Lisbon, Portugal (203.0.113.7): no es tu red", "Dispositivos esperando cerca de ti",
			"Televisor · OLED55 · Cinema Plus · hace 2 minutos"},
	}
	for _, l := range []string{"de", "es"} {
		want := words[l]
		t.Run(l, func(t *testing.T) {
			useLanguage(t, l)

			req := remoteRequest()
			req.Device.Name = "Wohnzimmer-Unterhaltungselektronik-Fernseher"
			var c *ConfirmScreen
			w := goldenWindow(t, 640, 760, func() fyne.CanvasObject {
				c = NewConfirmScreen(&fakeLink{req: req}, "WDJBMJHT", req, demoAccount(), nil, nil)
				return c.Content()
			})
			t.Cleanup(func() { locked(c.Stop) })
			locked(func() {
				root := c.Content()
				for _, s := range []string{want.heading, want.origin} {
					if !hasText(root, s) {
						t.Errorf("confirm screen does not show %q", s)
					}
				}
				if c.inFront.Text != want.tick {
					t.Errorf("the tick says %q, want %q", c.inFront.Text, want.tick)
				}
				c.inFront.SetChecked(true)
			})
			fits(t, w, c.Content(), "the confirm screen")
			shot(t, w, "i18n-confirm-remote-"+l)
			locked(c.Stop) // its ticker must not draw while the next window's app is made

			var s *CodeScreen
			w = goldenWindow(t, 640, 760, func() fyne.CanvasObject {
				s = NewCodeScreen(newFakeNearby(), func() string { return testIssuer }, nil)
				s.nearby.now = func() time.Time { return goldenNow }
				return s.Content()
			})
			t.Cleanup(func() { locked(s.StopNearby) })
			locked(s.StartNearby)
			root := s.Content()
			waitFor(t, "the nearby list", func() bool { return hasText(root, "Living room TV") })
			locked(func() {
				if !hasText(root, want.nearby) || !hasText(root, want.facts) {
					t.Errorf("the nearby list lacks %q or %q", want.nearby, want.facts)
				}
			})
			fits(t, w, root, "the code screen with devices nearby")
			shot(t, w, "i18n-code-nearby-"+l)
		})
	}
}
