package ui

import (
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
)

// Golden markup of screens whose look should change only on purpose
// (regenerate by deleting testdata/*.xml and copying testdata/failed/*.xml back).

func TestGoldenCodeHint(t *testing.T) {
	s, w, _ := newCodeTest(t, &fakeLink{})
	w.Resize(fyne.NewSize(640, 420))
	locked(func() { test.Type(s.entry, "bcd0") })
	locked(func() { test.AssertRendersToMarkup(t, "code_hint.xml", w.Canvas()) })
}

func TestGoldenDenied(t *testing.T) {
	test.NewTempApp(t)
	r := ConfirmResult{Request: demoRequest()}
	screen, _ := resultScreen(r, demoAccount(), func() {}, nil)
	w := test.NewWindow(screen)
	w.Resize(fyne.NewSize(640, 420))
	t.Cleanup(func() { locked(w.Close) })
	locked(func() { test.AssertRendersToMarkup(t, "denied.xml", w.Canvas()) })
}
