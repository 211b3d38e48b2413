package ui

import (
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"github.com/linkdesk/linkdesk/devices"
)

func newFlowTest(t *testing.T, svc *fakeLink) (*LinkFlow, fyne.Window) {
	t.Helper()
	test.NewTempApp(t)
	w := test.NewWindow(nil)
	f := NewLinkFlow(svc, func() string { return testIssuer }, demoAccount, w)
	w.SetContent(f.Content())
	w.Resize(fyne.NewSize(720, 760))
	t.Cleanup(func() { locked(func() { f.Stop(); w.Close() }) })
	return f, w
}

// toConfirm types a code and waits for the confirm screen.
func toConfirm(t *testing.T, f *LinkFlow) *ConfirmScreen {
	t.Helper()
	locked(func() { test.Type(f.Code.entry, "WDJBMJHT") })
	locked(func() { test.Tap(f.Code.cont) })
	var c *ConfirmScreen
	waitFor(t, "the confirm screen", func() bool { c = f.confirm; return c != nil })
	return c
}

func TestConfirmShowsWhatAsks(t *testing.T) {
	f, w := newFlowTest(t, &fakeLink{req: remoteRequest()})
	c := toConfirm(t, f)
	locked(func() {
		root := w.Content()
		for _, want := range []string{
			"Living room TV", "OLED55", "Cinema Plus", "Know who you are", "See and change your watchlist",
			remoteLine, "Ada Lovelace (ada@example.com)", "WDJB-MJHT",
		} {
			if !hasText(root, want) {
				t.Errorf("confirm screen lacks %q", want)
			}
		}
		if !contains(c.countdown.Text, "Code expires in 9:") {
			t.Errorf("countdown = %q", c.countdown.Text)
		}
		if findButton(root, "Link device") == nil || findButton(root, "Decline") == nil {
			t.Error("missing Link device / Decline buttons")
		}
	})
	shot(t, w, "confirm")
	// The countdown is live: it changes on its own.
	var first string
	locked(func() { first = c.countdown.Text })
	waitFor(t, "the countdown to tick", func() bool { return c.countdown.Text != first })
}

func TestConfirmSameNetworkHasNoWarning(t *testing.T) {
	req := demoRequest()
	req.Origin.SameNetwork = true
	f, w := newFlowTest(t, &fakeLink{req: req})
	toConfirm(t, f)
	locked(func() {
		if hasText(w.Content(), "not your network") || hasText(w.Content(), inFrontText) {
			t.Error("warning shown for a same-network request")
		}
	})
}

func TestConfirmExpiresDisablesLinking(t *testing.T) {
	req := demoRequest()
	req.ExpiresAt = time.Now().Add(1500 * time.Millisecond)
	f, _ := newFlowTest(t, &fakeLink{req: req})
	c := toConfirm(t, f)
	waitFor(t, "the code to expire", func() bool { return c.expired })
	locked(func() {
		if !c.approve.Disabled() || !contains(c.countdown.Text, "expired") {
			t.Errorf("after expiry: approve disabled %v, text %q", c.approve.Disabled(), c.countdown.Text)
		}
	})
}

func TestApproveShowsSuccess(t *testing.T) {
	svc := &fakeLink{req: demoRequest()}
	f, w := newFlowTest(t, svc)
	c := toConfirm(t, f)
	locked(func() { c.name.SetText("Den TV") })
	locked(func() { test.Tap(c.approve) })
	waitFor(t, "the success screen", func() bool { return hasText(w.Content(), "Device linked") })
	shot(t, w, "approved")
	_, approved, _ := svc.calls()
	if len(approved) != 1 || approved[0] != "WDJBMJHT" || svc.names[0] != "Den TV" {
		t.Fatalf("approved %v names %v", approved, svc.names)
	}
	var again fyne.Tappable
	locked(func() {
		if b := findButton(w.Content(), "Link another device"); b != nil {
			again = b
		}
	})
	if again == nil {
		t.Fatal("no Link another device button")
	}
	locked(func() {
		if !hasText(w.Content(), "Den TV is now linked to Ada Lovelace") {
			t.Error("success text lacks device and account")
		}
		test.Tap(again)
		if f.Code.entry.Text != "" || !hasText(w.Content(), "Link a device") {
			t.Errorf("Link another device did not start over: %q", f.Code.entry.Text)
		}
	})
}

func TestDenyShowsDenied(t *testing.T) {
	svc := &fakeLink{req: demoRequest()}
	f, w := newFlowTest(t, svc)
	c := toConfirm(t, f)
	locked(func() { test.Tap(c.deny) })
	waitFor(t, "the denied screen", func() bool { return hasText(w.Content(), "Request declined") })
	shot(t, w, "denied")
	if _, approved, denied := svc.calls(); len(denied) != 1 || len(approved) != 0 {
		t.Fatalf("denied %v approved %v", denied, approved)
	}
	locked(func() {
		if findButton(w.Content(), "Link another device") == nil {
			t.Error("no Link another device button")
		}
	})
}

func TestApproveExpiredGoesBackToCodeKeepingIt(t *testing.T) {
	svc := &fakeLink{req: demoRequest()}
	f, w := newFlowTest(t, svc)
	c := toConfirm(t, f)
	svc.mu.Lock()
	svc.apprErr = problemErr(410, devices.CodeExpiredCode)
	svc.mu.Unlock()
	locked(func() { test.Tap(c.approve) })
	waitFor(t, "the code screen with the error", func() bool { return f.Code.hint.Visible() })
	locked(func() {
		if !contains(f.Code.hint.Text, "Get a new code on your device") || f.Code.entry.Text != "WDJB-MJHT" {
			t.Errorf("hint %q, entry %q", f.Code.hint.Text, f.Code.entry.Text)
		}
		if f.confirm != nil {
			t.Error("confirm screen still active")
		}
	})
	shot(t, w, "code-expired")
}

func TestApproveServerErrorShowsBannerAndRetry(t *testing.T) {
	svc := &fakeLink{req: demoRequest()}
	f, w := newFlowTest(t, svc)
	c := toConfirm(t, f)
	svc.mu.Lock()
	svc.apprErr = problemErr(503, devices.CodeInternal)
	svc.mu.Unlock()
	locked(func() { test.Tap(c.approve) })
	waitFor(t, "the banner", func() bool { return c.banner.root.Visible() })
	shot(t, w, "confirm-banner")
	locked(func() {
		if !contains(c.banner.label.Text, "has a problem right now") {
			t.Errorf("banner = %q", c.banner.label.Text)
		}
		svc.mu.Lock()
		svc.apprErr = nil
		svc.mu.Unlock()
		test.Tap(c.banner.retry)
	})
	waitFor(t, "the success screen", func() bool { return hasText(w.Content(), "Device linked") })
}
