package linkd_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/linkd"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest/browsertest"
	"github.com/linkdesk/linkdesk/server/provider"
	"github.com/linkdesk/linkdesk/server/store/sqlite"
)

// meStatus is the status /api/v1/me answers for an access token.
func meStatus(t *testing.T, in *linkdtest.Instance, token string) int {
	t.Helper()
	return call(t, in, http.MethodGet, devices.APIPrefix+"/me", token, "", nil)
}

// checkpointedDB returns the bytes of in's database file with the WAL copied into it,
// as a backup taken with the service running would hold them.
func checkpointedDB(t *testing.T, in *linkdtest.Instance) []byte {
	t.Helper()
	if err := in.Store.(*sqlite.DB).Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(in.Dir, "linkd.db"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// secretsIn lists which secrets a scan of a database file finds.
func secretsIn(db []byte, totpSecret string) []string {
	var found []string
	if bytes.Contains(db, []byte("PRIVATE KEY")) {
		found = append(found, "a PEM private key")
	}
	if bytes.Contains(db, []byte(totpSecret)) {
		found = append(found, "the TOTP secret")
	}
	return found
}

// A copy of the database (a backup, a stolen disk image) is started as a linkd of its
// own, with a secrets key of its own as it must: the original's access token is
// refused there, and the file holds no private key and no TOTP secret.
func TestCopiedDatabaseForgesNoTokensAndShowsNoKeys(t *testing.T) {
	orig := linkdtest.Start(t, linkdtest.Options{})
	_, secret := orig.CreateUserWithTOTP(t, "alice", "correct horse battery")
	tok := orig.AppTokenWithTOTP(t, "alice", "correct horse battery", secret)
	if got := meStatus(t, orig, tok.AccessToken); got != http.StatusOK {
		t.Fatalf("original linkd: /me answers %d, want 200", got)
	}
	db := checkpointedDB(t, orig)
	if found := secretsIn(db, secret); len(found) > 0 {
		t.Errorf("the database file holds %s", strings.Join(found, " and "))
	}

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "linkd.db"), db, 0o600); err != nil {
		t.Fatal(err)
	}
	copied := linkdtest.Start(t, linkdtest.Options{Dir: dir})
	if got := meStatus(t, copied, tok.AccessToken); got != http.StatusUnauthorized {
		t.Errorf("linkd on a copy of the database: /me answers %d to the original's access token, want 401", got)
	}
	// The original still serves it: the copy broke nothing.
	if got := meStatus(t, orig, tok.AccessToken); got != http.StatusOK {
		t.Errorf("original linkd after the copy: /me answers %d, want 200", got)
	}
}

// fixture is what testdata/linkd-schema2.json says about linkd-schema2.db, a database
// written by linkd before secrets were encrypted (schema version 2: plaintext signing
// key and TOTP secret, plaintext access-token ids).
type fixture struct {
	TOTPSecret   string    `json:"totp_secret"`
	AccessToken  string    `json:"access_token"`
	RefreshToken string    `json:"refresh_token"`
	KeyID        string    `json:"kid"`
	Created      time.Time `json:"created"`
}

// jwksKeyIDs lists the key ids in the instance's published key set.
func jwksKeyIDs(t *testing.T, in *linkdtest.Instance) []string {
	t.Helper()
	var disc struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if code := call(t, in, http.MethodGet, "/.well-known/openid-configuration", "", "", &disc); code != http.StatusOK || disc.JWKSURI == "" {
		t.Fatalf("discovery: %d %+v", code, disc)
	}
	u, err := url.Parse(disc.JWKSURI)
	if err != nil {
		t.Fatal(err)
	}
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if code := call(t, in, http.MethodGet, u.Path, "", "", &set); code != http.StatusOK {
		t.Fatalf("jwks: %d", code)
	}
	var ids []string
	for _, k := range set.Keys {
		ids = append(ids, k.Kid)
	}
	return ids
}

