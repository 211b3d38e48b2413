package scan_test

import (
	"context"
	"errors"
	"image"
	"image/color"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pion/mediadevices/pkg/frame"
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
