package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/linkdesk/linkdesk/server/store"
)

// holdWriter starts a write transaction that waits on release, and returns once the
// writer is busy with it; the returned channel carries its result.
func holdWriter(t *testing.T, db *DB, release <-chan struct{}) <-chan error {
	t.Helper()
	started := make(chan struct{})
	res := make(chan error, 1)
	go func() {
		res <- db.inTx(context.Background(), "hold", func(tx *sql.Tx) error {
			close(started)
			<-release
			return nil
		})
	}()
	<-started
	return res
}

// notifyQueued returns a channel closed once n operations queue behind the writer.
// Set it before the writes start.
func notifyQueued(db *DB, n int) <-chan struct{} {
	ch := make(chan struct{})
	db.group.mu.Lock()
	db.group.queued = func(got int) {
		if got == n {
			close(ch)
		}
	}
	db.group.mu.Unlock()
	return ch
}

// waitQueued waits for notifyQueued's signal, with a deadline.
func waitQueued(t *testing.T, queued <-chan struct{}, n int) {
	t.Helper()
	select {
	case <-queued:
	case <-time.After(30 * time.Second):
		t.Fatalf("%d operations never queued behind the writer", n)
	}
}

// TestGroupCommitSharesOneTransaction: writes that queue behind a busy writer commit
// together, each with its own answer — a refusal rolls back only itself.
func TestGroupCommitSharesOneTransaction(t *testing.T) {
	ctx := context.Background()
	db, _ := openTemp(t)
	release := make(chan struct{})
	held := holdWriter(t, db, release)

	const n = 20
	queued := notifyQueued(db, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			d := deviceAuth(i)
			if i == 7 {
				d.UserCode = deviceAuth(3).UserCode // clashes with #3 (or #3 with it): one refusal
			}
			errs[i] = db.CreateDeviceAuth(ctx, d)
		})
	}
	waitQueued(t, queued, n)
	close(release)
	wg.Wait()
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	refused := 0
	for i, err := range errs {
		switch {
		case err == nil:
		case errors.Is(err, store.ErrDuplicateUserCode) && (i == 3 || i == 7):
			refused++
		default:
			t.Errorf("write %d: %v", i, err)
		}
	}
	if refused != 1 {
		t.Errorf("%d of the clashing pair refused, want 1", refused)
	}
	for i := range n {
		if i == 3 || i == 7 {
			continue
		}
		if _, err := db.DeviceAuthByUserCode(ctx, deviceAuth(i).UserCode); err != nil {
			t.Errorf("write %d not stored: %v", i, err)
		}
	}
	db.group.mu.Lock()
	shared := db.group.shared
	db.group.mu.Unlock()
	if shared < n {
		t.Errorf("%d writes shared a commit, want all %d that queued", shared, n)
	}
}

// TestGroupCommitFallsBackAlone: when one write in a batch fails with a SQLite error,
// nothing of the batch is kept and every write runs again alone, so the others still
// succeed and the broken one gets its own error.
func TestGroupCommitFallsBackAlone(t *testing.T) {
	ctx := context.Background()
	db, _ := openTemp(t)
	release := make(chan struct{})
	held := holdWriter(t, db, release)

	const n = 6
	queued := notifyQueued(db, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if i == 2 {
				errs[i] = db.inTx(ctx, "broken", func(tx *sql.Tx) error {
					_, err := tx.Exec(`INSERT INTO no_such_table VALUES (1)`)
					return fmt.Errorf("sqlite: broken: %w", err)
				})
				return
			}
			errs[i] = db.CreateDeviceAuth(ctx, deviceAuth(100+i))
		})
	}
	waitQueued(t, queued, n)
	close(release)
	wg.Wait()
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	for i, err := range errs {
		if (i == 2) != (err != nil) {
			t.Errorf("write %d: %v", i, err)
		}
	}
	for i := range n {
		if i == 2 {
			continue
		}
		if _, err := db.DeviceAuthByUserCode(ctx, deviceAuth(100+i).UserCode); err != nil {
			t.Errorf("write %d not stored after the fallback: %v", i, err)
		}
	}
}
