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
	"unicode"
	"unicode/utf8"

	"golang.org/x/oauth2"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest"
	"github.com/linkdesk/linkdesk/server/links"
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

var (
	reDevName  = regexp.MustCompile(`(?s)<h2 id="dev-name">(.*?)</h2>\s*<p class="muted">(.*?)</p>`)
	reHTMLTags = regexp.MustCompile(`<[^>]*>`)
)

// A device sends hostile names and models: the link request the app reads, the web
// confirmation page and the linked device's name show none of the hidden or
// line-breaking characters, and nothing longer than links.MaxNameLen characters.
// The device still links (labels are cleaned, never refused).
func TestAttackDeviceLabels(t *testing.T) {
	in := linkdtest.Start(t, linkdtest.Options{})
	in.CreateUser(t, "ivy", "pw")
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
	var lastCode string
	for _, h := range hostileLabels {
		label, hostile := h.name, h.label
		da, err := kiosk.DeviceAuth(ctx,
			oauth2.SetAuthURLParam(devices.ParamDeviceName, hostile),
			oauth2.SetAuthURLParam(devices.ParamDeviceModel, hostile))
		if err != nil {
			t.Fatalf("%s: device authorization refused: %v", label, err)
		}
		lastCode = da.UserCode

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

	// Approved without a name of the person's own, the device's label names the link.
	var ar devices.ApproveResponse
	if code := call(t, in, "POST", "/api/v1/link-requests/"+url.PathEscape(lastCode)+"/approve", app.AccessToken, "{}", &ar); code != http.StatusOK && code != http.StatusCreated {
		t.Fatalf("approve: %d", code)
	}
	report("linked device name", "long", ar.Device.Name)
	report("linked device model", "long", ar.Device.Model)
	t.Logf("%d of %d labels shown to people carried hidden characters, loose white space or more than %d characters",
		bad, checked, links.MaxNameLen)
}
