package ui

import (
	"sync"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/dialog"
)

// openDialogs remembers each window's open dialog, so Escape can dismiss it.
var openDialogs sync.Map // fyne.Window -> dialog.Dialog

// showDialog shows d on w and lets Escape close it.
func showDialog(w fyne.Window, d dialog.Dialog) {
	if w == nil {
		return
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
