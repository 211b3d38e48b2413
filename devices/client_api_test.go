package devices_test

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/api"
	"github.com/linkdesk/linkdesk/server/events"
	"github.com/linkdesk/linkdesk/server/links"
	"github.com/linkdesk/linkdesk/server/store"
	"github.com/linkdesk/linkdesk/server/store/sqlite"
)

// These tests run the client against linkd's real management API handlers
// (server/api over a real SQLite store and event hub, on httptest TLS). Only
// access-token verification is a stand-in, since issuing tokens is the OpenID
// provider's job; the end-to-end tests against a whole linkd live beside them.

type tokenTable struct {
	mu     sync.Mutex
	tokens map[string]store.AccessToken
}

func (v *tokenTable) VerifyAccessToken(_ context.Context, tok string) (store.AccessToken, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	at, ok := v.tokens[tok]
	if !ok {
		return store.AccessToken{}, store.ErrNotFound
	}
	return at, nil
}

func (v *tokenTable) revoke(tok string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.tokens, tok)
}

type apiEnv struct {
	srv *httptest.Server
	db  *sqlite.DB
	tok *tokenTable
}

const tvClient = "tv-app"

func newAPIEnv(t *testing.T) *apiEnv {
	t.Helper()
	ctx := t.Context()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "linkd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.CreateUser(ctx, store.User{Subject: "sub-alice", Username: "alice", DisplayName: "Alice A.", Email: "alice@example.com", PasswordHash: "x", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []store.Client{
		{ID: devices.AppClientID, Name: "Linkdesk", CreatedAt: time.Now()},
		{ID: tvClient, Name: "StreamBox", Scopes: []string{"openid", "media"}, CreatedAt: time.Now()},
	} {
		if err := db.UpsertClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	tok := &tokenTable{tokens: map[string]store.AccessToken{
		"app":    {ID: "a1", Subject: "sub-alice", ClientID: devices.AppClientID},
		"device": {ID: "t1", Subject: "sub-alice", ClientID: tvClient},
	}}
	ls := links.New(links.Config{Store: db, Events: events.NewHub(), Logger: slog.New(slog.DiscardHandler)})
	cfg := api.Config{Links: ls, Store: db, Verifier: tok, Issuer: "https://link.example",
		Logger: slog.New(slog.DiscardHandler), Heartbeat: 200 * time.Millisecond}
	mux := http.NewServeMux()
	mux.Handle(devices.APIPrefix+"/", api.New(cfg))
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	return &apiEnv{srv: srv, db: db, tok: tok}
}

// client returns a devices.Client sending token as its bearer, the way the
// app's oauth2 client does.
func (e *apiEnv) client(token string) *devices.Client {
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, e.srv.Client())
	hc := oauth2.NewClient(ctx, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token, TokenType: "Bearer"}))
	return devices.NewClient(e.srv.URL, hc)
}

// pending stores a device authorization as linkd's device endpoint does.
func (e *apiEnv) pending(t *testing.T, expiresIn time.Duration) string {
	t.Helper()
	uc, err := devices.NewUserCode()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	err = e.db.CreateDeviceAuth(t.Context(), store.DeviceAuth{
		DeviceCode: rand.Text() + rand.Text(), UserCode: uc, ClientID: tvClient, Scopes: []string{"openid", "media"},
		Device:    devices.DeviceInfo{Name: "Living room TV", Model: "SB-4K", Kind: devices.KindTV},
		RequestIP: "127.0.0.1", CreatedAt: now.Add(min(expiresIn, 0) - time.Minute), ExpiresAt: now.Add(expiresIn),
		Interval: 5 * time.Second, State: store.DeviceAuthPending,
	})
	if err != nil {
		t.Fatal(err)
	}
	return uc
}

func wantAPIError(t *testing.T, err error, status int, code string) *devices.APIError {
	t.Helper()
	var ae *devices.APIError
	if !errors.As(err, &ae) || ae.Status != status || ae.Code != code {
		t.Fatalf("err = %v, want %d %s", err, status, code)
	}
	return ae
}

