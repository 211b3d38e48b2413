package storetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/linkdesk/linkdesk/server/store"
)

// testKey is a signing key for the suite; the store never parses the PEM.
func testKey(id string, created time.Time) store.SigningKey {
	return store.SigningKey{ID: id, Algorithm: "RS256",
		PrivateKeyPEM: []byte("-----BEGIN PRIVATE KEY-----\n" + id + "\n"), CreatedAt: created}
}

func keyIDs(keys []store.SigningKey) []string {
	var ids []string
	for _, k := range keys {
		ids = append(ids, k.ID)
	}
	return ids
}

// testEnsureSigningKey: the first ensure adds its key and returns it; later ones add
// nothing and return the stored keys, newest first.
func testEnsureSigningKey(t *testing.T, s store.Store) {
	ctx := context.Background()
	keys, err := s.EnsureSigningKey(ctx, testKey("k1", base))
	must(t, err)
	if got := keyIDs(keys); !slices.Equal(got, []string{"k1"}) {
		t.Fatalf("EnsureSigningKey on an empty store = %v, want [k1]", got)
	}
	if string(keys[0].PrivateKeyPEM) != "-----BEGIN PRIVATE KEY-----\nk1\n" || keys[0].Algorithm != "RS256" {
		t.Errorf("ensured key = %+v", keys[0])
	}
	sameTime(t, "CreatedAt", keys[0].CreatedAt, base)
	sameTime(t, "NotBefore (added as zero)", keys[0].NotBefore, base)

	keys, err = s.EnsureSigningKey(ctx, testKey("k2", base.Add(time.Hour)))
	must(t, err)
	if got := keyIDs(keys); !slices.Equal(got, []string{"k1"}) {
		t.Fatalf("EnsureSigningKey with a key stored = %v, want [k1]", got)
	}
	// A rotation's key, published before it signs, keeps its NotBefore.
	rotated := testKey("k3", base.Add(2*time.Hour))
	rotated.NotBefore = base.Add(2*time.Hour + 30*time.Second)
	must(t, s.AddSigningKey(ctx, rotated))
	keys, err = s.EnsureSigningKey(ctx, testKey("k4", base.Add(3*time.Hour)))
	must(t, err)
	if got := keyIDs(keys); !slices.Equal(got, []string{"k3", "k1"}) {
		t.Fatalf("EnsureSigningKey after a rotation = %v, want [k3 k1]", got)
	}
	sameTime(t, "NotBefore of the rotated key", keys[0].NotBefore, rotated.NotBefore)
	all, err := s.SigningKeys(ctx)
	must(t, err)
	if got := keyIDs(all); !slices.Equal(got, []string{"k3", "k1"}) {
		t.Fatalf("SigningKeys = %v, want [k3 k1]: an ensure with a key stored added one", got)
	}
	sameTime(t, "NotBefore read by SigningKeys", all[0].NotBefore, rotated.NotBefore)
	if _, err := s.EnsureSigningKey(ctx, store.SigningKey{}); err == nil {
		t.Error("EnsureSigningKey accepted a key without id")
	}
}

// testEnsureSigningKeyConcurrent: replicas starting at once on an empty store each
// ensure a key of their own; exactly one is stored and every one gets it back.
func testEnsureSigningKeyConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	const n = 8
	var wg sync.WaitGroup
	start := make(chan struct{})
	got := make([][]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			keys, err := s.EnsureSigningKey(ctx, testKey(fmt.Sprintf("k%d", i), base))
			got[i], errs[i] = keyIDs(keys), err
		}()
	}
	close(start)
	wg.Wait()
	for i := range n {
		must(t, errs[i])
		if len(got[i]) != 1 || !slices.Equal(got[i], got[0]) {
			t.Fatalf("caller %d got %v, caller 0 got %v: want the same one key", i, got[i], got[0])
		}
	}
	keys, err := s.SigningKeys(ctx)
	must(t, err)
	if ids := keyIDs(keys); !slices.Equal(ids, got[0]) {
		t.Fatalf("stored keys %v after %d concurrent ensures, want only %v", ids, n, got[0])
	}
}

// testRetireSigningKeysNotBefore: a key is replaced when its successor starts
// signing (NotBefore), not when the successor was created and published.
func testRetireSigningKeysNotBefore(t *testing.T, s store.Store) {
	ctx := context.Background()
	must(t, s.AddSigningKey(ctx, testKey("k1", base)))
	k2 := testKey("k2", base.Add(time.Hour))
	k2.NotBefore = base.Add(5 * time.Hour)
	must(t, s.AddSigningKey(ctx, k2))
	n, err := s.RetireSigningKeys(ctx, base.Add(3*time.Hour))
	must(t, err)
	if n != 0 {
		t.Fatalf("retired %d keys while the newer key did not sign yet", n)
	}
	n, err = s.RetireSigningKeys(ctx, base.Add(5*time.Hour+time.Second))
	must(t, err)
	keys, err := s.SigningKeys(ctx)
	must(t, err)
	if ids := keyIDs(keys); n != 1 || !slices.Equal(ids, []string{"k2"}) {
		t.Fatalf("RetireSigningKeys after the newer key signed = %d, keys %v; want 1, [k2]", n, ids)
	}
}
