package ui

import (
	"errors"
	"fmt"
	"image"
	"os"
	"strings"
	"testing"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/devices/scan"
	st "github.com/linkdesk/linkdesk/devices/scan/scantest"
)

// kioskScanIssuer is the service kioskCode's verification_uri_complete points
// at (https://link.example.com/link?user_code=…).
const kioskScanIssuer = "https://link.example.com"

// captureKiosk shows code on a fresh kiosk screen and returns the whole
// window as a picture, as a phone or webcam would see the display.
func captureKiosk(t *testing.T, code string) image.Image {
	t.Helper()
	k, w, clock := newKioskTest(t, nil)
	k.Show(kioskCode(clock, code))
	var img image.Image
	locked(func() { img = w.Canvas().Capture() })
	return img
}

// TestKioskScanCorpus photographs the kiosk screen, as rendered by the real
// widgets, through the scantest distortions and checks scan.CodeFromImage
// reads the code shown, for the QR codes the kiosk itself draws. The floors
// are set like devices/scan's corpus from the rates measured (all 100% but
// blur r=3, 0%): 100% where the photo is comfortably within reach, one sample
// (33 points) below near the limits (1.9 pixels a module, heavy noise), and
// none for blur r=3, beyond what gozxing reads at 6 pixels a module.
func TestKioskScanCorpus(t *testing.T) {
	codes := []string{"BCDF-GHJK", "LMNP-QRST", "VWXZ-BCDF"}
	captures := make([]image.Image, len(codes))
	for i, c := range codes {
		captures[i] = captureKiosk(t, c)
	}
	if b := captures[0].Bounds(); b.Dx() < 1000 {
		t.Fatalf("capture is only %v", b.Size())
	}
	if os.Getenv("KIOSK_SCAN_SHOTS") != "" { // for a look by eye
		savePNG(t, "kiosk-scan-capture", captures[0])
	}

	// The 1920×1080 screen photographed at 640×360 (a webcam frame of a
	// screen across the room, or a downsized photo: the kiosk's code is about
	// 6 pixels a module, as in devices/scan's corpus), then distorted. Made once per code: scaling is
	// slow under -race.
	photos := make([]image.Image, len(captures))
	for i, c := range captures {
		photos[i] = st.Scale(c, 1.0/3)
	}
	levels := []struct {
		name  string
		floor int // percent; -1: measured only
		make  func(i int) image.Image
	}{
		{"full-size capture", 100, func(i int) image.Image { return captures[i] }},
		{"photo 640×360", 100, func(i int) image.Image { return photos[i] }},
		{"scale ×0.15", 100, func(i int) image.Image { return st.Scale(photos[i], 0.45) }},
		{"scale ×0.1", 66, func(i int) image.Image { return st.Scale(photos[i], 0.3) }},
		{"rotate 10°", 100, func(i int) image.Image { return st.Rotate(photos[i], 10+float64(i)) }},
		{"rotate 35°", 100, func(i int) image.Image { return st.Rotate(photos[i], 35+float64(i)) }},
		{"rotate 160°", 100, func(i int) image.Image { return st.Rotate(photos[i], 160+float64(i)) }},
		{"perspective 0.15", 100, func(i int) image.Image { return st.Perspective(photos[i], 0.15) }},
		{"perspective 0.3", 100, func(i int) image.Image { return st.Perspective(photos[i], 0.3) }},
		{"blur r=1", 100, func(i int) image.Image { return st.Blur(photos[i], 1) }},
		{"blur r=2", 100, func(i int) image.Image { return st.Blur(photos[i], 2) }},
		{"blur r=3", -1, func(i int) image.Image { return st.Blur(photos[i], 3) }},
		{"noise σ=30", 100, func(i int) image.Image { return st.Noise(photos[i], 30, uint64(i)) }},
		{"noise σ=60", 66, func(i int) image.Image { return st.Noise(photos[i], 60, uint64(i)) }},
		{"glare", 100, func(i int) image.Image { return st.Glare(photos[i], 0.75, 0.3, 0.2, 0.7) }},
		{"photo chain", 100, func(i int) image.Image {
			p := st.Perspective(photos[i], 0.12)
			p = st.Rotate(p, -12+float64(i))
			p = st.Blur(p, 1)
			p = st.LowContrast(p, 0.6, 20)
			return st.Noise(p, 15, uint64(i+3))
		}},
	}
	// The camera's cheap pass reads a plain webcam frame of the kiosk.
	for i, c := range codes {
		want, _ := devices.NormalizeCode(c)
		if got, err := scan.QuickCodeFromImage(photos[i], kioskScanIssuer); err != nil || got != want {
			t.Errorf("QuickCodeFromImage of the %s kiosk photo: %q, %v", c, got, err)
		}
	}

	var table strings.Builder
	fmt.Fprintf(&table, "\n%-18s %6s  %s\n", "kiosk photo", "read", "floor")
	for _, l := range levels {
		read := 0
		for i, c := range codes {
			want, _ := devices.NormalizeCode(c)
			got, err := scan.CodeFromImage(l.make(i), kioskScanIssuer)
			if err == nil && got == want {
				read++
			} else {
				t.Logf("%s, %s: %q, %v", l.name, c, got, err)
			}
		}
		rate := 100 * read / len(codes)
		floor := "-"
		if l.floor >= 0 {
			floor = fmt.Sprintf("%d%%", l.floor)
		}
		fmt.Fprintf(&table, "%-18s %5d%%  %s\n", l.name, rate, floor)
		if l.floor >= 0 && rate < l.floor {
			t.Errorf("%s: read %d%% of the kiosk photos, want at least %d%%", l.name, rate, l.floor)
		}
	}
	t.Log(table.String())
}

// TestKioskScanForeignIssuer: the kiosk of another service (here, the app
// configured for a different issuer) gives the phishing warning, not a code.
func TestKioskScanForeignIssuer(t *testing.T) {
	img := captureKiosk(t, "BCDF-GHJK")
	code, err := scan.CodeFromImage(img, "https://linkdesk.example.org")
	var fe *devices.ForeignLinkError
	if code != "" || !errors.As(err, &fe) || fe.Host != "link.example.com" {
		t.Fatalf("got %q, %v; want a foreign-link error naming link.example.com", code, err)
	}
}