func TestClientAgainstLinkdAPI(t *testing.T) {
	e := newAPIEnv(t)
	c := e.client("app")
	ctx := t.Context()

	me, err := c.Me(ctx)
	if err != nil || me.Username != "alice" || me.Subject != "sub-alice" || me.DisplayName != "Alice A." {
		t.Fatalf("Me = %+v, %v", me, err)
	}

	evs, err := c.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}

	code := e.pending(t, 10*time.Minute)
	lr, err := c.LinkRequest(ctx, devices.FormatCode(code)) // dashed, as typed
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := devices.NormalizeCode(lr.UserCode); got != code || lr.Client.Name != "StreamBox" || lr.Device.Kind != devices.KindTV {
		t.Fatalf("LinkRequest = %+v", lr)
	}
	dev, err := c.Approve(ctx, code, "Den TV")
	if err != nil || dev.Name != "Den TV" || dev.ID == "" {
		t.Fatalf("Approve = %+v, %v", dev, err)
	}
	if ev := nextEvent(t, evs); ev.Type != devices.EventLinked || ev.Device.ID != dev.ID {
		t.Fatalf("event = %+v", ev)
	}
	_, err = c.LinkRequest(ctx, code)
	wantAPIError(t, err, http.StatusConflict, devices.CodeAlreadyUsed)

	list, err := c.Devices(ctx)
	if err != nil || len(list) != 1 || list[0].ID != dev.ID {
		t.Fatalf("Devices = %+v, %v", list, err)
	}
	renamed, err := c.Rename(ctx, dev.ID, "Bedroom TV")
	if err != nil || renamed.Name != "Bedroom TV" {
		t.Fatalf("Rename = %+v, %v", renamed, err)
	}
	if ev := nextEvent(t, evs); ev.Type != devices.EventRenamed || ev.Device.Name != "Bedroom TV" {
		t.Fatalf("event = %+v", ev)
	}
	if got, err := c.Device(ctx, dev.ID); err != nil || got.Name != "Bedroom TV" {
		t.Fatalf("Device = %+v, %v", got, err)
	}
	if err := c.Unlink(ctx, dev.ID); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, evs); ev.Type != devices.EventUnlinked || ev.Device.ID != dev.ID {
		t.Fatalf("event = %+v", ev)
	}
	_, err = c.Device(ctx, dev.ID)
	wantAPIError(t, err, http.StatusNotFound, devices.CodeNotFound)

	denied := e.pending(t, 10*time.Minute)
	if err := c.Deny(ctx, denied); err != nil {
		t.Fatal(err)
	}
	_, err = c.LinkRequest(ctx, "BCDF-GHJK")
	wantAPIError(t, err, http.StatusNotFound, devices.CodeInvalidCode)
	expired := e.pending(t, -time.Second)
	_, err = c.LinkRequest(ctx, expired)
	wantAPIError(t, err, http.StatusGone, devices.CodeExpiredCode)

	// The stream survives a dropped connection and says it reconnected.
	e.srv.CloseClientConnections()
	if ev := nextEvent(t, evs); ev.Type != devices.EventResync {
		t.Fatalf("event after reconnect = %+v", ev)
	}
	// Signing out (token revoked) ends the stream for good.
	e.tok.revoke("app")
	waitClosed(t, evs)
	_, err = c.Me(ctx)
	wantAPIError(t, err, http.StatusUnauthorized, devices.CodeUnauthorized)
}

func TestClientDeviceTokenForbidden(t *testing.T) {
	e := newAPIEnv(t)
	_, err := e.client("device").Devices(t.Context())
	wantAPIError(t, err, http.StatusForbidden, devices.CodeForbidden)
	if _, err := e.client("device").Events(t.Context()); err == nil {
		t.Fatal("device token opened the events stream")
	}
}

func nextEvent(t *testing.T, ch <-chan devices.Event) devices.Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("events channel closed")
		}
		return ev
	case <-time.After(30 * time.Second):
		t.Fatal("no event within 30 s")
	}
	return devices.Event{}
}

func waitClosed(t *testing.T, ch <-chan devices.Event) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("events channel still open")
		}
	}
}
