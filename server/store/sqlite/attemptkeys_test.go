package sqlite

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/linkdesk/linkdesk/server/store"
)

// TestAttemptsFromAnotherConnection: attempts another process records on the same
// file count against a key this writer has already seen without attempts
// (attemptKeys checks data_version), so two processes never give a guesser twice the
// limit.
func TestAttemptsFromAnotherConnection(t *testing.T) {
	ctx := context.Background()
	a, path := openTemp(t)
	b, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	limit := func(key string) []store.AttemptLimit {
		return []store.AttemptLimit{{Key: key, Max: 2, Window: time.Hour}}
	}
	// a reads what it knows of the table: nothing under "guesser".
	if wait, err := a.ReserveAttempt(ctx, limit("someone else"), now); err != nil || wait != 0 {
		t.Fatalf("first attempt on a: wait %v, %v", wait, err)
	}
	for i := range 2 {
		if wait, err := b.ReserveAttempt(ctx, limit("guesser"), now.Add(time.Duration(i)*time.Second)); err != nil || wait != 0 {
			t.Fatalf("attempt %d on b: wait %v, %v", i+1, wait, err)
		}
	}
	for _, at := range []time.Duration{2 * time.Second, 10 * time.Second} { // before and after a may read again
		wait, err := a.ReserveAttempt(ctx, limit("guesser"), now.Add(at))
		if err != nil {
			t.Fatal(err)
		}
		if wait <= 0 {
			t.Fatalf("third attempt at +%v on a allowed; b recorded two under a limit of two", at)
		}
	}
}

// TestAttemptKeysAfterRollback: what the writer read of the attempts in a shared
// transaction that rolls back is not trusted, since the transaction may have deleted
// attempts before it read. Here one operation deletes the only attempt under a key
// (and will not do so again when rerun alone), the next reads the table, and a third
// breaks the batch: the attempt is back, and still counts.
func TestAttemptKeysAfterRollback(t *testing.T) {
	ctx := context.Background()
	db, _ := openTemp(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	limit := func(key string) []store.AttemptLimit {
		return []store.AttemptLimit{{Key: key, Max: 1, Window: time.Hour}}
	}
	// Stored without a limit check, so the writer has not read the table yet.
	if _, err := db.AddFailure(ctx, "guesser", now, now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	deletions := 0
	release := make(chan struct{})
	held := holdWriter(t, db, release)
	errs := queueInOrder(t, db, []func() error{
		func() error {
			return db.inTx(ctx, "delete once", func(tx *sql.Tx) error {
				if deletions++; deletions > 1 {
					return nil
				}
				_, err := tx.Exec(`DELETE FROM failures WHERE key = 'guesser'`)
				return err
			})
		},
		func() error {
			_, err := db.ReserveAttempt(ctx, limit("someone else"), now)
			return err
		},
		func() error { return brokenWrite(ctx, db) },
	}, release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	if errs[0] != nil || errs[1] != nil || errs[2] == nil || deletions != 2 {
		t.Fatalf("delete: %v; reserve: %v; broken: %v (want an error); delete ran %d times (want 2: in the batch, then alone)",
			errs[0], errs[1], errs[2], deletions)
	}
	for _, at := range []time.Duration{time.Second, 10 * time.Second} { // before and after the writer may read again
		wait, err := db.ReserveAttempt(ctx, limit("guesser"), now.Add(at))
		if err != nil {
			t.Fatal(err)
		}
		if wait <= 0 {
			t.Fatalf("attempt at +%v allowed; the one attempt under a limit of one was never deleted", at)
		}
	}
}