// idTokenKeyID is the kid in the header of tok's ID token.
func idTokenKeyID(t *testing.T, tok *oauth2.Token) string {
	t.Helper()
	idt, _ := tok.Extra("id_token").(string)
	hdr, err := base64.RawURLEncoding.DecodeString(strings.Split(idt, ".")[0])
	if err != nil {
		t.Fatalf("id token %q: %v", idt, err)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(hdr, &h); err != nil || h.Kid == "" {
		t.Fatalf("id token header %s: %v", hdr, err)
	}
	return h.Kid
}

// A database from before encryption at rest keeps working: the account with a second
// factor signs in, the refresh token the app holds still refreshes, the old signing
// key stays published, and after the first start the file holds no plaintext key or
// TOTP secret. Access tokens issued before the upgrade are refused (they were sealed
// with a key derived from the database); the app and devices refresh on 401.
func TestPlaintextDatabaseFromBeforeUpgrades(t *testing.T) {
	raw, err := os.ReadFile("testdata/linkd-schema2.json")
	if err != nil {
		t.Fatal(err)
	}
	var fx fixture
	if err := json.Unmarshal(raw, &fx); err != nil {
		t.Fatal(err)
	}
	old, err := os.ReadFile("testdata/linkd-schema2.db")
	if err != nil {
		t.Fatal(err)
	}
	if found := secretsIn(old, fx.TOTPSecret); len(found) != 2 {
		t.Fatalf("fixture should hold the plaintext key and TOTP secret, holds %v", found)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "linkd.db"), old, 0o600); err != nil {
		t.Fatal(err)
	}
	clock := linkdtest.NewClock(fx.Created.Add(5 * time.Minute))
	in := linkdtest.Start(t, linkdtest.Options{Dir: dir, Clock: clock})

	if got := meStatus(t, in, fx.AccessToken); got != http.StatusUnauthorized {
		t.Errorf("access token from before the upgrade: /me answers %d, want 401 (refresh instead)", got)
	}
	ctx := in.Context(context.Background())
	fresh, err := in.AppConfig("http://127.0.0.1:1/callback").TokenSource(ctx,
		&oauth2.Token{RefreshToken: fx.RefreshToken, Expiry: clock.Now().Add(-time.Minute)}).Token()
	if err != nil {
		t.Fatalf("refresh token from before the upgrade: %v", err)
	}
	if got := meStatus(t, in, fresh.AccessToken); got != http.StatusOK {
		t.Errorf("refreshed access token: /me answers %d, want 200", got)
	}
	if kids := jwksKeyIDs(t, in); len(kids) != 1 || kids[0] != fx.KeyID {
		t.Errorf("published keys %v, want the old key %s", kids, fx.KeyID)
	}
	tok := in.AppTokenWithTOTP(t, "alice", "correct horse battery", fx.TOTPSecret)
	if kid := idTokenKeyID(t, tok); kid != fx.KeyID {
		t.Errorf("ID token signed with %s, want the old key %s", kid, fx.KeyID)
	}
	in.AppToken(t, "bob", "bob's long password")
	if found := secretsIn(checkpointedDB(t, in), fx.TOTPSecret); len(found) > 0 {
		t.Errorf("after the upgrade the database file still holds %s", strings.Join(found, " and "))
	}

	// A restart with the same data directory (and so the same secrets.key) reads the
	// encrypted secrets back.
	in.Close()
	clock.Advance(time.Minute) // a new one-time code
	again := linkdtest.Start(t, linkdtest.Options{Dir: dir, Clock: clock})
	again.AppTokenWithTOTP(t, "alice", "correct horse battery", fx.TOTPSecret)
	if got := meStatus(t, again, fresh.AccessToken); got != http.StatusOK {
		t.Errorf("access token after a restart: /me answers %d, want 200", got)
	}
}

// A data directory that already existed open to others (0755) with a database others
// could read (0644), as an older linkd or a careless install left it: after linkd
// starts, the directory is 0700 and the database and its -wal and -shm files 0600.
func TestDatabaseFilesArePrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	first := linkdtest.Start(t, linkdtest.Options{Dir: dir})
	first.CreateUser(t, "alice", "correct horse battery")
	first.Close()
	for _, f := range []struct {
		path string
		mode os.FileMode
	}{{dir, 0o755}, {filepath.Join(dir, "linkd.db"), 0o644}} {
		if err := os.Chmod(f.path, f.mode); err != nil {
			t.Fatal(err)
		}
	}

	in := linkdtest.Start(t, linkdtest.Options{Dir: dir})
	in.AppToken(t, "alice", "correct horse battery") // writes, so the WAL exists
	want := map[string]os.FileMode{dir: 0o700, "linkd.db": 0o600, "linkd.db-wal": 0o600, "linkd.db-shm": 0o600,
		"secrets.key": 0o600, "session.key": 0o600}
	open := 0
	for name, mode := range want {
		p := name
		if name != dir {
			p = filepath.Join(dir, name)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if got := fi.Mode().Perm(); got != mode {
			open++
			t.Errorf("%s is %v, want %v", name, got, mode)
		}
	}
	t.Logf("%d of %d files open to other users", open, len(want))
}

