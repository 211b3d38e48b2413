package ui

import (
	"image"
	"strings"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/theme"
	"github.com/makiuchi-d/gozxing"
	gozxingqr "github.com/makiuchi-d/gozxing/qrcode"

	"github.com/linkdesk/linkdesk/auth/device"
)

type kioskClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *kioskClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *kioskClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newKioskTest(t *testing.T, onUnlink func()) (*KioskScreen, fyne.Window, *kioskClock) {
	t.Helper()
	a := test.NewTempApp(t)
	a.Settings().SetTheme(theme.DefaultTheme())
	clock := &kioskClock{now: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
	k := NewKioskScreen(onUnlink)
	k.now = clock.Now
	k.Stop() // tests drive the countdown by hand
	w := a.NewWindow("Kiosk")
	w.SetContent(k.Content())
	w.Resize(fyne.NewSize(1920, 1080))
	t.Cleanup(w.Close)
	return k, w, clock
}

func kioskCode(clock *kioskClock, code string) device.ShowingCode {
	return device.ShowingCode{
		UserCode:                code,
		VerificationURI:         "https://link.example.com/link",
		VerificationURIComplete: "https://link.example.com/link?user_code=" + code,
		ExpiresAt:               clock.Now().Add(10 * time.Minute),
	}
}

// decodeKioskQR captures the window and decodes the QR code where the screen drew it.
func decodeKioskQR(t *testing.T, k *KioskScreen, w fyne.Window) string {
	t.Helper()
	img := w.Canvas().Capture()
	scale := float32(img.Bounds().Dx()) / w.Canvas().Size().Width
	pos, size := k.qr.Position(), k.qr.Size()
	r := image.Rect(int(pos.X*scale), int(pos.Y*scale), int((pos.X+size.Width)*scale), int((pos.Y+size.Height)*scale))
	sub := img.(interface {
		SubImage(image.Rectangle) image.Image
	}).SubImage(r)
	bmp, err := gozxing.NewBinaryBitmapFromImage(sub)
	if err != nil {
		t.Fatal(err)
	}
	res, err := gozxingqr.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		t.Fatalf("QR code does not decode: %v", err)
	}
	return res.GetText()
}

func TestKioskShowsCodeQRAndCountdown(t *testing.T) {
	k, w, clock := newKioskTest(t, nil)
	k.Show(kioskCode(clock, "BCDF-GHJK"))

	if k.code.Text != "BCDF-GHJK" || !k.code.Visible() {
		t.Fatalf("code shows %q", k.code.Text)
	}
	if k.address.Text != "link.example.com/link" {
		t.Fatalf("address shows %q", k.address.Text)
	}
	if k.countTxt.Text != "Code expires in 10 min" {
		t.Fatalf("countdown shows %q", k.countTxt.Text)
	}
	if got := decodeKioskQR(t, k, w); got != "https://link.example.com/link?user_code=BCDF-GHJK" {
		t.Fatalf("QR holds %q", got)
	}

	clock.Add(61 * time.Second)
	k.updateCountdown()
	if k.countTxt.Text != "Code expires in 8 min" {
		t.Fatalf("countdown shows %q", k.countTxt.Text)
	}

	// A fresh code replaces code, QR code and countdown.
	next := kioskCode(clock, "LMNP-QRST")
	next.AfterDecline = true
	k.Show(next)
	if k.code.Text != "LMNP-QRST" || k.countTxt.Text != "Code expires in 10 min" {
		t.Fatalf("after new code: %q %q", k.code.Text, k.countTxt.Text)
	}
	if !strings.Contains(k.status.Text, "declined") {
		t.Fatalf("status %q does not mention the decline", k.status.Text)
	}
	if got := decodeKioskQR(t, k, w); got != "https://link.example.com/link?user_code=LMNP-QRST" {
		t.Fatalf("QR holds %q", got)
	}

	// Without a complete URI the QR code holds the plain verification address.
	plain := kioskCode(clock, "VWXZ-BCDF")
	plain.VerificationURIComplete = ""
	k.Show(plain)
	if got := decodeKioskQR(t, k, w); got != "https://link.example.com/link" {
		t.Fatalf("QR holds %q", got)
	}
}

