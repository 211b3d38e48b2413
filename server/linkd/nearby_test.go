package linkd_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/linkd"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest/browsertest"
)

// nearbyLinkd is a linkd behind a trusted proxy on 127.0.0.1, so each test caller can
// come from an address of its own (X-Forwarded-For).
func nearbyLinkd(t *testing.T, opts linkdtest.Options) *linkdtest.Instance {
	t.Helper()
	opts.Dev = true
	opts.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	return linkdtest.Start(t, opts)
}

// from is an HTTP client whose requests reach linkd as if from ip.
func from(in *linkdtest.Instance, ip string) *http.Client {
	return &http.Client{Transport: viaProxy{in.Client.Transport, http.Header{"X-Forwarded-For": {ip}}}}
}

// tvFrom starts a device request named name from ip, as a TV would with x/oauth2.
func tvFrom(t *testing.T, in *linkdtest.Instance, ip, name string) (*oauth2.Config, context.Context, *oauth2.DeviceAuthResponse) {
	t.Helper()
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, from(in, ip))
	conf := deviceConfig(in, linkd.DemoClientID)
	da, err := conf.DeviceAuth(ctx, oauth2.SetAuthURLParam(devices.ParamDeviceName, name),
		oauth2.SetAuthURLParam(devices.ParamDeviceKind, "tv"))
	if err != nil {
		t.Fatal(err)
	}
	return conf, ctx, da
}

// apiFrom calls the management API from ip and returns the status, the raw body, and
// decodes it into out (when not nil).
func apiFrom(t *testing.T, in *linkdtest.Instance, ip, method, path, token, body string, out any) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, in.URL+devices.APIPrefix+path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := from(in, ip).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	}
	return resp.StatusCode, string(raw)
}

// noCodes fails when text holds any of codes, in any spelling a person or a program
// might use.
func noCodes(t *testing.T, what, text string, codes ...string) {
	t.Helper()
	for _, c := range codes {
		canon, _ := devices.NormalizeCode(c)
		for _, form := range []string{canon, devices.FormatCode(canon), strings.ToLower(canon), strings.ToLower(devices.FormatCode(canon))} {
			if strings.Contains(text, form) {
				t.Errorf("%s holds the user code %s:\n%s", what, form, text)
			}
		}
	}
}

func problemCode(body string) string {
	var p devices.Problem
	_ = json.Unmarshal([]byte(body), &p)
	return p.Code
}

