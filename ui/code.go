package ui

import (
	"context"
	"log/slog"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/lang"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/linkdesk/linkdesk/devices"
)

// CodeScreen is where a person types or pastes the code their device shows.
// It formats the code as XXXX-XXXX while typing, explains impossible
// characters without dropping what was typed, and looks the code up.
type CodeScreen struct {
	svc     CodeLookup
	issuer  func() string
	onFound func(code string, req devices.LinkRequest)

	entry    *codeEntry
	hint     *widget.Label
	cont     *focusButton
	progress busyBar
	banner   *banner
	form     *fyne.Container
	root     fyne.CanvasObject

	code string // normalised code when complete, else ""
	// given: the field's text came by a link, a scan or a paste rather than typed
	// key by key, so the confirm screen shows the code large to be checked.
	given    bool
	updating bool
	lookup   task

	scanning scanState // the Scan row, its sources and the picture being read

	nearby *nearbySection // "Devices waiting near you", when svc is a NearbyService
}

// NewCodeScreen makes the code screen. issuer gives the configured issuer URL, to
// accept pasted links for it only; onFound gets the pending request once the
// service knows the code.
func NewCodeScreen(svc CodeLookup, issuer func() string, onFound func(code string, req devices.LinkRequest)) *CodeScreen {
	s := &CodeScreen{svc: svc, issuer: issuer, onFound: onFound}
	s.entry = newCodeEntry(s.pastePicture)
	s.entry.PlaceHolder = "XXXX-XXXX"
	s.entry.TextStyle = fyne.TextStyle{Monospace: true}
	s.entry.OnChanged = s.changed
	s.entry.OnSubmitted = func(string) { s.Submit() }

	s.hint = wrapped("")
	s.hint.Importance = widget.DangerImportance
	s.hint.Hide()

	s.cont = newFocusButton(lang.L("Continue"), theme.NavigateNextIcon(), s.Submit)
	s.cont.Importance = widget.HighImportance
	s.cont.Disable()

	s.progress = newBusyBar()
	s.banner = newBanner()

	intro := wrapped(lang.L("Type the code shown on your TV, console or other device. " +
		"You can also paste the link it shows, or scan its QR code."))
	big := container.NewThemeOverride(s.entry, bigTextTheme{theme.Current()})
	s.scanning.init(s)
	form := container.NewVBox(
		heading(lang.L("Link a device")),
		intro,
		big,
		s.hint,
		container.NewHBox(layoutSpacer(), s.cont.object()),
		s.progress,
		s.scanning.row,
	)
	if ns, ok := svc.(NearbyService); ok {
		s.nearby = newNearbySection(ns, func(code string, req devices.LinkRequest) {
			if s.onFound != nil {
				s.onFound(code, req)
			}
		}, s.relayout)
		form.Add(s.nearby.root)
	}
	root := container.NewBorder(s.banner.root, nil, nil, nil,
		container.NewVScroll(container.NewPadded(limitWidth(520, form))))
	s.banner.parent = root
	s.form = form
	s.root = root
	return s
}

// Content is the screen's canvas object.
func (s *CodeScreen) Content() fyne.CanvasObject { return s.root }

// Focus puts the keyboard focus on the code entry.
func (s *CodeScreen) Focus(c fyne.Canvas) {
	if c != nil {
		c.Focus(s.entry)
	}
}

// Reset clears the code for linking another device.
func (s *CodeScreen) Reset() {
	s.lookup.stop()
	s.scanning.stop()
	s.setBusy(false)
	s.banner.hide()
	s.entry.SetText("")
	s.showHint("")
	if s.nearby != nil {
		s.nearby.reset()
	}
}

// StartNearby reads the devices waiting near the person now and every little while,
// until StopNearby; the link flow calls it while the code screen is on show.
func (s *CodeScreen) StartNearby() {
	if s.nearby != nil {
		s.nearby.start()
	}
}

// StopNearby stops reading the devices waiting nearby.
func (s *CodeScreen) StopNearby() {
	if s.nearby != nil {
		s.nearby.stop()
	}
}

// ShowError shows err about the current code (from a later step, such as an
// expired code at approval), keeping the typed code.
func (s *CodeScreen) ShowError(err error) { s.showFailure(err) }

func (s *CodeScreen) changed(text string) {
	if s.updating {
		return
	}
	s.given = !s.entry.typing
	s.code = ""
	s.cont.Disable()
	s.banner.hide()

	clean, err := s.parse(text)
	if err != nil {
		s.showHint(explainCodeInput(err))
		return
	}
	if len(clean) > devices.CodeLength {
		s.showHint(lang.L("A code has 8 letters. Check the code on your device."))
		return
	}
	s.showHint("")
	if formatted := devices.FormatCode(clean); formatted != text {
		cursor := len([]rune(formatted)) // after a pasted link: the end
		if !strings.ContainsAny(text, ":/?=") {
			cursor = formattedCursor(text, s.entry.CursorColumn)
		}
		s.updating = true
		s.entry.SetText(formatted)
		s.entry.CursorColumn = cursor
		s.entry.CursorRow = 0
		s.entry.Refresh()
		s.updating = false
	}
	if len(clean) == devices.CodeLength {
		s.code = clean
		if !s.lookup.running() {
			s.cont.Enable()
		}
	}
}

