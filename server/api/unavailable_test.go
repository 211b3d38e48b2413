package api_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest"
	"github.com/linkdesk/linkdesk/server/store"
)

// errDiskFull is what a full disk looks like to linkd: a storage fault that may pass.
var errDiskFull = fmt.Errorf("sqlite: approve: commit: %w: database or disk is full (13)", store.ErrUnavailable)

// faultyStore fails some calls with errDiskFull while its switches are on.
type faultyStore struct {
	store.Store
	approve, list, verify atomic.Bool
}

func (f *faultyStore) ApproveUserCode(ctx context.Context, userCode, subject, name string, limits []store.AttemptLimit, now time.Time, check store.ApproveCheck) (store.Grant, time.Duration, error) {
	if f.approve.Load() {
		return store.Grant{}, 0, errDiskFull
	}
	return f.Store.ApproveUserCode(ctx, userCode, subject, name, limits, now, check)
}

func (f *faultyStore) ListGrants(ctx context.Context, subject string, flow store.GrantFlow) ([]store.Grant, error) {
	if f.list.Load() {
		return nil, errDiskFull
	}
	return f.Store.ListGrants(ctx, subject, flow)
}

func (f *faultyStore) AccessTokenByID(ctx context.Context, id string, now time.Time) (store.AccessToken, error) {
	if f.verify.Load() {
		return store.AccessToken{}, errDiskFull
	}
	return f.Store.AccessTokenByID(ctx, id, now)
}

// logBuffer collects a linkd's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestStorageUnavailable injects a full disk under a real linkd: approving, listing
// devices and even checking the app's token answer 503 unavailable with Retry-After and
// a plain detail (never 401, which would sign the app out, nor a final refusal), each
// logged once at WARN without the code or the token; once storage works again the same
// approval goes through.
func TestStorageUnavailable(t *testing.T) {
	faults := &faultyStore{}
	var logs logBuffer
	in := linkdtest.Start(t, linkdtest.Options{
		WrapStore: func(s store.Store) store.Store { faults.Store = s; return faults },
		Logger:    slog.New(slog.NewTextHandler(&logs, nil)),
	})
	in.CreateUser(t, "alice", "pw-alice")
	tok := in.AppToken(t, "alice", "pw-alice")
	ctx := t.Context()
	app := devices.NewClient(in.Issuer, oauth2.NewClient(in.Context(ctx), oauth2.StaticTokenSource(tok)))

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

	wantUnavailable := func(what string, err error) {
		t.Helper()
		var ae *devices.APIError
		if !errors.As(err, &ae) {
			t.Fatalf("%s: %v, want an API error", what, err)
		}
		if ae.Status != http.StatusServiceUnavailable || ae.Code != devices.CodeUnavailable || ae.RetryAfter != 5*time.Second {
			t.Fatalf("%s: %+v, want 503 %s with Retry-After 5 s", what, ae, devices.CodeUnavailable)
		}
		if !strings.Contains(ae.Detail, "nothing was changed, try again in a moment") {
			t.Fatalf("%s: detail %q does not say nothing changed and to try again", what, ae.Detail)
		}
	}

	faults.approve.Store(true)
	_, err = app.Approve(ctx, code, "")
	wantUnavailable("approve", err)
	faults.list.Store(true)
	_, err = app.Devices(ctx)
	wantUnavailable("list devices", err)
	faults.verify.Store(true)
	_, err = app.Me(ctx)
	wantUnavailable("token check", err)

	log := logs.String()
	for _, what := range []string{"approve", "list devices", "verify access token"} {
		if n := strings.Count(log, "level=WARN msg=\""+what+": storage unavailable"); n != 1 {
			t.Errorf("%d WARN lines for %s, want 1:\n%s", n, what, log)
		}
	}
	if strings.Contains(log, "level=ERROR") {
		t.Errorf("a storage fault that may pass was logged as an internal error:\n%s", log)
	}
	for _, secret := range []string{code, tok.AccessToken} {
		if strings.Contains(log, secret) {
			t.Errorf("the log holds a secret %q:\n%s", secret, log)
		}
	}

	faults.approve.Store(false)
	faults.list.Store(false)
	faults.verify.Store(false)
	if _, err := app.Approve(ctx, code, ""); err != nil {
		t.Fatalf("approve once storage works again: %v", err)
	}
	list, err := app.Devices(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("devices = %v, %v; want the one linked after the fault", list, err)
	}
}
