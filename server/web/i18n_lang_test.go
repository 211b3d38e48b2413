package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/net/html"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/geoip"
	"github.com/linkdesk/linkdesk/server/geoip/geoiptest"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest/browsertest"
	"github.com/linkdesk/linkdesk/server/store"
)

// acceptLanguage sends every request with the Accept-Language a browser set to
// some language sends.
type acceptLanguage struct {
	value string
	next  http.RoundTripper
}

func (a acceptLanguage) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Accept-Language", a.value)
	return a.next.RoundTrip(r)
}

// browserIn is a scripted browser whose Accept-Language is value.
func (e *env) browserIn(value string) *browser {
	return &browser{e: e, Browser: browsertest.New(e.srv.URL, acceptLanguage{value, e.srv.Client().Transport})}
}

// htmlLang is the page's <html lang>.
func htmlLang(p *page) string {
	var l string
	browsertest.Walk(p.Doc, func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "html" {
			l = browsertest.Attr(n, "lang")
		}
	})
	return l
}

// wantTitle fails the test unless p's <title> is want.
func wantTitle(t *testing.T, p *page, want string) {
	t.Helper()
	if !strings.Contains(p.Body, "<title>"+want+"</title>") {
		t.Errorf("%s is not titled %q", p.URL.Path, want)
	}
}

// switchLink is the href of the language switch's link to l.
func switchLink(t *testing.T, p *page, l string) string {
	t.Helper()
	var href string
	browsertest.Walk(p.Doc, func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "a" && browsertest.Attr(n, "hreflang") == l {
			href = browsertest.Attr(n, "href")
		}
	})
	if href == "" {
		t.Fatalf("%s has no language switch link to %s", p.URL.Path, l)
	}
	return href
}

// The pages follow Accept-Language, and the switch on the page overrides it
// with a cookie (Secure, SameSite=Lax) that leads back to the same page.
func TestPagesFollowAcceptLanguageAndSwitch(t *testing.T) {
	e := newEnv(t)

	for _, c := range []struct{ accept, lang, says string }{
		{"", "en", "Linkdesk links your TV, console or kiosk to your account."},
		{"fr-FR,fr;q=0.9", "en", "Linkdesk links your TV, console or kiosk to your account."},
		{"de-AT,de;q=0.9,en;q=0.5", "de", "Linkdesk verknüpft Ihren Fernseher, Ihre Konsole oder Ihren Kiosk mit Ihrem Konto."},
		{"es-MX", "es", "Linkdesk vincula tu televisor, consola o quiosco a tu cuenta."},
	} {
		p := e.browserIn(c.accept).get("/link")
		p.WantStatus(t, http.StatusOK)
		if got := htmlLang(p); got != c.lang {
			t.Errorf("Accept-Language %q: <html lang=%q>, want %q", c.accept, got, c.lang)
		}
		p.MustSay(t, c.says)
	}

	b := e.browserIn("de-DE,de;q=0.9")
	p := b.get("/link")
	p.MustSay(t, "Zum Inhalt springen", "English", "Español")
	wantTitle(t, p, "Gerät verknüpfen – Linkdesk")

	// The switch: a cookie, then back to the page.
	b.StopAt = func(*url.URL) bool { return true }
	sw := b.get(switchLink(t, p, "es"))
	b.StopAt = nil
	if sw.Status != http.StatusSeeOther || sw.Location().Path != "/link" {
		t.Fatalf("the switch answered %d to %v, want 303 to /link", sw.Status, sw.Location())
	}
	cookie := sw.Header.Get("Set-Cookie")
	for _, want := range []string{"lang=es", "Secure", "SameSite=Lax", "HttpOnly", "Path=/"} {
		if !strings.Contains(cookie, want) {
			t.Errorf("the switch's cookie %q lacks %s", cookie, want)
		}
	}
	p = b.get(sw.Location().String())
	if got := htmlLang(p); got != "es" {
		t.Fatalf("after switching to Spanish with a German browser: <html lang=%q>", got)
	}
	p.MustSay(t, "Ir al contenido")
	wantTitle(t, p, "Vincular un dispositivo – Linkdesk")

	// Go-side words follow too: a wrong password, in Spanish.
	p = b.get("/signin")
	p.MustSay(t, "Nombre de usuario", "Contraseña")
	p = b.submit(p, "/signin", url.Values{"username": {"alice"}, "password": {"wrong"}})
	p.MustSay(t, "El nombre de usuario y la contraseña no coinciden.")

	// Back to German with the switch; the signed-in pages are German.
	p = b.get(switchLink(t, p, "de")) // from a form's answer: the form again
	if p.URL.Path != "/signin" {
		t.Fatalf("the switch on the sign-in answer led to %s", p.URL.Path)
	}
	p.MustSay(t, "Benutzername", "Passwort")
	b.submit(p, "/signin", url.Values{"username": {"alice"}, "password": {password}})
	p = b.get("/devices")
	p.MustSay(t, "Ihre verknüpften Geräte", "Mit Ihrem Konto sind keine Geräte verknüpft.", "Angemeldet als Alice Example (alice).")

	// The switch goes back only to this site, and ignores a language it lacks.
	b.StopAt = func(*url.URL) bool { return true }
	for _, target := range []string{"/lang?set=de&next=//evil.example/x", "/lang?set=de&next=https://evil.example/", "/lang?set=fr&next=/devices"} {
		sw = b.get(target)
		loc := sw.Location()
		if loc == nil || loc.Host != mustURL(t, e.srv.URL).Host {
			t.Errorf("%s redirected to %v, off this site", target, loc)
		}
		if strings.Contains(target, "fr") && strings.Contains(sw.Header.Get("Set-Cookie"), "lang=") {
			t.Errorf("%s set a cookie for a language the pages lack", target)
		}
	}
}

