package provider

import (
	"context"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/linkdesk/linkdesk/server/store/sqlite"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func publishedIDs(t *testing.T, s *storage) []string {
	t.Helper()
	keys, err := s.KeySet(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, k := range keys {
		ids = append(ids, k.ID())
	}
	return ids
}

func signingID(t *testing.T, s *storage) string {
	t.Helper()
	k, err := s.SigningKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return k.ID()
}

// Replicas on one store starting at once agree on one first key; a rotation is
// published by every replica within KeyRefresh and signs only from its NotBefore.
func TestKeysAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "linkd.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	clock := &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	replicas := make([]*storage, 3)
	errs := make([]error, len(replicas))
	var wg sync.WaitGroup
	for i := range replicas {
		replicas[i] = &storage{store: db, log: slog.New(slog.DiscardHandler), now: clock.Now}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = replicas[i].loadKeys(ctx)
		}()
	}
	wg.Wait()
	first := publishedIDs(t, replicas[0])
	for i, r := range replicas {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if got := publishedIDs(t, r); len(got) != 1 || !slices.Equal(got, first) {
			t.Fatalf("replica %d publishes %v, replica 0 %v: want the same one key", i, got, first)
		}
	}

	clock.Advance(time.Minute) // the first key signs; the rotation comes later
	rotated, err := RotateSigningKeyAfter(ctx, db, clock.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := clock.Now().Add(MinSignAfter); !rotated.NotBefore.Equal(want) {
		t.Errorf("NotBefore = %v, want raised to %v", rotated.NotBefore, want)
	}
	clock.Advance(KeyRefresh)
	for i, r := range replicas {
		if got, want := publishedIDs(t, r), []string{rotated.ID, first[0]}; !slices.Equal(got, want) {
			t.Errorf("replica %d publishes %v a refresh after the rotation, want %v", i, got, want)
		}
		if got := signingID(t, r); got != first[0] {
			t.Errorf("replica %d signs with %s before the new key's NotBefore, want the old %s", i, got, first[0])
		}
	}
	clock.Advance(MinSignAfter - KeyRefresh)
	for i, r := range replicas {
		if got := signingID(t, r); got != rotated.ID {
			t.Errorf("replica %d signs with %s at the new key's NotBefore, want %s", i, got, rotated.ID)
		}
	}
}

// A store holding only a key of a future rotation signs with it rather than not at all.
func TestSignerFutureOnly(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	keys := []parsedKey{{id: "later", notBefore: now.Add(2 * time.Hour)}, {id: "sooner", notBefore: now.Add(time.Hour)}}
	if got := signer(keys, now).id; got != "sooner" {
		t.Errorf("signer = %s, want sooner", got)
	}
	keys = append(keys, parsedKey{id: "now", notBefore: now})
	if got := signer(keys, now).id; got != "now" {
		t.Errorf("signer = %s, want now", got)
	}
}
