package scan_test

import (
	"context"
	"errors"
	"image"
	"image/color"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/mediadevices/pkg/driver"
	"github.com/pion/mediadevices/pkg/frame"
	"github.com/pion/mediadevices/pkg/io/video"
	"github.com/pion/mediadevices/pkg/prop"

	"github.com/linkdesk/linkdesk/devices/scan"
)

// TestRealCamera uses this computer's camera when it has one: it opens it,
// reads frames, and closes it twice.
func TestRealCamera(t *testing.T) {
	names, err := scan.Cameras()
	if err != nil {
		t.Fatalf("Cameras: %v", err)
	}
	if len(names) == 0 {
		t.Skip("no camera on this computer (on Linux: no /dev/video* device): the real capture path is untested here")
	}
	t.Logf("cameras: %q", names)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cam, err := scan.OpenCamera(ctx)
	if errors.Is(err, scan.ErrCameraDenied) {
		t.Skipf("the camera may not be used by this user: %v", err)
	}
	if err != nil {
		t.Fatalf("OpenCamera: %v", err)
	}
	var first image.Image
	for i := range 5 {
		img, err := cam.ReadFrame(ctx)
		if err != nil {
			t.Fatalf("ReadFrame %d: %v", i, err)
		}
		if b := img.Bounds(); b.Dx() < 32 || b.Dy() < 32 || b.Dx() > 1280 {
			t.Errorf("frame %d is %v", i, b)
		}
		if first == nil {
			first = img
		}
	}
	// The first frame stays readable after later frames and after Close.
	if err := cam.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	_ = first.At(first.Bounds().Min.X, first.Bounds().Min.Y)
	if err := cam.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := cam.ReadFrame(ctx); err == nil {
		t.Error("ReadFrame after Close returned a frame")
	}
}

// TestNoCamera checks the error a computer without a camera gives.
func TestNoCamera(t *testing.T) {
	names, err := scan.Cameras()
	if err != nil {
		t.Fatalf("Cameras: %v", err)
	}
	if len(names) > 0 {
		t.Skipf("this computer has cameras (%q): the no-camera path is untested here", names)
	}
	if runtime.GOOS == "linux" {
		if devs, _ := filepath.Glob("/dev/video*"); len(devs) > 0 {
			t.Skipf("video devices %v exist but no camera driver lists them (built without cgo?)", devs)
		}
	}
	cam, err := scan.OpenCamera(t.Context())
	if !errors.Is(err, scan.ErrNoCamera) {
		if cam != nil {
			cam.Close()
		}
		t.Fatalf("OpenCamera = %v; want ErrNoCamera", err)
	}
	if err.Error() != "no camera was found on this computer" {
		t.Errorf("message %q", err)
	}
}

func TestOpenCameraCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := scan.OpenCamera(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("OpenCamera = %v; want context.Canceled", err)
	}
}

