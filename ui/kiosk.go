package ui

import (
	"fmt"
	"image"
	"image/color"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/lang"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
	"github.com/skip2/go-qrcode"

	"github.com/linkdesk/linkdesk/auth/device"
)

// KioskScreen is kiosk mode's full-screen view: a huge user code, the short address to
// type it at, a QR code of the complete verification link, a countdown and a status
// line; once linked, the account it is linked to and an lang.L("Unlink this display") button.
// Text grows with the window so it can be read across a room. It renders the states of
// a device.Flow (package auth/device); Show may be called from any goroutine.
type KioskScreen struct {
	onUnlink func()
	now      func() time.Time

	root        *fyne.Container
	heading     *canvas.Text
	enter       *canvas.Text
	code        *canvas.Text
	address     *canvas.Text
	qr          *canvas.Image
	qrBack      *canvas.Rectangle
	countTxt    *canvas.Text
	status      *canvas.Text
	linked      *canvas.Text
	unlink      *widget.Button
	unlinkTx    *canvas.Text // the button's label, drawn large enough to read from afar
	lay         *kioskLayout
	statusWarn  bool          // the status line is a warning (drawn in the warning colour)
	wasUnlinked bool          // the link just ended: say so beside the next code
	account     string        // whom the display is linked to, for the unlink question
	ask         *widget.PopUp // the lang.L("Unlink this display?") question on show, or nil

	mu        sync.Mutex // guards the fields below
	expiresAt time.Time
	showing   bool
	qrContent string

	stopTick func() // ends the countdown ticker
}

// NewKioskScreen builds the screen; onUnlink runs (off the UI goroutine) once
// lang.L("Unlink this display") was tapped and confirmed (it is a public screen, so one
// stray tap never unlinks it).
func NewKioskScreen(onUnlink func()) *KioskScreen {
	k := &KioskScreen{onUnlink: onUnlink, now: time.Now}
	k.heading = canvas.NewText(lang.L("To link this display, scan the code or go to"), theme.Color(theme.ColorNameForeground))
	k.enter = canvas.NewText(lang.L("and enter"), theme.Color(theme.ColorNameForeground))
	k.heading.TextStyle = fyne.TextStyle{Bold: true}
	k.code = canvas.NewText("", theme.Color(theme.ColorNamePrimary))
	k.code.TextStyle = fyne.TextStyle{Bold: true}
	k.address = canvas.NewText("", theme.Color(theme.ColorNameForeground))
	k.address.TextStyle = fyne.TextStyle{Bold: true}
	k.countTxt = canvas.NewText("", theme.Color(theme.ColorNamePlaceHolder))
	k.status = canvas.NewText(lang.L("Connecting…"), theme.Color(theme.ColorNameForeground))
	k.linked = canvas.NewText("", theme.Color(theme.ColorNameForeground))
	k.linked.TextStyle = fyne.TextStyle{Bold: true}
	k.linked.Alignment = fyne.TextAlignCenter
	k.qrBack = canvas.NewRectangle(color.White)
	k.qr = canvas.NewImageFromImage(nil)
	k.qr.FillMode = canvas.ImageFillContain
	k.qr.ScaleMode = canvas.ImageScalePixels
	k.unlinkTx = canvas.NewText(lang.L("Unlink this display"), theme.Color(theme.ColorNameForegroundOnError))
	k.unlinkTx.TextStyle = fyne.TextStyle{Bold: true}
	k.unlinkTx.Alignment = fyne.TextAlignCenter
	k.unlink = widget.NewButton("", k.confirmUnlink)
	k.unlink.Importance = widget.DangerImportance
	k.lay = &kioskLayout{k: k}
	k.root = container.New(k.lay, k.heading, k.enter, k.code, k.address, k.qrBack, k.qr, k.countTxt, k.status, k.linked, k.unlink, k.unlinkTx)
	k.setMode(false, false)
	k.stopTick = everySecond(k.updateCountdown)
	return k
}

// SetHighContrast makes the screen easier to read in a bright room (with
// HighContrastTheme as the app's theme): a larger code, and a QR code with twice
// the usual quiet zone so scanners find it against glare. Call it on the UI goroutine.
func (k *KioskScreen) SetHighContrast(on bool) {
	if k.lay.highContrast == on {
		return
	}
	k.lay.highContrast = on
	k.mu.Lock()
	content := k.qrContent
	k.mu.Unlock()
	if content != "" {
		k.qr.Image = qrImage(content, k.quietZone())
		k.qr.Refresh()
	}
	k.root.Refresh()
}

