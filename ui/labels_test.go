package ui

import (
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"github.com/linkdesk/linkdesk/devices"
)

// longLabel is a device name of 100 characters without a space, which a label
// that neither wraps nor truncates draws 1,840 px wide.
var longLabel = strings.Repeat("W", 100)

// longRequest is the demo request from a device with a 100-character name and model.
func longRequest() devices.LinkRequest {
	req := demoRequest()
	req.Device.Name, req.Device.Model = longLabel, "M"+longLabel[1:]
	req.ExpiresAt = time.Now().Add(time.Hour) // far enough not to expire while the test runs
	return req
}

// withinWindow fails unless every button is laid out at its full size wholly
// inside w's canvas.
func withinWindow(t *testing.T, w fyne.Window, buttons ...*focusButton) {
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

// A device with a 100-character name asks to be linked: in a window of the link
// screen's normal minimum size, Decline and Link device stay whole inside it, the
// screen's minimum width does not grow, and the whole name is still shown.
func TestConfirmLongLabelKeepsButtons(t *testing.T) {
	normal, _ := newFlowTest(t, &fakeLink{req: demoRequest()})
	toConfirm(t, normal)
	var normalMin fyne.Size
	locked(func() {
		normalMin = normal.Content().MinSize()
		normal.Stop() // its countdown would otherwise run beside the next screen's making
	})

	f, w := newFlowTest(t, &fakeLink{req: longRequest()})
	c := toConfirm(t, f)
	locked(func() {
		w.Resize(normalMin)
		if got := f.Content().MinSize().Width; got > normalMin.Width {
			t.Errorf("a 100-character name widens the screen's minimum from %v to %v px", normalMin.Width, got)
		}
		t.Logf("minimum width with a 100-character name: %v px (normal %v)", f.Content().MinSize().Width, normalMin.Width)
		withinWindow(t, w, c.deny, c.approve)
		if !hasText(c.Content(), longLabel) || !hasText(c.Content(), "M"+longLabel[1:]) {
			t.Error("the device's full name or model is not shown")
		}
	})
	shot(t, w, "confirm-long-name-min-size")
	locked(func() { w.Resize(fyne.NewSize(720, 635)) }) // the tab in the app's default window
	locked(func() { withinWindow(t, w, c.back, c.deny, c.approve) })
	shot(t, w, "confirm-long-name")
}

// The result screen names the device in a wrapped sentence: a long name does not
// widen it.
func TestResultLongLabelDoesNotWiden(t *testing.T) {
	goldenWindow(t, 640, 420, func() fyne.CanvasObject { return nil })
	var normal, long float32
	locked(func() {
		s, _ := resultScreen(ConfirmResult{Request: demoRequest()}, demoAccount(), func() {}, nil)
		normal = s.MinSize().Width
		s, _ = resultScreen(ConfirmResult{Approved: true, Device: devices.Device{Name: longLabel}, Request: longRequest()},
			demoAccount(), func() {}, nil)
		long = s.MinSize().Width
	})
	if long > normal {
		t.Errorf("a 100-character name widens the result screen from %v to %v px", normal, long)
	}
}

// A linked device with a 100-character name: its details panel wraps the name
// rather than widening the screen, and the unlink question shortens it.
func TestDevicesLongLabel(t *testing.T) {
	normal, _, _ := newDevicesTest(t, &fakeDevices{list: sampleDevices(3), events: make(chan devices.Event)})
	var normalMin fyne.Size
	locked(func() {
		normal.list.Select(0)
		normalMin = normal.Content().MinSize()
	})

	list := sampleDevices(3)
	list[0].Name, list[0].Model = longLabel, longLabel
	s, w, _ := newDevicesTest(t, &fakeDevices{list: list, events: make(chan devices.Event)})
	locked(func() {
		s.list.Select(0)
		if got := s.Content().MinSize().Width; got > normalMin.Width {
			t.Errorf("a 100-character name widens the devices screen's minimum from %v to %v px", normalMin.Width, got)
		}
		if !hasText(s.detail, longLabel) {
			t.Error("the details panel does not show the full name")
		}
		unlink := findButton(s.detail, "Unlink")
		pos := fyne.CurrentApp().Driver().AbsolutePositionForObject(unlink)
		if win := w.Canvas().Size(); pos.X+unlink.Size().Width > win.Width {
			t.Errorf("Unlink at x=%v (w %v) is off the %v-wide window", pos.X, unlink.Size().Width, win.Width)
		}
	})
	shot(t, w, "devices-long-name")
	locked(func() { test.Tap(findButton(s.detail, "Unlink")) })
	locked(func() {
		dlg := topOverlay(w)
		if dlg == nil || !hasText(dlg, "Unlink "+longLabel[:shortTitleLen-1]+"…?") {
			t.Fatal("the unlink question does not show the shortened name")
		}
		if win, min := w.Canvas().Size(), dlg.MinSize(); min.Width > win.Width {
			t.Errorf("the unlink question needs %v px of a %v px window", min.Width, win.Width)
		}
	})
	shot(t, w, "devices-long-name-unlink")
}

// The confirm screen of a device with a 100-character name and model, in the
// golden images' theme and size: name and model on one line each, cut with an
// ellipsis, and shown whole in the small line below.
func TestGoldenImageConfirmLongName(t *testing.T) {
	req := longRequest()
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
	assertGolden(t, w, "confirm_long_name.png")
}
