package linkd_test

import (
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
	"golang.org/x/oauth2"

	"github.com/linkdesk/linkdesk/server/accounts"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest/browsertest"
)

// formShape is what a person sees of a page's first form with a field named field:
// the page heading, the labels, the visible fields (name and type) and the buttons.
func formShape(t *testing.T, p *browsertest.Page, field string) []string {
	t.Helper()
	var form *html.Node
	browsertest.Walk(p.Doc, func(n *html.Node) {
		if form != nil || n.Type != html.ElementNode || n.Data != "form" {
			return
		}
		browsertest.Walk(n, func(c *html.Node) {
			if c.Type == html.ElementNode && c.Data == "input" && browsertest.Attr(c, "name") == field {
				form = n
			}
		})
	})
	if form == nil {
		t.Fatalf("%s (%d): no form with %q: %s", p.URL, p.Status, field, p.ErrorText())
	}
	var shape []string
	browsertest.Walk(p.Doc, func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "h1" && n.FirstChild != nil {
			shape = append(shape, "h1:"+n.FirstChild.Data)
		}
	})
	browsertest.Walk(form, func(n *html.Node) {
		if n.Type != html.ElementNode {
			return
		}
		switch n.Data {
		case "label", "button":
			if n.FirstChild != nil {
				shape = append(shape, n.Data+":"+n.FirstChild.Data)
			}
		case "input":
			if browsertest.Attr(n, "type") != "hidden" {
				shape = append(shape, "input:"+browsertest.Attr(n, "name")+":"+browsertest.Attr(n, "type"))
			}
		}
	})
	return shape
}

// The app's sign-in (/login, from the authorization-code flow) and the phone pages'
// (/signin) are one sign-in: the same form and words at each step, and one guard
// against a one-time code used twice, whichever page used it first.
func TestAppAndPhoneSignInAreOneForm(t *testing.T) {
	clock := linkdtest.NewClock(time.Time{})
	in := linkdtest.Start(t, linkdtest.Options{Clock: clock})
	_, secret := in.CreateUserWithTOTP(t, "una", "pw")

	phone := in.Browser()
	pp, err := phone.Get("/signin")
	if err != nil {
		t.Fatal(err)
	}
	const loopback = "127.0.0.1:49998"
	app := in.Browser()
	app.StopAt = func(u *url.URL) bool { return u.Host == loopback }
	ap, err := app.Get(in.AppConfig("http://"+loopback+"/callback").AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if err != nil {
		t.Fatal(err)
	}
	if ap.URL.Path != "/login" || ap.Status != http.StatusOK {
		t.Fatalf("the app's sign-in opened %s (%d)", ap.URL, ap.Status)
	}
	// The app's last step redirects on to its loopback address, which a form-action
	// directive would block in Chromium; the phone pages keep theirs.
	if csp := ap.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "form-action") {
		t.Errorf("/login CSP %q", csp)
	}
	if csp := pp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self'") {
		t.Errorf("/signin CSP %q", csp)
	}
	want := []string{"h1:Sign in", "label:Username", "input:username:text", "label:Password", "input:password:password", "button:Sign in"}
	if got := formShape(t, pp, "password"); !reflect.DeepEqual(got, want) {
		t.Errorf("phone password step %q, want %q", got, want)
	}
	if got := formShape(t, ap, "password"); !reflect.DeepEqual(got, want) {
		t.Errorf("app password step %q, want %q", got, want)
	}

	creds := url.Values{"username": {"una"}, "password": {"pw"}}
	if pp, err = phone.Submit(pp, "/signin", creds); err != nil {
		t.Fatal(err)
	}
	if ap, err = app.Submit(ap, "/login", creds); err != nil {
		t.Fatal(err)
	}
	want = []string{"h1:Enter your one-time code", "label:One-time code", "input:otp:text", "button:Verify"}
	if got := formShape(t, pp, "otp"); !reflect.DeepEqual(got, want) {
		t.Errorf("phone code step %q, want %q", got, want)
	}
	if got := formShape(t, ap, "otp"); !reflect.DeepEqual(got, want) {
		t.Errorf("app code step %q, want %q", got, want)
	}

	// The phone uses the code; the app, a moment later, is told it was used.
	code, err := accounts.TOTPCode(secret, clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if pp, err = phone.Submit(pp, "/signin", url.Values{"otp": {code}}); err != nil {
		t.Fatal(err)
	}
	if pp.URL.Path != "/devices" {
		t.Fatalf("phone after its code: %s (%d): %s", pp.URL, pp.Status, pp.ErrorText())
	}
	if ap, err = app.Submit(ap, "/login", url.Values{"otp": {code}}); err != nil {
		t.Fatal(err)
	}
	if ap.Status != http.StatusUnauthorized || !strings.Contains(ap.ErrorText(), "already used") {
		t.Fatalf("app with the phone's code: %d %s", ap.Status, ap.ErrorText())
	}
	// The next code finishes the app's sign-in at its loopback address.
	clock.Advance(accounts.TOTPPeriod)
	if code, err = accounts.TOTPCode(secret, clock.Now()); err != nil {
		t.Fatal(err)
	}
	if ap, err = app.Submit(ap, "/login", url.Values{"otp": {code}}); err != nil {
		t.Fatal(err)
	}
	if loc := ap.Location(); loc == nil || loc.Host != loopback || loc.Query().Get("code") == "" {
		t.Fatalf("app after the next code: %d %v %s", ap.Status, loc, ap.ErrorText())
	}
}