// formattedCursor keeps the cursor after the same letter when text (with the
// cursor at column) is reformatted as XXXX-XXXX, so typing in the middle of a
// code does not throw the cursor to the end.
func formattedCursor(text string, column int) int {
	letters := 0
	for i, r := range []rune(text) {
		if i >= column {
			break
		}
		if !devices.IsCodeSeparator(r) {
			letters++
		}
	}
	if letters > 4 {
		return letters + 1 // past the dash
	}
	return letters
}

// parse turns typed or pasted text into a cleaned (possibly partial) code;
// links are accepted only for the configured issuer (devices.ParseCodeInput).
func (s *CodeScreen) parse(text string) (string, error) {
	t := strings.TrimSpace(text)
	if strings.ContainsAny(t, ":/?=") {
		return devices.ParseCodeInput(t, s.issuer())
	}
	return devices.CleanCodeInput(t)
}

func (s *CodeScreen) showHint(msg string) {
	s.hint.SetText(msg)
	if (msg != "") == s.hint.Visible() {
		return
	}
	if msg == "" {
		s.hint.Hide()
	} else {
		s.hint.Show()
	}
	s.relayout()
}

// relayout lays the screen out again after something was shown or hidden; a
// second pass lets a wrapped label that just got its width settle its height.
func (s *CodeScreen) relayout() {
	if s.form == nil {
		return
	}
	for range 2 {
		s.form.Refresh()
		s.banner.relayout()
	}
}

// Submit looks up the typed code, when it is complete.
func (s *CodeScreen) Submit() {
	code := s.code
	if code == "" || s.lookup.running() {
		return
	}
	s.banner.hide()
	s.showHint("")
	s.setBusy(true)
	var req devices.LinkRequest
	s.lookup.start(func(ctx context.Context) error {
		var err error
		req, err = s.svc.LinkRequest(ctx, code)
		return err
	}, func(err error) {
		s.setBusy(false)
		if err != nil {
			s.showFailure(err)
			return
		}
		if s.onFound != nil {
			s.onFound(code, req)
		}
	})
}

// showFailure shows code problems under the entry and service trouble in the
// banner with Retry; the typed code stays either way.
func (s *CodeScreen) showFailure(err error) {
	if p, ok := problemOf(err); ok {
		switch p.Code {
		case devices.CodeInvalidCode, devices.CodeExpiredCode, devices.CodeAlreadyUsed, devices.CodeRateLimited:
			s.showHint(Explain(err))
			return
		}
	}
	s.banner.show(Explain(err), s.Submit)
}

func (s *CodeScreen) setBusy(busy bool) {
	if busy {
		s.cont.Disable()
	}
	s.progress.set(busy)
	s.relayout()
	if !busy && s.code != "" {
		s.cont.Enable()
	}
}

// codeEntry is the code field. Paste works as in any entry, except that when
// the clipboard holds no text (say, a screenshot of a QR code) it scans the
// clipboard's picture instead.
type codeEntry struct {
	widget.Entry
	onPastePicture func()
	typing         bool // inside a key press (not a paste or an opened link)
}

// TypedRune marks the change it makes as typed.
func (e *codeEntry) TypedRune(r rune) {
	e.typing = true
	defer func() { e.typing = false }()
	e.Entry.TypedRune(r)
}

// TypedKey marks the change it makes (Backspace, Delete) as typed.
func (e *codeEntry) TypedKey(k *fyne.KeyEvent) {
	e.typing = true
	defer func() { e.typing = false }()
	e.Entry.TypedKey(k)
}

func newCodeEntry(onPastePicture func()) *codeEntry {
	e := &codeEntry{onPastePicture: onPastePicture}
	e.ExtendBaseWidget(e)
	return e
}

// TypedShortcut scans the clipboard's picture on a paste without text.
func (e *codeEntry) TypedShortcut(sc fyne.Shortcut) {
	if p, ok := sc.(*fyne.ShortcutPaste); ok && e.onPastePicture != nil &&
		(p.Clipboard == nil || strings.TrimSpace(p.Clipboard.Content()) == "") {
		slog.Info("ui: paste without text: reading the clipboard's picture")
		e.onPastePicture()
		return
	}
	e.Entry.TypedShortcut(sc)
}
