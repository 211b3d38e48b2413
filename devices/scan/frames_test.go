package scan_test

import (
	"context"
	"errors"
	"image"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/devices/scan"
	"github.com/linkdesk/linkdesk/devices/scan/scantest"
)

const testIssuer = "https://link.example.com"

var _ scan.FrameReader = (*scantest.RecordedFrames)(nil)

// newCode is a fresh user code in canonical form.
func newCode(t testing.TB) string {
	t.Helper()
	code, err := devices.NewUserCode()
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// waitFor polls cond until it holds, failing the test after a generous deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// watchResult is what one Watch call returned.
type watchResult struct {
	code string
	err  error
}

// startWatch runs Watch on its own goroutine; the returned channel gets its result.
func startWatch(ctx context.Context, src scan.FrameReader, onFrame func(image.Image), onRefused func(error)) <-chan watchResult {
	done := make(chan watchResult, 1)
	go func() {
		code, err := scan.Watch(ctx, src, testIssuer, onFrame, onRefused)
		done <- watchResult{code, err}
	}()
	return done
}

// result waits for Watch to return; the deadline only catches a hang.
func result(t *testing.T, done <-chan watchResult) watchResult {
	t.Helper()
	select {
	case r := <-done:
		return r
	case <-time.After(30 * time.Second):
		t.Fatal("Watch did not return")
		return watchResult{}
	}
}

// refusals collects what onRefused gets.
type refusals struct {
	mu   sync.Mutex
	errs []error
}

func (r *refusals) add(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, err)
}

func (r *refusals) list() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.errs...)
}

func TestWatchFindsCodeAfterFramesWithout(t *testing.T) {
	code := newCode(t)
	blurry := scantest.BlurryFrame(scantest.CodeLink(testIssuer, code))
	frames := []image.Image{
		scantest.EmptyFrame(1), scantest.EmptyFrame(2), scantest.EmptyFrame(3),
		blurry, blurry, blurry,
		scantest.CameraFrame(scantest.CodeLink(testIssuer, code)),
	}
	src := scantest.NewRecordedFrames(5*time.Millisecond, frames...)
	sent := make(map[image.Image]bool)
	for _, f := range frames {
		sent[f] = true
	}
	var previewed atomic.Int64
	var foreignFrame atomic.Bool
	var refused refusals
	onFrame := func(img image.Image) {
		previewed.Add(1)
		if !sent[img] {
			foreignFrame.Store(true)
		}
	}

	r := result(t, startWatch(t.Context(), src, onFrame, refused.add))
	if r.err != nil || r.code != code {
		t.Fatalf("Watch = %q, %v; want %q", r.code, r.err, code)
	}
	if previewed.Load() == 0 {
		t.Error("onFrame got no frame")
	}
	if foreignFrame.Load() {
		t.Error("onFrame got a frame the source did not send")
	}
	if errs := refused.list(); len(errs) != 0 {
		t.Errorf("frames without a readable code were refused: %v", errs)
	}
}

func TestWatchFindsCodeInLoopingSource(t *testing.T) {
	code := newCode(t)
	src := scantest.NewLoopingFrames(2*time.Millisecond,
		scantest.EmptyFrame(1), scantest.EmptyFrame(2), scantest.CameraFrame(scantest.CodeLink(testIssuer, code)))
	r := result(t, startWatch(t.Context(), src, nil, nil))
	if r.err != nil || r.code != code {
		t.Fatalf("Watch = %q, %v; want %q", r.code, r.err, code)
	}
	if src.Closed() {
		t.Error("Watch closed the source; the caller owns it")
	}
}

// switchSource reads from first until switched, then from second.
type switchSource struct {
	first, second scan.FrameReader
	switched      atomic.Bool
}

func (s *switchSource) ReadFrame(ctx context.Context) (image.Image, error) {
	if s.switched.Load() {
		return s.second.ReadFrame(ctx)
	}
	return s.first.ReadFrame(ctx)
}

func (s *switchSource) Close() error { return errors.Join(s.first.Close(), s.second.Close()) }

