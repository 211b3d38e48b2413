package ui

import (
	"strings"
	"sync"
	"sync/atomic"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
)

func stringsContains(s, sub string) bool { return strings.Contains(s, sub) }

func cacheRenderer(w fyne.Widget) fyne.WidgetRenderer { return test.WidgetRenderer(w) }

// uiMu stands in for the one UI goroutine the Fyne test driver lacks (its
// fyne.Do runs on the caller): every background UI update and every test that
// touches widgets takes it, which gives the race detector its happens-before edges.
var uiMu sync.Mutex

// uiUpdates counts the background UI updates that have run, so a test can wait
// until a late result has reached the UI (and check that it was ignored).
var uiUpdates atomic.Int64

func init() {
	doUI = func(f func()) {
		fyne.Do(func() {
			uiMu.Lock()
			defer uiMu.Unlock()
			defer uiUpdates.Add(1)
			f()
		})
	}
}
