package main

import (
	"fyne.io/fyne/v2/test"

	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zalando/go-keyring"
	"golang.org/x/oauth2"

	"github.com/linkdesk/linkdesk/auth"
	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest"
	"github.com/linkdesk/linkdesk/ui"
)

// writeCA saves srv's certificate as a PEM CA file.
func writeCA(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(path, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func newTestBackend() *backend {
	keyring.MockInit()
	return newBackend(auth.NewTokenStore(auth.OSKeyring(), auth.DefaultKeyringTimeout), nil, func(string) error { return nil })
}

// TestConnectExplainsFailures drives the setup path (backend.Connect, then
// ui.Explain) against real HTTP servers and checks each failure is worded plainly.
func TestConnectExplainsFailures(t *testing.T) {
	notOIDC := httptest.NewTLSServer(http.NotFoundHandler())
	defer notOIDC.Close()
	var discovery *httptest.Server
	discovery = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/openid-configuration" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{
			"issuer":                 discovery.URL,
			"authorization_endpoint": discovery.URL + "/authorize",
			"token_endpoint":         discovery.URL + "/oauth/token",
		})
	}))
	defer discovery.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := ln.Addr().String()
	ln.Close()

	cases := []struct {
		name, issuer, caFile, want string
	}{
		{"not https", "http://link.example.com", "", "must start with https://"},
		{"unreachable", "https://" + closedAddr, "", "Can't reach"},
		{"bad certificate", notOIDC.URL, "", "certificate isn't trusted"},
		{"not a Linkdesk service", notOIDC.URL, writeCA(t, notOIDC), "isn't a Linkdesk"},
		{"unreadable CA file", discovery.URL, filepath.Join(t.TempDir(), "missing.pem"), "can't use that CA file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			be := newTestBackend()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err := be.Connect(ctx, c.issuer, c.caFile)
			if err == nil {
				t.Fatal("Connect succeeded")
			}
			if got := ui.Explain(err); !strings.Contains(got, c.want) {
				t.Fatalf("Explain = %q, want %q (err %v)", got, c.want, err)
			}
		})
	}

	be := newTestBackend()
	if err := be.Connect(context.Background(), discovery.URL, writeCA(t, discovery)); err != nil {
		t.Fatalf("Connect to a real discovery document: %v", err)
	}
	// Connected but nobody signed in: the API calls say so plainly.
	if _, err := be.Devices(context.Background()); !strings.Contains(ui.Explain(err), "signed out") {
		t.Fatalf("Devices before sign-in: %v", err)
	}
	list, current, err := be.Accounts(context.Background())
	if err != nil || len(list) != 0 || current != "" {
		t.Fatalf("Accounts = %v %q %v", list, current, err)
	}
}

// scriptedBrowser returns an openBrowser function that signs in as username on
// linkd's login page and follows the redirect to the app's loopback listener,
// as a person in a real browser would. A sign-in that goes wrong fails the test.
func scriptedBrowser(t *testing.T, in *linkdtest.Instance, username, password string) func(string) error {
	l := in.Browser().Launcher(username, password, nil)
	t.Cleanup(func() {
		if _, err := l.Wait(); err != nil {
			t.Errorf("browser: %v", err)
		}
	})
	return l.Open
}

// TestBackendAgainstRealLinkd signs in through the loopback flow, lists and
// switches accounts, looks up and approves a device's code, and signs out,
// all through the adapter main.go gives the screens.
func TestBackendAgainstRealLinkd(t *testing.T) {
	in := linkdtest.Start(t, linkdtest.Options{})
	in.CreateUser(t, "ada", "pw-ada-123")
	in.CreateUser(t, "grace", "pw-grace-123")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	be := newTestBackend()
	if err := be.Connect(ctx, in.Issuer, in.CAFile); err != nil {
		t.Fatalf("connect: %v", err)
	}
	be.openBrowser = scriptedBrowser(t, in, "ada", "pw-ada-123")
	be.sessions.OpenBrowser = be.openBrowser
	ada, err := be.SignIn(ctx)
	if err != nil || ada.Username != "ada" {
		t.Fatalf("sign in: %+v %v", ada, err)
	}
	be.sessions.OpenBrowser = scriptedBrowser(t, in, "grace", "pw-grace-123")
	grace, err := be.SignIn(ctx)
	if err != nil || grace.Username != "grace" {
		t.Fatalf("second sign in: %+v %v", grace, err)
	}
	list, current, err := be.Accounts(ctx)
	if err != nil || len(list) != 2 || current != grace.Subject {
		t.Fatalf("accounts = %v, current %q, %v", list, current, err)
	}
	if err := be.Switch(ctx, ada.Subject); err != nil {
		t.Fatalf("switch: %v", err)
	}

	// A kiosk asks for a code; ada approves it through the adapter.
	conf := &oauth2.Config{ClientID: devices.KioskClientID, Endpoint: in.Endpoint(), Scopes: []string{"openid", "offline_access"}}
	da, err := conf.DeviceAuth(in.Context(ctx), oauth2.SetAuthURLParam(devices.ParamDeviceName, "Desk kiosk"))
	if err != nil {
		t.Fatal(err)
	}
	code, err := devices.ParseCodeInput(da.VerificationURIComplete, in.Issuer)
	if err != nil {
		t.Fatal(err)
	}
	req, err := be.LinkRequest(ctx, code)
	if err != nil || req.Device.Name != "Desk kiosk" {
		t.Fatalf("link request: %+v %v", req, err)
	}
	if _, err := be.ApproveWith(ctx, code, devices.ApproveRequest{}); err != nil {
		t.Fatalf("approve: %v", err)
	}
	if _, err := conf.DeviceAccessToken(in.Context(ctx), da); err != nil {
		t.Fatalf("device token: %v", err)
	}
	devs, err := be.Devices(ctx)
	if err != nil || len(devs) != 1 {
		t.Fatalf("ada's devices: %v %v", devs, err)
	}

	// Signing ada out leaves grace, who becomes current.
	if err := be.SignOut(ctx, ada.Subject); err != nil {
		t.Fatalf("sign out: %v", err)
	}
	list, current, err = be.Accounts(ctx)
	if err != nil || len(list) != 1 || current != grace.Subject {
		t.Fatalf("after sign-out: %v, current %q, %v", list, current, err)
	}
	if devs, err := be.Devices(ctx); err != nil || len(devs) != 0 {
		t.Fatalf("grace sees %v %v", devs, err)
	}
}

