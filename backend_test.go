package main

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zalando/go-keyring"

	"github.com/linkdesk/linkdesk/auth"
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
	return newBackend(auth.NewTokenStore(auth.OSKeyring(), 5*time.Second), nil, func(string) error { return nil })
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
