package ui

import (
	"errors"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"github.com/linkdesk/linkdesk/devices"
)

const testIssuer = "https://link.example.com"

func demoRequest() devices.LinkRequest {
	return devices.LinkRequest{
		Client: devices.ClientInfo{ID: "tv-app", Name: "Cinema Plus"},
		Device: devices.DeviceInfo{Name: "Living room TV", Model: "OLED55", Kind: devices.KindTV},
		Scopes: []devices.Scope{
			{Name: "openid", Description: "Know who you are"},
			{Name: "watchlist", Description: "See and change your watchlist"},
		},
		RequestedAt: time.Now(),
		ExpiresAt:   time.Now().Add(9*time.Minute + 30*time.Second),
		Origin:      devices.Origin{IP: "192.168.1.20", SameNetwork: true},
	}
}

func demoAccount() devices.Me {
	return devices.Me{Subject: "u1", Username: "ada", DisplayName: "Ada Lovelace", Email: "ada@example.com"}
}

func newCodeTest(t *testing.T, svc LinkService) (*CodeScreen, fyne.Window, *[]devices.LinkRequest) {
	t.Helper()
	test.NewTempApp(t)
	var found []devices.LinkRequest
	s := NewCodeScreen(svc, func() string { return testIssuer }, func(code string, r devices.LinkRequest) {
		found = append(found, r)
	})
	w := test.NewWindow(s.Content())
	w.Resize(fyne.NewSize(640, 480))
	t.Cleanup(func() { locked(w.Close) })
	return s, w, &found
}

func TestCodeEntryFormatsAsYouType(t *testing.T) {
	s, _, _ := newCodeTest(t, &fakeLink{})
	locked(func() { test.Type(s.entry, "bcdf") })
	if got := s.entry.Text; got != "BCDF" {
		t.Fatalf("after 4 letters: %q", got)
	}
	if !s.cont.Disabled() {
		t.Fatal("Continue enabled before 8 letters")
	}
	locked(func() { test.Type(s.entry, " g-hj") })
	if got := s.entry.Text; got != "BCDF-GHJ" {
		t.Fatalf("after 7 letters: %q", got)
	}
	locked(func() { test.Type(s.entry, "k") })
	if got := s.entry.Text; got != "BCDF-GHJK" {
		t.Fatalf("after 8 letters: %q", got)
	}
	if s.cont.Disabled() {
		t.Fatal("Continue disabled with a full code")
	}
	if s.hint.Visible() {
		t.Fatalf("hint shown for a good code: %q", s.hint.Text)
	}
}

func TestCodeEntryInvalidCharacterHintKeepsText(t *testing.T) {
	s, w, _ := newCodeTest(t, &fakeLink{})
	locked(func() { test.Type(s.entry, "bcdo") })
	if !s.hint.Visible() || !contains(s.hint.Text, "“o” is never part of a code") {
		t.Fatalf("hint = %q (visible %v)", s.hint.Text, s.hint.Visible())
	}
	if s.entry.Text != "BCDo" {
		t.Fatalf("typed text lost: %q", s.entry.Text)
	}
	if !s.cont.Disabled() {
		t.Fatal("Continue enabled with an impossible character")
	}
	shot(t, w, "code-invalid-char")
}

func TestCodeEntryPasteOwnLink(t *testing.T) {
	s, _, _ := newCodeTest(t, &fakeLink{})
	locked(func() { s.entry.SetText(testIssuer + "/link?user_code=WDJB-MJHT") })
	if s.entry.Text != "WDJB-MJHT" || s.cont.Disabled() {
		t.Fatalf("own link not accepted: %q, continue disabled %v", s.entry.Text, s.cont.Disabled())
	}
}

func TestCodeEntryPasteForeignLinkWarns(t *testing.T) {
	s, w, _ := newCodeTest(t, &fakeLink{})
	for _, link := range []string{
		"https://link.example.com.evil.test/link?user_code=WDJB-MJHT",
		"http://link.example.com/link?user_code=WDJB-MJHT",
		"https://evil.test/link?user_code=WDJB-MJHT",
	} {
		locked(func() { s.entry.SetText(link) })
		if !s.hint.Visible() || !contains(s.hint.Text, "not from your Linkdesk service") {
			t.Fatalf("%s: hint = %q", link, s.hint.Text)
		}
		if !s.cont.Disabled() || s.entry.Text != link {
			t.Fatalf("%s: foreign link accepted", link)
		}
	}
	shot(t, w, "code-foreign-link")
}