// TestNearbyDevices is the story through real linkd: the list shows only the
// approver's network (one IPv4 address, one IPv6 /64) and never a code; the three
// choices are stable; a wrong pick ends the request (the TV's x/oauth2 poll gets
// access_denied); a right pick then approve links the TV.
func TestNearbyDevices(t *testing.T) {
	in := nearbyLinkd(t, linkdtest.Options{})
	in.CreateUser(t, "hana", "pw")
	app := in.AppToken(t, "hana", "pw").AccessToken

	const phone = "2001:db8:1:2::99"
	livingConf, livingCtx, living := tvFrom(t, in, "2001:db8:1:2::10", "Living room TV")
	bedConf, bedCtx, bed := tvFrom(t, in, "2001:db8:1:2:ffff::20", "Bedroom TV")
	_, _, far := tvFrom(t, in, "2001:db8:1:3::10", "Neighbour TV")
	_, _, v4 := tvFrom(t, in, "198.51.100.7", "Office TV")
	all := []string{living.UserCode, bed.UserCode, far.UserCode, v4.UserCode}

	var list devices.NearbyList
	st, raw := apiFrom(t, in, phone, "GET", "/link-requests/nearby", app, "", &list)
	if st != http.StatusOK {
		t.Fatalf("nearby: %d %s", st, raw)
	}
	noCodes(t, "nearby JSON", raw, all...)
	for _, banned := range []string{"user_code", "device_code", "hash"} {
		if strings.Contains(raw, banned) {
			t.Errorf("nearby JSON mentions %q: %s", banned, raw)
		}
	}
	var names []string
	for _, r := range list.Requests {
		names = append(names, r.Device.Name)
		if r.ID == "" || r.Client.Name != "Demo TV" || r.Device.Kind != devices.KindTV || r.ExpiresAt.Before(r.RequestedAt) {
			t.Errorf("nearby entry %+v", r)
		}
	}
	if !slices.Equal(names, []string{"Bedroom TV", "Living room TV"}) {
		t.Fatalf("nearby from the /64 = %q, want the two TVs of that /64, newest first", names)
	}
	bedID, livingID := list.Requests[0].ID, list.Requests[1].ID

	var other devices.NearbyList
	apiFrom(t, in, "198.51.100.7", "GET", "/link-requests/nearby", app, "", &other)
	if len(other.Requests) != 1 || other.Requests[0].Device.Name != "Office TV" {
		t.Fatalf("nearby from 198.51.100.7 = %+v, want the Office TV alone", other.Requests)
	}
	apiFrom(t, in, "198.51.100.8", "GET", "/link-requests/nearby", app, "", &other)
	if len(other.Requests) != 0 {
		t.Fatalf("nearby from the next IPv4 address = %+v, want none", other.Requests)
	}
	// A request of another network cannot be picked by its id either.
	officeID := func() string {
		var l devices.NearbyList
		apiFrom(t, in, "198.51.100.7", "GET", "/link-requests/nearby", app, "", &l)
		return l.Requests[0].ID
	}()
	if st, raw := apiFrom(t, in, phone, "GET", "/link-requests/nearby/"+officeID+"/choices", app, "", nil); st != http.StatusNotFound || problemCode(raw) != devices.CodeNotWaiting {
		t.Fatalf("choices of another network's request: %d %s", st, raw)
	}

	// Three distinct codes of the alphabet, the real one among them, the same each time.
	choices := func(id string) []string {
		var c devices.NearbyChoices
		if st, raw := apiFrom(t, in, phone, "GET", "/link-requests/nearby/"+id+"/choices", app, "", &c); st != http.StatusOK {
			t.Fatalf("choices: %d %s", st, raw)
		}
		return c.Choices
	}
	bedChoices := choices(bedID)
	if len(bedChoices) != 3 || !slices.Contains(bedChoices, bed.UserCode) {
		t.Fatalf("choices %q, want three holding %s", bedChoices, bed.UserCode)
	}
	for i, c := range bedChoices {
		if _, err := devices.NormalizeCode(c); err != nil || slices.Index(bedChoices, c) != i {
			t.Errorf("choice %q: not a code or repeated (%v)", c, err)
		}
	}
	if again := choices(bedID); !slices.Equal(again, bedChoices) {
		t.Fatalf("choices changed between calls: %q then %q", bedChoices, again)
	}

	// A wrong pick ends the Bedroom TV's request.
	wrong := bedChoices[0]
	if wrong == bed.UserCode {
		wrong = bedChoices[1]
	}
	st, raw = apiFrom(t, in, phone, "POST", "/link-requests/nearby/"+bedID+"/pick", app, `{"user_code":"`+wrong+`"}`, nil)
	if st != http.StatusConflict || problemCode(raw) != devices.CodeWrongPick {
		t.Fatalf("wrong pick: %d %s", st, raw)
	}
	if _, err := bedConf.DeviceAccessToken(bedCtx, bed); oauthErrorCode(err) != "access_denied" {
		t.Fatalf("the Bedroom TV's poll after a wrong pick: %v, want access_denied", err)
	}
	apiFrom(t, in, phone, "GET", "/link-requests/nearby", app, "", &list)
	if len(list.Requests) != 1 || list.Requests[0].ID != livingID {
		t.Fatalf("nearby after the wrong pick = %+v, want the Living room TV alone", list.Requests)
	}
	if st, raw := apiFrom(t, in, phone, "POST", "/link-requests/nearby/"+bedID+"/pick", app, `{"user_code":"`+bed.UserCode+`"}`, nil); st != http.StatusNotFound || problemCode(raw) != devices.CodeNotWaiting {
		t.Fatalf("right pick of an ended request: %d %s", st, raw)
	}

	// A right pick answers the request to confirm; approving it links the TV.
	var lr devices.LinkRequest
	if st, raw := apiFrom(t, in, phone, "POST", "/link-requests/nearby/"+livingID+"/pick", app,
		`{"user_code":"`+strings.ToLower(living.UserCode)+`"}`, &lr); st != http.StatusOK {
		t.Fatalf("right pick: %d %s", st, raw)
	}
	if lr.UserCode != living.UserCode || lr.Device.Name != "Living room TV" || !lr.Origin.SameNetwork {
		t.Fatalf("picked request %+v", lr)
	}
	if st, raw := apiFrom(t, in, phone, "POST", "/link-requests/"+lr.UserCode+"/approve", app, "", nil); st != http.StatusOK {
		t.Fatalf("approve: %d %s", st, raw)
	}
	if _, err := livingConf.DeviceAccessToken(livingCtx, living); err != nil {
		t.Fatalf("the Living room TV after a right pick and approval: %v", err)
	}
}

