package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/events"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest/browsertest"
	"github.com/linkdesk/linkdesk/server/links"
	"github.com/linkdesk/linkdesk/server/store"
)

// signIn walks the sign-in form as alice (no second factor) from wherever it is.
func (b *browser) signIn(t *testing.T, username string) *page {
	t.Helper()
	p := b.get("/signin")
	p = b.submit(p, "/signin", url.Values{"username": {username}, "password": {password}})
	if username == "bob" {
		p.MustSay(t, "Enter your one-time code")
		p = b.submit(p, "/signin", url.Values{"otp": {totpAt(totpSecret, b.e.clock())}})
	}
	return p
}

// enterCode types a code on /link as a person would.
func (b *browser) enterCode(t *testing.T, typed string) *page {
	t.Helper()
	p := b.get("/link")
	p.WantStatus(t, http.StatusOK)
	return b.submit(p, "/link", url.Values{"user_code": {typed}})
}

func TestLinkApproveSignInFirst(t *testing.T) {
	e := newEnv(t)
	code := e.newDeviceAuth()
	wake := e.hub.SubscribeDeviceAuth(events.DeviceAuthKey(code))
	defer wake.Close()
	acct := e.hub.SubscribeAccount("sub-alice", 0)
	defer acct.Close()
	b := e.browser()

	// Lower case, spaces and a dash in the wrong place are all fine.
	typed := strings.ToLower(code[:2] + " " + code[2:5] + "-" + code[5:])
	p := b.enterCode(t, typed)
	if p.URL.Path != "/signin" {
		t.Fatalf("after entering a code while signed out, at %s, want /signin", p.URL.Path)
	}
	p.MustSay(t, "Sign in to the account you want to link your device to")

	p = b.submit(p, "/signin", url.Values{"username": {"alice"}, "password": {password}})
	if p.URL.Path != "/link/confirm" {
		t.Fatalf("after sign-in at %s, want /link/confirm", p.URL.Path)
	}
	p.WantStatus(t, http.StatusOK)
	p.MustSay(t, "Link this device to your account?", "Living room TV", "TV · Bravia X90", "Example TV",
		"Play your music and videos", "Know who you are", devices.FormatCode(code), "Requested from 127.0.0.1 — your network",
		"Alice Example (alice)", "Not you? Switch account")

	p = b.submit(p, "/link/confirm", url.Values{"action": {"approve"}})
	p.WantStatus(t, http.StatusOK)
	p.MustSay(t, "Device linked", "Living room TV is now linked to your account through Example TV")

	d, err := e.store.DeviceAuthByUserCode(context.Background(), code)
	if err != nil {
		t.Fatal(err)
	}
	if d.State != store.DeviceAuthApproved || d.Subject != "sub-alice" {
		t.Fatalf("device auth is %s by %q, want approved by sub-alice", d.State, d.Subject)
	}
	select {
	case s := <-wake.C:
		if s != store.DeviceAuthApproved {
			t.Errorf("waiter woken with %s, want approved", s)
		}
	default:
		t.Error("the device's waiter was not woken")
	}
	select {
	case ev := <-acct.C:
		if ev.Type != devices.EventLinked || ev.Device.ID != d.GrantID || ev.Device.Client.Name != "Example TV" {
			t.Errorf("account event %+v, want device.linked of grant %s", ev, d.GrantID)
		}
	default:
		t.Error("no device.linked event published")
	}

	// The result is final: going back and approving again says the code is used.
	p = b.enterCode(t, code)
	p.WantStatus(t, http.StatusConflict)
	p.MustSay(t, "This code has already been used", "get a new code")
}