// Signing the app in from a browser already signed in to the web pages leaves that
// session signed in, and a half-done app sign-in is no way into the web pages.
func TestAppSignInKeepsTheWebSession(t *testing.T) {
	clock := linkdtest.NewClock(time.Time{})
	in := linkdtest.Start(t, linkdtest.Options{Clock: clock})
	_, secret := in.CreateUserWithTOTP(t, "vera", "pw")
	otp := func() (string, error) { return accounts.TOTPCode(secret, clock.Now()) }

	b := in.Browser()
	if p, err := b.SignIn("/signin", "vera", "pw", otp); err != nil || p.URL.Path != "/devices" {
		t.Fatalf("phone sign-in: %v", err)
	}
	clock.Advance(accounts.TOTPPeriod)
	const loopback = "127.0.0.1:49997"
	b.StopAt = func(u *url.URL) bool { return u.Host == loopback }
	authURL := in.AppConfig("http://"+loopback+"/callback").AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
	p, err := b.SignIn(authURL, "vera", "pw", otp)
	if err != nil {
		t.Fatal(err)
	}
	if loc := p.Location(); loc == nil || loc.Host != loopback {
		t.Fatalf("app sign-in ended at %d %v: %s", p.Status, loc, p.ErrorText())
	}
	b.StopAt = nil
	if p, err = b.Get("/devices"); err != nil || p.URL.Path != "/devices" {
		t.Fatalf("web session after the app's sign-in: %v %v", err, p.URL)
	}

	// Password only on /login, then /signin in that same browser: its code step is not offered there.
	fresh := in.Browser()
	if p, err = fresh.Get(authURL); err != nil {
		t.Fatal(err)
	}
	if p.URL.Path != "/login" {
		t.Fatalf("auth URL opened %s", p.URL)
	}
	if p, err = fresh.Submit(p, "/login", url.Values{"username": {"vera"}, "password": {"pw"}}); err != nil || p.Form("/login") == nil {
		t.Fatalf("password on /login: %v", err)
	}
	if p, err = fresh.Get("/signin"); err != nil {
		t.Fatal(err)
	}
	if p.Form("/signin") == nil || !strings.Contains(p.Body, `name="password"`) || strings.Contains(p.Body, `name="otp"`) {
		t.Fatalf("/signin after a half-done app sign-in: %d %.400s", p.Status, p.Body)
	}
}
