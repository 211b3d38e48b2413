package linkd_test

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/oauth2"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest"
	"github.com/linkdesk/linkdesk/server/links"
	mailer "github.com/linkdesk/linkdesk/server/mail"
	"github.com/linkdesk/linkdesk/server/mail/mailtest"
)

// hostileLabels are device names and models a stranger's device may send to
// /device_authorization to disguise itself on the confirm screens: a right-to-left
// override that turns "— not your network" around, invisible and line-breaking
// characters, a terminal escape, and a name long enough to push buttons away.
var hostileLabels = []struct{ name, label string }{
	{"RLO", "Den TV \u202e(krowten ruoy)"},
	{"ZWSP", "Den\u200bTV"},
	{"LS", "Den TV\u2028Approved by IT"},
	{"NEL", "Den TV\u0085Approved by IT"},
	{"isolates", "\u2066Den\u2069 \u2067TV\u2069\ufeff"},
	{"ANSI", "\x1b[31mDen TV\x1b[0m"},
	{"long", strings.Repeat("W", 500)}, // last: it is the one approved
}

// badLabel says what is wrong with a label a person is shown, or "".
func badLabel(s string) string {
	if n := utf8.RuneCountInString(s); n > links.MaxNameLen {
		return "longer than the cap"
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) || r == utf8.RuneError {
			return fmt.Sprintf("carries U+%04X", r)
		}
	}
	if s != strings.TrimSpace(s) || strings.Contains(s, "  ") {
		return "has loose white space"
	}
	return ""
}

// mailField is the value of the body line starting with label ("Device:  …").
func mailField(body, label string) (string, bool) {
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, label); ok {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

// badText says which hidden character a whole text (a message body, with its line
// breaks) carries, or "".
func badText(s string) string {
	for _, r := range s {
		if r != '\n' && (unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) || r == utf8.RuneError) {
			return fmt.Sprintf("carries U+%04X", r)
		}
	}
	return ""
}

var (
	reDeviceCard = regexp.MustCompile(`(?s)<h2 id="d-([^"]+)">(.*?)</h2>\s*<p class="muted">(.*?)</p>`)
	reDevName    = regexp.MustCompile(`(?s)<h2 id="dev-name">(.*?)</h2>\s*<p class="muted">(.*?)</p>`)
	reHTMLTags   = regexp.MustCompile(`<[^>]*>`)
)