// viaProxy is a transport that adds forwarding headers, as a reverse proxy in front of
// linkd would (or as any caller may try).
type viaProxy struct {
	base   http.RoundTripper
	header http.Header
}

func (v viaProxy) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, vs := range v.header {
		r.Header[k] = vs
	}
	return v.base.RoundTrip(r)
}

// Behind a reverse proxy on 127.0.0.1, linkd sees the callers' own addresses only when
// told to trust the proxy (--trusted-proxy): a TV asking for a code from one network and
// a phone confirming from another are then told apart, and the confirm page warns.
// Without it, the forwarding headers are ignored, as before.
func TestTrustedProxyNamesTheCaller(t *testing.T) {
	for _, tc := range []struct {
		name      string
		trusted   []string
		tv, phone http.Header
		wantTV    string
		wantWarn  bool
	}{
		{name: "untrusted peer: headers ignored",
			tv:     http.Header{"X-Forwarded-For": {"203.0.113.7"}},
			phone:  http.Header{"X-Forwarded-For": {"198.51.100.9"}},
			wantTV: "127.0.0.1"},
		{name: "trusted proxy, X-Forwarded-For", trusted: []string{"127.0.0.1/32"},
			// the client's own claim (192.0.2.1) comes first; the proxy appended the real one
			tv:     http.Header{"X-Forwarded-For": {"192.0.2.1, 203.0.113.7"}},
			phone:  http.Header{"X-Forwarded-For": {"198.51.100.9"}},
			wantTV: "203.0.113.7", wantWarn: true},
		{name: "trusted proxy, Forwarded", trusted: []string{"127.0.0.1/32", "10.0.0.0/8"},
			tv:     http.Header{"Forwarded": {`for="[2001:db8::7]:4711";proto=https, for=10.1.2.3`}},
			phone:  http.Header{"Forwarded": {"for=198.51.100.9"}},
			wantTV: "2001:db8::7", wantWarn: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			trusted, err := linkd.ParseTrustedProxies(tc.trusted)
			if err != nil {
				t.Fatal(err)
			}
			in := linkdtest.Start(t, linkdtest.Options{TrustedProxies: trusted})
			in.CreateUser(t, "alice", "correct horse battery")
			tvClient := &http.Client{Transport: viaProxy{in.Client.Transport, tc.tv}}
			resp, err := tvClient.PostForm(in.URL+"/device_authorization", url.Values{
				"client_id": {devices.KioskClientID}, "scope": {"openid offline_access"}})
			if err != nil {
				t.Fatal(err)
			}
			var code struct {
				UserCode string `json:"user_code"`
			}
			if err := jsonDecode(resp, &code); err != nil || code.UserCode == "" {
				t.Fatalf("device authorization: %d %v", resp.StatusCode, err)
			}
			resp.Body.Close()
			canonical, err := devices.NormalizeCode(code.UserCode)
			if err != nil {
				t.Fatal(err)
			}
			d, err := in.Store.DeviceAuthByUserCode(context.Background(), canonical)
			if err != nil {
				t.Fatal(err)
			}
			if d.RequestIP != tc.wantTV {
				t.Errorf("request_ip %q, want %q", d.RequestIP, tc.wantTV)
			}

			phone := browsertest.New(in.URL, viaProxy{in.Client.Transport, tc.phone})
			if _, err := phone.SignIn("/signin", "alice", "correct horse battery", nil); err != nil {
				t.Fatal(err)
			}
			p, err := phone.Get("/link")
			if err != nil {
				t.Fatal(err)
			}
			p, err = phone.Submit(p, "/link", url.Values{"user_code": {code.UserCode}})
			if err != nil {
				t.Fatal(err)
			}
			page := p.Text()
			if warned := strings.Contains(page, "— not your network"); warned != tc.wantWarn || !strings.Contains(page, tc.wantTV) {
				t.Errorf("confirm page (warning %v, want %v; TV address %s): %.800s", warned, tc.wantWarn, tc.wantTV, page)
			}
		})
	}
}

