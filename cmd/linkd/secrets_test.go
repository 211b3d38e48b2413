package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/linkdesk/linkdesk/server/sealing"
	"github.com/linkdesk/linkdesk/server/store/sqlite"
)

// openData opens the database in the data directory dir with its secrets key, as the
// linkd commands do.
func openData(t *testing.T, dir string) *sqlite.DB {
	t.Helper()
	key, err := sealing.LoadOrCreateKey(filepath.Join(dir, "secrets.key"))
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "linkd.db"),
		sqlite.WithSecretsKey(sealing.Derive(key, sealing.LabelStore)))
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// linkd keys rotate adds a signing key that becomes the newest; the old one stays
// until retired.
func TestKeysRotate(t *testing.T) {
	dir := t.TempDir()
	if code, out, errOut := runCmd(t, "", "keys", "rotate", "--data", dir); code != 0 || !strings.Contains(out, "new signing key") {
		t.Fatalf("keys rotate: %d %q %q", code, out, errOut)
	}
	code, out, errOut := runCmd(t, "", "keys", "rotate", "--data", dir)
	if code != 0 {
		t.Fatalf("keys rotate again: %d %q %q", code, out, errOut)
	}
	db := openData(t, dir)
	defer db.Close()
	keys, err := db.SigningKeys(context.Background())
	if err != nil || len(keys) != 2 || !strings.Contains(out, keys[0].ID) {
		t.Fatalf("keys after two rotations: %d %v (printed %q)", len(keys), err, out)
	}
	if code, _, _ := runCmd(t, "", "keys", "rotate", "extra", "--data", dir); code != exitUsage {
		t.Errorf("unexpected argument accepted: %d", code)
	}
}

// --trusted-proxy takes CIDRs and addresses, repeated or comma-separated, and refuses
// anything else as a usage error.
func TestTrustedProxyFlag(t *testing.T) {
	code, _, errOut := runCmd(t, "", "serve", "--data", t.TempDir(), "--trusted-proxy", "10.0.0.0/8,nonsense")
	if code != exitUsage || !strings.Contains(errOut, "--trusted-proxy") {
		t.Fatalf("bad --trusted-proxy: %d %q", code, errOut)
	}
}

// The commands make an existing data directory private and keep the database and the
// secrets key 0600, whatever the umask left.
func TestDataDirectoryMadePrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCmd(t, "pw-long-enough\n", "users", "add", "--data", dir, "--username", "ann", "--password-stdin"); code != 0 {
		t.Fatalf("users add: %d %q %q", code, out, errOut)
	}
	for name, want := range map[string]os.FileMode{"": 0o700, "linkd.db": 0o600, "secrets.key": 0o600} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm() != want {
			t.Errorf("%q: %v %v, want %v", name, fi.Mode().Perm(), err, want)
		}
	}
}
