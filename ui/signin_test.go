package ui

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

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

// answeringSession hands each SignIn call to the test, which answers it
// whenever it likes and whatever the call's context: like a browser that
// finishes signing in after the person pressed Cancel.
type answeringSession struct {
	fakeSession
	calls chan signInCall
}

type signInCall struct {
	ctx    context.Context
	answer chan devices.Me
}

func (s *answeringSession) SignIn(ctx context.Context) (devices.Me, error) {
	c := signInCall{ctx: ctx, answer: make(chan devices.Me)}
	s.calls <- c
	return <-c.answer, nil
}

func nextCall(t *testing.T, calls <-chan signInCall) signInCall {
	t.Helper()
	select {
	case c := <-calls:
		return c
	case <-time.After(15 * time.Second):
		t.Fatal("SignIn was not called")
		return signInCall{}
	}
}

func TestSignInCancelStopsWaiting(t *testing.T) {
	sess := &answeringSession{calls: make(chan signInCall)}
	s, _, got := newSignInTest(t, sess)
	locked(func() { test.Tap(s.start) })
	stale := nextCall(t, sess.calls)
	locked(func() {
		if !s.waiting.Visible() || s.start.Visible() {
			t.Fatal("no waiting state")
		}
		test.Tap(s.cancel)
		if s.waiting.Visible() || !s.start.Visible() {
			t.Error("Cancel did not return to the start")
		}
	})
	if stale.ctx.Err() == nil {
		t.Fatal("Cancel did not cancel the sign-in's context")
	}

	// The browser answers the cancelled sign-in late: the answer reaches the UI
	// goroutine and is ignored.
	before := uiUpdates.Load()
	stale.answer <- devices.Me{Subject: "late", DisplayName: "Late Answer"}
	waitFor(t, "the late answer to reach the UI", func() bool { return uiUpdates.Load() > before })
	locked(func() {
		if len(*got) != 0 || s.waiting.Visible() || !s.start.Visible() || s.status.Visible() {
			t.Errorf("late answer not ignored: signed in %v, waiting %v, status %q", *got, s.waiting.Visible(), s.status.Text)
		}
	})

	// A new sign-in works and reports only its own account.
	locked(func() { test.Tap(s.start) })
	nextCall(t, sess.calls).answer <- demoAccount()
	waitFor(t, "the sign-in", func() bool { return len(*got) == 1 })
	locked(func() {
		if (*got)[0].Subject != demoAccount().Subject {
			t.Errorf("signed in %v, want %v", *got, demoAccount())
		}
	})
}

// keyringlessSession is a computer without a reachable system keyring: the probe
// fails until sign-ins are kept for this run only. It counts browser openings
// (SignIn calls).
type keyringlessSession struct {
	fakeSession
	memoryOnly  bool
	signIns     int
	accountsErr bool // Accounts fails too, as reading a missing keyring does
}

func (s *keyringlessSession) CheckKeyring(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.memoryOnly {
		return nil
	}
	return fmt.Errorf("%w: %w", auth.ErrKeyringUnavailable, errors.New("org.freedesktop.secrets was not provided"))
}

func (s *keyringlessSession) RememberForThisRunOnly() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.memoryOnly = true
}

func (s *keyringlessSession) RemembersSignIns() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.memoryOnly
}

func (s *keyringlessSession) SignIn(ctx context.Context) (devices.Me, error) {
	s.mu.Lock()
	s.signIns++
	s.mu.Unlock()
	return s.fakeSession.SignIn(ctx)
}

func (s *keyringlessSession) Accounts(ctx context.Context) ([]devices.Me, string, error) {
	s.mu.Lock()
	failing := s.accountsErr && !s.memoryOnly
	s.mu.Unlock()
	if failing {
		return nil, "", s.CheckKeyring(ctx)
	}
	return s.fakeSession.Accounts(ctx)
}

func (s *keyringlessSession) browserOpenings() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.signIns
}

// Without a keyring the browser never opens before the person agreed to a
// sign-in that lasts this session only; then it signs in, kept in memory.
func TestSignInWithoutKeyringAsksBeforeTheBrowserOpens(t *testing.T) {
	svc := &keyringlessSession{fakeSession: fakeSession{next: []devices.Me{demoAccount(), demoAccount()}}}
	s, w, got := newSignInTest(t, svc)

	// Cancel leaves the person where they were, nothing opened.
	locked(func() { test.Tap(s.start) })
	waitFor(t, "the session-only question", func() bool { return s.noKeyring.Visible() })
	locked(func() {
		if s.start.Visible() || s.status.Visible() || svc.browserOpenings() != 0 {
			t.Errorf("start visible %v, status %q, browser opened %d times", s.start.Visible(), s.status.Text, svc.browserOpenings())
		}
		test.Tap(findButton(s.noKeyring, "Cancel"))
		if s.noKeyring.Visible() || !s.start.Visible() {
			t.Error("Cancel did not return to the sign-in button")
		}
	})

	locked(func() { test.Tap(s.start) })
	waitFor(t, "the session-only question again", func() bool { return s.noKeyring.Visible() })
	shot(t, w, "signin-no-keyring")
	if !svc.RemembersSignIns() || svc.browserOpenings() != 0 {
		t.Fatal("the question changed the keyring or opened the browser")
	}
	locked(func() { test.Tap(findButton(s.noKeyring, "Sign in for this session only")) })
	waitFor(t, "the sign-in", func() bool { return len(*got) == 1 })
	if svc.RemembersSignIns() || svc.browserOpenings() != 1 {
		t.Fatalf("remembers %v, browser opened %d times; want memory only, once", svc.RemembersSignIns(), svc.browserOpenings())
	}
}
