package linkd_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest"
)

// The built-in kiosk client is shown by its display name, never its raw id: in the
// link request and the device list of the management API, on the confirmation page and
// on the result page ("… through Linkdesk kiosk").
func TestBuiltinClientsShowDisplayNames(t *testing.T) {
	in := linkdtest.Start(t, linkdtest.Options{})
	in.CreateUser(t, "ivy", "pw")
	app := in.AppToken(t, "ivy", "pw")
	ctx := in.Context(context.Background())
	kiosk := deviceConfig(in, devices.KioskClientID)
	da, err := kiosk.DeviceAuth(ctx, oauth2.SetAuthURLParam(devices.ParamDeviceName, "Front desk"))
	if err != nil {
		t.Fatal(err)
	}

	var lr devices.LinkRequest
	if code := call(t, in, "GET", "/api/v1/link-requests/"+url.PathEscape(da.UserCode), app.AccessToken, "", &lr); code != http.StatusOK {
		t.Fatalf("link request: %d", code)
	}
	if lr.Client.ID != devices.KioskClientID || lr.Client.Name != "Linkdesk kiosk" {
		t.Fatalf("link request client = %+v, want the kiosk's display name", lr.Client)
	}

	// The phone approves it: the confirmation and the result name the app.
	ph := newPhone(t, in)
	_, page := ph.get("/link?user_code=" + url.QueryEscape(da.UserCode))
	_, page = ph.post(page, "/link", url.Values{"user_code": {da.UserCode}})
	_, page = ph.post(page, "/signin", url.Values{"username": {"ivy"}, "password": {"pw"}})
	if !strings.Contains(page, "Linkdesk kiosk") || strings.Contains(page, devices.KioskClientID) {
		t.Fatalf("confirmation page does not name the app: %.2000s", page)
	}
	st, page := ph.post(page, "/link/confirm", url.Values{"user_code": {da.UserCode}, "action": {"approve"}})
	if st != http.StatusOK || !strings.Contains(page, "through Linkdesk kiosk") {
		t.Fatalf("result page: %d %.2000s", st, page)
	}

	var list struct{ Devices []devices.Device }
	if code := call(t, in, "GET", "/api/v1/devices", app.AccessToken, "", &list); code != http.StatusOK || len(list.Devices) != 1 {
		t.Fatalf("devices: %d %+v", code, list)
	}
	if got := list.Devices[0].Client.Name; got != "Linkdesk kiosk" {
		t.Fatalf("device client name = %q", got)
	}
	_, page = ph.get("/devices")
	if !strings.Contains(page, "Linkdesk kiosk") || strings.Contains(page, ">"+devices.KioskClientID+"<") {
		t.Fatalf("devices page: %.2000s", page)
	}
}
