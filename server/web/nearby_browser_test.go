package web_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/store"
)

// TestBrowserNearby walks "Devices waiting near you" in Chromium at 360×740: /link
// lists the waiting devices by name and never their codes, Tab reaches them, the pick
// page offers three codes, a wrong pick is told plainly, a right one leads to confirm.
func TestBrowserNearby(t *testing.T) {
	e := newEnv(t)
	ctx := chrome(t)
	base := e.srv.URL
	run := func(actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatal(err)
		}
	}
	run(chromedp.EmulateViewport(360, 740, chromedp.EmulateMobile), chromedp.Navigate(base+"/signin"),
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#username"), "alice"),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Submit(chromedp.CSS("#password")),
		chromedp.WaitNotPresent(chromedp.CSS("#password")))

	tv := e.newDeviceAuth()
	console := e.newDeviceAuth(func(d *store.DeviceAuth) {
		d.Device = devices.DeviceInfo{Name: "Kids’ room console with a long name nobody shortened", Kind: devices.KindConsole}
	})
	away := e.newDeviceAuth(func(d *store.DeviceAuth) {
		d.Device.Name = "Elsewhere TV"
		d.RequestIP = "198.51.100.3"
	})

	run(chromedp.Navigate(base+"/link"), chromedp.WaitVisible(chromedp.CSS(".nearby-item")))
	mustContain(t, ctx, "Devices waiting near you", "Living room TV", "Kids’ room console", "Example TV")
	if strings.Contains(textOf(t, ctx), "Elsewhere TV") {
		t.Error("/link lists a device of another address")
	}
	html, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{tv, console, away} {
		if strings.Contains(html, c) || strings.Contains(html, devices.FormatCode(c)) {
			t.Errorf("/link holds the code %s", c)
		}
	}
	shoot(t, ctx, "nearby", false)
	shoot(t, ctx, "nearby", true)

	// Keyboard: Tab reaches a waiting device; Enter opens its pick page.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.activeElement.blur(), true`)); err != nil {
		t.Fatal(err)
	}
	var focused string
	for range 12 {
		run(chromedp.KeyEvent("\t"))
		focused, err = chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement.className`))
		if err != nil {
			t.Fatal(err)
		}
		if focused == "nearby-item" {
			break
		}
	}
	if focused != "nearby-item" {
		t.Fatalf("Tab never reached a waiting device (last focus %q)", focused)
	}
	// The newest is first: the console. Pick a wrong code for it.
	run(chromedp.KeyEvent("\r"), chromedp.WaitVisible(chromedp.CSS("button.choice")))
	mustContain(t, ctx, "Which code does your device show?", "Kids’ room console")
	shoot(t, ctx, "nearby-pick", false)
	shoot(t, ctx, "nearby-pick", true)
	choices, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("button.choice")].map(b => b.value)`))
	if err != nil {
		t.Fatal(err)
	}
	if len(choices) != 3 {
		t.Fatalf("choices %q", choices)
	}
	wrong := choices[0]
	if wrong == devices.FormatCode(console) {
		wrong = choices[1]
	}
	run(chromedp.Click(chromedp.CSS(`button.choice[value="`+wrong+`"]`)), chromedp.WaitVisible(chromedp.CSS("#msg-h")))
	mustContain(t, ctx, "That isn’t the code on the device", "this request has been ended")
	shoot(t, ctx, "nearby-wrong", false)

	// The TV, with its right code, goes on to the usual confirm page.
	run(chromedp.Navigate(base+"/link"), chromedp.WaitVisible(chromedp.CSS(".nearby-item")))
	if strings.Contains(textOf(t, ctx), "Kids’ room console") {
		t.Error("the console is still listed after a wrong pick")
	}
	run(chromedp.Click(chromedp.CSS(".nearby-item")), chromedp.WaitVisible(chromedp.CSS("button.choice")),
		chromedp.Click(chromedp.CSS(`button.choice[value="`+devices.FormatCode(tv)+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`button[value="approve"]`)))
	mustContain(t, ctx, "Living room TV", devices.FormatCode(tv))
}