// quietZone is the QR code's extra white border in modules, beyond the standard four.
func (k *KioskScreen) quietZone() int {
	if k.lay.highContrast {
		return 4
	}
	return 0
}

// Content is the screen's root object, to put in a (full-screen) window.
func (k *KioskScreen) Content() fyne.CanvasObject { return k.root }

// Stop ends the countdown ticker; call it when the screen goes away.
func (k *KioskScreen) Stop() { k.stopTick() }

// Show renders one state of the device flow. It is safe to call from any goroutine.
func (k *KioskScreen) Show(s device.State) {
	doUI(func() { k.show(s) })
}

func (k *KioskScreen) show(s device.State) {
	// The state's name only: never the code or a token.
	slog.Info("kiosk: state", "state", fmt.Sprintf("%T", s))
	switch s := s.(type) {
	case device.Connecting:
		k.setStatus(lang.L("Connecting…"), false)
	case device.ShowingCode:
		k.closeAsk()
		k.mu.Lock()
		// A new code after one whose time was (about) up: the old one expired.
		expired := k.showing && !k.expiresAt.IsZero() && !k.now().Before(k.expiresAt.Add(-10*time.Second)) &&
			s.UserCode != k.code.Text
		k.mu.Unlock()
		k.showCode(s)
		switch {
		case s.AfterDecline:
			k.wasUnlinked = false
			k.setStatus(lang.L("Link was declined — here is a new code"), true)
		case expired:
			k.wasUnlinked = false
			k.setStatus(lang.L("That code expired — here is a new one"), false)
		case k.wasUnlinked:
			k.setStatus(lang.L("This display was unlinked — enter this code to link it again"), false)
		default:
			k.setStatus(lang.L("Waiting for you to approve"), false)
		}
	case device.Offline:
		k.setStatus(lang.L("Offline — retrying"), true)
	case device.Declined:
		k.setStatus(lang.L("Link was declined"), true)
	case device.Error:
		k.setStatus(lang.L("Can't link right now — retrying"), true)
	case device.Unlinked:
		k.closeAsk()
		k.wasUnlinked = true
		k.setMode(false, false)
		k.setStatus(lang.L("This display was unlinked"), false)
	case device.Linked:
		k.wasUnlinked = false
		k.mu.Lock()
		k.showing = false
		k.mu.Unlock()
		name := s.DisplayName
		if name == "" {
			name = lang.L("your account") // the provider did not say whose account
		}
		k.account = name
		k.linked.Text = lang.L("Linked to {{.Account}}", map[string]any{"Account": name})
		k.unlink.Enable()
		k.setMode(false, true)
		k.setStatus("", false)
	}
	k.root.Refresh()
}

// confirmUnlink asks lang.L("Unlink this display?") over the screen, with Cancel
// and Unlink.
func (k *KioskScreen) confirmUnlink() {
	c := fyne.CurrentApp().Driver().CanvasForObject(k.root)
	if c == nil || k.ask != nil {
		return
	}
	text := wrapped(lang.L("It will be signed out of {{.Account}} and show a new code to link it again.", map[string]any{"Account": k.account}))
	cancel := widget.NewButtonWithIcon(lang.L("Cancel"), theme.CancelIcon(), k.closeAsk)
	unlink := widget.NewButtonWithIcon(lang.L("Unlink"), theme.DeleteIcon(), func() {
		k.closeAsk()
		k.unlink.Disable()
		if k.onUnlink != nil {
			go k.onUnlink()
		}
	})
	unlink.Importance = widget.DangerImportance
	k.ask = widget.NewModalPopUp(container.NewPadded(limitWidth(420, container.NewVBox(
		subheading(lang.L("Unlink this display?")), text,
		container.NewHBox(layoutSpacer(), cancel, unlink)))), c)
	k.ask.Resize(fyne.NewSize(440, k.ask.MinSize().Height))
	k.ask.Show()
	c.Focus(cancel)
}

// closeAsk hides the unlink question, if it is on show.
func (k *KioskScreen) closeAsk() {
	if k.ask != nil {
		k.ask.Hide()
		k.ask = nil
	}
}