func TestWatchReportsForeignLinkOnceAndGoesOn(t *testing.T) {
	code := newCode(t)
	phishing := scantest.NewLoopingFrames(5*time.Millisecond, scantest.CameraFrame(scantest.ForeignLink(newCode(t))))
	right := scantest.NewLoopingFrames(5*time.Millisecond, scantest.CameraFrame(scantest.CodeLink(testIssuer, code)))
	src := &switchSource{first: phishing, second: right}
	var refused refusals

	done := startWatch(t.Context(), src, nil, refused.add)
	waitFor(t, "the phishing warning", func() bool { return len(refused.list()) > 0 })
	// The camera keeps seeing the phishing code for a while: no second warning.
	seen := phishing.Reads()
	waitFor(t, "more phishing frames", func() bool { return phishing.Reads() >= seen+40 })
	src.switched.Store(true)

	r := result(t, done)
	if r.err != nil || r.code != code {
		t.Fatalf("Watch = %q, %v; want %q", r.code, r.err, code)
	}
	errs := refused.list()
	if len(errs) != 1 {
		t.Fatalf("onRefused got %d errors, want 1: %v", len(errs), errs)
	}
	var fe *devices.ForeignLinkError
	if !errors.Is(errs[0], devices.ErrForeignLink) || !errors.As(errs[0], &fe) || fe.Host != scantest.ForeignHost {
		t.Errorf("refusal = %v; want a foreign link to %s", errs[0], scantest.ForeignHost)
	}
}

func TestWatchRefusesQRWithoutLinkdeskCode(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	src := scantest.NewLoopingFrames(5*time.Millisecond, scantest.CameraFrame("WIFI:T:WPA;S:guests;P:hunter22;;"))
	var refused refusals
	done := startWatch(ctx, src, nil, refused.add)
	waitFor(t, "the refusal", func() bool { return len(refused.list()) > 0 })
	cancel()
	if r := result(t, done); !errors.Is(r.err, context.Canceled) {
		t.Fatalf("Watch = %q, %v; want context.Canceled", r.code, r.err)
	}
	errs := refused.list()
	if len(errs) != 1 || !errors.Is(errs[0], scan.ErrNotLinkdeskCode) || errors.Is(errs[0], devices.ErrForeignLink) {
		t.Fatalf("refusals = %v; want one ErrNotLinkdeskCode", errs)
	}
}

func TestWatchRecording(t *testing.T) {
	code := newCode(t)
	src := scantest.NewRecordedFrames(10*time.Millisecond, scantest.Recording(testIssuer, code)...)
	var refused refusals
	r := result(t, startWatch(t.Context(), src, nil, refused.add))
	if r.err != nil || r.code != code {
		t.Fatalf("Watch = %q, %v; want %q", r.code, r.err, code)
	}
	// Which refused frames get decoded depends on timing; each kind at most once.
	var foreign, other int
	for _, err := range refused.list() {
		switch {
		case errors.Is(err, devices.ErrForeignLink):
			foreign++
		case errors.Is(err, scan.ErrNotLinkdeskCode):
			other++
		default:
			t.Errorf("unexpected refusal %v", err)
		}
	}
	if foreign > 1 || other > 1 {
		t.Errorf("refusals repeated: %v", refused.list())
	}
}

func TestWatchCancel(t *testing.T) {
	for _, tc := range []struct {
		name     string
		interval time.Duration
	}{
		{"busy camera", time.Millisecond},
		{"camera sending nothing", time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			src := scantest.NewLoopingFrames(tc.interval, scantest.EmptyFrame(1), scantest.EmptyFrame(2))
			var previewed atomic.Int64
			done := startWatch(ctx, src, func(image.Image) { previewed.Add(1) }, nil)
			waitFor(t, "the first frame", func() bool { return previewed.Load() > 0 })
			cancel()
			if r := result(t, done); !errors.Is(r.err, context.Canceled) || r.code != "" {
				t.Fatalf("Watch = %q, %v; want context.Canceled", r.code, r.err)
			}
		})
	}
}

func TestWatchCanceledBeforeStart(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	src := scantest.NewLoopingFrames(time.Millisecond, scantest.EmptyFrame(1))
	if _, err := scan.Watch(ctx, src, testIssuer, nil, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Watch = %v; want context.Canceled", err)
	}
	if src.Reads() != 0 {
		t.Errorf("Watch read %d frames after its context ended", src.Reads())
	}
}

