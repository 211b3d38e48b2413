package ui

import (
	"context"
	"errors"
	"net"
	"net/url"
	"os"
	"syscall"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/test"

	"github.com/linkdesk/linkdesk/auth/device"
	"github.com/linkdesk/linkdesk/devices"
)

// Everyday use of the screens, as a newcomer walked them: ways back, no stale
// screens, recovery without Retry, and the words.

func TestConfirmBackKeepsCodeAndDecidesNothing(t *testing.T) {
	svc := &fakeLink{req: demoRequest()}
	f, w := newFlowTest(t, svc)
	c := toConfirm(t, f)
	locked(func() { test.Tap(c.back) })
	locked(func() {
		if f.confirm != nil || f.Code.entry.Text != "WDJB-MJHT" || !hasText(w.Content(), "Link a device") {
			t.Fatalf("Back: confirm %v, entry %q", f.confirm != nil, f.Code.entry.Text)
		}
		if w.Canvas().Focused() != f.Code.entry {
			t.Error("code entry not focused after Back")
		}
	})
	// Escape from the name field (where the focus starts) goes back too.
	c = continueToConfirm(t, f)
	locked(func() {
		if w.Canvas().Focused() != c.name {
			t.Fatal("name field not focused on the confirm screen")
		}
		c.name.TypedKey(&fyne.KeyEvent{Name: fyne.KeyEscape})
		if f.confirm != nil || f.Code.entry.Text != "WDJB-MJHT" {
			t.Fatalf("Escape: confirm %v, entry %q", f.confirm != nil, f.Code.entry.Text)
		}
	})
	// And from a focused button.
	c = continueToConfirm(t, f)
	locked(func() {
		w.Canvas().Focus(c.deny)
		c.deny.TypedKey(&fyne.KeyEvent{Name: fyne.KeyEscape})
		if f.confirm != nil {
			t.Fatal("Escape on Decline did not go back")
		}
	})
	// And with nothing focused, from the window's Escape (App passes it on).
	continueToConfirm(t, f)
	locked(func() {
		w.Canvas().Unfocus()
		if !f.Escape() || f.confirm != nil {
			t.Fatal("the window's Escape did not go back")
		}
		if f.Escape() {
			t.Fatal("Escape on the code screen claims to have gone back")
		}
	})
	if _, approved, denied := svc.calls(); len(approved) != 0 || len(denied) != 0 {
		t.Fatalf("going back decided: approved %v denied %v", approved, denied)
	}
}

// continueToConfirm presses Continue on the code already typed and waits for
// the confirm screen.
func continueToConfirm(t *testing.T, f *LinkFlow) *ConfirmScreen {
	t.Helper()
	locked(func() { test.Tap(f.Code.cont) })
	var c *ConfirmScreen
	waitFor(t, "the confirm screen", func() bool { c = f.confirm; return c != nil })
	return c
}

func TestConfirmBannerKeepsButtonsOnScreen(t *testing.T) {
	svc := &fakeLink{req: demoRequest()}
	f, w := newFlowTest(t, svc)
	// The tab's size in the app's window at its default 900×680.
	locked(func() { w.Resize(fyne.NewSize(720, 635)) })
	c := toConfirm(t, f)
	svc.mu.Lock()
	svc.apprErr = &devices.NetworkError{Op: "POST /api/v1/links", Err: &url.Error{Op: "Post", URL: "https://link.example.com/api/v1/links",
		Err: &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}}
	svc.mu.Unlock()
	locked(func() { test.Tap(c.approve) })
	waitFor(t, "the banner", func() bool { return c.banner.root.Visible() })
	shot(t, w, "confirm-banner-refused")
	locked(func() {
		if !contains(c.banner.label.Text, "link.example.com isn't answering") {
			t.Errorf("banner = %q", c.banner.label.Text)
		}
		win := w.Canvas().Size()
		for _, b := range []*focusButton{c.approve, c.deny, c.back} {
			pos := fyne.CurrentApp().Driver().AbsolutePositionForObject(b)
			if pos.Y+b.Size().Height > win.Height || b.Size().Height == 0 {
				t.Errorf("%s at y=%v (h %v) is off the %v-high window", b.Text, pos.Y, b.Size().Height, win.Height)
			}
		}
		// Nothing needs scrolling: the banner took the heading's place.
		var scroll *container.Scroll
		walk(c.Content(), func(o fyne.CanvasObject) bool { scroll, _ = o.(*container.Scroll); return scroll != nil })
		if need, have := scroll.Content.MinSize().Height, scroll.Size().Height; need > have {
			t.Errorf("the details need %v but have %v: a scrollbar shows", need, have)
		}
	})
}