// replayCookie asks for /devices with only the given session cookie, as someone who
// copied it would, and reports whether linkd treated it as signed in.
func replayCookie(t *testing.T, in *linkdtest.Instance, c *http.Cookie) bool {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, in.URL+"/devices", nil)
	req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	client := &http.Client{Transport: in.Client.Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// A web session signed out on /signout stays signed out when linkd restarts (its
// session key, kept in the data directory, still opens the cookie): the sign-out is
// in the store, not in the process's memory.
func TestSignOutSurvivesRestart(t *testing.T) {
	in := linkdtest.Start(t, linkdtest.Options{})
	in.CreateUser(t, "alice", "correct horse battery")
	phone := in.Browser()
	p, err := phone.SignIn("/signin", "alice", "correct horse battery", nil)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(in.URL)
	var session *http.Cookie
	for _, c := range phone.Client.Jar.Cookies(u) {
		if strings.HasSuffix(c.Name, "linkd_web") {
			session = c
		}
	}
	if session == nil || !replayCookie(t, in, session) {
		t.Fatalf("no working session cookie after sign-in (page %s)", p.URL)
	}
	if p, err = phone.Get("/devices"); err != nil {
		t.Fatal(err)
	}
	if p, err = phone.Submit(p, "/signout", nil); err != nil {
		t.Fatal(err)
	}
	if replayCookie(t, in, session) {
		t.Fatalf("signed-out cookie accepted before any restart (page after sign-out: %.300s)", p.Text())
	}

	dir := in.Dir
	in.Close()
	again := linkdtest.Start(t, linkdtest.Options{Dir: dir})
	if replayCookie(t, again, session) {
		t.Error("signed-out cookie accepted again after linkd restarted")
	}
	// A session that was not signed out still works after the restart.
	other := again.Browser()
	if _, err := other.SignIn("/signin", "alice", "correct horse battery", nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range other.Client.Jar.Cookies(u) {
		if strings.HasSuffix(c.Name, "linkd_web") && !replayCookie(t, again, c) {
			t.Error("a live session was refused")
		}
	}
}

// A rotated signing key signs new ID tokens within a minute while the old key stays
// published, so ID tokens it signed still verify; the purge retires the old key only
// once a day has passed since it was replaced.
func TestSigningKeyRotation(t *testing.T) {
	clock := linkdtest.NewClock(time.Time{})
	in := linkdtest.Start(t, linkdtest.Options{Clock: clock})
	in.CreateUser(t, "alice", "correct horse battery")
	oldKid := idTokenKeyID(t, in.AppToken(t, "alice", "correct horse battery"))

	newKid, err := provider.RotateSigningKey(context.Background(), in.Store, clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute) // linkd reads its keys again after a minute
	if kid := idTokenKeyID(t, in.AppToken(t, "alice", "correct horse battery")); kid != newKid {
		t.Errorf("after rotation ID tokens are signed with %s, want the new key %s", kid, newKid)
	}
	if kids := jwksKeyIDs(t, in); !slices.Equal(kids, []string{newKid, oldKid}) {
		t.Errorf("published keys %v, want new %s and old %s", kids, newKid, oldKid)
	}

	day := 24 * time.Hour
	if n, err := in.Store.RetireSigningKeys(context.Background(), clock.Now().Add(-day)); err != nil || n != 0 {
		t.Errorf("retired %d keys (%v) a minute after rotation", n, err)
	}
	clock.Advance(day)
	if n, err := in.Store.RetireSigningKeys(context.Background(), clock.Now().Add(-day)); err != nil || n != 1 {
		t.Errorf("retired %d keys (%v) a day after rotation, want 1", n, err)
	}
	clock.Advance(time.Minute)
	if kids := jwksKeyIDs(t, in); !slices.Equal(kids, []string{newKid}) {
		t.Errorf("published keys after retirement %v, want only %s", kids, newKid)
	}
}
