package ui

import (
	"sync"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/lang"
	"fyne.io/fyne/v2/widget"
)

// openDialogs remembers each window's open dialog, so Escape can dismiss it.
var openDialogs sync.Map // fyne.Window -> dialog.Dialog

// showDialog shows d on w and lets Escape close it. A confirm dialog's way
// out says "Cancel" (Fyne's default is "No", which reads oddly under a
// question like "Unlink Front desk?" whose other answer is "Unlink").
func showDialog(w fyne.Window, d dialog.Dialog) {
	if w == nil {
		return
	}
	if c, ok := d.(*dialog.ConfirmDialog); ok {
		c.SetDismissText(lang.L("Cancel"))
	}
	openDialogs.Store(w, d)
	d.SetOnClosed(func() { openDialogs.CompareAndDelete(w, d) })
	d.Show()
}

// dismissDialog closes w's open dialog, answering it as cancelled; it reports
// whether there was one.
func dismissDialog(w fyne.Window) bool {
	v, ok := openDialogs.LoadAndDelete(w)
	if !ok {
		return false
	}
	v.(dialog.Dialog).Dismiss()
	return true
}

// escEntry is an entry for dialogs: Escape, which the entry would otherwise
// swallow, closes the window's open dialog.
type escEntry struct {
	widget.Entry
	window fyne.Window
}

func newEscEntry(w fyne.Window) *escEntry {
	e := &escEntry{window: w}
	e.ExtendBaseWidget(e)
	return e
}

// TypedKey closes the dialog on Escape and otherwise edits as usual.
func (e *escEntry) TypedKey(ev *fyne.KeyEvent) {
	if ev.Name == fyne.KeyEscape && dismissDialog(e.window) {
		return
	}
	e.Entry.TypedKey(ev)
}
