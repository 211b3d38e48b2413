package linkd_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest"
)

// On the phone, an expired code is reported when it is entered, before the password
// and the one-time code are asked for; a good code goes on to sign-in.
func TestPhoneChecksTheCodeBeforeSignIn(t *testing.T) {
	clock := linkdtest.NewClock(time.Time{})
	in := linkdtest.Start(t, linkdtest.Options{Clock: clock})
	in.CreateUserWithTOTP(t, "pia", "pw")
	kiosk := deviceConfig(in, devices.KioskClientID)
	old, err := kiosk.DeviceAuth(in.Context(t.Context()))
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(11 * time.Minute)
	fresh, err := kiosk.DeviceAuth(in.Context(t.Context()))
	if err != nil {
		t.Fatal(err)
	}

	ph := newPhone(t, in)
	_, page := ph.get("/link?user_code=" + url.QueryEscape(old.UserCode))
	st, page := ph.post(page, "/link", url.Values{"user_code": {old.UserCode}})
	if st != http.StatusGone || !strings.Contains(page, "This code has expired") || strings.Contains(page, `name="password"`) {
		t.Fatalf("expired code: %d %.1500s", st, page)
	}
	// Nothing of it is kept: sign-in afterwards does not lead to it.
	_, page = ph.get("/link")
	st, page = ph.post(page, "/link", url.Values{"user_code": {strings.ToLower(fresh.UserCode)}})
	if st != http.StatusOK || !strings.Contains(page, `name="password"`) {
		t.Fatalf("good code does not lead to sign-in: %d %.1500s", st, page)
	}
	// An unknown code is reported before sign-in too.
	ph2 := newPhone(t, in)
	_, page = ph2.get("/link")
	st, page = ph2.post(page, "/link", url.Values{"user_code": {"BCDF-GHJK"}})
	if st != http.StatusNotFound || strings.Contains(page, `name="password"`) {
		t.Fatalf("unknown code: %d %.1500s", st, page)
	}
}
