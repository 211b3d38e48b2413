// Command bare is the yardstick of `make bench-startup`: the plainest Fyne window
// (one label), built with the same Fyne version and tags as Linkdesk. It logs
// "ui: screen" the way the app does once its content is on the window.
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
	slog.Info("ui: screen", "screen", "bare")
	w.ShowAndRun()
}
