package linkd_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/linkd"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest/browsertest"
	"github.com/linkdesk/linkdesk/server/store"
)

// clientFaults makes reading clients fail while failing is set: the device can then
// not be fully rendered after a change the store has already saved.
type clientFaults struct {
	store.Store
	failing atomic.Bool
}

func (f *clientFaults) ClientByID(ctx context.Context, id string) (store.Client, error) {
	if f.failing.Load() {
		return store.Client{}, errors.New("injected: clients cannot be read")
	}
	return f.Store.ClientByID(ctx, id)
}

// outcome is what a front end reported, reduced to what both can say.
type outcome int

const (
	done     outcome = iota + 1 // the change was made and reported as made
	badName                     // the name was refused; nothing changed
	notFound                    // no such linked device of this account
)

func (o outcome) String() string {
	return map[outcome]string{done: "done", badName: "bad name", notFound: "not found"}[o]
}

// frontEnd renames and unlinks a device of the signed-in account, the way a person
// would through it.
type frontEnd interface {
	rename(t *testing.T, id, name string) outcome
	unlink(t *testing.T, id string) outcome
}

// apiFront is the management API over HTTPS with the app's bearer token.
type apiFront struct {
	in    *linkdtest.Instance
	token string
}

func (a apiFront) rename(t *testing.T, id, name string) outcome {
	body, err := json.Marshal(devices.RenameRequest{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	st := call(t, a.in, "PATCH", devices.APIPrefix+"/devices/"+url.PathEscape(id), a.token, string(body), nil)
	return a.outcome(t, st, http.StatusOK)
}

func (a apiFront) unlink(t *testing.T, id string) outcome {
	st := call(t, a.in, "DELETE", devices.APIPrefix+"/devices/"+url.PathEscape(id), a.token, "", nil)
	return a.outcome(t, st, http.StatusNoContent)
}

func (a apiFront) outcome(t *testing.T, status, ok int) outcome {
	t.Helper()
	switch status {
	case ok:
		return done
	case http.StatusBadRequest:
		return badName
	case http.StatusNotFound:
		return notFound
	}
	t.Fatalf("API answered %d", status)
	return 0
}

var reFlash = regexp.MustCompile(`<p class="(notice|error)" role="(?:status|alert)">([^<]*)</p>`)

// webFront is the /devices pages driven by the scripted browser, posting the forms
// those pages show; it follows no redirect, to see each answer.
type webFront struct {
	faults *clientFaults
	b      *browsertest.Browser
	csrf   string
}

func newWebFront(t *testing.T, in *linkdtest.Instance, faults *clientFaults, username, password string) *webFront {
	t.Helper()
	w := &webFront{faults: faults, b: in.Browser()}
	w.b.StopAt = func(*url.URL) bool { return true }
	p, err := w.b.SignIn("/signin", username, password, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != http.StatusSeeOther {
		t.Fatalf("web sign-in answered %d", p.Status)
	}
	p = w.get(t, "/devices")
	if p.Status != http.StatusOK {
		t.Fatalf("GET /devices after sign-in: %d", p.Status)
	}
	// A sign-in starts a new session with a new token.
	if w.csrf = p.Hidden("/signout").Get("csrf_token"); w.csrf == "" {
		t.Fatalf("no CSRF token on page: %.300s", p.Body)
	}
	return w
}

func (w *webFront) get(t *testing.T, path string) *browsertest.Page {
	t.Helper()
	p, err := w.b.Get(path)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (w *webFront) post(t *testing.T, path string, form url.Values) *browsertest.Page {
	t.Helper()
	form.Set("csrf_token", w.csrf)
	p, err := w.b.Post(path, form)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// outcome reads the answer to a form: a 404 page, or a redirect to /devices whose
// notice (success) or alert (refused name) tells what happened.
func (w *webFront) outcome(t *testing.T, resp *browsertest.Page, success string) outcome {
	t.Helper()
	if resp.Status == http.StatusNotFound {
		return notFound
	}
	if resp.Status != http.StatusSeeOther || resp.Header.Get("Location") != "/devices" {
		t.Fatalf("page answered %d to %q", resp.Status, resp.Header.Get("Location"))
	}
	// The change is already answered; let the list render again to read the notice.
	w.faults.failing.Store(false)
	page := w.get(t, "/devices").Body
	m := reFlash.FindStringSubmatch(page)
	switch {
	case m == nil:
		t.Fatalf("no notice after the redirect: %.500s", page)
	case m[1] == "notice" && strings.Contains(html.UnescapeString(m[2]), success):
		return done
	case m[1] == "error":
		return badName
	}
	t.Fatalf("unexpected notice %q", m[2])
	return 0
}

func (w *webFront) rename(t *testing.T, id, name string) outcome {
	return w.outcome(t, w.post(t, "/devices/"+url.PathEscape(id)+"/rename", url.Values{"name": {name}}), "Renamed to")
}

func (w *webFront) unlink(t *testing.T, id string) outcome {
	return w.outcome(t, w.post(t, "/devices/"+url.PathEscape(id)+"/unlink", url.Values{}), "is unlinked")
}

// TestRenameAndUnlinkFromBothFronts drives one table of cases through the management
// API and through the web pages: both must change the same things, publish the same
// event and report the same outcome. The cases include a device that cannot be fully
// rendered after the change was saved (its client cannot be read): the change stands,
// so both report success and publish the event.
func TestRenameAndUnlinkFromBothFronts(t *testing.T) {
	faults := &clientFaults{}
	in := linkdtest.Start(t, linkdtest.Options{Dev: true, WrapStore: func(s store.Store) store.Store {
		faults.Store = s
		return faults
	}})
	alice := in.CreateUser(t, "alice", "pw-alice")
	bob := in.CreateUser(t, "bob", "pw-bob")
	fronts := map[string]frontEnd{
		"api": apiFront{in: in, token: in.AppToken(t, "alice", "pw-alice").AccessToken},
		"web": newWebFront(t, in, faults, "alice", "pw-alice"),
	}

	cases := []struct {
		name   string
		unlink bool
		target func(s situation) string // the id acted on
		rename string
		broken bool // clients cannot be read during the action
		want   outcome
		// After: the name alice's device has (""=gone); the event alice's stream got
		// (""=none) with the device name it carried.
		wantName      string
		wantEvent     string
		wantEventName string
		wantClient    string // the event's client name
	}{
		{name: "rename", target: ownID, rename: "  Den TV  ", want: done,
			wantName: "Den TV", wantEvent: devices.EventRenamed, wantEventName: "Den TV", wantClient: "Demo TV"},
		{name: "rename to blank", target: ownID, rename: "   ", want: badName, wantName: "Living room TV"},
		{name: "rename too long", target: ownID, rename: strings.Repeat("x", 65), want: badName, wantName: "Living room TV"},
		{name: "rename with a format character", target: ownID, rename: "TV\u202eVT", want: badName, wantName: "Living room TV"},
		{name: "rename unknown", target: fixedID("no-such-device"), rename: "X", want: notFound, wantName: "Living room TV"},
		{name: "rename another account's", target: bobsID, rename: "Mine now", want: notFound, wantName: "Living room TV"},
		{name: "rename the app's own sign-in", target: signInID, rename: "X", want: notFound, wantName: "Living room TV"},
		// An unreadable client shows the name read within the last minute
		// (links.clientNames; the id once none was: links.TestClientNamesReusedForAMinute).
		{name: "rename, client unreadable", target: ownID, rename: "Den TV", broken: true, want: done,
			wantName: "Den TV", wantEvent: devices.EventRenamed, wantEventName: "Den TV", wantClient: "Demo TV"},
		{name: "unlink", unlink: true, target: ownID, want: done,
			wantEvent: devices.EventUnlinked, wantEventName: "Living room TV", wantClient: "Demo TV"},
		{name: "unlink unknown", unlink: true, target: fixedID("no-such-device"), want: notFound, wantName: "Living room TV"},
		{name: "unlink another account's", unlink: true, target: bobsID, want: notFound, wantName: "Living room TV"},
		{name: "unlink the app's own sign-in", unlink: true, target: signInID, want: notFound, wantName: "Living room TV"},
		{name: "unlink, client unreadable", unlink: true, target: ownID, broken: true, want: done,
			wantEvent: devices.EventUnlinked, wantEventName: "Living room TV", wantClient: "Demo TV"},
	}
	ctx := context.Background()
	for _, tc := range cases {
		for _, fname := range []string{"api", "web"} {
			t.Run(fname+"/"+tc.name, func(t *testing.T) {
				own := seedLink(t, in, alice.Subject, "Living room TV")
				bobs := seedLink(t, in, bob.Subject, "Bob's TV")
				signIns, err := in.Store.ListGrants(ctx, alice.Subject, store.FlowSignIn)
				if err != nil || len(signIns) == 0 {
					t.Fatalf("alice's sign-in grants: %v %v", signIns, err)
				}
				id := tc.target(situation{own: own, bobs: bobs, signIn: signIns[0].ID})

				sub := in.Server.Events().SubscribeAccount(alice.Subject, 0)
				defer sub.Close()
				faults.failing.Store(tc.broken)
				var got outcome
				if tc.unlink {
					got = fronts[fname].unlink(t, id)
				} else {
					got = fronts[fname].rename(t, id, tc.rename)
				}
				faults.failing.Store(false)
				if got != tc.want {
					t.Fatalf("outcome %v, want %v", got, tc.want)
				}

				// What changed: alice's device, its token, and never bob's device.
				g, err := in.Store.GrantByID(ctx, alice.Subject, own.ID)
				switch {
				case tc.wantName == "" && !errors.Is(err, store.ErrNotFound):
					t.Errorf("alice's device still linked (%v)", err)
				case tc.wantName != "" && (err != nil || g.Name != tc.wantName):
					t.Errorf("alice's device is named %q (%v), want %q", g.Name, err, tc.wantName)
				}
				_, err = in.Store.AccessTokenByID(ctx, "at-"+own.ID, in.Now())
				if gone := errors.Is(err, store.ErrNotFound); gone != (tc.wantName == "") {
					t.Errorf("alice's device token: %v (want gone: %v)", err, tc.wantName == "")
				}
				if b, err := in.Store.GrantByID(ctx, bob.Subject, bobs.ID); err != nil || b.Name != "Bob's TV" {
					t.Errorf("bob's device: %+v, %v", b, err)
				}

				// What alice's stream heard: published before the answer, so already here.
				select {
				case ev := <-sub.C:
					if ev.Type != tc.wantEvent || ev.Device.ID != own.ID || ev.Device.Name != tc.wantEventName || ev.Device.Client.Name != tc.wantClient {
						t.Errorf("event %s %+v; want %s of %q from client %q", ev.Type, ev.Device, tc.wantEvent, tc.wantEventName, tc.wantClient)
					}
				default:
					if tc.wantEvent != "" {
						t.Errorf("no %s event", tc.wantEvent)
					}
				}
			})
		}
	}
}

// situation is what a case may act on.
type situation struct {
	own, bobs store.Grant // a linked device of alice's, and one of bob's
	signIn    string      // id of alice's own app sign-in grant (not a linked device)
}

func ownID(s situation) string    { return s.own.ID }
func bobsID(s situation) string   { return s.bobs.ID }
func signInID(s situation) string { return s.signIn }

func fixedID(id string) func(situation) string { return func(situation) string { return id } }

// seedLink stores a linked device of subject (a demo-tv device-flow grant) with one
// live access token "at-<grant id>".
func seedLink(t *testing.T, in *linkdtest.Instance, subject, name string) store.Grant {
	t.Helper()
	ctx := context.Background()
	now := in.Now()
	g := store.Grant{ID: "g-" + rand.Text(), Subject: subject, ClientID: linkd.DemoClientID, Scopes: []string{"openid"},
		Flow: store.FlowDevice, Name: name, Device: devices.DeviceInfo{Name: name, Kind: devices.KindTV},
		AuthTime: now, CreatedAt: now}
	if err := in.Store.CreateGrant(ctx, g); err != nil {
		t.Fatal(err)
	}
	if err := in.Store.CreateAccessToken(ctx, store.AccessToken{ID: "at-" + g.ID, GrantID: g.ID, Subject: subject,
		ClientID: linkd.DemoClientID, Scopes: g.Scopes, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	return g
}
