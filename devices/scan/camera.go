package scan

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/pion/mediadevices/pkg/driver"
	"github.com/pion/mediadevices/pkg/driver/camera" // registers the OS camera driver: V4L2, AVFoundation or DirectShow
	"github.com/pion/mediadevices/pkg/frame"
	"github.com/pion/mediadevices/pkg/io/video"
	"github.com/pion/mediadevices/pkg/prop"
)

// ErrNoCamera means the computer has no camera the app can find.
var ErrNoCamera = errors.New("no camera was found on this computer")

// ErrCameraDenied means there is a camera but the system does not let the app
// use it; the error wrapping it says how to allow it on this OS.
var ErrCameraDenied = errors.New("this computer does not let Linkdesk use the camera")

// ErrCameraBusy means another app is using the camera.
var ErrCameraBusy = errors.New("the camera is in use by another app")

// ErrCameraStopped means the camera stopped sending pictures while in use
// (unplugged, taken by another app, or its driver failed).
var ErrCameraStopped = errors.New("the camera stopped sending pictures")

// Largest frame asked of the camera: enough for a QR code across a room, and
// small enough to decode quickly and to keep USB bandwidth for 30 frames/s.
const (
	maxFrameWidth  = 1280
	maxFramePixels = 1280 * 720
	idealFrameRate = 30
)

// formatRank orders the frame formats we can decode, best first: MJPEG keeps
// full frame rates over USB 2 at 720p, raw YUV formats come next.
var formatRank = map[frame.Format]int{
	frame.FormatMJPEG: 1,
	frame.FormatYUYV:  2,
	frame.FormatYUY2:  2,
	frame.FormatNV12:  3,
	frame.FormatI420:  4,
	frame.FormatUYVY:  5,
	frame.FormatNV21:  6,
}

// cameraMu serialises rescanning and opening the drivers: the driver registry
// refresh is not safe to run twice at once.
var cameraMu sync.Mutex

// cameraDrivers lists the cameras, best first: the system's default, then by label.
func cameraDrivers() []driver.Driver {
	rescanCameras()
	ds := driver.GetManager().Query(driver.FilterAnd(driver.FilterVideoRecorder(), driver.FilterDeviceType(driver.Camera)))
	slices.SortFunc(ds, func(a, b driver.Driver) int {
		if c := cmp.Compare(b.Info().Priority, a.Info().Priority); c != 0 {
			return c
		}
		return strings.Compare(a.Info().Label, b.Info().Label)
	})
	return ds
}

// Cameras lists the cameras of this computer by a name for people, in the
// order OpenCamera tries them. An empty list means no camera.
func Cameras() ([]string, error) {
	cameraMu.Lock()
	defer cameraMu.Unlock()
	var names []string
	seen := make(map[string]bool)
	count := make(map[string]int)
	for _, d := range cameraDrivers() {
		info := d.Info()
		// On Linux one camera often has two device nodes (pictures and
		// metadata) with the same name and bus: list it once.
		if key, bus, ok := strings.Cut(info.Name, camera.LabelSeparator); ok && bus != "" {
			if seen[key+bus] {
				continue
			}
			seen[key+bus] = true
		}
		name := cameraName(info)
		count[name]++
		if n := count[name]; n > 1 {
			name += " (" + strconv.Itoa(n) + ")"
		}
		names = append(names, name)
	}
	return names, nil
}

// cameraName is the driver's device name, or its label when it has none.
func cameraName(info driver.Info) string {
	if name, _, _ := strings.Cut(info.Name, camera.LabelSeparator); strings.TrimSpace(name) != "" {
		return strings.TrimSpace(name)
	}
	label, _, _ := strings.Cut(info.Label, camera.LabelSeparator)
	if label == "" {
		return "camera"
	}
	return label
}

