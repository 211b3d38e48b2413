package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest/browsertest"
	"github.com/linkdesk/linkdesk/server/store"
)

// errDiskFull is what a full disk looks like to linkd: a storage fault that may pass.
var errDiskFull = fmt.Errorf("sqlite: commit: %w: database or disk is full (13)", store.ErrUnavailable)

// faultyStore fails approvals, denials and device lists with errDiskFull while on.
type faultyStore struct {
	store.Store
	on atomic.Bool
}

func (f *faultyStore) ApproveUserCode(ctx context.Context, userCode, subject, name string, limits []store.AttemptLimit, now time.Time, check store.ApproveCheck) (store.Grant, time.Duration, error) {
	if f.on.Load() {
		return store.Grant{}, 0, errDiskFull
	}
	return f.Store.ApproveUserCode(ctx, userCode, subject, name, limits, now, check)
}

func (f *faultyStore) DenyUserCode(ctx context.Context, userCode, subject string, limits []store.AttemptLimit, now time.Time) (store.DeviceAuth, time.Duration, error) {
	if f.on.Load() {
		return store.DeviceAuth{}, 0, errDiskFull
	}
	return f.Store.DenyUserCode(ctx, userCode, subject, limits, now)
}

func (f *faultyStore) ListGrants(ctx context.Context, subject string, flow store.GrantFlow) ([]store.Grant, error) {
	if f.on.Load() {
		return nil, errDiskFull
	}
	return f.Store.ListGrants(ctx, subject, flow)
}

// TestStorageUnavailablePage approves, denies and lists devices in the browser while
// linkd's disk is full: each answers 503 with Retry-After and a page saying in plain
// words that nothing changed and to try again in a moment, with the code kept so "Try
// again" returns to the same question; once storage works, the approval goes through.
func TestStorageUnavailablePage(t *testing.T) {
	faults := &faultyStore{}
	in := linkdtest.Start(t, linkdtest.Options{WrapStore: func(s store.Store) store.Store { faults.Store = s; return faults }})
	in.CreateUser(t, "alice", password)
	ctx := t.Context()
	newCode := func() string {
		t.Helper()
		code, err := devices.NewUserCode()
		if err != nil {
			t.Fatal(err)
		}
		now := in.Now()
		if err := in.Store.CreateDeviceAuth(ctx, store.DeviceAuth{
			DeviceCode: "dc-" + code, UserCode: code, ClientID: devices.KioskClientID, Scopes: []string{"openid"},
			Device: devices.DeviceInfo{Name: "Front desk"}, RequestIP: "127.0.0.1",
			CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute), Interval: 5 * time.Second, State: store.DeviceAuthPending,
		}); err != nil {
			t.Fatal(err)
		}
		return code
	}
	b := in.Browser()
	must := func(p *browsertest.Page, err error) *browsertest.Page {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := must(b.Get("/signin"))
	must(b.Submit(p, "/signin", url.Values{"username": {"alice"}, "password": {password}}))
	wantUnavailable := func(p *browsertest.Page, link string) {
		t.Helper()
		p.WantStatus(t, http.StatusServiceUnavailable)
		if ra := p.Header.Get("Retry-After"); ra != "5" {
			t.Errorf("Retry-After = %q, want 5", ra)
		}
		p.MustSay(t, "Linkdesk couldn’t save that just now", "Nothing was changed", "try again", "Try again")
		if !hasLink(p, link) {
			t.Errorf("the page has no Try again link to %s:\n%s", link, p.Body)
		}
	}

	for _, action := range []string{"approve", "deny"} {
		code := newCode()
		p = must(b.Get("/link"))
		p = must(b.Submit(p, "/link", url.Values{"user_code": {code}}))
		p.WantStatus(t, http.StatusOK)
		faults.on.Store(true)
		p = must(b.Submit(p, "/link/confirm", url.Values{"action": {action}}))
		wantUnavailable(p, "/link/confirm")
		p = must(b.Get("/devices"))
		wantUnavailable(p, "/devices")

		faults.on.Store(false)
		p = must(b.Get("/link/confirm")) // Try again
		p.WantStatus(t, http.StatusOK)
		p.MustSay(t, "Link this device to your account?", devices.FormatCode(code))
		p = must(b.Submit(p, "/link/confirm", url.Values{"action": {action}}))
		p.WantStatus(t, http.StatusOK)
		d, err := in.Store.DeviceAuthByUserCode(ctx, code)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]store.DeviceAuthState{"approve": store.DeviceAuthApproved, "deny": store.DeviceAuthDenied}[action]; d.State != want {
			t.Fatalf("%s after the fault passed: request is %s, want %s", action, d.State, want)
		}
	}
}

// hasLink reports whether p links to href.
func hasLink(p *browsertest.Page, href string) bool {
	found := false
	browsertest.Walk(p.Doc, func(n *html.Node) {
		if n.Data == "a" && browsertest.Attr(n, "href") == href {
			found = true
		}
	})
	return found
}