func (k *KioskScreen) showCode(s device.ShowingCode) {
	target := s.VerificationURIComplete
	if target == "" {
		target = s.VerificationURI
	}
	k.mu.Lock()
	k.expiresAt = s.ExpiresAt
	k.showing = true
	changed := target != k.qrContent
	k.qrContent = target
	k.mu.Unlock()
	k.code.Text = s.UserCode
	k.address.Text = ShortAddress(s.VerificationURI)
	if changed {
		k.qr.Image = qrImage(target, k.quietZone())
		k.qr.Refresh()
	}
	k.updateCountdown()
	k.setMode(true, false)
}

// setMode shows the code view, the linked view, or neither (only the status line).
func (k *KioskScreen) setMode(code, linked bool) {
	for _, o := range []fyne.CanvasObject{k.enter, k.code, k.address, k.qr, k.qrBack, k.countTxt} {
		setVisible(o, code)
	}
	setVisible(k.heading, code)
	for _, o := range []fyne.CanvasObject{k.linked, k.unlink, k.unlinkTx} {
		setVisible(o, linked)
	}
	k.lay.linked = linked
}

func setVisible(o fyne.CanvasObject, v bool) {
	if v {
		o.Show()
	} else {
		o.Hide()
	}
}

func (k *KioskScreen) setStatus(text string, warn bool) {
	k.status.Text = text
	k.statusWarn = warn
	k.status.Color = k.statusColor()
	k.status.Refresh()
}

// statusColor is the status line's colour in the current theme.
func (k *KioskScreen) statusColor() color.Color {
	if k.statusWarn {
		return theme.Color(theme.ColorNameWarning)
	}
	return theme.Color(theme.ColorNameForeground)
}

// updateCountdown rewrites the countdown; runs on the UI goroutine once a second.
// It redraws only the countdown, and only when its words change: whole minutes
// ("Code expires in 9 min", once a minute), seconds only in the last minute, so
// an idle kiosk repaints about once a minute (issue 10 item 17).
func (k *KioskScreen) updateCountdown() {
	k.mu.Lock()
	exp, showing := k.expiresAt, k.showing
	k.mu.Unlock()
	if !showing {
		return
	}
	text := countdownText(exp.Sub(k.now()).Round(time.Second))
	if k.countTxt.Text != text {
		k.countTxt.Text = text
		k.countTxt.Refresh()
	}
}

// countdownText is the kiosk's countdown for a code with left to go: whole minutes
// while a minute or more is left (rounded down, so it never promises more time than
// there is), then seconds.
func countdownText(left time.Duration) string {
	switch {
	case left >= time.Minute:
		n := int(left / time.Minute)
		return lang.N("Code expires in {{.Count}} min", n, map[string]any{"Count": n})
	case left > 0:
		n := int(left / time.Second)
		return lang.N("Code expires in {{.Count}} s", n, map[string]any{"Count": n})
	default:
		return lang.L("Getting a new code…")
	}
}

// ShortAddress shows a verification address without its scheme (and without a trailing
// slash), the way people type it: "link.example.com/link".
func ShortAddress(uri string) string {
	u, err := url.Parse(uri)
	if err != nil || u.Host == "" {
		return uri
	}
	s := u.Host + strings.TrimSuffix(u.Path, "/")
	if u.RawQuery != "" {
		s += "?" + u.RawQuery
	}
	return s
}

// qrImage draws content as a QR code with one pixel per module (and the quiet zone of
// four modules plus extra), to be scaled up with nearest-neighbour so the modules stay
// crisp. Black on white whatever the theme, as scanners expect.
func qrImage(content string, extra int) image.Image {
	q, err := qrcode.New(content, qrcode.Medium)
	if err != nil {
		return image.NewGray(image.Rect(0, 0, 1, 1))
	}
	bits := q.Bitmap()
	n := len(bits) + 2*extra
	img := image.NewGray(image.Rect(0, 0, n, n))
	for i := range img.Pix {
		img.Pix[i] = 0xff
	}
	for y, row := range bits {
		for x, dark := range row {
			if dark {
				img.Pix[(y+extra)*img.Stride+x+extra] = 0
			}
		}
	}
	return img
}

// kioskLayout places the kiosk's objects and sizes its text from the space it gets, so the
// screen reads the same on a small window and across a room on a big display.
type kioskLayout struct {
	k            *KioskScreen
	linked       bool
	highContrast bool // a larger code (SetHighContrast)
}

func (l *kioskLayout) MinSize([]fyne.CanvasObject) fyne.Size { return fyne.NewSize(480, 320) }

