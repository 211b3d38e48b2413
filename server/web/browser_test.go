package web_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/linkdesk/linkdesk/server/store"
)

const chromiumPath = "/usr/bin/chromium"

// chrome starts a headless Debian Chromium with a fresh profile, or skips the test when
// Chromium is absent outside CI (in CI it must run). It fails the test on any page
// error or Content-Security-Policy report the browser logs.
func chrome(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("%s not installed (install the chromium package); skipping browser test", chromiumPath)
		}
		t.Fatalf("CI is set but %s is missing: %v", chromiumPath, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("ignore-certificate-errors", true), // httptest's CA
		chromedp.UserDataDir(t.TempDir()),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })

	var mu sync.Mutex
	var problems []string
	err := chromedp.Listen(ctx, func(ev any) {
		var msg string
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			msg = "page error: " + ev.ExceptionDetails.Text
			if ev.ExceptionDetails.Exception != nil {
				msg += " " + ev.ExceptionDetails.Exception.Description
			}
		case *cdplog.EventEntryAdded:
			if strings.Contains(ev.Entry.Text, "Content Security Policy") || ev.Entry.Level == cdplog.EntryLevelError && !strings.Contains(ev.Entry.Text, "favicon") {
				msg = fmt.Sprintf("browser log %s: %s (%s)", ev.Entry.Level, ev.Entry.Text, ev.Entry.URL)
			}
		}
		if msg != "" {
			mu.Lock()
			problems = append(problems, msg)
			mu.Unlock()
		}
	})
	if err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, runtime.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range problems {
			// 4xx pages are expected (they are the error pages under test); the browser
			// logs them as failed resource loads, which are not problems.
			if strings.Contains(p, "the server responded with a status of 4") {
				continue
			}
			t.Errorf("%s", p)
		}
	})
	return ctx
}

// screenshotDir is web/ under $ARTIFACTS (make test sets it), else under
// build/test-artifacts at the repository root.
func screenshotDir(t *testing.T) string {
	t.Helper()
	if a := os.Getenv("ARTIFACTS"); a != "" {
		out := filepath.Join(a, "web")
		if err := os.MkdirAll(out, 0o755); err != nil {
			t.Fatal(err)
		}
		return out
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
	out := filepath.Join(dir, "build", "test-artifacts", "web")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	return out
}

type viewport struct {
	name          string
	width, height int64
	mobile        bool
}

var viewports = []viewport{{"360", 360, 740, true}, {"1280", 1280, 800, false}}

// shoot saves the current page as web-<name>-<viewport>.png in screenshotDir at each size.
func shoot(t *testing.T, ctx context.Context, name string, dark bool) {
	t.Helper()
	dir := screenshotDir(t)
	scheme := "light"
	if dark {
		scheme = "dark"
	}
	for _, v := range viewports {
		vopts := []chromedp.EmulateViewportOption{chromedp.EmulateScale(1)}
		if v.mobile {
			vopts = append(vopts, chromedp.EmulateMobile)
		}
		err := chromedp.Do(ctx, chromedp.EmulateViewport(v.width, v.height, vopts...))
		if err == nil {
			_, err = chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
				Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
			})
		}
		var buf []byte
		if err == nil {
			buf, err = chromedp.Run(ctx, chromedp.CaptureScreenshot())
		}
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		file := "web-" + name + "-" + v.name
		if dark {
			file += "-dark"
		}
		if err := os.WriteFile(filepath.Join(dir, file+".png"), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Back to the default for the next steps.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(360, 740, chromedp.EmulateMobile)); err != nil {
		t.Fatal(err)
	}
}

// textOf returns the visible text of the page's main element.
func textOf(t *testing.T, ctx context.Context) string {
	t.Helper()
	txt, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(strings.Fields(txt), " ")
}

func mustContain(t *testing.T, ctx context.Context, wants ...string) {
	t.Helper()
	txt := textOf(t, ctx)
	for _, w := range wants {
		if !strings.Contains(txt, w) {
			t.Fatalf("page does not say %q; it says: %s", w, txt)
		}
	}
}