// brokenKeyring refuses everything, like a Secret Service that isn't running.
type brokenKeyring struct{}

func (brokenKeyring) Get(service, user string) (string, error) {
	return "", errors.New("org.freedesktop.secrets was not provided")
}
func (brokenKeyring) Set(service, user, pw string) error {
	return errors.New("org.freedesktop.secrets was not provided")
}
func (brokenKeyring) Delete(service, user string) error {
	return errors.New("org.freedesktop.secrets was not provided")
}

func TestBackendKeyringFailureIsExplained(t *testing.T) {
	in := linkdtest.Start(t, linkdtest.Options{})
	in.CreateUser(t, "ada", "pw-ada-123")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	be := newBackend(auth.NewTokenStore(brokenKeyring{}, auth.DefaultKeyringTimeout), nil, scriptedBrowser(t, in, "ada", "pw-ada-123"))
	if err := be.Connect(ctx, in.Issuer, in.CAFile); err != nil {
		t.Fatal(err)
	}
	_, err := be.SignIn(ctx)
	if got := ui.Explain(err); !strings.Contains(got, "keyring") {
		t.Fatalf("sign-in with a broken keyring: %q (%v)", got, err)
	}
}

// Without a keyring: the probe says so before any browser opens; after
// RememberForThisRunOnly a real sign-in works, is listed, can sign out, and its
// account is not remembered in the preferences.
func TestBackendSignsInForThisRunOnlyWithoutKeyring(t *testing.T) {
	in := linkdtest.Start(t, linkdtest.Options{})
	in.CreateUser(t, "ada", "pw-ada-123")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	prefs := test.NewTempApp(t).Preferences()
	opened := 0
	browse := scriptedBrowser(t, in, "ada", "pw-ada-123")
	be := newBackend(auth.NewTokenStore(brokenKeyring{}, auth.DefaultKeyringTimeout), prefs, func(u string) error { opened++; return browse(u) })
	if err := be.Connect(ctx, in.Issuer, in.CAFile); err != nil {
		t.Fatal(err)
	}
	if err := be.CheckKeyring(ctx); !errors.Is(err, auth.ErrKeyringUnavailable) || !be.RemembersSignIns() {
		t.Fatalf("probe: %v, remembers %v", err, be.RemembersSignIns())
	}
	be.RememberForThisRunOnly()
	if err := be.CheckKeyring(ctx); err != nil || be.RemembersSignIns() {
		t.Fatalf("after choosing this run only: probe %v, remembers %v", err, be.RemembersSignIns())
	}
	ada, err := be.SignIn(ctx)
	if err != nil || ada.Username != "ada" || opened != 1 {
		t.Fatalf("sign in: %+v %v (browser opened %d times)", ada, err, opened)
	}
	list, current, err := be.Accounts(ctx)
	if err != nil || len(list) != 1 || current != ada.Subject {
		t.Fatalf("accounts = %v, current %q, %v", list, current, err)
	}
	if devs, err := be.Devices(ctx); err != nil || len(devs) != 0 {
		t.Fatalf("devices: %v %v", devs, err)
	}
	if got := prefs.String(prefAccount); got != "" {
		t.Fatalf("a this-run-only account was remembered: %q", got)
	}
	if err := be.SignOut(ctx, ada.Subject); err != nil {
		t.Fatal(err)
	}
	if list, _, err := be.Accounts(ctx); err != nil || len(list) != 0 {
		t.Fatalf("after sign-out: %v %v", list, err)
	}
}
