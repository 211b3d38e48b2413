package linkd_test

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/linkdesk/linkdesk/server/accounts"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest"
)

var reWebCSRF = regexp.MustCompile(`name="csrf_token" value="([^"]*)"`)

// phone is a cookie-keeping browser on linkd's web pages.
type phone struct {
	t  *testing.T
	in *linkdtest.Instance
	c  *http.Client
}

func newPhone(t *testing.T, in *linkdtest.Instance) *phone {
	jar, _ := cookiejar.New(nil)
	return &phone{t: t, in: in, c: &http.Client{Transport: in.Client.Transport, Jar: jar}}
}

// get fetches path and returns the status and the page.
func (p *phone) get(path string) (int, string) {
	p.t.Helper()
	resp, err := p.c.Get(p.in.URL + path)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// post submits form to path with the CSRF token of page, following redirects.
func (p *phone) post(page, path string, form url.Values) (int, string) {
	p.t.Helper()
	m := reWebCSRF.FindStringSubmatch(page)
	if m == nil {
		p.t.Fatalf("no CSRF token on page: %.300s", page)
	}
	form.Set("csrf_token", html.UnescapeString(m[1]))
	resp, err := p.c.PostForm(p.in.URL+path, form)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, html.UnescapeString(string(b))
}

// A one-time code that signed in is refused for the rest of its time, on every sign-in
// page, with words that say it was used (not that it is wrong), and the next one works.
func TestUsedOneTimeCodeSaysWaitForTheNext(t *testing.T) {
	clock := linkdtest.NewClock(time.Time{})
	in := linkdtest.Start(t, linkdtest.Options{Clock: clock})
	_, secret := in.CreateUserWithTOTP(t, "olga", "pw")

	if _, err := in.SignIn(context.Background(), "olga", "pw", secret); err != nil {
		t.Fatalf("first sign-in: %v", err)
	}
	_, err := in.SignIn(context.Background(), "olga", "pw", secret)
	if err == nil || !strings.Contains(err.Error(), "already used") || !strings.Contains(err.Error(), "Wait for the next code") {
		t.Fatalf("desktop sign-in with a used code: %v", err)
	}

	// The phone pages share the guard: the same code is refused there too.
	ph := newPhone(t, in)
	_, page := ph.get("/signin")
	st, page := ph.post(page, "/signin", url.Values{"username": {"olga"}, "password": {"pw"}})
	if st != http.StatusOK || !strings.Contains(page, `name="otp"`) {
		t.Fatalf("password step: %d %.300s", st, page)
	}
	code, err := accounts.TOTPCode(secret, clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	st, page = ph.post(page, "/signin", url.Values{"otp": {code}})
	if st != http.StatusUnauthorized || !strings.Contains(page, "already used") || strings.Contains(page, "not right") {
		t.Fatalf("phone sign-in with a used code: %d %.500s", st, page)
	}

	clock.Advance(accounts.TOTPPeriod)
	if _, err := in.SignIn(context.Background(), "olga", "pw", secret); err != nil {
		t.Fatalf("sign-in with the next code: %v", err)
	}
}
