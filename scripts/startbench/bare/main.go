// Command bare is the yardstick of `make bench-startup`: the plainest Fyne window
// (one label), built with the same Fyne version and tags as Linkdesk. It logs
// "ui: screen" the way the app does: once its content is on a window that is
// shown, from the UI loop (the app logs its sign-in screen from a fyne.Do
// callback of its start-up work, after the window was created and shown). It
// used to log before ShowAndRun, before the window existed, which timed the bare
// window more leniently than the app.
package main

import (
	"log/slog"
	"os"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/app"
	"fyne.io/fyne/v2/widget"
)

func main() {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, nil)))
	a := app.NewWithID("com.linkdesk.bench.bare")
	w := a.NewWindow("Bare")
	w.Resize(fyne.NewSize(900, 680))
	w.SetContent(widget.NewLabel("Hello"))
	// Queued now, run by the UI loop once ShowAndRun has created and shown the window.
	go fyne.Do(func() { slog.Info("ui: screen", "screen", "bare") })
	w.ShowAndRun()
}
