package ui

import (
	"context"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/storage"
	"fyne.io/fyne/v2/test"
	"github.com/skip2/go-qrcode"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/devices/scan"
	"github.com/linkdesk/linkdesk/devices/scan/scantest"
)

// fakePictures is a computer whose camera plays recorded frames (or fails)
// and whose clipboard holds a fixed picture.
type fakePictures struct {
	mu        sync.Mutex
	camera    scan.FrameReader
	cameraErr error
	clipboard image.Image
	opened    int
}

func (f *fakePictures) OpenCamera(ctx context.Context) (scan.FrameReader, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.opened++
	if f.cameraErr != nil {
		return nil, f.cameraErr
	}
	return f.camera, nil
}

func (f *fakePictures) ClipboardImage(ctx context.Context) (image.Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.clipboard == nil {
		return nil, scan.ErrNoClipboardImage
	}
	return f.clipboard, nil
}

// textClipboard is a clipboard holding text only.
type textClipboard string

func (c textClipboard) Content() string     { return string(c) }
func (c textClipboard) SetContent(_ string) {}

// qrPhoto is a QR code of text as a person's photo of a screen might show it:
// small in a larger noisy scene, turned a little and out of focus.
func qrPhoto(t *testing.T, text string) image.Image {
	t.Helper()
	q, err := qrcode.New(text, qrcode.Medium)
	if err != nil {
		t.Fatal(err)
	}
	img := scantest.Rotate(q.Image(300), 12)
	img = scantest.OnBackground(img, 1024, 768, 380, 200)
	img = scantest.Blur(img, 1)
	return scantest.Noise(img, 12, 7)
}

func writePNG(t *testing.T, img image.Image) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "photo of the TV.png")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	return path
}

// newScanFlow is the link flow, scanning enabled, for ada on a real linkd, with
// a device waiting to be linked.
func newScanFlow(t *testing.T, pictures PictureSource) (*LinkFlow, fyne.Window, string, *deviceCode) {
	t.Helper()
	in, api, me := realLinkd(t)
	da, _, _ := startDevice(t, in, "Lobby kiosk")
	test.NewTempApp(t)
	w := test.NewWindow(nil)
	flow := NewLinkFlow(api, func() string { return in.Issuer }, func() devices.Me { return me }, w)
	flow.Code.EnableScanning(pictures, w)
	w.SetContent(flow.Content())
	w.Resize(fyne.NewSize(760, 760))
	t.Cleanup(func() { locked(func() { flow.Code.Reset(); flow.Stop(); w.Close() }) })
	return flow, w, in.Issuer, &deviceCode{Complete: da.VerificationURIComplete, Code: da.UserCode}
}

// deviceCode is what the tests need of the device's authorization answer: its link and code.
type deviceCode struct{ Complete, Code string }

func waitConfirmFor(t *testing.T, flow *LinkFlow, w fyne.Window, device string) {
	t.Helper()
	waitFor(t, "the confirm screen for "+device, func() bool {
		return flow.confirm != nil && hasText(w.Content(), device)
	})
}

// TestScanDroppedPictureOpensConfirm drops a photo of the device's QR code on
// the window: the code is read and the confirmation names the device.
func TestScanDroppedPictureOpensConfirm(t *testing.T) {
	flow, w, _, da := newScanFlow(t, &fakePictures{})
	path := writePNG(t, qrPhoto(t, da.Complete))
	locked(func() { flow.Code.ScanDropped([]fyne.URI{storage.NewFileURI(path)}) })
	waitConfirmFor(t, flow, w, "Lobby kiosk")
}

// TestScanPastedPictureOpensConfirm pastes (Ctrl+V in the code field) while the
// clipboard holds a picture and no text, then uses the Paste picture button.
func TestScanPastedPictureOpensConfirm(t *testing.T) {
	pics := &fakePictures{}
	flow, w, _, da := newScanFlow(t, pics)
	pics.mu.Lock()
	pics.clipboard = qrPhoto(t, da.Complete)
	pics.mu.Unlock()
	locked(func() { flow.Code.entry.TypedShortcut(&fyne.ShortcutPaste{Clipboard: textClipboard("")}) })
	waitConfirmFor(t, flow, w, "Lobby kiosk")

	// Back to the code screen: the button does the same.
	locked(func() { flow.Code.Reset(); flow.ShowCode() })
	locked(func() { test.Tap(findButton(w.Content(), "Paste picture")) })
	waitConfirmFor(t, flow, w, "Lobby kiosk")
}

// TestPasteLinkOpensConfirm pastes the device's link as text with Ctrl+V.
func TestPasteLinkOpensConfirm(t *testing.T) {
	flow, w, _, da := newScanFlow(t, &fakePictures{})
	locked(func() {
		w.Canvas().Focus(flow.Code.entry)
		flow.Code.entry.TypedShortcut(&fyne.ShortcutPaste{Clipboard: textClipboard(da.Complete)})
		if got := flow.Code.entry.Text; got != da.Code {
			t.Fatalf("after pasting the link the field shows %q, want %q", got, da.Code)
		}
		flow.Code.entry.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	})
	waitConfirmFor(t, flow, w, "Lobby kiosk")
}

