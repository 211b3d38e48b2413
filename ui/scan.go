package ui

import (
	"context"
	"errors"
	"image"
	"log/slog"
	"strings"
	"sync"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/lang"
	"fyne.io/fyne/v2/storage"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/devices/scan"
)

// pictureExtensions are the picture files a person can open or drop to scan.
var pictureExtensions = []string{".png", ".jpg", ".jpeg", ".gif"}

// scanState is the code screen's "scan the QR code" part: the row of sources
// (camera, picture file, clipboard picture), the picture being read, and the
// live camera dialog.
type scanState struct {
	screen   *CodeScreen
	pictures PictureSource // nil: no camera or clipboard (file pictures still work)
	window   fyne.Window

	row    *fyne.Container
	camera *widget.Button
	open   *widget.Button
	paste  *widget.Button
	busy   *widget.Label
	read   task // reading a picture file or the clipboard

	mu        sync.Mutex
	camCancel context.CancelFunc
	camDialog *cameraDialog // on show, or nil
}

func (st *scanState) init(s *CodeScreen) {
	st.screen = s
	st.camera = widget.NewButtonWithIcon(lang.L("Camera"), theme.MediaPhotoIcon(), st.scanCamera)
	st.open = widget.NewButtonWithIcon(lang.L("Picture file…"), theme.FolderOpenIcon(), st.openFile)
	st.paste = widget.NewButtonWithIcon(lang.L("Paste picture"), theme.ContentPasteIcon(), st.pasteClipboard)
	st.busy = widget.NewLabel("")
	st.busy.Hide()
	st.row = container.NewVBox(
		widget.NewSeparator(),
		widget.NewLabel(lang.L("Or scan the QR code on your device from:")),
		container.NewHBox(st.camera, st.open, st.paste),
		st.busy,
	)
	st.row.Hide()
}

// EnableScanning shows the Scan row. pictures gives the camera and clipboard
// (nil hides those two); w hosts the file and camera dialogs.
func (s *CodeScreen) EnableScanning(pictures PictureSource, w fyne.Window) {
	st := &s.scanning
	st.pictures, st.window = pictures, w
	if pictures == nil {
		st.camera.Hide()
		st.paste.Hide()
	}
	st.row.Show()
	s.relayout()
}

// Fill puts text (typed, pasted or from an opened link) in the code field as
// if pasted, and looks the code up when it is complete and for this service.
func (s *CodeScreen) Fill(text string) {
	s.Reset()
	s.entry.SetText(strings.TrimSpace(text))
	s.Submit()
}

// ScanDropped reads the QR code in the first picture dropped on the window.
func (s *CodeScreen) ScanDropped(items []fyne.URI) {
	for _, u := range items {
		if isPicture(u) {
			s.scanning.readPicture(lang.L("Reading {{.File}}…", map[string]any{"File": u.Name()}), func(ctx context.Context) (image.Image, error) {
				return readPictureURI(u)
			})
			return
		}
	}
	s.showHint(lang.L("Drop a picture (PNG or JPEG) of the QR code on your device."))
}

// pastePicture is Paste in the code field when the clipboard holds no text:
// it scans the clipboard's picture instead.
func (s *CodeScreen) pastePicture() {
	if s.scanning.pictures != nil {
		s.scanning.pasteClipboard()
	}
}

func isPicture(u fyne.URI) bool {
	ext := strings.ToLower(u.Extension())
	for _, e := range pictureExtensions {
		if ext == e {
			return true
		}
	}
	return false
}

func readPictureURI(u fyne.URI) (image.Image, error) {
	r, err := storage.Reader(u)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return scan.ReadImage(r)
}

// readPicture gets a picture with get, off the UI goroutine, and looks for the
// code in it, showing what it is doing meanwhile.
func (st *scanState) readPicture(doing string, get func(ctx context.Context) (image.Image, error)) {
	s := st.screen
	s.banner.hide()
	s.showHint("")
	st.setBusy(doing)
	issuer := s.issuer()
	var code string
	st.read.start(func(ctx context.Context) error {
		img, err := get(ctx)
		if err != nil {
			return err
		}
		code, err = scan.CodeFromImage(img, issuer)
		return err
	}, func(err error) {
		st.setBusy("")
		if err != nil {
			s.showHint(explainCodeInput(err))
			return
		}
		st.useCode(code)
	})
}