func TestQRPrefilledCodeIsShownToCheck(t *testing.T) {
	e := newEnv(t)
	code := e.newDeviceAuth()
	b := e.browser()
	b.signIn(t, "alice")

	p := b.get("/link?user_code=" + url.QueryEscape(devices.FormatCode(code)))
	p.WantStatus(t, http.StatusOK)
	p.MustSay(t, "Check that your device shows this code", devices.FormatCode(code), "It matches – continue")
	var big string
	browsertest.Walk(p.Doc, func(n *html.Node) {
		if browsertest.Attr(n, "class") == "bigcode" && n.FirstChild != nil && n.FirstChild.FirstChild != nil {
			big = n.FirstChild.FirstChild.Data
		}
	})
	if big != devices.FormatCode(code) {
		t.Errorf("large code %q, want %q", big, devices.FormatCode(code))
	}
	p = b.submit(p, "/link", nil)
	if p.URL.Path != "/link/confirm" {
		t.Fatalf("after checking the code at %s, want /link/confirm", p.URL.Path)
	}
	p = b.submit(p, "/link/confirm", url.Values{"action": {"deny"}})
	p.WantStatus(t, http.StatusOK)
	p.MustSay(t, "Device not linked", "You chose not to link Living room TV")
	d, err := e.store.DeviceAuthByUserCode(context.Background(), code)
	if err != nil {
		t.Fatal(err)
	}
	if d.State != store.DeviceAuthDenied {
		t.Fatalf("state %s after deny, want denied", d.State)
	}

	// A malformed prefilled code goes to the entry form with a reason.
	p = b.get("/link?user_code=BCD0-FGHJ")
	p.WantStatus(t, http.StatusUnprocessableEntity)
	p.MustSay(t, "“0” is never used in codes")
}

func TestSignInWithTOTP(t *testing.T) {
	e := newEnv(t)
	code := e.newDeviceAuth()
	b := e.browser()
	p := b.get("/link?user_code=" + code)
	p = b.submit(p, "/link", nil)
	p = b.submit(p, "/signin", url.Values{"username": {"bob"}, "password": {password}})
	p.MustSay(t, "Enter your one-time code")
	if f := p.Form("/signin"); f == nil {
		t.Fatal("no one-time-code form")
	}

	p = b.submit(p, "/signin", url.Values{"otp": {"000000"}})
	p.WantStatus(t, http.StatusUnauthorized)
	p.MustSay(t, "That one-time code is not right")

	otp := totpAt(totpSecret, e.clock())
	p = b.submit(p, "/signin", url.Values{"otp": {otp[:3] + " " + otp[3:]}})
	if p.URL.Path != "/link/confirm" {
		t.Fatalf("after the one-time code at %s, want /link/confirm", p.URL.Path)
	}
	p.MustSay(t, "Bob", "Living room TV")

	// The same one-time code does not work twice (RFC 6238 §5.2), even from a new browser.
	b2 := e.browser()
	p = b2.get("/signin")
	p = b2.submit(p, "/signin", url.Values{"username": {"bob"}, "password": {password}})
	p = b2.submit(p, "/signin", url.Values{"otp": {otp}})
	p.WantStatus(t, http.StatusUnauthorized)
	p.MustSay(t, "That one-time code was already used", "Wait for the next code")
	// The next step's code does.
	p = b2.submit(p, "/signin", url.Values{"otp": {totpAt(totpSecret, e.clock().Add(30*time.Second))}})
	p.WantStatus(t, http.StatusOK)
	if p.URL.Path != "/devices" {
		t.Fatalf("after the next code at %s, want /devices", p.URL.Path)
	}
}

func TestWrongPassword(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	p := b.get("/signin")
	p = b.submit(p, "/signin", url.Values{"username": {"alice"}, "password": {"nope"}})
	p.WantStatus(t, http.StatusUnauthorized)
	p.MustSay(t, "That username and password don’t match")
	p = b.submit(p, "/signin", url.Values{"username": {"nobody"}, "password": {"nope"}})
	p.WantStatus(t, http.StatusUnauthorized)
	p.MustSay(t, "That username and password don’t match")
	if p := b.get("/devices"); p.URL.Path != "/signin" {
		t.Fatalf("still signed out, /devices ended at %s", p.URL.Path)
	}
}

func TestSignInRateLimited(t *testing.T) {
	e := newEnv(t, withLimits(links.Limits{AccountFailures: 3}))
	b := e.browser()
	p := b.get("/signin")
	for range 3 {
		p = b.submit(p, "/signin", url.Values{"username": {"alice"}, "password": {"wrong"}})
		p.WantStatus(t, http.StatusUnauthorized)
	}
	p = b.submit(p, "/signin", url.Values{"username": {"alice"}, "password": {password}})
	p.WantStatus(t, http.StatusTooManyRequests)
	// Three wrong passwords from this address, then backoff (links.SignInBackoff).
	p.MustSay(t, "Too many sign-in attempts", "Wait 1 minute,")
}