// TestScanRefusesOtherPictures: another host's QR code gets the phishing
// warning, a picture without a code and a file that is no picture get their own
// words; none is looked up and what was typed stays.
func TestScanRefusesOtherPictures(t *testing.T) {
	svc := &fakeLink{req: demoRequest()}
	s, w, found := newCodeTest(t, svc)
	pics := &fakePictures{}
	s.EnableScanning(pics, w)
	locked(func() { test.Type(s.entry, "bcdf") })

	cases := []struct {
		name string
		img  image.Image
		path string
		want string
	}{
		{name: "phishing", img: qrPhoto(t, scantest.ForeignLink("BCDF-GHJK")),
			want: "not from your Linkdesk service (it points at " + scantest.ForeignHost + ")"},
		{name: "no code", img: scantest.EmptyFrame(3), want: "No QR code could be read"},
		{name: "other QR", img: qrPhoto(t, "https://shop.example/menu"), want: "not from your Linkdesk service"},
		{name: "not a picture", path: "notes.png", want: "isn't a picture Linkdesk can read"},
	}
	for _, tc := range cases {
		path := filepath.Join(t.TempDir(), tc.path)
		if tc.img != nil {
			path = writePNG(t, tc.img)
		} else if err := os.WriteFile(path, []byte("shopping list"), 0o600); err != nil {
			t.Fatal(err)
		}
		locked(func() { s.ScanDropped([]fyne.URI{storage.NewFileURI(path)}) })
		waitFor(t, tc.name+" refused", func() bool { return !s.scanning.busy.Visible() && contains(s.hint.Text, tc.want) })
		locked(func() {
			if !s.hint.Visible() {
				t.Errorf("%s: hint hidden", tc.name)
			}
			if s.entry.Text != "BCDF" {
				t.Errorf("%s: typed text lost: %q", tc.name, s.entry.Text)
			}
		})
		if tc.name == "phishing" {
			shot(t, w, "scan-phishing")
		}
	}
	if looked, _, _ := svc.calls(); len(looked) != 0 || len(*found) != 0 {
		t.Fatalf("refused pictures were looked up: %v", looked)
	}

	// A dropped text file is not a picture at all.
	locked(func() { s.ScanDropped([]fyne.URI{storage.NewFileURI("/tmp/readme.txt")}) })
	locked(func() {
		if !contains(s.hint.Text, "Drop a picture") {
			t.Errorf("dropped text file: hint %q", s.hint.Text)
		}
	})
	// An empty clipboard says so.
	locked(func() { test.Tap(s.scanning.paste) })
	waitFor(t, "the empty clipboard hint", func() bool { return contains(s.hint.Text, "clipboard holds no picture") })
}

// TestScanCameraOpensConfirm scans with a camera playing a recording: frames
// without a code, a blurry one, a phishing code (warned about while scanning
// goes on), and then the device's code, which opens the confirmation.
func TestScanCameraOpensConfirm(t *testing.T) {
	pics := &fakePictures{}
	flow, w, issuer, da := newScanFlow(t, pics)
	frames := scantest.Recording(issuer, da.Code)
	// Hold on the phishing frame until the warning has been seen, then go on.
	var before, rest []image.Image
	for i, f := range frames {
		if i < 7 {
			before = append(before, f)
		} else {
			rest = append(rest, f)
		}
	}
	pics.mu.Lock()
	pics.camera = scantest.NewLoopingFrames(20*time.Millisecond, before...)
	pics.mu.Unlock()
	locked(func() { test.Tap(flow.Code.scanning.camera) })
	var cd *cameraDialog
	waitFor(t, "the phishing warning in the camera view", func() bool {
		flow.Code.scanning.mu.Lock()
		cd = flow.Code.scanning.camDialog
		flow.Code.scanning.mu.Unlock()
		return cd != nil && contains(cd.status.Text, scantest.ForeignHost) && cd.preview.Image != nil
	})
	shot(t, w, "scan-camera-phishing")
	if flow.confirm != nil {
		t.Fatal("a phishing code opened the confirm screen")
	}

	// The person moves on to their own device: a new recording with its code.
	locked(func() { flow.Code.scanning.stopCamera() })
	pics.mu.Lock()
	pics.camera = scantest.NewRecordedFrames(20*time.Millisecond, rest...)
	pics.mu.Unlock()
	locked(func() { test.Tap(flow.Code.scanning.camera) })
	waitConfirmFor(t, flow, w, "Lobby kiosk")
	locked(func() {
		if topOverlay(w) != nil {
			t.Error("the camera view is still open over the confirm screen")
		}
	})
}

// TestScanCameraMissingOffersOtherSources: without a camera the view says so
// and offers the picture sources; pasting from there works.
func TestScanCameraMissingOffersOtherSources(t *testing.T) {
	pics := &fakePictures{cameraErr: scan.ErrNoCamera}
	flow, w, _, da := newScanFlow(t, pics)
	pics.mu.Lock()
	pics.clipboard = qrPhoto(t, da.Complete)
	pics.mu.Unlock()
	locked(func() { test.Tap(flow.Code.scanning.camera) })
	waitFor(t, "the no-camera message", func() bool {
		o := topOverlay(w)
		return o != nil && hasText(o, "No camera was found on this computer.") && findButton(o, "Paste picture") != nil
	})
	shot(t, w, "scan-no-camera")
	locked(func() { test.Tap(findButton(topOverlay(w), "Paste picture")) })
	waitConfirmFor(t, flow, w, "Lobby kiosk")
}

// TestScanCameraUnpluggedSaysSo: a camera that fails mid-scan ends in a plain
// message, not a hang.
func TestScanCameraUnpluggedSaysSo(t *testing.T) {
	pics := &fakePictures{camera: scantest.NewUnpluggedCamera(3, 10*time.Millisecond, scantest.EmptyFrame(1))}
	s, w, _ := newCodeTest(t, &fakeLink{req: demoRequest()})
	s.EnableScanning(pics, w)
	locked(func() { test.Tap(s.scanning.camera) })
	waitFor(t, "the camera failure message", func() bool {
		o := topOverlay(w)
		return o != nil && hasText(o, "The camera stopped working (was it unplugged?). You can open or paste a picture of the QR code instead.")
	})
}