func TestFocusedButtonShowsRing(t *testing.T) {
	req := demoRequest()
	req.ExpiresAt = time.Now().Add(time.Hour)
	var s *ConfirmScreen
	w := goldenWindow(t, 640, 720, func() fyne.CanvasObject {
		s = NewConfirmScreen(&fakeLink{req: req}, "BCDFGHJK", req, demoAccount(), nil, nil)
		return s.Content()
	})
	t.Cleanup(func() { locked(s.Stop) })
	// ringBand is the picture of a band just outside the Link device button,
	// where only the focus ring draws.
	ringBand := func() []uint32 {
		var px []uint32
		locked(func() {
			img := w.Canvas().Capture()
			scale := float32(img.Bounds().Dx()) / w.Canvas().Size().Width
			pos := fyne.CurrentApp().Driver().AbsolutePositionForObject(s.approve)
			size := s.approve.Size()
			for y := int((pos.Y - ringGap - 1) * scale); y < int(pos.Y*scale); y++ {
				for x := int(pos.X * scale); x < int((pos.X+size.Width)*scale); x++ {
					r, g, b, _ := img.At(x, y).RGBA()
					px = append(px, r+g+b)
				}
			}
		})
		return px
	}
	before := ringBand()
	locked(func() { w.Canvas().Focus(s.approve) })
	shot(t, w, "confirm-focus-link-device")
	after := ringBand()
	changed := 0
	for i := range before {
		if d := int(before[i]) - int(after[i]); d > 0x8000 || d < -0x8000 {
			changed++
		}
	}
	if changed < len(before)/8 { // the ring is 2 of the band's 4 rows, less its rounded corners
		t.Fatalf("the focus changed only %d of %d pixels around Link device", changed, len(before))
	}
}

func TestResultScreenTypingStartsNextCode(t *testing.T) {
	svc := &fakeLink{req: demoRequest()}
	f, w := newFlowTest(t, svc)
	c := toConfirm(t, f)
	locked(func() { test.Tap(c.approve) })
	waitFor(t, "the success screen", func() bool { return hasText(w.Content(), "Device linked") })
	locked(func() {
		focused := w.Canvas().Focused()
		if focused == nil {
			t.Fatal("nothing focused on the result screen")
		}
		test.Type(focused, "bc")
		if f.Code.entry.Text != "BC" || hasText(w.Content(), "Device linked") {
			t.Fatalf("typing on the result screen: entry %q", f.Code.entry.Text)
		}
	})
}

func TestResultScreenLeavesWhenDeviceUnlinked(t *testing.T) {
	svc := &fakeLink{req: demoRequest()}
	f, w := newFlowTest(t, svc)
	dev := &fakeDevices{list: []devices.Device{{ID: "dev-1", Name: "Living room TV"}}, events: make(chan devices.Event)}
	ds := NewDevicesScreen(dev, w, nil)
	ds.OnUnlinked = f.DeviceUnlinked // as App wires it
	t.Cleanup(func() { locked(ds.Stop) })
	locked(ds.Reload)
	c := toConfirm(t, f)
	locked(func() { test.Tap(c.approve) })
	waitFor(t, "the success screen", func() bool { return hasText(w.Content(), "Device linked") })
	waitFor(t, "the list", func() bool { return len(ds.all) == 1 && !ds.progress.Visible() })
	dev.events <- devices.Event{Type: devices.EventUnlinked, Device: devices.Device{ID: "dev-1"}}
	waitFor(t, "the code screen", func() bool { return !hasText(w.Content(), "Device linked") && hasText(w.Content(), "Link a device") })
	locked(func() {
		if f.Code.entry.Text != "" || f.LinkedHere("dev-1") {
			t.Errorf("entry %q after the linked device went", f.Code.entry.Text)
		}
	})
}

