package ui

import (
	"context"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"github.com/linkdesk/linkdesk/auth"
	"github.com/linkdesk/linkdesk/devices"
)

// scriptedSession answers SignIn with err once released, or waits for cancel.
type scriptedSession struct {
	fakeSession
	err error
}

func (s *scriptedSession) SignIn(ctx context.Context) (devices.Me, error) {
	if s.err != nil {
		return devices.Me{}, s.err
	}
	return s.fakeSession.SignIn(ctx)
}

func newSignInTest(t *testing.T, svc SessionService) (*SignInScreen, fyne.Window, *[]devices.Me) {
	t.Helper()
	test.NewTempApp(t)
	var got []devices.Me
	s := NewSignInScreen(svc, testIssuer, func(me devices.Me) { got = append(got, me) }, nil)
	w := test.NewWindow(s.Content())
	w.Resize(fyne.NewSize(640, 520))
	t.Cleanup(func() { locked(func() { s.Stop(); w.Close() }) })
	return s, w, &got
}

func TestSignInRefusedInBrowserIsExplained(t *testing.T) {
	s, w, got := newSignInTest(t, &scriptedSession{err: &auth.AuthorizationError{Code: "access_denied"}})
	locked(func() { test.Tap(s.start) })
	waitFor(t, "the error", func() bool { return s.status.Visible() })
	shot(t, w, "signin-refused")
	locked(func() {
		if !contains(s.status.Text, "cancelled in the browser") || !s.start.Visible() || s.waiting.Visible() {
			t.Errorf("status %q, start visible %v", s.status.Text, s.start.Visible())
		}
		if len(*got) != 0 {
			t.Error("reported signed in")
		}
	})
}

func TestSignInCancelStopsWaiting(t *testing.T) {
	sess := &fakeSession{next: []devices.Me{demoAccount()}, release: make(chan struct{})}
	s, _, got := newSignInTest(t, sess)
	locked(func() { test.Tap(s.start) })
	locked(func() {
		if !s.waiting.Visible() || s.start.Visible() {
			t.Fatal("no waiting state")
		}
		test.Tap(s.cancel)
		if s.waiting.Visible() || !s.start.Visible() {
			t.Error("Cancel did not return to the start")
		}
	})
	close(sess.release) // a late browser answer is ignored
	locked(func() { test.Tap(s.start) })
	waitFor(t, "the sign-in", func() bool { return len(*got) == 1 })
}
