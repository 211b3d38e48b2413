package scantest

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"io"
	"io/fs"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/linkdesk/linkdesk/devices/scan"
)

// ForeignHost is the host of the links ForeignLink makes: a page that is not
// the Linkdesk service, as a phishing page showing its own QR code would be.
const ForeignHost = "link.phish.example"

// ErrUnplugged is the error NewUnpluggedCamera fails with, as a real camera
// does when its cable is pulled: it matches scan.ErrCameraStopped, like the
// real camera's error.
var ErrUnplugged = fmt.Errorf("scantest: the camera was unplugged: %w", scan.ErrCameraStopped)

// Frame size of the made-up camera frames: a common webcam resolution.
const (
	FrameWidth  = 640
	FrameHeight = 480
)

// RecordedFrames is a fake camera (it satisfies scan.FrameReader) that plays a
// fixed list of frames, one per interval, once or in a loop, and can fail
// after some frames like an unplugged camera. It is safe for concurrent use.
type RecordedFrames struct {
	frames    []image.Image
	interval  time.Duration
	loop      bool
	failAfter int   // >0: ReadFrame fails with failErr after this many frames
	failErr   error // the failure

	readMu    sync.Mutex // serialises ReadFrame
	due       time.Time  // when the next frame may be handed out; guarded by readMu
	reads     atomic.Int64
	closed    chan struct{}
	closeOnce sync.Once
}

// NewRecordedFrames plays frames once, the first at once and then one per
// interval, and then ReadFrame returns io.EOF.
func NewRecordedFrames(interval time.Duration, frames ...image.Image) *RecordedFrames {
	return &RecordedFrames{frames: frames, interval: interval, closed: make(chan struct{})}
}

// NewLoopingFrames plays frames over and over, one per interval, until it is
// closed or the reading context ends: a camera pointed at a still scene.
func NewLoopingFrames(interval time.Duration, frames ...image.Image) *RecordedFrames {
	r := NewRecordedFrames(interval, frames...)
	r.loop = true
	return r
}

// NewUnpluggedCamera loops over frames like NewLoopingFrames but fails with
// ErrUnplugged once n frames have been read.
func NewUnpluggedCamera(n int, interval time.Duration, frames ...image.Image) *RecordedFrames {
	r := NewLoopingFrames(interval, frames...)
	r.failAfter = max(n, 1)
	r.failErr = ErrUnplugged
	if n <= 0 {
		r.failAfter = -1 // fails at the first read
	}
	return r
}

// ReadFrame waits for the next frame's turn and returns it. It returns io.EOF
// when a recording played once has ended, ErrUnplugged for an unplugged
// camera, fs.ErrClosed after Close and ctx.Err() when ctx ends first.
func (r *RecordedFrames) ReadFrame(ctx context.Context) (image.Image, error) {
	r.readMu.Lock()
	defer r.readMu.Unlock()
	if err := r.stopped(ctx); err != nil {
		return nil, err
	}
	n := int(r.reads.Load())
	switch {
	case r.failAfter < 0 || (r.failAfter > 0 && n >= r.failAfter):
		return nil, r.failErr
	case len(r.frames) == 0 || (!r.loop && n >= len(r.frames)):
		return nil, io.EOF
	}
	if wait := time.Until(r.due); wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-r.closed:
			return nil, fs.ErrClosed
		}
	}
	r.due = time.Now().Add(r.interval)
	r.reads.Add(1)
	return r.frames[n%len(r.frames)], nil
}

func (r *RecordedFrames) stopped(ctx context.Context) error {
	select {
	case <-r.closed:
		return fs.ErrClosed
	default:
		return ctx.Err()
	}
}

// Close ends the recording: a waiting ReadFrame returns at once. Closing
// twice is fine.
func (r *RecordedFrames) Close() error {
	r.closeOnce.Do(func() { close(r.closed) })
	return nil
}

// Reads is how many frames ReadFrame has handed out so far.
func (r *RecordedFrames) Reads() int { return int(r.reads.Load()) }

// Closed reports whether Close was called.
func (r *RecordedFrames) Closed() bool {
	select {
	case <-r.closed:
		return true
	default:
		return false
	}
}

// CodeLink is the link a Linkdesk service's QR code holds for code: its
// verification_uri_complete, {issuer}/link?user_code=….
func CodeLink(issuer, code string) string {
	return issuer + "/link?" + url.Values{"user_code": {code}}.Encode()
}