func TestLinkFlowForgetsErrorsOfAnotherAccount(t *testing.T) {
	test.NewTempApp(t)
	w := test.NewWindow(nil)
	me := demoAccount()
	svc := &fakeLink{lookErr: &devices.APIError{Status: 429, Code: devices.CodeRateLimited, RetryAfter: time.Minute}}
	f := NewLinkFlow(svc, func() string { return testIssuer }, func() devices.Me { return me }, w)
	w.SetContent(f.Content())
	w.Resize(fyne.NewSize(720, 600))
	t.Cleanup(func() { locked(func() { f.Stop(); w.Close() }) })
	locked(func() {
		test.Type(f.Code.entry, "WDJBMJHT")
		test.Tap(f.Code.cont)
	})
	waitFor(t, "Too many tries", func() bool { return contains(f.Code.hint.Text, "Too many tries") })
	// The app switches accounts and shows the code screen (App.showMain).
	locked(func() {
		me = devices.Me{Subject: "other", DisplayName: "Grace"}
		f.ShowCode()
		if f.Code.hint.Visible() || f.Code.entry.Text != "" {
			t.Fatalf("after switching: hint %q, entry %q", f.Code.hint.Text, f.Code.entry.Text)
		}
	})
}

func TestDevicesClearForgetsBanner(t *testing.T) {
	svc := &fakeDevices{listErr: errors.New("boom"), events: make(chan devices.Event)}
	s, _, _ := newDevicesTest(t, svc)
	locked(func() {
		if !s.banner.root.Visible() {
			t.Fatal("no banner for a failed load")
		}
		s.Clear()
		if s.banner.root.Visible() {
			t.Fatal("banner of the previous account survives Clear")
		}
	})
}

// TestDevicesRecoverWithoutRetry: the list loads by itself once the service
// is back, and the banner goes, with nobody pressing Retry.
func TestDevicesRecoverWithoutRetry(t *testing.T) {
	refused := &devices.NetworkError{Op: "GET /api/v1/devices", Err: &url.Error{Op: "Get", URL: "https://link.example.com/api/v1/devices",
		Err: &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}}
	svc := &fakeDevices{list: sampleDevices(2), listErr: refused, events: make(chan devices.Event)}
	test.NewTempApp(t)
	w := test.NewWindow(nil)
	s := NewDevicesScreen(svc, w, nil)
	s.retryMin = 20 * time.Millisecond
	w.SetContent(s.Content())
	w.Resize(fyne.NewSize(900, 600))
	t.Cleanup(func() { locked(func() { s.Stop(); w.Close() }) })
	locked(s.Reload)
	waitFor(t, "the banner", func() bool { return s.banner.root.Visible() })
	shot(t, w, "devices-service-down")
	locked(func() {
		if !contains(s.banner.label.Text, "link.example.com isn't answering") {
			t.Errorf("banner = %q", s.banner.label.Text)
		}
	})
	svc.mu.Lock()
	svc.listErr = nil
	svc.mu.Unlock()
	waitFor(t, "the list without the banner", func() bool { return len(s.all) == 2 && !s.banner.root.Visible() })
	// The events stream follows again: a live event arrives.
	svc.events <- devices.Event{Type: devices.EventUnlinked, Device: devices.Device{ID: "d0"}}
	waitFor(t, "the live event", func() bool { return len(s.all) == 1 })
}

// TestDevicesReconnectAfterStreamEnds: when the events stream ends (linkd
// restarted), the screen reloads and follows it again by itself.
func TestDevicesReconnectAfterStreamEnds(t *testing.T) {
	svc := &endingDevices{fakeDevices: fakeDevices{list: sampleDevices(2), events: make(chan devices.Event)}, end: make(chan struct{})}
	test.NewTempApp(t)
	w := test.NewWindow(nil)
	s := NewDevicesScreen(svc, w, nil)
	s.retryMin = 20 * time.Millisecond
	w.SetContent(s.Content())
	t.Cleanup(func() { locked(func() { s.Stop(); w.Close() }) })
	locked(s.Reload)
	waitFor(t, "the list", func() bool { return len(s.all) == 2 })
	svc.mu.Lock()
	svc.list = sampleDevices(3)
	svc.mu.Unlock()
	close(svc.end) // the first stream breaks
	waitFor(t, "the list loaded again", func() bool { return len(s.all) == 3 && !s.banner.root.Visible() })
	svc.events <- devices.Event{Type: devices.EventUnlinked, Device: devices.Device{ID: "d2"}}
	waitFor(t, "live events again", func() bool { return len(s.all) == 2 })
}

// endingDevices is a fakeDevices whose first events stream closes when end is closed.
type endingDevices struct {
	fakeDevices
	end   chan struct{}
	calls int
}

func (e *endingDevices) Events(ctx context.Context) (<-chan devices.Event, error) {
	e.mu.Lock()
	e.calls++
	first := e.calls == 1
	e.mu.Unlock()
	if !first {
		return e.fakeDevices.Events(ctx)
	}
	out := make(chan devices.Event)
	go func() {
		defer close(out)
		select {
		case <-e.end:
		case <-ctx.Done():
		}
	}()
	return out, nil
}

