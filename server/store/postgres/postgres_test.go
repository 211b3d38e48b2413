package postgres

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linkdesk/linkdesk/server/sealing"
	"github.com/linkdesk/linkdesk/server/store/internal/stored"

	"github.com/linkdesk/linkdesk/server/store"
	"github.com/linkdesk/linkdesk/server/store/postgres/pgtest"
	"github.com/linkdesk/linkdesk/server/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// openTemp opens a store on a fresh database of the test cluster.
func openTemp(t testing.TB, opt ...Option) (*DB, string) {
	t.Helper()
	url := pgtest.DB(t)
	db, err := Open(context.Background(), url, opt...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, url
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		db, _ := openTemp(t)
		return db
	})
}

func TestConformanceWithSecretsKey(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		db, _ := openTemp(t, WithSecretsKey(bytes.Repeat([]byte{7}, sealing.KeySize)))
		return db
	})
}

// Replicas starting at the same moment on an empty database apply each migration
// exactly once (the advisory lock) and all come up.
func TestConcurrentMigrations(t *testing.T) {
	url := pgtest.DB(t)
	ctx := context.Background()
	const n = 6
	dbs := make([]*DB, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { dbs[i], errs[i] = Open(ctx, url) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		defer dbs[i].Close()
	}
	var rows, distinct int
	if err := dbs[0].db.QueryRowContext(ctx, `SELECT COUNT(*), COUNT(DISTINCT version) FROM schema_migrations`).Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	if rows != len(migrations) || distinct != len(migrations) {
		t.Fatalf("schema_migrations holds %d rows (%d versions), want %d once each", rows, distinct, len(migrations))
	}
	for i, db := range dbs {
		if v, err := db.SchemaVersion(ctx); err != nil || v != len(migrations) {
			t.Errorf("replica %d: schema version %d, %v", i, v, err)
		}
	}
}

// A database written by a newer linkd is refused rather than guessed at.
func TestNewerSchemaRefused(t *testing.T) {
	db, url := openTemp(t)
	if _, err := db.db.Exec(`INSERT INTO schema_migrations (version, applied_at) VALUES ($1, 0)`, len(migrations)+1); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), url); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Open on a newer schema: %v", err)
	}
}

// Two replicas (two store handles, each with its own connections) approving one code
// at once: exactly one approval wins, the rest hear store.ErrAlreadyUsed, and exactly
// one grant exists.
func TestTwoReplicasApproveOnce(t *testing.T) {
	a, url := openTemp(t)
	b, err := Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	if err := a.CreateDeviceAuth(ctx, store.DeviceAuth{DeviceCode: "dc", UserCode: "BCDFGHJK", ClientID: "tv",
		CreatedAt: t0, ExpiresAt: t0.Add(10 * time.Minute), Interval: time.Second}); err != nil {
		t.Fatal(err)
	}
	const n = 16
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		s := store.Store(a)
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() { _, errs[i] = s.ApproveDeviceAuth(ctx, "BCDFGHJK", "sub", "", t0.Add(time.Minute)) })
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, store.ErrAlreadyUsed):
			t.Errorf("approval: %v", err)
		}
	}
	gs, err := b.ListGrants(ctx, "sub", store.FlowDevice)
	if err != nil {
		t.Fatal(err)
	}
	if won != 1 || len(gs) != 1 {
		t.Fatalf("%d approvals won, %d grants; want 1 and 1", won, len(gs))
	}
}

// Secrets at rest are stored as the SQLite store stores them: TOTP secrets and signing
// keys encrypted, device codes, refresh tokens and access-token ids only as SHA-256.
func TestSecretsAtRest(t *testing.T) {
	db, _ := openTemp(t, WithSecretsKey(bytes.Repeat([]byte{7}, sealing.KeySize)))
	ctx := context.Background()
	const totp, pem = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "-----BEGIN PRIVATE KEY-----\nsecret\n"
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(db.CreateUser(ctx, store.User{Subject: "s", Username: "u", TOTPSecret: totp}))
	must(db.AddSigningKey(ctx, store.SigningKey{ID: "k", Algorithm: "RS256", PrivateKeyPEM: []byte(pem)}))
	must(db.CreateGrant(ctx, store.Grant{ID: "g", Subject: "s", ClientID: "c", Flow: store.FlowDevice}))
	must(db.CreateAccessToken(ctx, store.AccessToken{ID: "access-id-in-clear", GrantID: "g", ExpiresAt: time.Now().Add(time.Hour)}))
	must(db.CreateRefreshToken(ctx, store.RefreshToken{Token: "refresh-in-clear", GrantID: "g", ExpiresAt: time.Now().Add(time.Hour)}))
	var storedTOTP, accessID, refreshHash string
	var storedKey []byte
	must(db.db.QueryRow(`SELECT totp_secret FROM users`).Scan(&storedTOTP))
	must(db.db.QueryRow(`SELECT private_key_pem FROM signing_keys`).Scan(&storedKey))
	must(db.db.QueryRow(`SELECT id FROM access_tokens`).Scan(&accessID))
	must(db.db.QueryRow(`SELECT token_hash FROM refresh_tokens`).Scan(&refreshHash))
	if !strings.HasPrefix(storedTOTP, stored.SealedTOTPPrefix) || strings.Contains(storedTOTP, totp) {
		t.Errorf("TOTP secret stored as %q", storedTOTP)
	}
	if !stored.KeySealed(storedKey) || bytes.Contains(storedKey, []byte("secret")) {
		t.Errorf("signing key stored in plaintext")
	}
	if accessID != stored.Hash("access-id-in-clear") || refreshHash != stored.Hash("refresh-in-clear") {
		t.Errorf("token ids stored as %q, %q; want their SHA-256", accessID, refreshHash)
	}
	u, err := db.UserBySubject(ctx, "s")
	must(err)
	keys, err := db.SigningKeys(ctx)
	must(err)
	if u.TOTPSecret != totp || len(keys) != 1 || string(keys[0].PrivateKeyPEM) != pem {
		t.Errorf("secrets do not read back: %q, %v", u.TOTPSecret, keys)
	}
}
