package web_test

import (
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/linkdesk/linkdesk/server/geoip"
	"github.com/linkdesk/linkdesk/server/geoip/geoiptest"
	"github.com/linkdesk/linkdesk/server/store"
)

// The confirm page for a request from another network, in Chromium: the origin in one
// line with its place, Link device disabled until the tick (by keyboard: Tab to it,
// Space), then linked. Screenshots at 360×740 and 1280×800.
func TestBrowserConfirmFromAnotherNetwork(t *testing.T) {
	db, err := geoip.Open(geoiptest.Write(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := newEnv(t, withPlaces(db))
	ctx := chrome(t)
	code := e.newDeviceAuth(func(d *store.DeviceAuth) { d.RequestIP = "203.0.113.7" })
	run := func(actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatal(err)
		}
	}
	disabled := func() bool {
		t.Helper()
		d, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("approve").disabled`))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}

	run(chromedp.EmulateViewport(360, 740, chromedp.EmulateMobile),
		chromedp.Navigate(e.srv.URL+"/link?user_code="+code),
		chromedp.Click(chromedp.CSS(`main form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#username"), "alice"),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Submit(chromedp.CSS("#password")),
		chromedp.WaitVisible(chromedp.CSS(`input[name="in_front"]`)))
	mustContain(t, ctx, "Requested from Lisbon, Portugal (203.0.113.7) — not your network",
		"I am in front of this device and I started this")
	if !disabled() {
		t.Fatal("Link device is enabled before the tick")
	}
	shoot(t, ctx, "confirm-remote", false)
	shoot(t, ctx, "confirm-remote", true)

	run(chromedp.Focus(chromedp.CSS(`input[name="in_front"]`)), chromedp.KeyEvent(" "))
	if disabled() {
		t.Fatal("Link device is still disabled after the tick")
	}
	shoot(t, ctx, "confirm-remote-ticked", false)
	run(chromedp.Click(chromedp.CSS("#approve")), chromedp.WaitVisible(chromedp.CSS("#res-h")))
	mustContain(t, ctx, "Device linked")
}
