package sqlite

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/linkdesk/linkdesk/server/sealing"
	"github.com/linkdesk/linkdesk/server/store"
	"github.com/linkdesk/linkdesk/server/store/storetest"
)

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, sealing.KeySize) }

// The whole suite holds with encryption at rest on.
func TestConformanceWithSecretsKey(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		db, err := Open(context.Background(), filepath.Join(t.TempDir(), "linkd.db"), WithSecretsKey(testKey(1)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	})
}

const (
	secretTOTP = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	secretPEM  = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n"
	secretAT   = "access-token-id-in-the-clear"
)

// fill stores one of each secret: a TOTP secret, a signing key, an access token.
func fill(t *testing.T, db *DB) {
	t.Helper()
	ctx := context.Background()
	if err := db.CreateUser(ctx, store.User{Subject: "sub-1", Username: "alice", TOTPSecret: secretTOTP, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := db.AddSigningKey(ctx, store.SigningKey{ID: "k1", Algorithm: "RS256", PrivateKeyPEM: []byte(secretPEM), CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateGrant(ctx, store.Grant{ID: "g1", Subject: "sub-1", ClientID: "tv", Flow: store.FlowDevice, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateAccessToken(ctx, store.AccessToken{ID: secretAT, GrantID: "g1", Subject: "sub-1", ClientID: "tv",
		CreatedAt: t0, ExpiresAt: t0.Add(1e12)}); err != nil {
		t.Fatal(err)
	}
}

// onDisk checkpoints db and lists which secrets its file holds in the clear.
func onDisk(t *testing.T, db *DB, path string) []string {
	t.Helper()
	if err := db.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, s := range []string{secretTOTP, "PRIVATE KEY", secretAT} {
		if bytes.Contains(b, []byte(s)) {
			found = append(found, s)
		}
	}
	return found
}

// checkSecrets reads the secrets back through the store.
func checkSecrets(t *testing.T, db *DB) {
	t.Helper()
	ctx := context.Background()
	u, err := db.UserByUsername(ctx, "alice")
	if err != nil || u.TOTPSecret != secretTOTP {
		t.Errorf("user %+v %v", u, err)
	}
	keys, err := db.SigningKeys(ctx)
	if err != nil || len(keys) != 1 || string(keys[0].PrivateKeyPEM) != secretPEM {
		t.Errorf("signing keys %v %v", keys, err)
	}
	at, err := db.AccessTokenByID(ctx, secretAT, t0)
	if err != nil || at.ID != secretAT || at.GrantID != "g1" {
		t.Errorf("access token %+v %v", at, err)
	}
}

func TestSecretsEncryptedAtRest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "linkd.db")
	db, err := Open(context.Background(), path, WithSecretsKey(testKey(1)))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fill(t, db)
	if found := onDisk(t, db, path); len(found) > 0 {
		t.Errorf("file holds in the clear: %q", found)
	}
	checkSecrets(t, db)
}

// A database written without a key (as before encryption at rest) is encrypted when it
// is first opened with one; a different key then opens nothing, and no key at all
// says why.
func TestPlaintextEncryptedOnOpen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "linkd.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	fill(t, db)
	if found := onDisk(t, db, path); len(found) != 2 { // the access-token id is hashed even without a key
		t.Fatalf("keyless store should hold TOTP and key in the clear, holds %q", found)
	}
	db.Close()

	db, err = Open(ctx, path, WithSecretsKey(testKey(1)))
	if err != nil {
		t.Fatal(err)
	}
	if found := onDisk(t, db, path); len(found) > 0 {
		t.Errorf("after opening with a key the file holds in the clear: %q", found)
	}
	checkSecrets(t, db)
	db.Close()

	db, err = Open(ctx, path, WithSecretsKey(testKey(2)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.UserByUsername(ctx, "alice"); err == nil || !errors.Is(err, sealing.ErrOpen) {
		t.Errorf("TOTP secret opened with another key: %v", err)
	}
	if keys, err := db.SigningKeys(ctx); err != nil || len(keys) != 0 {
		t.Errorf("signing keys with another key: %v %v", keys, err)
	}
	db.Close()

	db, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.UserByUsername(ctx, "alice"); err == nil || !strings.Contains(err.Error(), "without the secrets key") {
		t.Errorf("keyless read of an encrypted secret: %v", err)
	}
}

// A data directory open to others is tightened when linkd's user owns it, and refused
// when another user does; the database file is made 0600.
func TestDataDirectoryModes(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "linkd.db")
	if err := os.WriteFile(path, nil, 0o644); err != nil { // an empty file is an empty database
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	for p, want := range map[string]os.FileMode{dir: 0o700, path: 0o600} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v %v, want %v", p, fi.Mode().Perm(), err, want)
		}
	}

	if os.Geteuid() != 0 {
		t.Skip("refusing another user's directory needs root to make one")
	}
	foreign := filepath.Join(t.TempDir(), "foreign")
	if err := os.Mkdir(foreign, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(foreign, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(foreign, 65534, 65534); err != nil {
		t.Skip("cannot chown:", err)
	}
	_, err = Open(ctx, filepath.Join(foreign, "linkd.db"))
	if err == nil || !strings.Contains(err.Error(), "belongs to another user") {
		t.Errorf("another user's open directory: %v", err)
	}
	if fi, _ := os.Stat(foreign); fi.Mode().Perm() != 0o755 {
		t.Errorf("another user's directory changed to %v", fi.Mode().Perm())
	}
}
