package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
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
	// A stray word (a display name without its flag) is refused, not ignored.
	if code, _, errOut := runCmd(t, "x\n", "users", "add", "--data", dir, "--username", "bob", "Bob", "--password-stdin"); code != exitUsage ||
		!strings.Contains(errOut, `unexpected argument Bob`) {
		t.Fatalf("stray argument to users add: %d %q", code, errOut)
	}
	code, out, _ = runCmd(t, "", "users", "totp", "alice", "--data", dir)
	uri := regexp.MustCompile(`otpauth://totp/\S+`).FindString(out)
	if code != 0 || uri == "" {
		t.Fatalf("users totp: %d %q", code, out)
	}
	u, _ := url.Parse(uri)
	if u.Query().Get("secret") == "" || !strings.Contains(out, u.Query().Get("secret")) {
		t.Fatalf("no secret in %q", out)
	}
	// A QR code drawn with half blocks, and how to use it.
	if !strings.Contains(out, "█") || !strings.Contains(out, "authenticator app") || !strings.Contains(out, "--off") {
		t.Fatalf("users totp shows no QR code or instructions: %q", out)
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

	db := openData(t, dir)
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

// Ports handed out by freePort, never handed out twice.
var (
	portsMu  sync.Mutex
	portsOut = map[int]bool{}
)

// freePort returns a free address on 127.0.0.1 for a linkd that is stopped and started
// again on it. The port comes from below the kernel's ephemeral range (32768 and up
// on Linux), which every outgoing connection on the machine draws from: a port picked
// there was taken between a SIGKILL and the restart on a busy CI machine ("address
// already in use"). Below it, only another test choosing the same way could take it,
// and this process never hands out one port twice (replicas started together would
// otherwise race for one drawn twice before either bound it).
func freePort(t *testing.T) string {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 100 {
		port := 20000 + rand.IntN(12000)
		if portsOut[port] {
			continue
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue // in use
		}
		ln.Close()
		portsOut[port] = true
		return addr
	}
	t.Fatal("no free port between 20000 and 32000 on 127.0.0.1")
	return ""
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
	deadline := time.After(60 * time.Second)
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
	case <-time.After(60 * time.Second):
		t.Fatal("serve did not shut down")
	}
}

func TestHelpPerCommand(t *testing.T) {
	code, out, _ := runCmd(t, "", "--help")
	if code != 0 {
		t.Fatalf("--help: %d", code)
	}
	for _, c := range []string{"serve", "users add", "users list", "users totp", "clients add"} {
		if !strings.Contains(out, "linkd "+c) {
			t.Errorf("overview lacks %q: %s", c, out)
		}
	}
	for _, tc := range []struct {
		args  []string
		wants []string
	}{
		{[]string{"serve", "--help"}, []string{"usage: linkd serve", "-addr", "listen on", "-issuer", "-tls-cert", "-dev", "demo"}},
		{[]string{"users", "add", "-h"}, []string{"usage: linkd users add", "-username", "-password-stdin", "standard input"}},
		{[]string{"users", "list", "--help"}, []string{"usage: linkd users list", "-data"}},
		{[]string{"users", "totp", "--help"}, []string{"usage: linkd users totp", "-off", "password alone"}},
		{[]string{"clients", "add", "--help"}, []string{"usage: linkd clients add", "-logo-uri", "-scopes"}},
	} {
		code, out, errOut := runCmd(t, "", tc.args...)
		if code != 0 || errOut != "" {
			t.Errorf("%v: %d %q", tc.args, code, errOut)
		}
		for _, w := range tc.wants {
			if !strings.Contains(out, w) {
				t.Errorf("%v: help lacks %q:\n%s", tc.args, w, out)
			}
		}
	}
	// Each command's help differs: no more one usage for all.
	_, serveHelp, _ := runCmd(t, "", "serve", "--help")
	_, totpHelp, _ := runCmd(t, "", "users", "totp", "--help")
	if strings.Contains(totpHelp, "-tls-cert") || strings.Contains(serveHelp, "-off") {
		t.Error("commands share one help text")
	}
	// A wrong flag is a usage error with that command's help on stderr.
	code, _, errOut := runCmd(t, "", "users", "list", "--bogus")
	if code != exitUsage || !strings.Contains(errOut, "-bogus") || !strings.Contains(errOut, "usage: linkd users list") {
		t.Fatalf("wrong flag: %d %q", code, errOut)
	}
}

func TestUsersListAndTOTPOff(t *testing.T) {
	dir := t.TempDir()
	if code, _, _ := runCmd(t, "", "users", "list", "--data", dir); code != 0 {
		t.Fatalf("list of none: %d", code)
	}
	for _, name := range []string{"zoe", "adam"} {
		if code, _, errOut := runCmd(t, "pw\n", "users", "add", "--data", dir, "--username", name, "--email", name+"@example.com", "--password-stdin"); code != 0 {
			t.Fatalf("add %s: %s", name, errOut)
		}
	}
	if code, _, errOut := runCmd(t, "", "users", "totp", "zoe", "--data", dir); code != 0 {
		t.Fatal(errOut)
	}
	code, out, _ := runCmd(t, "", "users", "list", "--data", dir)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[1], "adam") || !strings.HasPrefix(lines[2], "zoe") ||
		!strings.Contains(lines[1], "off") || !strings.Contains(lines[2], " on ") || !strings.Contains(lines[2], "zoe@example.com") {
		t.Fatalf("users list: %d\n%s", code, out)
	}

	code, out, errOut := runCmd(t, "", "users", "totp", "--off", "zoe", "--data", dir)
	if code != 0 || !strings.Contains(out, "off for zoe") {
		t.Fatalf("totp --off: %d %q %q", code, out, errOut)
	}
	db := openData(t, dir)
	u, err := db.UserByUsername(context.Background(), "zoe")
	db.Close()
	if err != nil || u.TOTPSecret != "" {
		t.Fatalf("after --off: %+v %v", u, err)
	}
	if code, _, errOut := runCmd(t, "", "users", "totp", "--off", "nobody", "--data", dir); code != exitFail || !strings.Contains(errOut, "no user") {
		t.Fatalf("--off unknown user: %d %q", code, errOut)
	}
}
