package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// shortSocketDir is a private directory with a path short enough for a Unix
// socket (t.TempDir can exceed the 108-byte limit).
func shortSocketDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ld")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// TestHandOffReachesRunningInstance: a later launch's link reaches the running
// instance, and the launch learns it was taken.
func TestHandOffReachesRunningInstance(t *testing.T) {
	path := filepath.Join(shortSocketDir(t), "app.sock")
	got := make(chan string, 2)
	ln, err := listenForLinks(path, func(l string) { got <- l })
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	link := "linkdesk://link?issuer=https%3A%2F%2Flink.example.com&user_code=BCDF-GHJK"
	if err := handOff(path, link); err != nil {
		t.Fatalf("handOff: %v", err)
	}
	if err := handOff(path, ""); err != nil {
		t.Fatalf("handOff without a link: %v", err)
	}
	for _, want := range []string{link, ""} {
		select {
		case l := <-got:
			if l != want {
				t.Fatalf("running instance got %q, want %q", l, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("running instance got nothing")
		}
	}

	// A second instance does not take over the socket.
	if _, err := listenForLinks(path, func(string) {}); !errors.Is(err, errAlreadyRunning) {
		t.Fatalf("second listen: %v, want errAlreadyRunning", err)
	}
}

// TestHandOffWithoutInstance: with nobody listening, and with a socket file a
// crashed instance left behind, the launch becomes the instance itself.
func TestHandOffWithoutInstance(t *testing.T) {
	path := filepath.Join(shortSocketDir(t), "app.sock")
	if err := handOff(path, "x"); !errors.Is(err, errNoInstance) {
		t.Fatalf("handOff to nobody: %v, want errNoInstance", err)
	}
	if err := os.WriteFile(path, nil, 0o600); err != nil { // the stale leftover
		t.Fatal(err)
	}
	if err := handOff(path, "x"); !errors.Is(err, errNoInstance) {
		t.Fatalf("handOff to a stale socket: %v, want errNoInstance", err)
	}
	got := make(chan string, 1)
	ln, err := listenForLinks(path, func(l string) { got <- l })
	if err != nil {
		t.Fatalf("listen over a stale socket: %v", err)
	}
	if err := handOff(path, "second"); err != nil {
		t.Fatal(err)
	}
	if l := <-got; l != "second" {
		t.Fatalf("got %q", l)
	}
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket left behind after Close: %v", err)
	}
}

// TestInstanceSocketIsPrivate: only this user can reach the socket's directory,
// so nobody else can push links into the app.
func TestInstanceSocketIsPrivate(t *testing.T) {
	dir := shortSocketDir(t)
	t.Setenv("XDG_RUNTIME_DIR", dir)
	if err := os.MkdirAll(filepath.Join(dir, "linkdesk"), 0o777); err != nil {
		t.Fatal(err)
	}
	path, err := instanceSocketPath()
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		t.Fatalf("socket directory mode %o, want 700", perm)
	}
}

// TestRegisterSchemeMakesLinkdeskTheHandler registers with the real xdg-mime
// in a private data and config home, and asks xdg-mime back.
func TestRegisterSchemeMakesLinkdeskTheHandler(t *testing.T) {
	if _, err := exec.LookPath("xdg-mime"); err != nil {
		t.Skip("xdg-mime is not installed (Debian package xdg-utils)")
	}
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_DATA_HOME", filepath.Join(home, "data"))
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, "config"))
	t.Setenv("XDG_CURRENT_DESKTOP", "")
	exe := "/opt/Link desk/linkdesk"
	entry, err := registerScheme(exe)
	if err != nil {
		t.Fatalf("registerScheme: %v", err)
	}
	body, err := os.ReadFile(entry)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"MimeType=x-scheme-handler/linkdesk;", `Exec="/opt/Link desk/linkdesk" %u`, "Icon=" + appID} {
		if !strings.Contains(string(body), want) {
			t.Errorf("desktop entry lacks %q:\n%s", want, body)
		}
	}
	if plain := string(desktopEntry("/usr/bin/linkdesk")); !strings.Contains(plain, "Exec=/usr/bin/linkdesk %u\n") {
		t.Errorf("a plain path should not be quoted:\n%s", plain)
	}
	out, err := exec.Command("xdg-mime", "query", "default", schemeMime).Output()
	if err != nil {
		t.Fatalf("xdg-mime query: %v", err)
	}
	if got := strings.TrimSpace(string(out)); got != desktopFileName {
		t.Fatalf("xdg-mime says linkdesk:// opens %q, want %q", got, desktopFileName)
	}
}