func TestCodeEnterSubmitsAndFindsRequest(t *testing.T) {
	svc := &fakeLink{req: demoRequest()}
	s, w, found := newCodeTest(t, svc)
	w.Canvas().Focus(s.entry)
	locked(func() { test.Type(s.entry, "wdjbmjht") })
	locked(func() { s.entry.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn}) })
	waitFor(t, "the request to be found", func() bool { return len(*found) == 1 })
	if looked, _, _ := svc.calls(); len(looked) != 1 || looked[0] != "WDJBMJHT" {
		t.Fatalf("looked up %v", looked)
	}
}

func TestCodeErrorsKeepTypedCode(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{problemErr(404, devices.CodeInvalidCode), "Check the code on your device and try again"},
		{problemErr(410, devices.CodeExpiredCode), "Get a new code on your device"},
		{problemErr(409, devices.CodeAlreadyUsed), "already been used"},
		{&devices.APIError{Status: 429, Code: devices.CodeRateLimited, RetryAfter: 90 * time.Second}, "Wait 2 minutes"},
		{&devices.APIError{Status: 429, Code: devices.CodeRateLimited, RetryAfter: 30 * time.Second}, "Wait 30 seconds"},
	}
	for _, c := range cases {
		t.Run(c.want, func(t *testing.T) {
			s, _, found := newCodeTest(t, &fakeLink{lookErr: c.err})
			locked(func() { test.Type(s.entry, "WDJBMJHT") })
			locked(func() { test.Tap(s.cont) })
			waitFor(t, "the error hint", func() bool { return s.hint.Visible() })
			locked(func() {
				if !contains(s.hint.Text, c.want) {
					t.Errorf("hint = %q, want %q", s.hint.Text, c.want)
				}
				if s.entry.Text != "WDJB-MJHT" {
					t.Errorf("typed code lost: %q", s.entry.Text)
				}
				if len(*found) != 0 {
					t.Error("request reported found")
				}
			})
		})
	}
}

func TestCodeOfflineShowsBannerAndRetries(t *testing.T) {
	svc := &fakeLink{req: demoRequest(), lookErr: &devices.NetworkError{Op: "GET /api/v1/link-requests", Err: errors.New("connection refused")}}
	s, w, found := newCodeTest(t, svc)
	locked(func() { test.Type(s.entry, "WDJBMJHT") })
	locked(func() { test.Tap(s.cont) })
	waitFor(t, "the banner", func() bool { return s.banner.root.Visible() })
	shot(t, w, "code-offline")
	locked(func() {
		if s.entry.Text != "WDJB-MJHT" {
			t.Errorf("typed code lost: %q", s.entry.Text)
		}
		svc.mu.Lock()
		svc.lookErr = nil
		svc.mu.Unlock()
		test.Tap(s.banner.retry)
	})
	waitFor(t, "retry to find the request", func() bool { return len(*found) == 1 })
}

// TestCodeEntryCursorStaysWhileReformatting: typing in the middle of a code
// reformats it but leaves the cursor after the letter just typed.
func TestCodeEntryCursorStaysWhileReformatting(t *testing.T) {
	s, _, _ := newCodeTest(t, &fakeLink{})
	locked(func() {
		test.Type(s.entry, "bcdfghj")
		if s.entry.Text != "BCDF-GHJ" {
			t.Fatalf("typed: %q", s.entry.Text)
		}
		s.entry.CursorColumn = 2 // after "BC"
		test.Type(s.entry, "k")
		if s.entry.Text != "BCKD-FGHJ" {
			t.Fatalf("after typing in the middle: %q", s.entry.Text)
		}
		if s.entry.CursorColumn != 3 {
			t.Fatalf("cursor at %d, want 3 (after the K)", s.entry.CursorColumn)
		}
		s.entry.CursorColumn = 6 // after "BCKD-F"
		test.Type(s.entry, "  ")
		if s.entry.Text != "BCKD-FGHJ" || s.entry.CursorColumn != 6 {
			t.Fatalf("after typing spaces: %q, cursor %d", s.entry.Text, s.entry.CursorColumn)
		}
	})
}