// A device sends hostile names and models: the link request the app reads, the web
// confirmation page and the linked device's name show none of the hidden or
// line-breaking characters, and nothing longer than links.MaxNameLen characters.
// The device still links (labels are cleaned, never refused).
//
// Every one is then approved: the account's event stream, the device list (API and
// the /devices page) and the email notice show each name as plain text too.
func TestAttackDeviceLabels(t *testing.T) {
	smtpd := mailtest.Start(t, mailtest.Options{})
	in := linkdtest.Start(t, linkdtest.Options{Mail: mailer.Settings{URL: smtpd.URL, From: "linkd@example.test"}})
	ivy := in.CreateUser(t, "ivy", "pw")
	app := in.AppToken(t, "ivy", "pw")
	ctx := in.Context(context.Background())
	kiosk := deviceConfig(in, devices.KioskClientID)
	ph := newPhone(t, in)
	_, page := ph.get("/signin")
	ph.post(page, "/signin", url.Values{"username": {"ivy"}, "password": {"pw"}})

	checked, bad := 0, 0
	report := func(where, label, shown string) {
		t.Helper()
		checked++
		if why := badLabel(shown); why != "" {
			bad++
			t.Errorf("%s of %s shows %q: %s", where, label, shown, why)
		}
	}
	evCtx, stopEvents := context.WithCancel(context.Background())
	defer stopEvents()
	evs, err := devices.NewClient(in.URL, &http.Client{Transport: &oauth2.Transport{
		Source: oauth2.StaticTokenSource(app), Base: in.Client.Transport}}).Events(evCtx)
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	for _, h := range hostileLabels {
		label, hostile := h.name, h.label
		da, err := kiosk.DeviceAuth(ctx,
			oauth2.SetAuthURLParam(devices.ParamDeviceName, hostile),
			oauth2.SetAuthURLParam(devices.ParamDeviceModel, hostile))
		if err != nil {
			t.Fatalf("%s: device authorization refused: %v", label, err)
		}
		codes = append(codes, da.UserCode)

		var lr devices.LinkRequest
		if code := call(t, in, "GET", "/api/v1/link-requests/"+url.PathEscape(da.UserCode), app.AccessToken, "", &lr); code != http.StatusOK {
			t.Fatalf("%s: link request: %d", label, code)
		}
		report("API name", label, lr.Device.Name)
		report("API model", label, lr.Device.Model)
		if lr.Device.Name == "" {
			t.Errorf("%s: the cleaned name is empty", label)
		}

		_, page := ph.get("/link?user_code=" + url.QueryEscape(da.UserCode))
		if !strings.Contains(page, `id="dev-name"`) {
			_, page = ph.post(page, "/link", url.Values{"user_code": {da.UserCode}})
		}
		m := reDevName.FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("%s: no confirmation page: %.1500s", label, page)
		}
		report("web page name", label, html.UnescapeString(m[1]))
		model := html.UnescapeString(reHTMLTags.ReplaceAllString(m[2], ""))
		_, model, _ = strings.Cut(model, " · ")
		report("web page model", label, model)
	}

	// Approved without a name of the person's own, the device's label names the link,
	// wherever the account's owner sees it.
	for i, h := range hostileLabels {
		var ar devices.ApproveResponse
		if code := call(t, in, "POST", "/api/v1/link-requests/"+url.PathEscape(codes[i])+"/approve", app.AccessToken, "{}", &ar); code != http.StatusOK && code != http.StatusCreated {
			t.Fatalf("%s: approve: %d", h.name, code)
		}
		report("approved device name", h.name, ar.Device.Name)
		report("approved device model", h.name, ar.Device.Model)
		select {
		case ev := <-evs:
			report("device.linked event name", h.name, ev.Device.Name)
			report("device.linked event model", h.name, ev.Device.Model)
		case <-time.After(time.Minute):
			t.Fatalf("%s: no device.linked event within a minute", h.name)
		}
		m := smtpd.Next(t)
		if len(m.To) != 1 || m.To[0] != ivy.Email {
			t.Errorf("%s: the notice went to %v", h.name, m.To)
		}
		device, ok := mailField(m.Body, "Device:")
		if !ok {
			t.Fatalf("%s: the notice names no device:\n%s", h.name, m.Body)
		}
		// The device has no kind, so the line is "NAME (MODEL)", as the API shows them.
		if want := ar.Device.Name + " (" + ar.Device.Model + ")"; device != want {
			t.Errorf("%s: the notice names the device %q, the API %q", h.name, device, want)
		}
		if bad := badText(m.Body); bad != "" {
			t.Errorf("%s: the notice %s:\n%q", h.name, bad, m.Body)
		}
	}
	var list devices.DeviceList
	if code := call(t, in, "GET", "/api/v1/devices", app.AccessToken, "", &list); code != http.StatusOK {
		t.Fatalf("devices: %d", code)
	}
	if len(list.Devices) != len(hostileLabels) {
		t.Fatalf("%d devices linked, want %d", len(list.Devices), len(hostileLabels))
	}
	for _, d := range list.Devices {
		report("API device list name", d.ID, d.Name)
		report("API device list model", d.ID, d.Model)
	}
	_, page = ph.get("/devices")
	names := reDeviceCard.FindAllStringSubmatch(page, -1)
	if len(names) != len(hostileLabels) {
		t.Fatalf("the /devices page shows %d devices, want %d: %.2000s", len(names), len(hostileLabels), page)
	}
	for _, m := range names {
		report("/devices page name", m[1], html.UnescapeString(m[2]))
		model := html.UnescapeString(reHTMLTags.ReplaceAllString(m[3], ""))
		_, model, _ = strings.Cut(model, " · ")
		report("/devices page model", m[1], model)
	}
	t.Logf("%d of %d labels shown to people carried hidden characters, loose white space or more than %d characters",
		bad, checked, links.MaxNameLen)
}
