package linkd_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/linkdesk/linkdesk/server/accounts"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest"
)

// A one-time code that signed in on /login is refused on /login again, on /signin,
// and after linkd restarts on the same data.
func TestOneTimeCodeReplayRefusedEverywhere(t *testing.T) {
	clock := linkdtest.NewClock(time.Time{})
	in := linkdtest.Start(t, linkdtest.Options{Clock: clock})
	_, secret := in.CreateUserWithTOTP(t, "rita", "pw")
	if _, err := in.SignIn(context.Background(), "rita", "pw", secret); err != nil {
		t.Fatalf("first sign-in: %v", err)
	}
	accepted := 0
	if _, err := in.SignIn(context.Background(), "rita", "pw", secret); err == nil {
		accepted++
	}
	ph := newPhone(t, in)
	_, page := ph.get("/signin")
	_, page = ph.post(page, "/signin", url.Values{"username": {"rita"}, "password": {"pw"}})
	code, _ := accounts.TOTPCode(secret, clock.Now())
	if st, _ := ph.post(page, "/signin", url.Values{"otp": {code}}); st != http.StatusUnauthorized {
		accepted++
	}
	in.Close()
	again := linkdtest.Start(t, linkdtest.Options{Dir: in.Dir, Clock: clock})
	if _, err := again.SignIn(context.Background(), "rita", "pw", secret); err == nil {
		accepted++
	}
	if accepted != 0 {
		t.Fatalf("a used code was accepted %d of 3 times (login, signin, after restart)", accepted)
	}
}

// Wrong one-time codes count on the server: posting them again and again with the
// cookie of the password step gets OneTimeCodeTries checked, not more.
func TestOneTimeCodeTriesCountedOnServer(t *testing.T) {
	clock := linkdtest.NewClock(time.Time{})
	in := linkdtest.Start(t, linkdtest.Options{Clock: clock})
	_, secret := in.CreateUserWithTOTP(t, "sam", "pw")
	ph := newPhone(t, in)
	_, page := ph.get("/signin")
	_, page = ph.post(page, "/signin", url.Values{"username": {"sam"}, "password": {"pw"}})
	u, _ := url.Parse(in.URL)
	saved := ph.c.Jar.Cookies(u)
	good, _ := accounts.TOTPCode(secret, clock.Now())
	wrong := "000000"
	if wrong == good {
		wrong = "111111"
	}
	checked := 0
	for range 8 {
		ph.c.Jar.SetCookies(u, saved) // the cookie of the password step, every time
		st, _ := ph.post(page, "/signin", url.Values{"otp": {wrong}})
		if st == http.StatusUnauthorized {
			checked++
		}
	}
	if checked != 5 {
		t.Fatalf("%d of 8 wrong codes checked with a replayed cookie, want 5", checked)
	}
}

// fromAddress is an HTTP client of in whose connections come from the loopback
// address local (127.0.0.x), so linkd sees another caller.
func fromAddress(in *linkdtest.Instance, local string) *http.Client {
	tr := in.Client.Transport.(*http.Transport).Clone()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	tr.DialContext = d.DialContext
	return &http.Client{Transport: tr}
}

// Ten wrong passwords from a stranger's address do not lock the account's owner out
// at another address; the stranger is slowed down after a few.
func TestStrangerDoesNotLockOwnerOut(t *testing.T) {
	in := linkdtest.Start(t, linkdtest.Options{})
	in.CreateUser(t, "tess", "right")
	stranger := newPhone(t, in)
	stranger.c.Transport = fromAddress(in, "127.0.0.2").Transport
	checked := 0
	for range 10 {
		_, page := stranger.get("/signin")
		if st, _ := stranger.post(page, "/signin", url.Values{"username": {"tess"}, "password": {"guess"}}); st == http.StatusUnauthorized {
			checked++
		}
	}
	if checked != 3 {
		t.Errorf("stranger: %d of 10 wrong passwords checked, want 3 before backing off", checked)
	}
	if _, err := linkdtest.SignInAt(context.Background(), in.URL, in.Client, nil, "tess", "right", ""); err != nil {
		t.Fatalf("owner from 127.0.0.1 after a stranger's guesses: %v", err)
	}
}

// Failed passwords, failed one-time codes and limiter trips are logged at WARN with
// the address and a hashed username, never the password, code or username.
func TestSignInFailuresLogged(t *testing.T) {
	var logs syncBuffer
	clock := linkdtest.NewClock(time.Time{})
	in := linkdtest.Start(t, linkdtest.Options{Clock: clock,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	_, secret := in.CreateUserWithTOTP(t, "Ulla", "pw")
	ph := newPhone(t, in)
	for range 4 {
		_, page := ph.get("/signin")
		ph.post(page, "/signin", url.Values{"username": {"Ulla"}, "password": {"hunter2-secret"}})
	}
	clock.Advance(time.Hour)
	_, page := ph.get("/signin")
	_, page = ph.post(page, "/signin", url.Values{"username": {"Ulla"}, "password": {"pw"}})
	good, _ := accounts.TOTPCode(secret, clock.Now())
	wrong := "987654"
	if wrong == good {
		wrong = "987655"
	}
	ph.post(page, "/signin", url.Values{"otp": {wrong}})
	out := logs.String()
	tag := accounts.UserTag("ulla")
	for _, want := range []string{
		"level=WARN msg=\"sign-in failed: wrong username or password\" component=web address=127.0.0.1 user=" + tag,
		"level=WARN msg=\"sign-in limited\" component=web step=password address=127.0.0.1 user=" + tag,
		"level=WARN msg=\"sign-in failed: wrong one-time code\" component=web address=127.0.0.1 user=" + tag,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no log line %q in:\n%s", want, out)
		}
	}
	for _, secretWord := range []string{"hunter2-secret", wrong, "Ulla", "ulla"} {
		if strings.Contains(out, secretWord) {
			t.Errorf("log gives away %q:\n%s", secretWord, out)
		}
	}
}