// TestNearbyPicksAreThrottled: picks count like code lookups; after the account's
// limit of failures a pick is refused with rate_limited before anything is looked at.
func TestNearbyPicksAreThrottled(t *testing.T) {
	in := nearbyLinkd(t, linkdtest.Options{})
	in.CreateUser(t, "ivo", "pw")
	app := in.AppToken(t, "ivo", "pw").AccessToken
	const phone = "192.0.2.50"
	_, _, da := tvFrom(t, in, phone, "Den TV")
	var list devices.NearbyList
	apiFrom(t, in, phone, "GET", "/link-requests/nearby", app, "", &list)
	if len(list.Requests) != 1 {
		t.Fatalf("nearby = %+v", list.Requests)
	}
	var st int
	var raw string
	for i := 0; i < 20; i++ {
		st, raw = apiFrom(t, in, phone, "POST", "/link-requests/nearby/no-such-id/pick", app, `{"user_code":"BCDF-GHJK"}`, nil)
		if st != http.StatusNotFound {
			break
		}
	}
	if st != http.StatusTooManyRequests || problemCode(raw) != devices.CodeRateLimited {
		t.Fatalf("after many unknown picks: %d %s, want 429 rate_limited", st, raw)
	}
	// Even the right code is refused now, and the request stays pending.
	st, raw = apiFrom(t, in, phone, "POST", "/link-requests/nearby/"+list.Requests[0].ID+"/pick", app, `{"user_code":"`+da.UserCode+`"}`, nil)
	if st != http.StatusTooManyRequests {
		t.Fatalf("right pick while limited: %d %s", st, raw)
	}
}