// useCode puts a scanned code in the field and looks it up, as if typed.
func (st *scanState) useCode(code string) {
	slog.Info("ui: code scanned")
	st.screen.Fill(devices.FormatCode(code))
}

func (st *scanState) setBusy(doing string) {
	st.busy.SetText(doing)
	if doing == "" {
		st.busy.Hide()
	} else {
		st.busy.Show()
	}
	for _, b := range []*widget.Button{st.camera, st.open, st.paste} {
		if doing == "" {
			b.Enable()
		} else {
			b.Disable()
		}
	}
	st.screen.relayout()
}

func (st *scanState) openFile() {
	if st.window == nil {
		return
	}
	d := dialog.NewFileOpen(func(r fyne.URIReadCloser, err error) {
		if err != nil {
			st.screen.showHint(Explain(err))
			return
		}
		if r == nil {
			return // cancelled
		}
		u := r.URI()
		r.Close()
		st.readPicture(lang.L("Reading {{.File}}…", map[string]any{"File": u.Name()}), func(ctx context.Context) (image.Image, error) {
			return readPictureURI(u)
		})
	}, st.window)
	d.SetFilter(storage.NewExtensionFileFilter(pictureExtensions))
	d.SetConfirmText(lang.L("Scan"))
	if size := st.window.Canvas().Size(); size.Width > 0 {
		d.Resize(fyne.NewSize(size.Width*0.9, size.Height*0.9))
	}
	d.Show()
}

func (st *scanState) pasteClipboard() {
	if st.pictures == nil {
		return
	}
	pictures := st.pictures
	st.readPicture(lang.L("Reading the picture on the clipboard…"), pictures.ClipboardImage)
}

// scanCamera opens the live camera view, which reads codes until it finds
// one for this service or the person cancels.
func (st *scanState) scanCamera() {
	if st.pictures == nil || st.window == nil {
		return
	}
	st.stopCamera()
	ctx, cancel := context.WithCancel(context.Background())
	cd := newCameraDialog(st.window, cancel, st.openFileInstead, st.pasteInstead)
	st.mu.Lock()
	st.camCancel, st.camDialog = cancel, cd
	st.mu.Unlock()
	cd.show()

	issuer, pictures := st.screen.issuer(), st.pictures
	go func() {
		defer cancel()
		frames, err := pictures.OpenCamera(ctx)
		if err != nil {
			if ctx.Err() == nil {
				doUI(func() { cd.failed(err) })
			}
			return
		}
		defer frames.Close()
		doUI(cd.watching)
		code, err := scan.Watch(ctx, frames, issuer,
			func(img image.Image) { doUI(func() { cd.frame(img) }) },
			func(err error) { doUI(func() { cd.refused(err) }) })
		if ctx.Err() != nil {
			return // cancelled: the dialog is already gone
		}
		doUI(func() {
			if err != nil {
				cd.failed(err)
				return
			}
			cd.close()
			st.useCode(code)
		})
	}()
}

func (st *scanState) openFileInstead() { st.stopCamera(); st.openFile() }

func (st *scanState) pasteInstead() { st.stopCamera(); st.pasteClipboard() }

// stopCamera closes the camera view, if open, and ends its capture.
func (st *scanState) stopCamera() {
	st.mu.Lock()
	cancel, cd := st.camCancel, st.camDialog
	st.camCancel, st.camDialog = nil, nil
	st.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	if cd != nil {
		cd.close()
	}
}

// stop ends any scanning in progress (the screen is reset or left).
func (st *scanState) stop() {
	st.read.stop()
	st.setBusy("")
	st.stopCamera()
}

// cameraDialog is the live camera view: the preview, what the scanner is
// doing or has refused, and the other sources when the camera can't be used.
type cameraDialog struct {
	d            dialog.Dialog
	window       fyne.Window
	cancel       context.CancelFunc
	preview      *canvas.Image
	placeholder  *fyne.Container
	status       *widget.Label
	progress     busyBar
	alternatives *fyne.Container
	content      *fyne.Container
	view         *fyne.Container // the preview and its background
	closed       bool
}

