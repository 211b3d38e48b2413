package sealing

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestLoadOrCreateKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secrets.key")
	k1, err := LoadOrCreateKey(path)
	if err != nil || len(k1) != KeySize {
		t.Fatalf("create: %d bytes, %v", len(k1), err)
	}
	if fi, err := os.Stat(path); err != nil || (runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600) {
		t.Fatalf("key file mode %v %v", fi.Mode().Perm(), err)
	}
	k2, err := LoadOrCreateKey(path)
	if err != nil || !bytes.Equal(k1, k2) {
		t.Fatalf("second load gave another key (%v)", err)
	}
	if err := os.WriteFile(path, []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKey(path); err == nil {
		t.Error("a key file of the wrong size was accepted")
	}
	if b, _ := os.ReadFile(path); string(b) != "short" {
		t.Error("a key file of the wrong size was replaced")
	}
}

func TestDeriveAndBox(t *testing.T) {
	secret := bytes.Repeat([]byte{7}, KeySize)
	a, b := Derive(secret, LabelAccessTokens), Derive(secret, LabelStore)
	if bytes.Equal(a, b) || bytes.Equal(a, secret) || !bytes.Equal(a, Derive(secret, LabelAccessTokens)) {
		t.Fatal("derived keys must differ per label and be stable")
	}
	box, err := NewBox(b)
	if err != nil {
		t.Fatal(err)
	}
	sealed := box.Seal([]byte("JBSWY3DP"), []byte("totp\x00sub-1"))
	if bytes.Contains(sealed, []byte("JBSWY3DP")) {
		t.Fatal("plaintext visible in the sealed value")
	}
	if plain, err := box.Open(sealed, []byte("totp\x00sub-1")); err != nil || string(plain) != "JBSWY3DP" {
		t.Fatalf("open: %q %v", plain, err)
	}
	if _, err := box.Open(sealed, []byte("totp\x00sub-2")); !errors.Is(err, ErrOpen) {
		t.Errorf("opened under another row's context: %v", err)
	}
	other, _ := NewBox(a)
	if _, err := other.Open(sealed, []byte("totp\x00sub-1")); !errors.Is(err, ErrOpen) {
		t.Errorf("opened with another key: %v", err)
	}
	if _, err := NewBox([]byte("short")); err == nil {
		t.Error("short key accepted")
	}
}

// TestPrivateDirRefusesSharedDir: a data directory like /tmp (world-writable, sticky) is
// refused and left as it was, never tightened to 0700, which would lock everyone else out
// of it; a directory of its own that is open to others is tightened.
func TestPrivateDirRefusesSharedDir(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("modes do not describe access on Windows")
	}
	shared := filepath.Join(t.TempDir(), "shared")
	if err := os.Mkdir(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	if err := PrivateDir(shared); err == nil || !strings.Contains(err.Error(), "shared directory") {
		t.Fatalf("shared dir: %v", err)
	}
	if fi, err := os.Stat(shared); err != nil || fi.Mode().Perm() != 0o777 {
		t.Fatalf("shared dir was changed: %v %v", fi.Mode(), err)
	}
	own := filepath.Join(t.TempDir(), "own")
	if err := os.Mkdir(own, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(own, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := PrivateDir(own); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(own); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("own dir: %v %v", fi.Mode(), err)
	}
}