// TestNearbyWebPage: /link lists the devices of the person's network by name, never
// their codes; the pick page offers three codes; a wrong pick is told plainly and ends
// the request; a right pick leads to the usual confirm page.
func TestNearbyWebPage(t *testing.T) {
	in := nearbyLinkd(t, linkdtest.Options{})
	in.CreateUser(t, "jo", "pw")
	const phone = "203.0.113.40"
	_, _, kitchen := tvFrom(t, in, phone, "Kitchen TV")
	hallConf, hallCtx, hall := tvFrom(t, in, phone, "Hall TV")
	_, _, away := tvFrom(t, in, "203.0.113.41", "Elsewhere TV")

	b := browsertest.New(in.URL, viaProxy{in.Client.Transport, http.Header{"X-Forwarded-For": {phone}}})
	if _, err := b.SignIn("/signin", "jo", "pw", nil); err != nil {
		t.Fatal(err)
	}
	p, err := b.Get("/link")
	if err != nil {
		t.Fatal(err)
	}
	text := p.Text()
	if !strings.Contains(text, "Devices waiting near you") || !strings.Contains(text, "Kitchen TV") || !strings.Contains(text, "Hall TV") {
		t.Fatalf("/link does not list the waiting TVs: %s", text)
	}
	if strings.Contains(text, "Elsewhere TV") {
		t.Errorf("/link lists a TV of another address: %s", text)
	}
	noCodes(t, "/link HTML", p.Body, kitchen.UserCode, hall.UserCode, away.UserCode)

	link := func(name string) string {
		i := strings.Index(p.Body, name)
		j := strings.LastIndex(p.Body[:i], `href="/link/nearby/`)
		if i < 0 || j < 0 {
			t.Fatalf("no pick link for %s", name)
		}
		href := p.Body[j+len(`href="`):]
		return href[:strings.IndexByte(href, '"')]
	}
	hallHref, kitchenHref := link("Hall TV"), link("Kitchen TV")

	// Wrong pick on the Hall TV.
	pick, err := b.Get(hallHref)
	if err != nil || pick.Status != http.StatusOK {
		t.Fatalf("pick page: %v %v", err, pick)
	}
	var wrong string
	for _, c := range choicesOn(pick.Body) {
		if c != hall.UserCode {
			wrong = c
		}
	}
	if len(choicesOn(pick.Body)) != 3 || wrong == "" {
		t.Fatalf("pick page choices %q", choicesOn(pick.Body))
	}
	res, err := b.Submit(pick, hallHref, url.Values{devices.ParamUserCode: {wrong}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != http.StatusConflict || !strings.Contains(res.Text(), "this request has been ended") {
		t.Fatalf("wrong pick page: %d %s", res.Status, res.Text())
	}
	if _, err := hallConf.DeviceAccessToken(hallCtx, hall); oauthErrorCode(err) != "access_denied" {
		t.Fatalf("the Hall TV's poll after a wrong pick on the web: %v", err)
	}

	// Right pick on the Kitchen TV, then the usual confirm page.
	pick, err = b.Get(kitchenHref)
	if err != nil {
		t.Fatal(err)
	}
	conf, err := b.Submit(pick, kitchenHref, url.Values{devices.ParamUserCode: {kitchen.UserCode}})
	if err != nil {
		t.Fatal(err)
	}
	if conf.URL.Path != "/link/confirm" || !strings.Contains(conf.Text(), "Kitchen TV") {
		t.Fatalf("right pick led to %s: %s", conf.URL, conf.Text())
	}
	done, err := b.Submit(conf, "/link/confirm", url.Values{"action": {"approve"}})
	if err != nil || !strings.Contains(done.Text(), "linked") {
		t.Fatalf("approve after a right pick: %v %s", err, done.Text())
	}
}

// choicesOn returns the codes of a pick page's buttons.
func choicesOn(body string) []string {
	var out []string
	for _, part := range strings.Split(body, `name="user_code" value="`)[1:] {
		out = append(out, part[:strings.IndexByte(part, '"')])
	}
	return out
}

// TestNearbyOff: with --nearby-devices=false the API answers nearby_off and /link
// shows no such section.
func TestNearbyOff(t *testing.T) {
	in := nearbyLinkd(t, linkdtest.Options{NearbyOff: true})
	in.CreateUser(t, "kai", "pw")
	app := in.AppToken(t, "kai", "pw").AccessToken
	const phone = "192.0.2.60"
	tvFrom(t, in, phone, "Attic TV")
	for _, path := range []string{"/link-requests/nearby", "/link-requests/nearby/x/choices"} {
		if st, raw := apiFrom(t, in, phone, "GET", path, app, "", nil); st != http.StatusNotFound || problemCode(raw) != devices.CodeNearbyOff {
			t.Errorf("GET %s with the list off: %d %s", path, st, raw)
		}
	}
	if st, raw := apiFrom(t, in, phone, "POST", "/link-requests/nearby/x/pick", app, `{"user_code":"BCDF-GHJK"}`, nil); st != http.StatusNotFound || problemCode(raw) != devices.CodeNearbyOff {
		t.Errorf("pick with the list off: %d %s", st, raw)
	}
	b := browsertest.New(in.URL, viaProxy{in.Client.Transport, http.Header{"X-Forwarded-For": {phone}}})
	if _, err := b.SignIn("/signin", "kai", "pw", nil); err != nil {
		t.Fatal(err)
	}
	p, err := b.Get("/link")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(p.Text(), "near you") || strings.Contains(p.Text(), "Attic TV") {
		t.Errorf("/link shows the nearby list although it is off: %s", p.Text())
	}
}
