package ui

import (
	"image/color"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/lang"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// banner is a strip shown above a screen's content when the service can't be
// reached or fails, with a Retry button; it never touches what was typed.
type banner struct {
	root  *fyne.Container
	label *widget.Label
	retry *widget.Button
	onTry func()
	// parent is the container laid out around the banner, set by the screen.
	parent *fyne.Container
	// onVisible, when set, hears the banner appear or go, so a screen can make
	// room for it (the confirm screen hides its heading).
	onVisible func(shown bool)
}

func newBanner() *banner {
	b := &banner{label: widget.NewLabel("")}
	b.label.Wrapping = fyne.TextWrapWord
	b.retry = widget.NewButtonWithIcon(lang.L("Retry"), theme.ViewRefreshIcon(), func() {
		if b.onTry != nil {
			b.onTry()
		}
	})
	bg := canvas.NewRectangle(withAlpha(theme.Color(theme.ColorNameError), 0x30))
	bg.CornerRadius = theme.InputRadiusSize()
	icon := widget.NewIcon(theme.NewErrorThemedResource(theme.WarningIcon()))
	b.root = container.NewStack(bg, container.NewPadded(
		container.NewBorder(nil, nil, icon, b.retry, b.label)))
	b.root.Hide()
	return b
}

// show displays msg; retry, when not nil, is what the Retry button does.
func (b *banner) show(msg string, retry func()) {
	defer b.relayout()
	b.label.SetText(msg)
	b.onTry = retry
	if retry == nil {
		b.retry.Hide()
	} else {
		b.retry.Show()
	}
	if !b.root.Visible() && b.onVisible != nil {
		b.onVisible(true)
	}
	b.root.Show()
}

func (b *banner) hide() {
	if b.root.Visible() {
		b.root.Hide()
		if b.onVisible != nil {
			b.onVisible(false)
		}
		b.relayout()
	}
}

// relayout refreshes the screen holding the banner, so showing or hiding it
// moves what is below.
func (b *banner) relayout() {
	if b.parent != nil {
		b.parent.Refresh()
	}
}

func withAlpha(c color.Color, a uint8) color.Color {
	r, g, bl, _ := c.RGBA()
	return color.NRGBA{R: uint8(r >> 8), G: uint8(g >> 8), B: uint8(bl >> 8), A: a}
}

// heading is a large bold title.
func heading(text string) *widget.RichText {
	return widget.NewRichText(&widget.TextSegment{Text: text, Style: widget.RichTextStyle{
		SizeName: theme.SizeNameHeadingText, TextStyle: fyne.TextStyle{Bold: true}}})
}

// subheading is a medium bold title.
func subheading(text string) *widget.RichText {
	return widget.NewRichText(&widget.TextSegment{Text: text, Style: widget.RichTextStyle{
		SizeName: theme.SizeNameSubHeadingText, TextStyle: fyne.TextStyle{Bold: true}}})
}

// wrapped is a word-wrapping label.
func wrapped(text string) *widget.Label {
	l := widget.NewLabel(text)
	l.Wrapping = fyne.TextWrapWord
	return l
}

// bigTextTheme enlarges text, for the code entry people read from across a room.
type bigTextTheme struct{ fyne.Theme }

// Size doubles the text size and keeps every other size.
func (t bigTextTheme) Size(n fyne.ThemeSizeName) float32 {
	if n == theme.SizeNameText {
		return t.Theme.Size(n) * 2
	}
	return t.Theme.Size(n)
}

// maxWidthLayout keeps its objects at most w wide, centred, so forms don't
// stretch across wide windows.
type maxWidthLayout struct{ w float32 }

// MinSize is the largest minimum size of the objects.
func (l maxWidthLayout) MinSize(objs []fyne.CanvasObject) fyne.Size {
	var s fyne.Size
	for _, o := range objs {
		s = s.Max(o.MinSize())
	}
	return s
}

// Layout gives each object the full height and at most w of the width, centred.
func (l maxWidthLayout) Layout(objs []fyne.CanvasObject, size fyne.Size) {
	w := size.Width
	if w > l.w {
		w = l.w
	}
	for _, o := range objs {
		o.Resize(fyne.NewSize(w, size.Height))
		o.Move(fyne.NewPos((size.Width-w)/2, 0))
	}
}

// limitWidth keeps obj at most w wide, centred.
func limitWidth(w float32, obj fyne.CanvasObject) *fyne.Container {
	return container.New(maxWidthLayout{w: w}, obj)
}

// layoutSpacer fills free space in a box.
func layoutSpacer() fyne.CanvasObject { return layout.NewSpacer() }

// centered stacks objs in a column at most w wide, centred both ways, giving
// wrapped labels the full column width.
func centered(w float32, objs ...fyne.CanvasObject) *fyne.Container {
	col := container.NewVBox(layout.NewSpacer())
	col.Objects = append(col.Objects, objs...)
	col.Objects = append(col.Objects, layout.NewSpacer())
	return limitWidth(w, col)
}

// busyBar is the infinite progress bar a screen shows while its work runs; it
// starts hidden and stopped, so it costs nothing when idle.
type busyBar struct{ *widget.ProgressBarInfinite }

func newBusyBar() busyBar {
	p := widget.NewProgressBarInfinite()
	p.Stop()
	p.Hide()
	return busyBar{p}
}

// set shows and animates the bar (on) or stops and hides it; the caller
// refreshes the container around it.
func (b busyBar) set(on bool) {
	if on {
		b.Show()
		b.Start()
	} else {
		b.Stop()
		b.Hide()
	}
}

// focusButton is a button whose keyboard focus shows plainly: a ring in the
// text colour around it while focused (Fyne's own cue is a faint tint that is
// easy to miss on a coloured button). Escape runs onEscape and a typed
// character runs onRune, when set, so a focused button never swallows them.
type focusButton struct {
	widget.Button
	ring     *canvas.Rectangle
	box      *fyne.Container
	onEscape func()
	onRune   func(rune)
}

func newFocusButton(text string, icon fyne.Resource, tapped func()) *focusButton {
	b := &focusButton{}
	b.Text, b.Icon, b.OnTapped = text, icon, tapped
	b.ExtendBaseWidget(b)
	b.ring = canvas.NewRectangle(color.Transparent)
	b.ring.StrokeWidth = 2
	b.ring.CornerRadius = theme.InputRadiusSize() + 2
	b.ring.Hide()
	b.box = container.New(ringLayout{}, b, b.ring)
	return b
}

// object is what to put in a container: the button with its ring.
func (b *focusButton) object() fyne.CanvasObject { return b.box }

// FocusGained shows the ring.
func (b *focusButton) FocusGained() {
	b.Button.FocusGained()
	b.ring.StrokeColor = theme.Color(theme.ColorNameForeground)
	b.ring.Show()
	b.ring.Refresh()
}

// FocusLost hides the ring.
func (b *focusButton) FocusLost() {
	b.Button.FocusLost()
	b.ring.Hide()
}

// TypedKey runs onEscape on Escape; other keys act as on any button.
func (b *focusButton) TypedKey(ev *fyne.KeyEvent) {
	if ev.Name == fyne.KeyEscape && b.onEscape != nil {
		b.onEscape()
		return
	}
	b.Button.TypedKey(ev)
}

// TypedRune hands a typed character to onRune.
func (b *focusButton) TypedRune(r rune) {
	if b.onRune != nil {
		b.onRune(r)
	}
}

// ringLayout sizes its first object to the space and draws the second (the
// focus ring) a little outside it.
type ringLayout struct{}

const ringGap = 3

func (ringLayout) MinSize(objs []fyne.CanvasObject) fyne.Size { return objs[0].MinSize() }

func (ringLayout) Layout(objs []fyne.CanvasObject, size fyne.Size) {
	objs[0].Move(fyne.NewPos(0, 0))
	objs[0].Resize(size)
	objs[1].Move(fyne.NewPos(-ringGap, -ringGap))
	objs[1].Resize(size.AddWidthHeight(2*ringGap, 2*ringGap))
}

// escapeEntry is an entry that runs onEscape on Escape (after closing an open
// dialog of its window, if any), which the entry would otherwise swallow.
type escapeEntry struct {
	widget.Entry
	onEscape func()
}

func newEscapeEntry(onEscape func()) *escapeEntry {
	e := &escapeEntry{onEscape: onEscape}
	e.ExtendBaseWidget(e)
	return e
}

// TypedKey runs onEscape on Escape and otherwise edits as usual.
func (e *escapeEntry) TypedKey(ev *fyne.KeyEvent) {
	if ev.Name == fyne.KeyEscape && e.onEscape != nil {
		e.onEscape()
		return
	}
	e.Entry.TypedKey(ev)
}
