package scan

import (
	"bytes"
	"context"
	"errors"
	"image"
	"log/slog"
	"strings"
	"sync"

	"golang.design/x/clipboard"
)

// ErrNoClipboardImage means the clipboard holds no picture (it may hold text,
// which the UI reads itself).
var ErrNoClipboardImage = errors.New("the clipboard holds no picture")

// ErrClipboardUnavailable means the system clipboard cannot be used here: no
// display (a Linux session without X11 or XWayland), or a build without cgo.
var ErrClipboardUnavailable = errors.New("the clipboard cannot be used on this computer")

var (
	clipboardInit    sync.Once
	clipboardInitErr error

	clipboardMu      sync.Mutex
	clipboardPending *clipboardRead // the read under way, if any; guarded by clipboardMu
)

// clipboardRead is one read of the clipboard; done is closed when img and err are set.
type clipboardRead struct {
	done chan struct{}
	img  image.Image
	err  error
}

// ClipboardImage returns the picture on the clipboard (a screenshot of a QR
// code, say). It returns ErrNoClipboardImage when there is none,
// ErrClipboardUnavailable when there is no clipboard to read, the picture's
// decoding error (see ReadImage), or ctx.Err() when ctx ends first.
//
// The read runs on its own goroutine because the system call can block (an
// X11 clipboard owner that never answers); calls made while one is under way
// share its result, so a stuck read never piles up goroutines.
func ClipboardImage(ctx context.Context) (image.Image, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r := startClipboardRead()
	select {
	case <-r.done:
		return r.img, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// startClipboardRead returns the read under way or starts one.
func startClipboardRead() *clipboardRead {
	clipboardMu.Lock()
	defer clipboardMu.Unlock()
	if clipboardPending != nil {
		return clipboardPending
	}
	r := &clipboardRead{done: make(chan struct{})}
	clipboardPending = r
	go func() {
		r.img, r.err = readClipboardImage()
		clipboardMu.Lock()
		clipboardPending = nil
		clipboardMu.Unlock()
		close(r.done)
	}()
	return r
}

// readClipboardImage reads and decodes the clipboard's PNG picture.
func readClipboardImage() (image.Image, error) {
	clipboardInit.Do(func() {
		if err := clipboard.Init(); err != nil {
			// The library's message goes on with a setup guide: log its first line.
			first, _, _ := strings.Cut(err.Error(), "\n")
			slog.Warn("clipboard unavailable", "err", first)
			clipboardInitErr = ErrClipboardUnavailable
		}
	})
	if clipboardInitErr != nil {
		return nil, clipboardInitErr
	}
	data := clipboard.Read(clipboard.FmtImage)
	if len(data) == 0 {
		return nil, ErrNoClipboardImage
	}
	return ReadImage(bytes.NewReader(data))
}
