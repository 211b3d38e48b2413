package ui

import (
	"image/color"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
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
}

func newBanner() *banner {
	b := &banner{label: widget.NewLabel("")}
	b.label.Wrapping = fyne.TextWrapWord
	b.retry = widget.NewButtonWithIcon("Retry", theme.ViewRefreshIcon(), func() {
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
	b.root.Show()
}

func (b *banner) hide() {
	if b.root.Visible() {
		b.root.Hide()
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