func newCameraDialog(w fyne.Window, cancel context.CancelFunc, openFile, paste func()) *cameraDialog {
	cd := &cameraDialog{window: w, cancel: cancel}
	cd.preview = canvas.NewImageFromImage(nil)
	cd.preview.FillMode = canvas.ImageFillContain
	cd.preview.ScaleMode = canvas.ImageScaleFastest
	cd.preview.SetMinSize(fyne.NewSize(480, 360))
	bg := canvas.NewRectangle(theme.Color(theme.ColorNameInputBackground))
	bg.SetMinSize(fyne.NewSize(480, 360))
	cd.placeholder = container.NewCenter(widget.NewIcon(theme.MediaPhotoIcon()))
	cd.status = wrapped(lang.L("Starting the camera…"))
	cd.progress = newBusyBar()
	cd.progress.set(true)
	cd.alternatives = container.NewCenter(container.NewHBox(
		widget.NewButtonWithIcon(lang.L("Picture file…"), theme.FolderOpenIcon(), openFile),
		widget.NewButtonWithIcon(lang.L("Paste picture"), theme.ContentPasteIcon(), paste),
	))
	cd.alternatives.Hide()
	cd.view = container.NewStack(bg, cd.placeholder, cd.preview)
	cd.content = container.NewVBox(
		cd.view,
		cd.status,
		cd.progress.ProgressBarInfinite,
		cd.alternatives,
	)
	cd.d = dialog.NewCustom(lang.L("Scan the QR code"), lang.L("Cancel"), limitWidth(560, cd.content), w)
	return cd
}

func (cd *cameraDialog) show() {
	cd.d.SetOnClosed(func() { // chained after showDialog's own callback
		cd.closed = true
		cd.cancel()
	})
	showDialog(cd.window, cd.d)
}

// watching says the camera is on and what to do.
func (cd *cameraDialog) watching() {
	cd.setStatus(lang.L("Hold the QR code on your device up to the camera."), widget.MediumImportance)
	cd.progress.set(false)
}

func (cd *cameraDialog) frame(img image.Image) {
	if cd.closed {
		return
	}
	cd.placeholder.Hide()
	cd.preview.Image = img
	cd.preview.Refresh()
}

// refused shows why a QR code in view was not used (another service's link,
// no code in it); the camera keeps looking.
func (cd *cameraDialog) refused(err error) {
	var foreign *devices.ForeignLinkError
	msg := explainCodeInput(err)
	if errors.As(err, &foreign) {
		// Shorter than the code screen's warning: the camera view has little room.
		msg = lang.L("That QR code points at {{.Host}}, not your Linkdesk service: it may be a trick to link someone else's device to your account.",
			map[string]any{"Host": foreign.Host})
	}
	cd.setStatus(lang.L("{{.Problem}} Still looking…", map[string]any{"Problem": msg}), widget.DangerImportance)
}

// failed shows why the camera can't be used and offers the other sources.
func (cd *cameraDialog) failed(err error) {
	if cd.closed {
		return
	}
	// No live picture to show: the message and the other sources take its place.
	cd.view.Hide()
	cd.progress.set(false)
	cd.alternatives.Show()
	cd.setStatus(lang.L("{{.Problem}} You can open or paste a picture of the QR code instead.", map[string]any{"Problem": Explain(err)}), widget.DangerImportance)
}

func (cd *cameraDialog) setStatus(text string, imp widget.Importance) {
	if cd.closed {
		return
	}
	cd.status.Importance = imp
	cd.status.SetText(text)
	// A wrapped label learns its height only once laid out at its width: lay
	// out again and grow the dialog to fit, so the text never runs under Cancel.
	for range 2 {
		cd.content.Refresh()
		cd.d.Resize(fyne.NewSize(max(cd.d.MinSize().Width, 560), cd.d.MinSize().Height))
	}
}

func (cd *cameraDialog) close() {
	if !cd.closed {
		cd.d.Hide()
	}
}