// OpenCamera starts the first camera that works (the system's default first)
// at up to 1280×720 and returns its frames. It fails with ErrNoCamera when
// there is none, with an error wrapping ErrCameraDenied (saying how to allow
// it) when the system refuses access, and with one wrapping ErrCameraBusy
// when another app holds the camera. The caller must Close it.
func OpenCamera(ctx context.Context) (FrameReader, error) {
	cameraMu.Lock()
	defer cameraMu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ds := cameraDrivers()
	if len(ds) == 0 {
		if err := videoAccessError(videoDevices()); err != nil {
			return nil, err
		}
		return nil, ErrNoCamera
	}
	var denied, busy, failed error
	for _, d := range ds {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		c, err := startCamera(d)
		switch {
		case err == nil:
			if err := ctx.Err(); err != nil {
				c.Close()
				return nil, err
			}
			return c, nil
		case errors.Is(err, ErrCameraDenied):
			denied = cmp.Or(denied, err)
		case errors.Is(err, ErrCameraBusy):
			busy = cmp.Or(busy, err)
		case errors.Is(err, errNoVideo):
			// A device node without pictures (Linux metadata nodes): not a camera.
		default:
			failed = cmp.Or(failed, err)
		}
		slog.Debug("camera did not start", "camera", cameraName(d.Info()), "err", err)
	}
	switch {
	case denied != nil:
		return nil, denied
	case busy != nil:
		return nil, busy
	case failed != nil:
		return nil, failed
	}
	return nil, ErrNoCamera
}

// errNoVideo means a camera device offers no picture format we can decode.
var errNoVideo = errors.New("the camera offers no usable picture format")

// startCamera opens d, picks its frame format and starts capture.
func startCamera(d driver.Driver) (*cameraReader, error) {
	name := cameraName(d.Info())
	if err := d.Open(); err != nil {
		return nil, openError(name, err)
	}
	p, ok := pickProperty(d.Properties())
	if !ok {
		d.Close()
		return nil, errNoVideo
	}
	rec, ok := d.(driver.VideoRecorder)
	if !ok {
		d.Close()
		return nil, errNoVideo
	}
	r, err := rec.VideoRecord(p)
	if err != nil {
		// The driver has closed the device itself; closing it again could
		// close a file descriptor number reused since.
		return nil, openError(name, err)
	}
	slog.Info("camera started", "camera", name, "width", p.Width, "height", p.Height, "format", p.FrameFormat, "fps", p.FrameRate)
	c := &cameraReader{
		drv:    d,
		frames: make(chan image.Image, 1),
		done:   make(chan struct{}),
	}
	go c.capture(r)
	return c, nil
}

// openError words a driver's failure to open or start a camera.
func openError(name string, err error) error {
	if denied := deniedError(err); denied != nil {
		return denied
	}
	switch {
	case errors.Is(err, syscall.EBUSY):
		return fmt.Errorf("%w (%s)", ErrCameraBusy, name)
	case strings.Contains(err.Error(), "Not a video capture device"):
		// blackjack/webcam's refusal of a V4L2 node without capture (metadata).
		return errNoVideo
	}
	return fmt.Errorf("the camera %q could not be started: %w", name, err)
}

// videoAccessError reports ErrCameraDenied (with the OS's hint) when camera
// device files exist but none may be opened for lack of permission.
func videoAccessError(paths []string) error {
	if len(paths) == 0 {
		return nil
	}
	for _, p := range paths {
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err == nil {
			f.Close()
			return nil
		}
		if !errors.Is(err, fs.ErrPermission) {
			return nil
		}
	}
	return fmt.Errorf("%w: %s", ErrCameraDenied, deniedHint)
}

// pickProperty chooses the capture format: the largest frame within
// maxFramePixels, near 30 frames/s, in the cheapest format to decode; the
// smallest frame when all are larger.
func pickProperty(props []prop.Media) (prop.Media, bool) {
	var best prop.Media
	found := false
	for _, p := range props {
		if formatRank[p.FrameFormat] == 0 || p.Width <= 0 || p.Height <= 0 {
			continue
		}
		if !found || betterProperty(p, best) {
			best, found = p, true
		}
	}
	return best, found
}

