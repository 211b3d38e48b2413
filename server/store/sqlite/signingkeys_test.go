package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/linkdesk/linkdesk/server/store"
)

// A database whose only key does not open with this store's secrets key (restored
// without its key file) gets a new key from EnsureSigningKey, and the old row stays.
func TestEnsureSigningKeyUnusable(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "linkd.db")
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	key := func(id string) store.SigningKey {
		return store.SigningKey{ID: id, Algorithm: "RS256", PrivateKeyPEM: []byte("pem " + id), CreatedAt: t0}
	}
	db, err := Open(ctx, path, WithSecretsKey(testKey(1)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.EnsureSigningKey(ctx, key("k1")); err != nil {
		t.Fatal(err)
	}
	db.Close()

	db, err = Open(ctx, path, WithSecretsKey(testKey(2)))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	keys, err := db.EnsureSigningKey(ctx, key("k2"))
	if err != nil || len(keys) != 1 || keys[0].ID != "k2" || string(keys[0].PrivateKeyPEM) != "pem k2" {
		t.Fatalf("EnsureSigningKey with only an unusable key = %v, %v; want the new key k2", keys, err)
	}
	var rows int
	if err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM signing_keys`).Scan(&rows); err != nil || rows != 2 {
		t.Errorf("signing_keys holds %d rows (%v), want the unusable k1 kept beside k2", rows, err)
	}
}
