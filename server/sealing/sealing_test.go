package sealing

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
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
