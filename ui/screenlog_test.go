package ui

import (
	"context"
	"log/slog"
	"slices"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"github.com/linkdesk/linkdesk/devices"
)

// screenLogHandler hands each "ui: screen" log record's screen name to seen,
// at the moment it is logged.
type screenLogHandler struct{ seen func(name string) }

func (h screenLogHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h screenLogHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h screenLogHandler) WithGroup(string) slog.Handler            { return h }
func (h screenLogHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "ui: screen" {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "screen" {
				h.seen(a.Value.String())
			}
			return true
		})
	}
	return nil
}

// TestScreenLoggedOnceOnWindow: "ui: screen <name>" is logged only once the
// screen is on the window, since scripts take the line as "drawn" (see
// scripts/xvfb-screenshot.sh).
func TestScreenLoggedOnceOnWindow(t *testing.T) {
	a := test.NewTempApp(t)
	sess := &fakeSession{next: []devices.Me{demoAccount()}}
	var w fyne.Window
	want := map[string]string{ // a text each screen shows
		"setup":   "Connect to your Linkdesk service",
		"signin":  "Sign in to Linkdesk",
		"main":    "Ada Lovelace (ada@example.com)",
		"code":    "Type the code shown",
		"confirm": "Link this device?",
	}
	var logged []string // read and written under uiMu: logging happens on the UI goroutine
	prev := slog.Default()
	slog.SetDefault(slog.New(screenLogHandler{seen: func(name string) {
		logged = append(logged, name)
		if text, ok := want[name]; !ok {
			t.Errorf("unexpected screen %q logged", name)
		} else if w == nil || !hasText(w.Content(), text) {
			t.Errorf("screen %q logged before it was on the window", name)
		}
	}}))
	t.Cleanup(func() { slog.SetDefault(prev) })

	desk := NewApp(a, Services{Connector: &fakeConnector{good: testIssuer}, Session: sess,
		Link: &fakeLink{req: demoRequest()}, Devices: &fakeDevices{events: make(chan devices.Event)}}, Options{})
	w = desk.Window()
	w.Resize(fyne.NewSize(960, 720))
	t.Cleanup(func() { locked(func() { desk.Stop(); w.Close() }) })
	locked(desk.Start)

	saw := func(name string) bool { return slices.Contains(logged, name) }
	waitFor(t, "the setup screen", func() bool { return saw("setup") })
	locked(func() {
		desk.setup.issuer.SetText(testIssuer)
		test.Tap(desk.setup.check)
	})
	waitFor(t, "the sign-in screen", func() bool { return saw("signin") })
	locked(func() { test.Tap(desk.signIn.start) })
	waitFor(t, "the main tabs and code screen", func() bool { return saw("main") && saw("code") })
	locked(func() {
		test.Type(desk.link.Code.entry, "BCDFGHJK")
		test.Tap(desk.link.Code.cont)
	})
	waitFor(t, "the confirm screen", func() bool { return saw("confirm") })
}