// betterProperty reports whether a is a better capture format than b.
func betterProperty(a, b prop.Media) bool {
	fits := func(p prop.Media) bool { return p.Width <= maxFrameWidth && p.Width*p.Height <= maxFramePixels }
	if fits(a) != fits(b) {
		return fits(a)
	}
	if areaA, areaB := a.Width*a.Height, b.Width*b.Height; areaA != areaB {
		if fits(a) {
			return areaA > areaB
		}
		return areaA < areaB
	}
	// Frame rate: as near 30 as possible, unknown (0) counting as 15.
	rate := func(p prop.Media) float32 {
		switch {
		case p.FrameRate <= 0:
			return 15
		case p.FrameRate > idealFrameRate:
			return idealFrameRate - (p.FrameRate-idealFrameRate)/100 // a bit worse than 30: wasted work
		}
		return p.FrameRate
	}
	if ra, rb := rate(a), rate(b); ra != rb {
		return ra > rb
	}
	return formatRank[a.FrameFormat] < formatRank[b.FrameFormat]
}

// cameraReader is a started camera. One goroutine reads the driver and keeps
// only the newest frame, copied out of the driver's buffers.
type cameraReader struct {
	drv       driver.Driver
	frames    chan image.Image // capacity 1: the newest frame
	done      chan struct{}    // closed when capture has ended; err is set then
	err       error
	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// capture reads frames until the driver fails or is closed.
func (c *cameraReader) capture(r video.Reader) {
	defer close(c.done)
	for {
		img, release, err := r.Read()
		if err != nil {
			if c.closed.Load() {
				c.err = fs.ErrClosed
			} else {
				slog.Warn("camera stopped", "err", err)
				c.err = fmt.Errorf("%w: %w", ErrCameraStopped, err)
			}
			return
		}
		cp := copyFrame(img)
		if release != nil {
			release()
		}
		select {
		case <-c.frames:
		default:
		}
		c.frames <- cp // the only sender: cannot block after the drain
	}
}

// ReadFrame returns the newest frame not yet read, waiting for one if needed.
func (c *cameraReader) ReadFrame(ctx context.Context) (image.Image, error) {
	select {
	case img := <-c.frames:
		return img, nil
	case <-c.done:
		if !c.closed.Load() {
			select {
			case img := <-c.frames:
				return img, nil
			default:
			}
		}
		return nil, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Close stops capture and releases the camera, waiting for the capture
// goroutine to end. Closing again does nothing.
func (c *cameraReader) Close() error {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		c.closeErr = c.drv.Close() // makes the driver's Read return
		<-c.done
	})
	return c.closeErr
}

// copyFrame copies img into memory of its own, so it stays valid after the
// driver reuses its buffers.
func copyFrame(img image.Image) image.Image {
	switch m := img.(type) {
	case *image.YCbCr:
		return &image.YCbCr{
			Y: slices.Clone(m.Y), Cb: slices.Clone(m.Cb), Cr: slices.Clone(m.Cr),
			YStride: m.YStride, CStride: m.CStride, SubsampleRatio: m.SubsampleRatio, Rect: m.Rect,
		}
	case *image.RGBA:
		return &image.RGBA{Pix: slices.Clone(m.Pix), Stride: m.Stride, Rect: m.Rect}
	case *image.NRGBA:
		return &image.NRGBA{Pix: slices.Clone(m.Pix), Stride: m.Stride, Rect: m.Rect}
	case *image.Gray:
		return &image.Gray{Pix: slices.Clone(m.Pix), Stride: m.Stride, Rect: m.Rect}
	}
	out := image.NewRGBA(img.Bounds())
	draw.Draw(out, out.Rect, img, img.Bounds().Min, draw.Src)
	return out
}
