package scan

import (
	"context"
	"errors"
	"image"
	"sync"
	"time"

	"github.com/linkdesk/linkdesk/devices"
)

// FrameReader is a source of camera frames: the real camera (OpenCamera) or a
// recorded one in tests (scantest.RecordedFrames).
type FrameReader interface {
	// ReadFrame blocks for the next frame; it returns io.EOF when the source
	// ends, and ctx.Err() when ctx ends first. Frames are read-only.
	ReadFrame(ctx context.Context) (image.Image, error)
	// Close stops the source; calling it again does nothing.
	Close() error
}

// ErrNotLinkdeskCode is the refusal Watch reports for a QR code that was read
// but holds no Linkdesk code (a Wi-Fi QR, a restaurant menu...).
var ErrNotLinkdeskCode = errors.New("this QR code holds no Linkdesk code")

// previewInterval spaces the frames given to onFrame: about 15 per second is
// smooth enough for a preview and spares the UI thread.
const previewInterval = time.Second / 15

// maxRefused bounds the refusal memory of one Watch; past it, refusals may be
// reported again, which is harmless.
const maxRefused = 64

// Watch reads frames from src until ctx ends, the source fails, or a frame
// holds a code for issuer, which it returns. It returns ctx.Err() when ctx ends,
// and the source's error (io.EOF for a recording that ran out) when it fails;
// src stays open either way, the caller closes it.
//
// onFrame (may be nil) gets frames for a live preview, at most about 15 per
// second. onRefused (may be nil) gets each refused QR once per distinct QR text
// while watching goes on: a *devices.ForeignLinkError (errors.Is
// devices.ErrForeignLink: a phishing warning) or an error matching
// ErrNotLinkdeskCode. Both run on goroutines Watch starts, never after Watch
// returns; they should return quickly.
//
// Decoding is slower than a camera, so one worker decodes the newest frame and
// frames that arrive while it is busy are dropped.
func Watch(ctx context.Context, src FrameReader, issuer string, onFrame func(image.Image), onRefused func(error)) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	wctx, stop := context.WithCancel(ctx)
	defer stop()

	w := &watcher{
		issuer:    issuer,
		onRefused: onRefused,
		newest:    make(chan image.Image, 1),
		found:     make(chan string, 1),
		stop:      stop,
		refused:   make(map[string]bool),
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		w.decodeLoop(wctx)
	}()

	var lastPreview time.Time
	var srcErr error
	for {
		img, err := src.ReadFrame(wctx)
		if err != nil {
			if wctx.Err() == nil {
				srcErr = err
			}
			break
		}
		if img == nil {
			continue
		}
		if onFrame != nil {
			if now := time.Now(); now.Sub(lastPreview) >= previewInterval {
				lastPreview = now
				onFrame(img)
			}
		}
		// Replace whatever frame still waits: the worker wants the newest.
		// Watch is the only sender, so after the drain the send cannot block.
		select {
		case <-w.newest:
		default:
		}
		w.newest <- img
	}

	if srcErr != nil {
		// The source ended or failed: the worker decodes the frame still
		// waiting (a recording's last frame may hold the code), then ends.
		close(w.newest)
	} else {
		stop()
	}
	wg.Wait()

	select {
	case code := <-w.found:
		return code, nil
	default:
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	return "", srcErr
}

// watcher is the decoding side of one Watch.
type watcher struct {
	issuer    string
	onRefused func(error)
	newest    chan image.Image // capacity 1: the newest undecoded frame
	found     chan string      // capacity 1: the code, once
	stop      context.CancelFunc
	refused   map[string]bool // QR texts already reported
}

// decodeLoop decodes frames from w.newest until ctx ends, the channel is
// closed and drained, or a code is found.
func (w *watcher) decodeLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case img, ok := <-w.newest:
			if !ok {
				return
			}
			if w.decode(img) {
				return
			}
		}
	}
}

// decode reads img's QR codes; it returns true once a code for the issuer is
// found (and sent on w.found), reporting new refusals otherwise.
func (w *watcher) decode(img image.Image) bool {
	texts, err := QuickDecodeQR(img)
	if err != nil {
		return false // most frames hold no readable QR code
	}
	var refusals []error
	var refusedTexts []string
	for _, t := range texts {
		code, err := devices.ParseCodeInput(t, w.issuer)
		if err == nil {
			w.found <- code
			w.stop()
			return true
		}
		if w.refused[t] {
			continue
		}
		refusals = append(refusals, refusal(err))
		refusedTexts = append(refusedTexts, t)
	}
	for i, err := range refusals {
		if len(w.refused) >= maxRefused {
			clear(w.refused)
		}
		w.refused[refusedTexts[i]] = true
		if w.onRefused != nil {
			w.onRefused(err)
		}
	}
	return false
}

// refusal words a ParseCodeInput error for onRefused: foreign links keep their
// *devices.ForeignLinkError (the warning names the host); anything else is
// ErrNotLinkdeskCode, still wrapping the cause.
func refusal(err error) error {
	if errors.Is(err, devices.ErrForeignLink) {
		return err
	}
	return &notLinkdeskError{cause: err}
}

// notLinkdeskError is ErrNotLinkdeskCode with the reason ParseCodeInput gave.
type notLinkdeskError struct{ cause error }

func (e *notLinkdeskError) Error() string   { return ErrNotLinkdeskCode.Error() }
func (e *notLinkdeskError) Unwrap() []error { return []error{ErrNotLinkdeskCode, e.cause} }