func TestCSRFRejected(t *testing.T) {
	e := newEnv(t)
	code := e.newDeviceAuth()
	b := e.browser()
	b.get("/link") // gets a session cookie

	p := b.post("/link", url.Values{"user_code": {code}})
	p.WantStatus(t, http.StatusForbidden)
	p.MustSay(t, "This form has expired")

	p = b.post("/link", url.Values{"user_code": {code}, "csrf_token": {"forged"}})
	p.WantStatus(t, http.StatusForbidden)

	p = b.post("/signin", url.Values{"username": {"alice"}, "password": {password}})
	p.WantStatus(t, http.StatusForbidden)

	// Signed in, an approval without the token changes nothing.
	b.signIn(t, "alice")
	p = b.enterCode(t, code)
	p.WantStatus(t, http.StatusOK)
	p = b.post("/link/confirm", url.Values{"user_code": {code}, "action": {"approve"}})
	p.WantStatus(t, http.StatusForbidden)
	d, err := e.store.DeviceAuthByUserCode(context.Background(), code)
	if err != nil {
		t.Fatal(err)
	}
	if d.State != store.DeviceAuthPending {
		t.Fatalf("state %s after a forged approval, want pending", d.State)
	}

	// A token from another browser's session does not work either.
	other := e.browser()
	op := other.get("/link")
	token := op.Hidden("/link").Get("csrf_token")
	p = b.post("/link/confirm", url.Values{"user_code": {code}, "action": {"approve"}, "csrf_token": {token}})
	p.WantStatus(t, http.StatusForbidden)

	// A cross-site form post is refused even with a valid token.
	p = b.get("/link/confirm")
	mine := p.Hidden("/link/confirm").Get("csrf_token")
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/link/confirm",
		strings.NewReader(url.Values{"user_code": {code}, "action": {"approve"}, "csrf_token": {mine}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if p := b.do(req); p.Status != http.StatusForbidden {
		t.Fatalf("cross-site post answered %d, want 403", p.Status)
	}
}

func TestCodeErrors(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signIn(t, "alice")

	t.Run("malformed", func(t *testing.T) {
		p := b.enterCode(t, "BCD")
		p.WantStatus(t, http.StatusUnprocessableEntity)
		p.MustSay(t, "A code has 8 letters")
		p = b.enterCode(t, "")
		p.MustSay(t, "Type the code your device shows")
		p = b.enterCode(t, "BCDF-GHJA")
		p.MustSay(t, "“A” is never used in codes")
	})
	t.Run("unknown", func(t *testing.T) {
		p := b.enterCode(t, "BBBB-BBBB")
		p.WantStatus(t, http.StatusNotFound)
		p.MustSay(t, "We couldn’t find that code", "Check the code on your device’s screen and type it again", "Enter a new code")
	})
	t.Run("expired", func(t *testing.T) {
		code := e.newDeviceAuth(func(d *store.DeviceAuth) {
			d.CreatedAt = d.CreatedAt.Add(-20 * time.Minute)
			d.ExpiresAt = d.CreatedAt.Add(10 * time.Minute)
		})
		p := b.enterCode(t, code)
		p.WantStatus(t, http.StatusGone)
		p.MustSay(t, "This code has expired", "start linking again to get a new code")
	})
	t.Run("used", func(t *testing.T) {
		code := e.newDeviceAuth()
		if _, err := e.store.ApproveDeviceAuth(context.Background(), code, "sub-bob", "", time.Now()); err != nil {
			t.Fatal(err)
		}
		p := b.enterCode(t, code)
		p.WantStatus(t, http.StatusConflict)
		p.MustSay(t, "This code has already been used")
	})
	t.Run("used between confirm and approve", func(t *testing.T) {
		code := e.newDeviceAuth()
		p := b.enterCode(t, code)
		p.WantStatus(t, http.StatusOK)
		if err := e.store.DenyDeviceAuth(context.Background(), code, "sub-bob", time.Now()); err != nil {
			t.Fatal(err)
		}
		p = b.submit(p, "/link/confirm", url.Values{"action": {"approve"}})
		p.WantStatus(t, http.StatusConflict)
		p.MustSay(t, "This code has already been used")
	})
}

func TestCodeRateLimited(t *testing.T) {
	e := newEnv(t, withLimits(links.Limits{AccountFailures: 3}))
	good := e.newDeviceAuth()
	b := e.browser()
	b.signIn(t, "alice")
	for range 3 {
		b.enterCode(t, "BBBB-BBBB").WantStatus(t, http.StatusNotFound)
	}
	p := b.enterCode(t, good)
	p.WantStatus(t, http.StatusTooManyRequests)
	p.MustSay(t, "Too many wrong codes", "Wait 15 minutes, then try again")
	if ra, err := strconv.Atoi(p.Header.Get("Retry-After")); err != nil || ra <= 0 || ra > 900 {
		t.Errorf("Retry-After %q, want 1..900 seconds", p.Header.Get("Retry-After"))
	}
	// The limit is shared with the management API: its counter is the store's.
	n, err := e.store.CountFailures(context.Background(), links.AccountKey("sub-alice"), time.Now().Add(-time.Hour))
	if err != nil || n != 3 {
		t.Errorf("account failures %d, %v; want 3", n, err)
	}
	// Another account on another session is not limited by alice's failures... but the
	// address is shared, and under its own (higher) limit.
	b2 := e.browser()
	b2.signIn(t, "bob")
	b2.enterCode(t, good).WantStatus(t, http.StatusOK)
}

func TestDevicesRenameAndUnlink(t *testing.T) {
	e := newEnv(t)
	code := e.newDeviceAuth()
	b := e.browser()

	// Signed out, /devices asks to sign in and comes back.
	p := b.get("/devices")
	if p.URL.Path != "/signin" {
		t.Fatalf("/devices signed out at %s, want /signin", p.URL.Path)
	}
	p = b.submit(p, "/signin", url.Values{"username": {"alice"}, "password": {password}})
	if p.URL.Path != "/devices" {
		t.Fatalf("after sign-in at %s, want /devices", p.URL.Path)
	}
	p.MustSay(t, "No devices are linked to your account")

	g, err := e.store.ApproveDeviceAuth(context.Background(), code, "sub-alice", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	acct := e.hub.SubscribeAccount("sub-alice", 0)
	defer acct.Close()

	p = b.get("/devices")
	p.WantStatus(t, http.StatusOK)
	p.MustSay(t, "Living room TV", "Example TV", "Not yet", "Rename Living room TV", "Unlink Living room TV")

	p = b.submit(p, "/devices/"+g.ID+"/rename", url.Values{"name": {"  Bedroom TV  "}})
	if p.URL.Path != "/devices" {
		t.Fatalf("after rename at %s", p.URL.Path)
	}
	p.MustSay(t, "Renamed to “Bedroom TV”.", "Bedroom TV")
	if ev := <-acct.C; ev.Type != devices.EventRenamed || ev.Device.Name != "Bedroom TV" {
		t.Errorf("event %+v, want device.renamed", ev)
	}
	p = b.submit(p, "/devices/"+g.ID+"/rename", url.Values{"name": {"   "}})
	p.MustSay(t, "Type a name for the device.")

	p = b.get("/devices/" + g.ID + "/unlink")
	p.WantStatus(t, http.StatusOK)
	p.MustSay(t, "Unlink Bedroom TV?", "signed out at once", "Cancel")
	// Nothing happens until the confirm step is posted.
	if _, err := e.store.GrantByID(context.Background(), "sub-alice", g.ID); err != nil {
		t.Fatalf("grant gone before confirming: %v", err)
	}
	p = b.submit(p, "/devices/"+g.ID+"/unlink", nil)
	if p.URL.Path != "/devices" {
		t.Fatalf("after unlink at %s", p.URL.Path)
	}
	p.MustSay(t, "“Bedroom TV” is unlinked", "No devices are linked")
	if ev := <-acct.C; ev.Type != devices.EventUnlinked || ev.Device.ID != g.ID {
		t.Errorf("event %+v, want device.unlinked", ev)
	}
	if _, err := e.store.GrantByID(context.Background(), "", g.ID); err == nil {
		t.Fatal("grant still exists after unlink")
	}
	b.get("/devices/"+g.ID+"/unlink").WantStatus(t, http.StatusNotFound)
}

func TestCannotTouchAnotherAccountsDevice(t *testing.T) {
	e := newEnv(t)
	code := e.newDeviceAuth()
	g, err := e.store.ApproveDeviceAuth(context.Background(), code, "sub-bob", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.signIn(t, "alice")
	b.get("/devices/"+g.ID+"/unlink").WantStatus(t, http.StatusNotFound)
	p := b.get("/devices")
	token := p.Hidden("/signout").Get("csrf_token")
	b.post("/devices/"+g.ID+"/unlink", url.Values{"csrf_token": {token}}).WantStatus(t, http.StatusNotFound)
	if _, err := e.store.GrantByID(context.Background(), "sub-bob", g.ID); err != nil {
		t.Fatalf("bob's device was unlinked by alice: %v", err)
	}
}

func TestSignOutAndSwitchAccount(t *testing.T) {
	e := newEnv(t)
	code := e.newDeviceAuth()
	b := e.browser()
	b.signIn(t, "alice")
	stolen := b.Client.Jar.Cookies(mustURL(t, e.srv.URL))

	p := b.enterCode(t, code)
	p.MustSay(t, "Alice Example")
	// "Not you? Switch account" keeps the code and returns to its confirmation.
	p = b.submit(p, "/signout", url.Values{"switch": {"1"}})
	if p.URL.Path != "/signin" {
		t.Fatalf("switch account at %s, want /signin", p.URL.Path)
	}
	p = b.submit(p, "/signin", url.Values{"username": {"bob"}, "password": {password}})
	p = b.submit(p, "/signin", url.Values{"otp": {totpAt(totpSecret, e.clock())}})
	if p.URL.Path != "/link/confirm" {
		t.Fatalf("after switching at %s, want /link/confirm", p.URL.Path)
	}
	p.MustSay(t, "Signed in as Bob")

	p = b.get("/signout")
	p.MustSay(t, "Sign out of Linkdesk on this browser?")
	p = b.submit(p, "/signout", nil)
	p.MustSay(t, "You are signed out.")
	if p := b.get("/devices"); p.URL.Path != "/signin" {
		t.Fatalf("after sign-out /devices at %s", p.URL.Path)
	}

	// alice's old cookie was signed out (replaced at switch); replaying it gets nowhere.
	thief := e.browser()
	thief.Client.Jar.SetCookies(mustURL(t, e.srv.URL), stolen)
	if p := thief.get("/devices"); p.URL.Path != "/signin" {
		t.Fatalf("replayed signed-out cookie reached %s", p.URL.Path)
	}
}

func TestSessionFixation(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	p := b.get("/signin")
	before := b.Client.Jar.Cookies(mustURL(t, e.srv.URL))
	if p = b.submit(p, "/signin", url.Values{"username": {"alice"}, "password": {password}}); p.URL.Path != "/devices" {
		t.Fatalf("sign-in ended at %s, want /devices", p.URL.Path)
	}
	after := b.Client.Jar.Cookies(mustURL(t, e.srv.URL))
	if len(before) != 1 || len(after) != 1 || before[0].Value == after[0].Value {
		t.Fatalf("session cookie not replaced on sign-in: %v -> %v", before, after)
	}
	// The pre-sign-in cookie (which an attacker could have planted) is not signed in.
	planted := e.browser()
	planted.Client.Jar.SetCookies(mustURL(t, e.srv.URL), before)
	if p := planted.get("/devices"); p.URL.Path != "/signin" {
		t.Fatalf("pre-sign-in cookie reached %s", p.URL.Path)
	}
	// A tampered cookie does not open: the browser just gets a fresh anonymous session.
	forged := *after[0]
	v := []byte(forged.Value)
	v[len(v)/2] ^= 1
	if v[len(v)/2] == '-'^1 || v[len(v)/2] == '_'^1 {
		v[len(v)/2] = 'A'
	}
	forged.Value = string(v)
	tamper := e.browser()
	tamper.Client.Jar.SetCookies(mustURL(t, e.srv.URL), []*http.Cookie{&forged})
	if p := tamper.get("/devices"); p.URL.Path != "/signin" {
		t.Fatalf("tampered cookie reached %s", p.URL.Path)
	}
}

func TestHeadersAndCookies(t *testing.T) {
	e := newEnv(t)
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/link", nil)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	csp := resp.Header.Get("Content-Security-Policy")
	if csp == "" || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP %q", csp)
	}
	if got := resp.Header.Get("X-Frame-Options"); got != "DENY" {
		t.Errorf("X-Frame-Options %q", got)
	}
	if got := resp.Header.Get("Referrer-Policy"); got != "no-referrer" {
		t.Errorf("Referrer-Policy %q", got)
	}
	cs := resp.Cookies()
	if len(cs) != 1 {
		t.Fatalf("cookies %v", cs)
	}
	c := cs[0]
	if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || !strings.HasPrefix(c.Name, "__Host-") {
		t.Errorf("cookie %+v: want Secure, HttpOnly, SameSite=Lax, __Host-", c)
	}

	for path, ctype := range map[string]string{
		"/static/style.css": "text/css",
		"/static/code.js":   "text/javascript",
		"/static/icon.svg":  "image/svg+xml",
	} {
		resp, err := e.srv.Client().Get(e.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), ctype) {
			t.Errorf("%s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	b := e.browser()
	b.get("/nope").WantStatus(t, http.StatusNotFound)
}

// TestNoInlineScriptOrStyle walks every page and checks the markup the CSP relies on.
func TestNoInlineScriptOrStyle(t *testing.T) {
	e := newEnv(t)
	code := e.newDeviceAuth()
	b := e.browser()
	var pages []*page
	pages = append(pages, b.get("/link"), b.get("/link?user_code="+code), b.get("/signin"))
	b.signIn(t, "alice")
	pages = append(pages, b.enterCode(t, code), b.get("/devices"), b.get("/signout"), b.enterCode(t, "BBBB-BBBB"))
	for _, p := range pages {
		browsertest.Walk(p.Doc, func(n *html.Node) {
			if n.Type != html.ElementNode {
				return
			}
			if n.Data == "script" && browsertest.Attr(n, "src") == "" {
				t.Errorf("%s: inline script", p.URL)
			}
			if n.Data == "style" || browsertest.Attr(n, "style") != "" {
				t.Errorf("%s: inline style on <%s>", p.URL, n.Data)
			}
			for _, a := range n.Attr {
				if strings.HasPrefix(a.Key, "on") {
					t.Errorf("%s: inline handler %s on <%s>", p.URL, a.Key, n.Data)
				}
			}
			// Every visible input has a label.
			if n.Data == "input" && browsertest.Attr(n, "type") != "hidden" {
				id := browsertest.Attr(n, "id")
				if id == "" || !strings.Contains(p.Body, `for="`+id+`"`) {
					t.Errorf("%s: input %q has no label", p.URL, browsertest.Attr(n, "name"))
				}
			}
			// Every form that posts carries a CSRF token.
			if n.Data == "form" && strings.EqualFold(browsertest.Attr(n, "method"), "post") {
				has := false
				browsertest.Walk(n, func(c *html.Node) {
					if browsertest.Attr(c, "name") == "csrf_token" && browsertest.Attr(c, "value") != "" {
						has = true
					}
				})
				if !has {
					t.Errorf("%s: form %s without CSRF token", p.URL, browsertest.Attr(n, "action"))
				}
			}
		})
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestConfirmNeedsACode(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	// Signed out: sign in first, then there is no code, so back to code entry.
	p := b.get("/link/confirm")
	if p.URL.Path != "/signin" {
		t.Fatalf("signed-out confirm at %s, want /signin", p.URL.Path)
	}
	p = b.submit(p, "/signin", url.Values{"username": {"alice"}, "password": {password}})
	if p.URL.Path != "/link" {
		t.Fatalf("confirm without a code at %s, want /link", p.URL.Path)
	}
	// An unknown action changes nothing and shows the confirmation again.
	code := e.newDeviceAuth()
	p = b.enterCode(t, code)
	p = b.submit(p, "/link/confirm", url.Values{"action": {"maybe"}})
	if p.URL.Path != "/link/confirm" {
		t.Fatalf("unknown action at %s, want /link/confirm", p.URL.Path)
	}
	d, err := e.store.DeviceAuthByUserCode(context.Background(), code)
	if err != nil || d.State != store.DeviceAuthPending {
		t.Fatalf("after an unknown action: %v %s, want pending", err, d.State)
	}
}