func (l *kioskLayout) Layout(_ []fyne.CanvasObject, size fyne.Size) {
	k := l.k
	// One unit is 1/100 of the smaller of width and height/0.6 (landscape screens).
	unit := min(size.Width, size.Height/0.6) / 100
	pad := 4 * unit

	setSize := func(t *canvas.Text, s float32) {
		if t.TextSize != s {
			t.TextSize = s
			t.Refresh()
		}
	}
	fg := theme.Color(theme.ColorNameForeground)
	for _, t := range []*canvas.Text{k.heading, k.enter, k.address, k.linked} {
		if t.Color != fg {
			t.Color = fg
			t.Refresh()
		}
	}
	if c := theme.Color(theme.ColorNameForegroundOnError); k.unlinkTx.Color != c {
		k.unlinkTx.Color = c
		k.unlinkTx.Refresh()
	}
	// Every colour follows the theme, also when it changes while the screen shows.
	for t, c := range map[*canvas.Text]color.Color{
		k.code: theme.Color(theme.ColorNamePrimary), k.countTxt: theme.Color(theme.ColorNamePlaceHolder),
		k.status: k.statusColor(),
	} {
		if t.Color != c {
			t.Color = c
			t.Refresh()
		}
	}

	setSize(k.heading, 3*unit)
	setSize(k.enter, 3*unit)
	codeSize := float32(9)
	if l.highContrast {
		codeSize = 11
	}
	setSize(k.code, codeSize*unit)
	setSize(k.address, 3.6*unit)
	setSize(k.countTxt, 2.4*unit)
	setSize(k.status, 2.4*unit)
	setSize(k.linked, 4*unit)
	setSize(k.unlinkTx, 2.4*unit)

	statusH := k.status.MinSize().Height
	k.status.Move(fyne.NewPos(pad, size.Height-pad-statusH))
	k.status.Resize(fyne.NewSize(size.Width-2*pad, statusH))

	if l.linked {
		lh := k.linked.MinSize().Height
		ts := k.unlinkTx.MinSize()
		bs := fyne.NewSize(ts.Width+6*unit, ts.Height+3*unit)
		top := (size.Height - lh - 3*unit - bs.Height) / 2
		k.linked.Move(fyne.NewPos(pad, top))
		k.linked.Resize(fyne.NewSize(size.Width-2*pad, lh))
		k.unlink.Move(fyne.NewPos((size.Width-bs.Width)/2, top+lh+3*unit))
		k.unlink.Resize(bs)
		k.unlinkTx.Move(fyne.NewPos((size.Width-bs.Width)/2, top+lh+3*unit+(bs.Height-ts.Height)/2))
		k.unlinkTx.Resize(fyne.NewSize(bs.Width, ts.Height))
		return
	}

	// Code view: text column on the left, QR code square on the right.
	qrSide := min(size.Height-2*pad-statusH-unit, size.Width*0.4)
	qrX := size.Width - pad - qrSide
	k.qrBack.Move(fyne.NewPos(qrX, pad))
	k.qrBack.Resize(fyne.NewSize(qrSide, qrSide))
	k.qr.Move(fyne.NewPos(qrX, pad))
	k.qr.Resize(fyne.NewSize(qrSide, qrSide))

	colW := qrX - 2*pad
	// Shrink the code if it would run under the QR code in a narrow window.
	if w := k.code.MinSize().Width; w > colW && w > 0 {
		setSize(k.code, k.code.TextSize*colW/w)
	}
	// Same for the other lines; the address can be long on a custom issuer.
	for _, t := range []*canvas.Text{k.heading, k.address} {
		if w := t.MinSize().Width; w > colW && w > 0 {
			setSize(t, t.TextSize*colW/w)
		}
	}
	y := pad
	place := func(o fyne.CanvasObject, gap float32) {
		h := o.MinSize().Height
		o.Move(fyne.NewPos(pad, y))
		o.Resize(fyne.NewSize(colW, h))
		y += h + gap
	}
	// Centre the column vertically beside the QR code.
	colH := k.heading.MinSize().Height + k.address.MinSize().Height + k.enter.MinSize().Height +
		k.code.MinSize().Height + k.countTxt.MinSize().Height + 6*unit
	y = pad + max(0, (qrSide-colH)/2)
	place(k.heading, 1*unit)
	place(k.address, 2*unit)
	place(k.enter, 1*unit)
	place(k.code, 2*unit)
	place(k.countTxt, 0)
}