// ForeignLink is a link like CodeLink's but on ForeignHost: what a phishing
// page would show to get its own device linked to the victim's account.
func ForeignLink(code string) string {
	return CodeLink("https://"+ForeignHost, code)
}

// Recording is a typical camera recording of someone scanning a TV's QR code:
// frames without a code, then the right code too blurry to read, then a
// phishing page's code (ForeignLink), a QR code that is not a Linkdesk link,
// and last the right code (CodeLink(issuer, code)) in sharp frames.
func Recording(issuer, code string) []image.Image {
	var frames []image.Image
	for i := range 4 {
		frames = append(frames, EmptyFrame(i))
	}
	blurry := BlurryFrame(CodeLink(issuer, code))
	foreign := CameraFrame(ForeignLink(code))
	other := CameraFrame("WIFI:T:WPA;S:guests;P:hunter22;;")
	right := CameraFrame(CodeLink(issuer, code))
	return append(frames, blurry, blurry, foreign, foreign, foreign, other, other, right, right, right)
}

// CameraFrame is a FrameWidth×FrameHeight camera-like frame (a grey, slightly
// noisy scene) with a sharp QR code holding text in the middle, as a webcam
// sees a TV held in front of it. It panics if text is too long for a QR code.
func CameraFrame(text string) image.Image {
	img := cameraScene(0)
	drawFrameQR(img, text)
	return img
}

// BlurryFrame is CameraFrame(text) out of focus: the QR code is there but far
// too blurred to read, as in the frames before a camera focuses.
func BlurryFrame(text string) image.Image {
	return blurFrame(CameraFrame(text).(*image.RGBA), 9)
}

// EmptyFrame is a camera-like frame without any code; seed varies its noise.
func EmptyFrame(seed int) image.Image {
	return cameraScene(uint32(seed) + 1)
}

// cameraScene is a grey gradient with a little deterministic noise.
func cameraScene(seed uint32) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, FrameWidth, FrameHeight))
	x32 := seed*2654435761 + 12345
	for y := range FrameHeight {
		for x := range FrameWidth {
			x32 ^= x32 << 13
			x32 ^= x32 >> 17
			x32 ^= x32 << 5
			v := uint8(90 + x*60/FrameWidth + y*40/FrameHeight + int(x32%12))
			img.SetRGBA(x, y, color.RGBA{v, v, v + 4, 255})
		}
	}
	return img
}

// drawFrameQR paints a QR code for text, with its quiet zone, in the middle of img.
func drawFrameQR(img *image.RGBA, text string) {
	q, err := qrcode.New(text, qrcode.Medium)
	if err != nil {
		panic("scantest: " + err.Error())
	}
	bits := q.Bitmap() // includes the 4-module quiet zone
	side := min(FrameWidth, FrameHeight) * 3 / 5
	module := max(side/len(bits), 1)
	x0 := (FrameWidth - module*len(bits)) / 2
	y0 := (FrameHeight - module*len(bits)) / 2
	dark := color.RGBA{30, 30, 36, 255}
	light := color.RGBA{225, 225, 230, 255}
	for r, row := range bits {
		for c, on := range row {
			col := light
			if on {
				col = dark
			}
			for y := y0 + r*module; y < y0+(r+1)*module; y++ {
				for x := x0 + c*module; x < x0+(c+1)*module; x++ {
					img.SetRGBA(x, y, col)
				}
			}
		}
	}
}

// blurFrame averages each pixel over a (2r+1)² box, one axis at a time.
func blurFrame(src *image.RGBA, r int) *image.RGBA {
	pass := func(src *image.RGBA, horizontal bool) *image.RGBA {
		b := src.Bounds()
		dst := image.NewRGBA(b)
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				var sum [3]int
				n := 0
				for d := -r; d <= r; d++ {
					px, py := x, y
					if horizontal {
						px += d
					} else {
						py += d
					}
					if !(image.Point{px, py}.In(b)) {
						continue
					}
					c := src.RGBAAt(px, py)
					sum[0] += int(c.R)
					sum[1] += int(c.G)
					sum[2] += int(c.B)
					n++
				}
				dst.SetRGBA(x, y, color.RGBA{uint8(sum[0] / n), uint8(sum[1] / n), uint8(sum[2] / n), 255})
			}
		}
		return dst
	}
	return pass(pass(src, true), false)
}