func TestVideoAccessError(t *testing.T) {
	dir := t.TempDir()
	if err := scan.VideoAccessError(nil); err != nil {
		t.Errorf("no device files: %v", err)
	}
	open := filepath.Join(dir, "video0")
	if err := os.WriteFile(open, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := scan.VideoAccessError([]string{open}); err != nil {
		t.Errorf("readable device file: %v", err)
	}
	locked := filepath.Join(dir, "video1")
	if err := os.WriteFile(locked, nil, 0); err != nil {
		t.Fatal(err)
	}
	if f, err := os.OpenFile(locked, os.O_RDWR, 0); err == nil {
		f.Close()
		t.Skip("this user (root?) may open any file: the permission check is untested here")
	} else if !errors.Is(err, fs.ErrPermission) {
		t.Skipf("opening a mode-0 file gave %v, not a permission error", err)
	}
	err := scan.VideoAccessError([]string{locked})
	if !errors.Is(err, scan.ErrCameraDenied) {
		t.Fatalf("unreadable device file: %v; want ErrCameraDenied", err)
	}
	if runtime.GOOS == "linux" && !strings.Contains(err.Error(), `"video" group`) {
		t.Errorf("message %q does not say to join the video group", err)
	}
	if err := scan.VideoAccessError([]string{locked, open}); err != nil {
		t.Errorf("one usable device of two: %v", err)
	}
}

func TestPickProperty(t *testing.T) {
	p := func(w, h int, f frame.Format, fps float32) prop.Media {
		return prop.Media{Video: prop.Video{Width: w, Height: h, FrameFormat: f, FrameRate: fps}}
	}
	for _, tc := range []struct {
		name  string
		props []prop.Media
		want  prop.Media
		ok    bool
	}{
		{"none", nil, prop.Media{}, false},
		{"only undecodable formats", []prop.Media{p(640, 480, frame.FormatZ16, 30), p(640, 480, frame.FormatRGBA, 30)}, prop.Media{}, false},
		{"largest within 720p",
			[]prop.Media{p(320, 240, frame.FormatYUYV, 30), p(1280, 720, frame.FormatMJPEG, 30), p(1920, 1080, frame.FormatMJPEG, 30), p(640, 480, frame.FormatMJPEG, 30)},
			p(1280, 720, frame.FormatMJPEG, 30), true},
		{"4:3 under the pixel budget",
			[]prop.Media{p(1280, 960, frame.FormatMJPEG, 30), p(1024, 768, frame.FormatYUYV, 15), p(640, 480, frame.FormatMJPEG, 30)},
			p(1024, 768, frame.FormatYUYV, 15), true},
		{"MJPEG over YUYV at the same size and rate",
			[]prop.Media{p(1280, 720, frame.FormatYUYV, 30), p(1280, 720, frame.FormatMJPEG, 30)},
			p(1280, 720, frame.FormatMJPEG, 30), true},
		{"30 fps over 10 fps",
			[]prop.Media{p(1280, 720, frame.FormatMJPEG, 10), p(1280, 720, frame.FormatYUYV, 30), p(1280, 720, frame.FormatMJPEG, 5)},
			p(1280, 720, frame.FormatYUYV, 30), true},
		{"30 fps over 60 fps",
			[]prop.Media{p(640, 480, frame.FormatMJPEG, 60), p(640, 480, frame.FormatMJPEG, 30)},
			p(640, 480, frame.FormatMJPEG, 30), true},
		{"smallest when all are too big",
			[]prop.Media{p(3840, 2160, frame.FormatMJPEG, 30), p(1920, 1080, frame.FormatMJPEG, 30)},
			p(1920, 1080, frame.FormatMJPEG, 30), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := scan.PickProperty(tc.props)
			if ok != tc.ok || got.Video != tc.want.Video {
				t.Errorf("PickProperty = %+v, %v; want %+v, %v", got.Video, ok, tc.want.Video, tc.ok)
			}
		})
	}
}

func TestCopyFrame(t *testing.T) {
	r := image.Rect(0, 0, 8, 6)
	ycc := image.NewYCbCr(r, image.YCbCrSubsampleRatio422)
	rgba := image.NewRGBA(r)
	gray16 := image.NewGray16(r)
	for _, src := range []interface {
		image.Image
		Set(x, y int, c color.Color)
	}{rgba, gray16} {
		src.Set(1, 1, color.White)
	}
	ycc.Y[0] = 200
	for _, src := range []image.Image{ycc, rgba, gray16} {
		before := src.At(1, 1)
		beforeY := ycc.Y[0]
		cp := scan.CopyFrame(src)
		if cp.Bounds() != src.Bounds() {
			t.Fatalf("%T: bounds %v, want %v", src, cp.Bounds(), src.Bounds())
		}
		// The driver reuses its buffers: overwrite the source.
		switch m := src.(type) {
		case *image.YCbCr:
			clear(m.Y)
			clear(m.Cb)
		case *image.RGBA:
			clear(m.Pix)
		case *image.Gray16:
			clear(m.Pix)
		}
		if got := cp.At(1, 1); !sameColor(got, before) {
			t.Errorf("%T: copy changed with its source: %v, want %v", src, got, before)
		}
		if c, ok := cp.(*image.YCbCr); ok && c.Y[0] != beforeY {
			t.Errorf("YCbCr copy shares its Y plane")
		}
	}
}

func sameColor(a, b color.Color) bool {
	r1, g1, b1, a1 := a.RGBA()
	r2, g2, b2, a2 := b.RGBA()
	return r1 == r2 && g1 == g2 && b1 == b2 && a1 == a2
}

// fakeCamera is a driver adapter standing in for a camera: the test feeds its
// frames, and it scribbles over each frame's buffer on release, as a driver
// reusing its buffers does.
type fakeCamera struct {
	props  []prop.Media
	frames chan *image.RGBA
	fail   chan error
	closed chan struct{}
	once   sync.Once

	mu       sync.Mutex
	recorded prop.Media
	closes   int
}

func newFakeCamera(props ...prop.Media) *fakeCamera {
	return &fakeCamera{props: props, frames: make(chan *image.RGBA), fail: make(chan error), closed: make(chan struct{})}
}

func (f *fakeCamera) Open() error { return nil }

func (f *fakeCamera) Close() error {
	f.mu.Lock()
	f.closes++
	f.mu.Unlock()
	f.once.Do(func() { close(f.closed) })
	return nil
}

func (f *fakeCamera) Properties() []prop.Media { return f.props }

