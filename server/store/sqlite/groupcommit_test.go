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

// brokenWrite is a write that fails with a SQLite error (a table that does not exist),
// so a batch holding it falls back to running each write alone.
func brokenWrite(ctx context.Context, db *DB) error {
	return db.inTx(ctx, "broken", func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO no_such_table VALUES (1)`)
		return fmt.Errorf("sqlite: broken: %w", err)
	})
}

// notifyQueued returns a channel closed once n operations queue behind the writer.
// Set it before the writes start.
func notifyQueued(db *DB, n int) <-chan struct{} {
	ch := make(chan struct{})
	db.group.q.OnQueued(func(got int) {
		if got == n {
			close(ch)
		}
	})
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
				errs[i] = brokenWrite(ctx, db)
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

// TestGroupCommitRefusalsWithoutSavepoints: capped creates and approvals behind code
// limits share a commit without savepoints (inTxRefusingFirst); a refusal among them —
// a cap reached, a clashing user code, an unknown code — changes nothing of its own
// except the failed lookup's attempt, which is kept, and the others succeed.
func TestGroupCommitRefusalsWithoutSavepoints(t *testing.T) {
	ctx := context.Background()
	db, _ := openTemp(t)
	now := time.Now()
	pending := func(i int) store.DeviceAuth {
		d := deviceAuth(200 + i)
		d.CreatedAt, d.ExpiresAt = now, now.Add(10*time.Minute)
		return d
	}
	for i := range 3 { // to approve
		if err := db.CreateDeviceAuth(ctx, pending(i)); err != nil {
			t.Fatal(err)
		}
	}
	open := store.RequestCaps{Window: time.Minute, PerIPRate: 1000, PerClientRate: 1000, PerIP: 1000, PerClient: 1000, Total: 1000}
	full := open
	full.PerClientRate = 1 // three were made this minute, whatever the batch's order
	limits := []store.AttemptLimit{{Key: "account ann", Max: 10, Window: time.Hour, Free: 5, Backoff: time.Second}}

	release := make(chan struct{})
	held := holdWriter(t, db, release)
	const n = 8
	queued := notifyQueued(db, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			switch i {
			case 0, 1, 2: // approvals
				_, _, errs[i] = db.ApproveUserCode(ctx, pending(i).UserCode, "ann", "", limits, now, nil)
			case 3: // an unknown code: refused, its attempt kept
				_, _, errs[i] = db.ApproveUserCode(ctx, "ZZZZ9999", "ann", "", limits, now, nil)
			case 4, 5: // new requests
				errs[i] = db.CreateDeviceAuthCapped(ctx, pending(i), open)
			case 6: // over the cap
				errs[i] = db.CreateDeviceAuthCapped(ctx, pending(i), full)
			case 7: // the user code of request 4
				d := pending(7)
				d.UserCode = pending(4).UserCode
				errs[i] = db.CreateDeviceAuthCapped(ctx, d, open)
			}
		})
	}
	waitQueued(t, queued, n)
	close(release)
	wg.Wait()
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	// 4 and 7 hold one user code: whichever ran second in the batch is refused.
	clash := 7
	if errs[7] == nil {
		clash = 4
	}
	want := map[int]error{3: store.ErrNotFound, 6: store.ErrLimited, clash: store.ErrDuplicateUserCode}
	for i, err := range errs {
		if w := want[i]; (w == nil && err != nil) || (w != nil && !errors.Is(err, w)) {
			t.Errorf("operation %d: %v, want %v", i, err, w)
		}
	}
	for i := range 3 {
		d, err := db.DeviceAuthByUserCode(ctx, pending(i).UserCode)
		if err != nil || d.State != store.DeviceAuthApproved {
			t.Errorf("request %d after approval: %+v, %v", i, d.State, err)
		}
	}
	for _, i := range []int{4, 5, 7} {
		_, err := db.DeviceAuthByDeviceCode(ctx, "tv", pending(i).DeviceCode)
		if (i == clash) != errors.Is(err, store.ErrNotFound) {
			t.Errorf("request %d stored: %v (the refused one is %d)", i, err, clash)
		}
	}
	if _, err := db.DeviceAuthByUserCode(ctx, pending(6).UserCode); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("request over the cap: %v, want not stored", err)
	}
	var attempts int
	if err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM failures WHERE key = 'account ann'`).Scan(&attempts); err != nil || attempts != 1 {
		t.Errorf("attempts recorded: %d (%v), want 1 (the unknown code's)", attempts, err)
	}
	db.group.mu.Lock()
	shared := db.group.shared
	db.group.mu.Unlock()
	if shared < n {
		t.Errorf("%d operations shared a commit, want all %d that queued", shared, n)
	}
}
