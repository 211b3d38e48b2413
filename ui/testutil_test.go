package ui

import (
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
)

func stringsContains(s, sub string) bool { return strings.Contains(s, sub) }

func cacheRenderer(w fyne.Widget) fyne.WidgetRenderer { return test.WidgetRenderer(w) }