func (f *fakeCamera) VideoRecord(p prop.Media) (video.Reader, error) {
	f.mu.Lock()
	f.recorded = p
	f.mu.Unlock()
	return video.ReaderFunc(func() (image.Image, func(), error) {
		select {
		case img := <-f.frames:
			return img, func() { clear(img.Pix) }, nil
		case err := <-f.fail:
			return nil, func() {}, err
		case <-f.closed:
			return nil, func() {}, io.EOF
		}
	}), nil
}

// registerFake puts f in the driver registry and returns its driver.
func registerFake(t *testing.T, f *fakeCamera) driver.Driver {
	t.Helper()
	label := "fake-" + t.Name()
	if err := driver.GetManager().Register(f, driver.Info{Label: label, DeviceType: driver.Camera}); err != nil {
		t.Fatal(err)
	}
	ds := driver.GetManager().Query(func(d driver.Driver) bool { return d.Info().Label == label })
	if len(ds) != 1 {
		t.Fatalf("registered fake camera not found: %d", len(ds))
	}
	t.Cleanup(func() { driver.GetManager().Delete(ds[0].ID()) })
	return ds[0]
}

// solidFrame is a w×h frame of one grey level.
func solidFrame(w, h int, v uint8) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = v
	}
	return img
}

func TestCameraReaderFrames(t *testing.T) {
	before := runtime.NumGoroutine()
	mjpeg := prop.Media{Video: prop.Video{Width: 1280, Height: 720, FrameFormat: frame.FormatMJPEG, FrameRate: 30}}
	fake := newFakeCamera(prop.Media{Video: prop.Video{Width: 1920, Height: 1080, FrameFormat: frame.FormatMJPEG, FrameRate: 30}}, mjpeg)
	cam, err := scan.StartCamera(registerFake(t, fake))
	if err != nil {
		t.Fatal(err)
	}
	fake.mu.Lock()
	if fake.recorded.Video != mjpeg.Video {
		t.Errorf("recording %+v; want %+v", fake.recorded.Video, mjpeg.Video)
	}
	fake.mu.Unlock()

	// A frame stays intact after the driver's release scribbled over its buffer.
	fake.frames <- solidFrame(64, 48, 100)
	img, err := cam.ReadFrame(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if r, _, _, _ := img.At(5, 5).RGBA(); r>>8 != 100 {
		t.Errorf("frame pixel = %d after release; want 100", r>>8)
	}

	// Frames not read in time are dropped for the newest one.
	for v := range uint8(5) {
		fake.frames <- solidFrame(64, 48, 10+v)
	}
	// The capture goroutine may still be copying the last frame: wait for it.
	var last uint32
	waitFor(t, "the newest frame", func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Millisecond)
		defer cancel()
		img, err := cam.ReadFrame(ctx)
		if err == nil {
			last, _, _, _ = img.At(0, 0).RGBA()
		}
		return last>>8 == 14
	})

	// ReadFrame honours its context while no frame comes.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := cam.ReadFrame(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("ReadFrame with a canceled context = %v", err)
	}

	// Close stops capture, closes the driver once, and is safe twice.
	if err := cam.Close(); err != nil {
		t.Fatal(err)
	}
	if err := cam.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	fake.mu.Lock()
	if fake.closes != 1 {
		t.Errorf("driver closed %d times; want 1", fake.closes)
	}
	fake.mu.Unlock()
	if _, err := cam.ReadFrame(t.Context()); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("ReadFrame after Close = %v; want fs.ErrClosed", err)
	}
	waitFor(t, "capture goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}

func TestCameraReaderStops(t *testing.T) {
	fake := newFakeCamera(prop.Media{Video: prop.Video{Width: 640, Height: 480, FrameFormat: frame.FormatYUYV}})
	cam, err := scan.StartCamera(registerFake(t, fake))
	if err != nil {
		t.Fatal(err)
	}
	defer cam.Close()
	unplugged := errors.New("no such device")
	fake.fail <- unplugged
	_, err = cam.ReadFrame(t.Context())
	if !errors.Is(err, scan.ErrCameraStopped) || !errors.Is(err, unplugged) {
		t.Fatalf("ReadFrame = %v; want ErrCameraStopped wrapping the driver's error", err)
	}
	// Watch hands the failure on.
	if _, err := scan.Watch(t.Context(), cam, testIssuer, nil, nil); !errors.Is(err, scan.ErrCameraStopped) {
		t.Errorf("Watch = %v; want ErrCameraStopped", err)
	}
}

func TestCameraWithoutUsableFormat(t *testing.T) {
	fake := newFakeCamera(prop.Media{Video: prop.Video{Width: 640, Height: 480, FrameFormat: frame.FormatZ16}})
	if cam, err := scan.StartCamera(registerFake(t, fake)); err == nil {
		cam.Close()
		t.Fatal("a depth-only camera started")
	}
}