func TestDevicesUnlinkWords(t *testing.T) {
	svc := &fakeDevices{list: sampleDevices(2)[:1], events: make(chan devices.Event)}
	s, w, _ := newDevicesTest(t, svc)
	locked(func() {
		test.Tap(s.unlinkAll)
		dlg := topOverlay(w)
		if dlg == nil || !hasText(dlg, "Unlink Living room TV?") || hasText(dlg, "all 1") {
			t.Fatal("one device is not asked about by name")
		}
		if findButton(dlg, "Cancel") == nil || findButton(dlg, "No") != nil {
			t.Error("the dialog's way out is not Cancel")
		}
		test.Tap(findButton(dlg, "Unlink"))
	})
	waitFor(t, "the empty list", func() bool { return s.empty.Visible() })
	shot(t, w, "devices-all-unlinked")
	locked(func() {
		if !hasText(s.empty, "You unlinked every device") || hasText(s.empty, "yet") {
			t.Error("empty state after unlinking still says 'yet'")
		}
	})
}

func TestDevicesUnlinkAllWithSearchUnlinksOnlyMatches(t *testing.T) {
	svc := &fakeDevices{list: sampleDevices(5), events: make(chan devices.Event)}
	s, w, _ := newDevicesTest(t, svc)
	locked(func() {
		s.search.SetText("device") // Device 2, 3, 4
		if s.unlinkAll.Text != "Unlink these" {
			t.Errorf("button says %q with a search", s.unlinkAll.Text)
		}
		test.Tap(s.unlinkAll)
	})
	shot(t, w, "devices-unlink-these")
	locked(func() {
		dlg := topOverlay(w)
		if dlg == nil || !hasText(dlg, "Unlink these 3 devices?") || !hasText(dlg, "the others stay linked") {
			t.Fatal("the dialog does not say only the matches go")
		}
		test.Tap(findButton(dlg, "Unlink 3 devices"))
	})
	waitFor(t, "the matches to go", func() bool { return len(s.all) == 2 })
	svc.mu.Lock()
	defer svc.mu.Unlock()
	if len(svc.unlinks) != 3 {
		t.Fatalf("unlinked %v", svc.unlinks)
	}
}

func TestDevicesRenameEnterSubmits(t *testing.T) {
	svc := &fakeDevices{list: sampleDevices(2), events: make(chan devices.Event)}
	s, w, _ := newDevicesTest(t, svc)
	locked(func() {
		s.list.Select(0)
		test.Tap(findButton(s.detail, "Rename"))
		e := w.Canvas().Focused().(*escEntry)
		e.SetText("Den TV")
		e.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
		if topOverlay(w) != nil {
			t.Error("Enter left the rename dialog open")
		}
	})
	waitFor(t, "the new name", func() bool { return s.all[0].Name == "Den TV" })
}

func TestDevicesWords(t *testing.T) {
	s := &DevicesScreen{now: time.Now}
	if got := s.lastSeen(devices.Device{}); got != "not used yet" {
		t.Errorf("lastSeen of an unused device = %q", got)
	}
	for _, c := range []struct {
		in   devices.ClientInfo
		want string
	}{
		{devices.ClientInfo{ID: "linkdesk-kiosk"}, "Linkdesk kiosk"},
		{devices.ClientInfo{ID: "linkdesk-kiosk", Name: "linkdesk-kiosk"}, "Linkdesk kiosk"},
		{devices.ClientInfo{ID: "linkdesk-kiosk", Name: "Lobby screens"}, "Lobby screens"},
		{devices.ClientInfo{ID: "games"}, "games"},
	} {
		if got := clientName(c.in); got != c.want {
			t.Errorf("clientName(%+v) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestKioskExpiredCodeIsNotCalledUnlinked(t *testing.T) {
	k, w, clock := newKioskTest(t, nil)
	k.Show(kioskCode(clock, "BCDF-GHJK"))
	k.Show(device.Linked{DisplayName: "Ada"})
	k.Show(device.Unlinked{})
	k.Show(kioskCode(clock, "LMNP-QRST"))
	if !contains(k.status.Text, "unlinked") {
		t.Fatalf("status after unlink %q", k.status.Text)
	}
	clock.Add(10 * time.Minute)
	k.Show(kioskCode(clock, "VWXZ-BCDF"))
	if k.status.Text != "That code expired — here is a new one" {
		t.Fatalf("status after the code expired %q", k.status.Text)
	}
	shot(t, w, "kiosk-code-expired")
}