func TestWatchCameraFails(t *testing.T) {
	src := scantest.NewUnpluggedCamera(5, time.Millisecond, scantest.EmptyFrame(1))
	r := result(t, startWatch(t.Context(), src, nil, nil))
	if !errors.Is(r.err, scantest.ErrUnplugged) {
		t.Fatalf("Watch = %q, %v; want ErrUnplugged", r.code, r.err)
	}
	if src.Reads() != 5 {
		t.Errorf("read %d frames, want 5", src.Reads())
	}
}

func TestWatchRecordingEnds(t *testing.T) {
	src := scantest.NewRecordedFrames(time.Millisecond, scantest.EmptyFrame(1), scantest.EmptyFrame(2))
	r := result(t, startWatch(t.Context(), src, nil, nil))
	if !errors.Is(r.err, io.EOF) {
		t.Fatalf("Watch = %q, %v; want io.EOF", r.code, r.err)
	}
}

func TestWatchLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	code := newCode(t)
	for range 3 {
		// Found.
		src := scantest.NewRecordedFrames(0, scantest.EmptyFrame(1), scantest.CameraFrame(scantest.CodeLink(testIssuer, code)))
		if got, err := scan.Watch(t.Context(), src, testIssuer, nil, nil); err != nil || got != code {
			t.Fatalf("Watch = %q, %v", got, err)
		}
		// Source failed.
		if _, err := scan.Watch(t.Context(), scantest.NewUnpluggedCamera(3, 0, scantest.EmptyFrame(1)), testIssuer, nil, nil); !errors.Is(err, scantest.ErrUnplugged) {
			t.Fatalf("Watch = %v", err)
		}
		// Canceled.
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
		_, err := scan.Watch(ctx, scantest.NewLoopingFrames(time.Millisecond, scantest.EmptyFrame(1)), testIssuer, nil, nil)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Watch = %v", err)
		}
	}
	// Watch returns only after its goroutines have ended; NumGoroutine may still
	// count them for a moment while they exit.
	waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}

func TestRecordedFramesClose(t *testing.T) {
	src := scantest.NewLoopingFrames(time.Hour, scantest.EmptyFrame(1))
	if _, err := src.ReadFrame(t.Context()); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := src.ReadFrame(t.Context())
		errc <- err
	}()
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if err := src.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("ReadFrame after Close returned a frame")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not end a waiting ReadFrame")
	}
}

func TestRecordingFrames(t *testing.T) {
	code := newCode(t)
	link := scantest.CodeLink(testIssuer, code)
	if got, err := scan.QuickCodeFromImage(scantest.CameraFrame(link), testIssuer); err != nil || got != code {
		t.Errorf("CameraFrame: QuickCodeFromImage = %q, %v; want %q", got, err, code)
	}
	if _, err := scan.QuickCodeFromImage(scantest.BlurryFrame(link), testIssuer); !errors.Is(err, scan.ErrNoQRCode) {
		t.Errorf("BlurryFrame: QuickCodeFromImage err = %v; want ErrNoQRCode", err)
	}
	if _, err := scan.QuickCodeFromImage(scantest.EmptyFrame(3), testIssuer); !errors.Is(err, scan.ErrNoQRCode) {
		t.Errorf("EmptyFrame: QuickCodeFromImage err = %v; want ErrNoQRCode", err)
	}
	if _, err := scan.QuickCodeFromImage(scantest.CameraFrame(scantest.ForeignLink(code)), testIssuer); !errors.Is(err, devices.ErrForeignLink) {
		t.Errorf("ForeignLink frame: QuickCodeFromImage err = %v; want ErrForeignLink", err)
	}
}

// BenchmarkWatch measures how many camera frames Watch handles per second when
// the camera is faster than decoding (most frames are dropped).
func BenchmarkWatch(b *testing.B) {
	code := newCode(b)
	frames := scantest.Recording(testIssuer, code)
	var reads int
	start := time.Now()
	for b.Loop() {
		src := scantest.NewRecordedFrames(0, frames...)
		if got, err := scan.Watch(b.Context(), src, testIssuer, nil, nil); err != nil || got != code {
			b.Fatalf("Watch = %q, %v", got, err)
		}
		reads += src.Reads()
	}
	b.ReportMetric(float64(reads)/time.Since(start).Seconds(), "frames/s")
}
