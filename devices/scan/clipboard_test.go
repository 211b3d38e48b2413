//go:build !x11

package scan_test

import (
	"context"
	"errors"
	"os"
	"runtime"
	"testing"

	"github.com/linkdesk/linkdesk/devices/scan"
)

func TestClipboardImageCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := scan.ClipboardImage(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("ClipboardImage = %v; want context.Canceled", err)
	}
}

// TestClipboardWithoutDisplay checks the error of a Linux session with no
// display. With one, the x11-tagged tests cover the clipboard.
func TestClipboardWithoutDisplay(t *testing.T) {
	if runtime.GOOS != "linux" || os.Getenv("DISPLAY") != "" || os.Getenv("WAYLAND_DISPLAY") != "" {
		t.Skip("there is a display (or this is not Linux): see clipboard_x11_test.go")
	}
	for range 2 { // the second call gets the remembered failure
		if img, err := scan.ClipboardImage(t.Context()); !errors.Is(err, scan.ErrClipboardUnavailable) {
			t.Fatalf("ClipboardImage = %v, %v; want ErrClipboardUnavailable", img, err)
		}
	}
}