// TestBrowserPages walks every page in Chromium, checks the code formatting script and
// keyboard use, and saves screenshots at 360×740 and 1280×800.
func TestBrowserPages(t *testing.T) {
	e := newEnv(t)
	ctx := chrome(t)
	code := e.newDeviceAuth()
	other := e.newDeviceAuth()
	base := e.srv.URL
	run := func(actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatal(err)
		}
	}

	// Code entry: typing is formatted as XXXX-XXXX by the script.
	run(chromedp.EmulateViewport(360, 740, chromedp.EmulateMobile), chromedp.Navigate(base+"/link"))
	shoot(t, ctx, "link", false)
	shoot(t, ctx, "link", true)
	typed := strings.ToLower(code[:3] + " " + code[3:])
	run(chromedp.SendKeys(chromedp.CSS("#user_code"), typed))
	value, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS("#user_code")))
	if err != nil {
		t.Fatal(err)
	}
	if want := code[:4] + "-" + code[4:]; value != want {
		t.Fatalf("typed %q, the field shows %q, want %q", typed, value, want)
	}
	run(chromedp.SendKeys(chromedp.CSS("#user_code"), "B")) // a ninth letter: the server says so
	run(chromedp.Submit(chromedp.CSS("#user_code")), chromedp.WaitVisible(chromedp.CSS("#code-error")))
	mustContain(t, ctx, "A code has 8 letters")
	shoot(t, ctx, "link-error", false)

	// The QR target: the code large, to check against the device.
	run(chromedp.Navigate(base + "/link?user_code=" + strings.ToLower(code)))
	mustContain(t, ctx, "Check that your device shows this code", code[:4]+"-"+code[4:])
	shoot(t, ctx, "check", false)
	shoot(t, ctx, "check", true)

	// Keyboard only: Tab reaches the continue button, Enter presses it.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.activeElement.blur(), true`)); err != nil {
		t.Fatal(err)
	}
	var focused string
	for range 8 {
		run(chromedp.KeyEvent("\t"))
		focused, err = chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement.textContent.trim()`))
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(focused, "It matches") {
			break
		}
	}
	if !strings.HasPrefix(focused, "It matches") {
		t.Fatalf("Tab never reached the continue button (last focus %q)", focused)
	}
	run(chromedp.KeyEvent("\r"), chromedp.WaitVisible(chromedp.CSS("#username")))
	mustContain(t, ctx, "Sign in to the account you want to link your device to")
	shoot(t, ctx, "signin", false)

	run(chromedp.SendKeys(chromedp.CSS("#username"), "bob"),
		chromedp.SendKeys(chromedp.CSS("#password"), "wrong"),
		chromedp.Submit(chromedp.CSS("#password")),
		chromedp.WaitVisible(chromedp.CSS("#signin-error")))
	shoot(t, ctx, "signin-error", false)
	run(chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Submit(chromedp.CSS("#password")),
		chromedp.WaitVisible(chromedp.CSS("#otp")))
	shoot(t, ctx, "otp", false)
	run(chromedp.SendKeys(chromedp.CSS("#otp"), totpAt(totpSecret, e.clock())),
		chromedp.Submit(chromedp.CSS("#otp")),
		chromedp.WaitVisible(chromedp.CSS(`button[value="approve"]`)))
	mustContain(t, ctx, "Living room TV", "Example TV", "Play your music and videos", "Not you? Switch account")
	shoot(t, ctx, "confirm", false)
	shoot(t, ctx, "confirm", true)

	run(chromedp.Click(chromedp.CSS(`button[value="approve"]`)), chromedp.WaitVisible(chromedp.CSS("#res-h")))
	mustContain(t, ctx, "Device linked")
	shoot(t, ctx, "linked", false)
	shoot(t, ctx, "linked", true)

	// Deny another one.
	run(chromedp.Navigate(base+"/link?user_code="+other),
		chromedp.Click(chromedp.CSS(`main form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`button[value="deny"]`)),
		chromedp.Click(chromedp.CSS(`button[value="deny"]`)),
		chromedp.WaitVisible(chromedp.CSS("#res-h")))
	mustContain(t, ctx, "Device not linked")
	shoot(t, ctx, "denied", false)

	// Errors in plain words.
	expired := e.newDeviceAuth(func(d *store.DeviceAuth) {
		d.CreatedAt = d.CreatedAt.Add(-20 * time.Minute)
		d.ExpiresAt = d.CreatedAt.Add(10 * time.Minute)
	})
	run(chromedp.Navigate(base+"/link?user_code="+expired),
		chromedp.Click(chromedp.CSS(`main form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#msg-h")))
	mustContain(t, ctx, "This code has expired")
	shoot(t, ctx, "error-expired", false)
	shoot(t, ctx, "error-expired", true)

	// Linked devices, rename, unlink with its confirm step.
	run(chromedp.Navigate(base+"/devices"), chromedp.WaitVisible(chromedp.CSS(".device")))
	mustContain(t, ctx, "Living room TV")
	shoot(t, ctx, "devices", false)
	shoot(t, ctx, "devices", true)
	run(chromedp.Click(chromedp.CSS(".rename summary")),
		chromedp.WaitVisible(chromedp.CSS(".rename input[name=name]")),
		chromedp.Clear(chromedp.CSS(".rename input[name=name]")),
		chromedp.SendKeys(chromedp.CSS(".rename input[name=name]"), "Kitchen TV"))
	shoot(t, ctx, "devices-rename", false)
	run(chromedp.Submit(chromedp.CSS(".rename input[name=name]")), chromedp.WaitVisible(chromedp.CSS(".notice")))
	mustContain(t, ctx, "Renamed to “Kitchen TV”.")
	run(chromedp.Click(chromedp.CSS("a.button.danger")), chromedp.WaitVisible(chromedp.CSS("button.danger")))
	mustContain(t, ctx, "Unlink Kitchen TV?")
	shoot(t, ctx, "unlink", false)
	run(chromedp.Click(chromedp.CSS("button.danger")), chromedp.WaitVisible(chromedp.CSS(".notice")))
	mustContain(t, ctx, "is unlinked", "No devices are linked")
	shoot(t, ctx, "devices-empty", false)

	// Sign out from the header.
	run(chromedp.Click(chromedp.CSS("header button.linkish")), chromedp.WaitVisible(chromedp.CSS("#username")))
	mustContain(t, ctx, "You are signed out.")
	shoot(t, ctx, "signed-out", false)

	if err := ctx.Err(); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}
