package desktop

import (
	"errors"
	"os"
	"path/filepath"
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
	ln, err := ListenForLinks(path, func(l string) { got <- l })
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	link := "linkdesk://link?issuer=https%3A%2F%2Flink.example.com&user_code=BCDF-GHJK"
	if err := HandOff(path, link); err != nil {
		t.Fatalf("handOff: %v", err)
	}
	if err := HandOff(path, ""); err != nil {
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
	if _, err := ListenForLinks(path, func(string) {}); !errors.Is(err, ErrAlreadyRunning) {
		t.Fatalf("second listen: %v, want ErrAlreadyRunning", err)
	}
}

// TestHandOffWithoutInstance: with nobody listening, and with a socket file a
// crashed instance left behind, the launch becomes the instance itself.
func TestHandOffWithoutInstance(t *testing.T) {
	path := filepath.Join(shortSocketDir(t), "app.sock")
	if err := HandOff(path, "x"); !errors.Is(err, ErrNoInstance) {
		t.Fatalf("handOff to nobody: %v, want ErrNoInstance", err)
	}
	if err := os.WriteFile(path, nil, 0o600); err != nil { // the stale leftover
		t.Fatal(err)
	}
	if err := HandOff(path, "x"); !errors.Is(err, ErrNoInstance) {
		t.Fatalf("handOff to a stale socket: %v, want ErrNoInstance", err)
	}
	got := make(chan string, 1)
	ln, err := ListenForLinks(path, func(l string) { got <- l })
	if err != nil {
		t.Fatalf("listen over a stale socket: %v", err)
	}
	if err := HandOff(path, "second"); err != nil {
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
	path, err := SocketPath()
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