func TestKioskStatusLines(t *testing.T) {
	k, _, clock := newKioskTest(t, nil)
	k.Show(kioskCode(clock, "BCDF-GHJK"))
	k.Show(device.Offline{RetryAt: clock.Now().Add(5 * time.Second)})
	if k.status.Text != "Offline — retrying" || !k.code.Visible() {
		t.Fatalf("offline: status %q, code visible %v", k.status.Text, k.code.Visible())
	}
	k.Show(device.Declined{})
	if k.status.Text != "Link was declined" {
		t.Fatalf("declined: status %q", k.status.Text)
	}
}

func TestKioskLinkedAndUnlink(t *testing.T) {
	unlinked := make(chan struct{}, 1)
	k, w, clock := newKioskTest(t, func() { unlinked <- struct{}{} })
	k.Show(kioskCode(clock, "BCDF-GHJK"))
	k.Show(device.Linked{DisplayName: "Ada Lovelace"})
	if k.linked.Text != "Linked to Ada Lovelace" || !k.linked.Visible() || k.code.Visible() || k.qr.Visible() {
		t.Fatalf("linked view wrong: %q code visible %v", k.linked.Text, k.code.Visible())
	}
	shot(t, w, "kiosk-linked")
	test.Tap(k.unlink)
	// A public screen asks first: nothing is unlinked until Unlink is chosen.
	ask := topOverlay(w)
	if ask == nil || !hasText(ask, "Unlink this display?") || len(unlinked) != 0 {
		t.Fatalf("no question before unlinking (overlay %v, unlinked %d)", ask, len(unlinked))
	}
	shot(t, w, "kiosk-unlink-ask")
	test.Tap(findButton(ask, "Cancel"))
	if topOverlay(w) != nil || len(unlinked) != 0 || k.unlink.Disabled() {
		t.Fatal("Cancel did not leave the display linked")
	}
	test.Tap(k.unlink)
	test.Tap(findButton(topOverlay(w), "Unlink"))
	select {
	case <-unlinked:
	case <-time.After(5 * time.Second):
		t.Fatal("unlink not called")
	}
	if !k.unlink.Disabled() {
		t.Fatal("unlink button stays enabled while unlinking")
	}
	k.Show(device.Unlinked{ByUs: true})
	k.Show(kioskCode(clock, "LMNP-QRST"))
	if !k.code.Visible() || k.linked.Visible() {
		t.Fatal("code view not back after unlink")
	}
	if !strings.Contains(k.status.Text, "unlinked") {
		t.Fatalf("status %q does not say the display was unlinked", k.status.Text)
	}
}

func TestKioskTextGrowsWithWindow(t *testing.T) {
	k, w, clock := newKioskTest(t, nil)
	k.Show(kioskCode(clock, "BCDF-GHJK"))
	big := k.code.TextSize
	w.Resize(fyne.NewSize(800, 450))
	small := k.code.TextSize
	if !(big > small) || small < 24 {
		t.Fatalf("code size %v at 1920x1080, %v at 800x450", big, small)
	}
}

func TestKioskScreenshot(t *testing.T) {
	k, w, clock := newKioskTest(t, nil)
	k.Show(kioskCode(clock, "BCDF-GHJK"))
	shot(t, w, "kiosk")
}

// The kiosk's countdown changes its words once a minute, and every second only
// in the last minute, so an idle kiosk redraws it rarely (issue 10 item 17).
func TestKioskCountdownChangesOncePerMinuteUntilTheLast(t *testing.T) {
	k, _, clock := newKioskTest(t, nil)
	k.Show(kioskCode(clock, "BCDF-GHJK")) // 10 minutes to go
	changes := 0
	last := k.countTxt.Text
	for range 8 * 60 { // to 2:00 left
		clock.Add(time.Second)
		k.updateCountdown()
		if k.countTxt.Text != last {
			changes++
			last = k.countTxt.Text
		}
	}
	if changes != 8 || last != "Code expires in 2 min" {
		t.Fatalf("over 8 minutes the countdown changed %d times, ending at %q; want 8, \"Code expires in 2 min\"", changes, last)
	}
	for _, c := range []struct {
		after time.Duration
		want  string
	}{
		{59 * time.Second, "Code expires in 1 min"},
		{time.Second, "Code expires in 1 min"},
		{time.Second, "Code expires in 59 s"},
		{58 * time.Second, "Code expires in 1 s"},
		{time.Second, "Getting a new code…"},
	} {
		clock.Add(c.after)
		k.updateCountdown()
		if k.countTxt.Text != c.want {
			t.Fatalf("countdown shows %q, want %q", k.countTxt.Text, c.want)
		}
	}
}