// The pages in German and Spanish in Chromium at 360×740: the long German
// words must not widen the page (no sideways scrolling); screenshots
// web-<page>-<lang>-<size>.png for a look by eye.
func TestBrowserPagesInGermanAndSpanish(t *testing.T) {
	e := newEnv(t)
	ctx := chrome(t)
	code := e.newDeviceAuth()
	if _, err := e.store.ApproveDeviceAuth(context.Background(), code, "sub-alice", "", time.Now()); err != nil {
		t.Fatal(err)
	}
	base := e.srv.URL
	run := func(actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatal(err)
		}
	}
	noSideways := func(what string) {
		t.Helper()
		wide, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`))
		if err != nil {
			t.Fatal(err)
		}
		if wide {
			t.Errorf("%s is wider than the 360px screen", what)
		}
	}
	run(chromedp.EmulateViewport(360, 740, chromedp.EmulateMobile))
	for _, c := range []struct{ lang, link, devices string }{
		{"de", "Gerät verknüpfen", "Ihre verknüpften Geräte"},
		{"es", "Vincular un dispositivo", "Tus dispositivos vinculados"},
	} {
		run(chromedp.Navigate(base+"/lang?set="+c.lang+"&next=/link"), chromedp.WaitVisible(chromedp.CSS("#user_code")))
		title, err := chromedp.Run(ctx, chromedp.Title())
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(title, c.link) {
			t.Errorf("/link in %s is titled %q", c.lang, title)
		}
		noSideways("/link in " + c.lang)
		shoot(t, ctx, "link-"+c.lang, false)

		run(chromedp.Navigate(base+"/devices"), chromedp.WaitReady(chromedp.CSS("main")))
		if loc, err := chromedp.Run(ctx, chromedp.Location()); err == nil && strings.Contains(loc, "/signin") {
			run(chromedp.SendKeys(chromedp.CSS("#username"), "alice"),
				chromedp.SendKeys(chromedp.CSS("#password"), password),
				chromedp.Submit(chromedp.CSS("#password")),
				chromedp.WaitVisible(chromedp.CSS("article.device")))
		}
		mustContain(t, ctx, c.devices, "Living room TV")
		run(chromedp.Click(chromedp.CSS("details.rename summary")), chromedp.WaitVisible(chromedp.CSS("details.rename input[name=name]")))
		noSideways("/devices in " + c.lang)
		shoot(t, ctx, "devices-"+c.lang, false)

		run(chromedp.Navigate(base+"/devices/nope/unlink"), chromedp.WaitReady(chromedp.CSS("main")))
		noSideways("the not-found page in " + c.lang)
	}
}

// The linking pages in German and Spanish at 360×740 in Chromium: /link with
// devices waiting nearby (one with a long name), and the confirm page for a
// request from another network, before and after the tick. None scrolls
// sideways; screenshots are saved for a look by eye (web/i18n-*.png).
func TestBrowserLinkingInGermanAndSpanish(t *testing.T) {
	db, err := geoip.Open(geoiptest.Write(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := newEnv(t, withPlaces(db))
	ctx := chrome(t)
	base := e.srv.URL
	run := func(actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatal(err)
		}
	}
	noSideways := func(what string) {
		t.Helper()
		wide, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`))
		if err != nil {
			t.Fatal(err)
		}
		if wide {
			t.Errorf("%s is wider than the 360px screen", what)
		}
	}
	run(chromedp.EmulateViewport(360, 740, chromedp.EmulateMobile), chromedp.Navigate(base+"/signin"),
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#username"), "alice"),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Submit(chromedp.CSS("#password")),
		chromedp.WaitNotPresent(chromedp.CSS("#password")))
	e.newDeviceAuth(func(d *store.DeviceAuth) {
		d.Device = devices.DeviceInfo{Name: "Wohnzimmer-Unterhaltungselektronik-Fernseher", Kind: devices.KindTV, Model: "OLED55"}
	})
	for _, c := range []struct{ lang, nearby, remote, tick, approve string }{
		{"de", "Wartende Geräte in Ihrer Nähe", "Angefragt von Lisbon, Portugal (203.0.113.7) – nicht Ihr Netzwerk",
			"Ich bin bei diesem Gerät und habe das selbst gestartet", "Gerät verknüpfen"},
		{"es", "Dispositivos esperando cerca de ti", "Solicitado desde Lisbon, Portugal (203.0.113.7): no es tu red",
			"Estoy delante de este dispositivo y lo he iniciado yo", "Vincular dispositivo"},
	} {
		run(chromedp.Navigate(base+"/lang?set="+c.lang+"&next=/link"), chromedp.WaitVisible(chromedp.CSS(".nearby-item")))
		mustContain(t, ctx, c.nearby, "Wohnzimmer-Unterhaltungselektronik-Fernseher")
		noSideways("/link with devices nearby in " + c.lang)
		shoot(t, ctx, "i18n-link-nearby-"+c.lang, false)

		code := e.newDeviceAuth(func(d *store.DeviceAuth) { d.RequestIP = "203.0.113.7" })
		run(chromedp.Navigate(base+"/link?user_code="+code),
			chromedp.Click(chromedp.CSS(`main form button[type="submit"]`)),
			chromedp.WaitVisible(chromedp.CSS(`input[name="in_front"]`)))
		mustContain(t, ctx, c.remote, c.tick, c.approve)
		noSideways("the confirm page in " + c.lang)
		shoot(t, ctx, "i18n-confirm-remote-"+c.lang, false)
		run(chromedp.Focus(chromedp.CSS(`input[name="in_front"]`)), chromedp.KeyEvent(" "),
			chromedp.ScrollIntoView(chromedp.CSS(`form.switch`)))
		shoot(t, ctx, "i18n-confirm-remote-ticked-"+c.lang, false)
		// Link device without the tick (the page's script is bypassed) says why in this language.
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector('input[name="in_front"]').checked = false, `+
			`document.getElementById("approve").disabled = false, true`)); err != nil {
			t.Fatal(err)
		}
		run(chromedp.Click(chromedp.CSS("#approve")), chromedp.WaitVisible(chromedp.CSS("#in-front-error")))
		mustContain(t, ctx, c.tick)
		noSideways("the confirm page's error in " + c.lang)
	}
}
