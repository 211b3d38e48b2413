//go:build x11

// Run under an X server, e.g. Xvfb:
//
//	Xvfb :77 -screen 0 800x600x24 & DISPLAY=:77 go test -race -tags x11 -run X11 ./devices/scan/
//
// It needs the xclip command, which owns the clipboard selection for the test.
package scan_test

import (
	"bytes"
	"errors"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/linkdesk/linkdesk/devices/scan"
	"github.com/linkdesk/linkdesk/devices/scan/scantest"
)

// needX11 fails the test when there is no X server or no xclip: the x11 tag
// asks for them.
func needX11(t *testing.T) {
	t.Helper()
	if os.Getenv("DISPLAY") == "" {
		t.Fatal("DISPLAY is not set: run the x11 tests under an X server (Xvfb, see scripts/xvfb-screenshot.sh)")
	}
	if _, err := exec.LookPath("xclip"); err != nil {
		t.Fatal("the xclip command is missing (apt-get install xclip)")
	}
}

// ownClipboard starts xclip in the foreground (-quiet) owning the CLIPBOARD
// selection with stdin as its content; it is killed when the test ends.
func ownClipboard(t *testing.T, content []byte, args ...string) {
	t.Helper()
	cmd := exec.Command("xclip", append([]string{"-quiet", "-selection", "clipboard"}, args...)...)
	cmd.Stdin = bytes.NewReader(content)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	// Wait until xclip owns the selection: the TARGETS it offers list ours.
	want := "UTF8_STRING"
	for i, a := range args[:max(len(args)-1, 0)] {
		if a == "-t" {
			want = args[i+1]
		}
	}
	waitFor(t, "xclip to own the clipboard", func() bool {
		out, _ := exec.Command("xclip", "-selection", "clipboard", "-o", "-t", "TARGETS").Output()
		return strings.Contains(string(out), want)
	})
}

func TestClipboardImageX11(t *testing.T) {
	needX11(t)
	code := newCode(t)
	frame := scantest.CameraFrame(scantest.CodeLink(testIssuer, code))
	var buf bytes.Buffer
	if err := png.Encode(&buf, frame); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "qr.png")
	if err := os.WriteFile(file, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	ownClipboard(t, nil, "-t", "image/png", "-i", file)

	img, err := scan.ClipboardImage(t.Context())
	if err != nil {
		t.Fatalf("ClipboardImage: %v", err)
	}
	if !sameImage(img, frame) {
		t.Error("the clipboard picture differs from the one copied")
	}
	if got, err := scan.CodeFromImage(img, testIssuer); err != nil || got != code {
		t.Errorf("CodeFromImage = %q, %v; want %q", got, err, code)
	}
}

func TestClipboardTextOnlyX11(t *testing.T) {
	needX11(t)
	ownClipboard(t, []byte("BCDF-GHJK"))
	if img, err := scan.ClipboardImage(t.Context()); !errors.Is(err, scan.ErrNoClipboardImage) {
		t.Fatalf("ClipboardImage = %v, %v; want ErrNoClipboardImage", img, err)
	}
}

// sameImage compares two pictures pixel by pixel.
func sameImage(a, b image.Image) bool {
	if a.Bounds().Size() != b.Bounds().Size() {
		return false
	}
	da, db := a.Bounds().Min, b.Bounds().Min
	for y := range a.Bounds().Dy() {
		for x := range a.Bounds().Dx() {
			if !sameColor(a.At(da.X+x, da.Y+y), b.At(db.X+x, db.Y+y)) {
				return false
			}
		}
	}
	return true
}
