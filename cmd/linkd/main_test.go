package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linkdesk/linkdesk/server/store/sqlite"
)

// syncBuffer is a bytes.Buffer safe for one writer and one reader goroutine; Wrote
// tells the reader when something was written.
type syncBuffer struct {
	mu    sync.Mutex
	b     bytes.Buffer
	wrote chan struct{} // one slot: written since the last receive
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	n, err := s.write(p)
	select {
	case s.Wrote() <- struct{}{}:
	default:
	}
	return n, err
}

func (s *syncBuffer) write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// Wrote receives after each write (writes in between are merged).
func (s *syncBuffer) Wrote() chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.wrote == nil {
		s.wrote = make(chan struct{}, 1)
	}
	return s.wrote
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func runCmd(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestUsersAndClients(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := runCmd(t, "hunter2\n", "users", "add", "--data", dir, "--username", "alice", "--display-name", "Alice A", "--email", "a@example.com", "--password-stdin")
	if code != 0 || !strings.Contains(out, "added user alice") {
		t.Fatalf("users add: %d %q %q", code, out, errOut)
	}
	if code, _, errOut := runCmd(t, "x\n", "users", "add", "--data", dir, "--username", "alice", "--password-stdin"); code != exitFail || !strings.Contains(errOut, "already taken") {
		t.Fatalf("duplicate user: %d %q", code, errOut)
	}
	if code, _, errOut := runCmd(t, "", "users", "add", "--data", dir, "--username", "bob"); code != exitUsage || !strings.Contains(errOut, "--password-stdin") {
		t.Fatalf("missing --password-stdin: %d %q", code, errOut)
	}
	code, out, _ = runCmd(t, "", "users", "totp", "alice", "--data", dir)
	if code != 0 || !strings.HasPrefix(out, "otpauth://totp/") {
		t.Fatalf("users totp: %d %q", code, out)
	}
	u, _ := url.Parse(strings.TrimSpace(out))
	if u.Query().Get("secret") == "" {
		t.Fatalf("no secret in %q", out)
	}
	if code, _, errOut := runCmd(t, "", "users", "totp", "nobody", "--data", dir); code != exitFail || !strings.Contains(errOut, "no user") {
		t.Fatalf("totp unknown user: %d %q", code, errOut)
	}
	if code, out, errOut := runCmd(t, "", "clients", "add", "--data", dir, "--id", "tv-app", "--name", "TV App", "--scopes", "openid,offline_access"); code != 0 || !strings.Contains(out, "tv-app") {
		t.Fatalf("clients add: %d %q %q", code, out, errOut)
	}
	if code, _, _ := runCmd(t, "", "clients", "add", "--data", dir, "--id", "linkdesk", "--name", "x"); code != exitUsage {
		t.Fatalf("built-in client id accepted: %d", code)
	}
	if code, _, _ := runCmd(t, "", "frobnicate"); code != exitUsage {
		t.Fatalf("unknown command: %d", code)
	}

	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "linkd.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	user, err := db.UserByUsername(context.Background(), "alice")
	if err != nil || user.DisplayName != "Alice A" || user.Email != "a@example.com" || user.TOTPSecret == "" {
		t.Fatalf("stored user %+v %v", user, err)
	}
	c, err := db.ClientByID(context.Background(), "tv-app")
	if err != nil || c.Name != "TV App" || len(c.Scopes) != 2 {
		t.Fatalf("stored client %+v %v", c, err)
	}
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestServeWithLocalCA(t *testing.T) {
	dir := t.TempDir()
	addr := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--data", dir, "--addr", addr, "--dev", "--code-lifetime", "5m"}, strings.NewReader(""), &out, &errOut)
	}()
	deadline := time.After(20 * time.Second)
	for !strings.Contains(out.String(), "issuer:") {
		select {
		case code := <-done:
			t.Fatalf("serve exited %d: %s", code, errOut.String())
		case <-out.Wrote():
		case <-deadline:
			t.Fatalf("serve did not start: %q %q", out.String(), errOut.String())
		}
	}
	if !strings.Contains(out.String(), "CA certificate: "+filepath.Join(dir, "ca.pem")) || !strings.Contains(out.String(), "issuer: https://"+addr) {
		t.Fatalf("output %q", out.String())
	}
	pemBytes, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemBytes)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get("https://" + addr + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var disc map[string]any
	json.NewDecoder(resp.Body).Decode(&disc)
	resp.Body.Close()
	if disc["issuer"] != "https://"+addr || disc["device_authorization_endpoint"] != "https://"+addr+"/device_authorization" {
		t.Fatalf("discovery %v", disc)
	}
	// The dev client exists.
	resp, err = client.PostForm("https://"+addr+"/device_authorization", url.Values{"client_id": {"demo-tv"}, "scope": {"openid"}})
	if err != nil {
		t.Fatal(err)
	}
	var da map[string]any
	json.NewDecoder(resp.Body).Decode(&da)
	resp.Body.Close()
	if da["user_code"] == nil || da["expires_in"] != float64(300) {
		t.Fatalf("device authorization %v", da)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exited %d: %s", code, errOut.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not shut down")
	}
}
