package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/linkdesk/linkdesk/server/store"
)

// TestDeviceAuthCountsExact runs a mixed history of device authorizations (capped and
// uncapped creates at times in any order and with different windows, approvals,
// denials, purges) and checks that after a capped create device_auth_counts holds
// exactly what counting the rows for that create's time and window gives, and nothing
// else.
func TestDeviceAuthCountsExact(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "linkd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	r := rand.New(rand.NewPCG(1, 2))
	ips := []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"}
	clients := []string{"tv-app", "linkdesk-kiosk"}
	windows := []time.Duration{0, time.Minute, 10 * time.Minute}
	lifted := store.RequestCaps{PerIPRate: 1 << 20, PerClientRate: 1 << 20, PerIP: 1 << 20, PerClient: 1 << 20,
		Total: 1 << 20, Keep: 5 * time.Minute}
	n := 0
	create := func(at time.Time, window time.Duration, capped bool) {
		n++
		d := store.DeviceAuth{DeviceCode: fmt.Sprintf("device-code-%d", n), UserCode: fmt.Sprintf("CODE%04d", n),
			ClientID: clients[r.IntN(len(clients))], RequestIP: ips[r.IntN(len(ips))], CreatedAt: at,
			ExpiresAt: at.Add(time.Duration(1+r.IntN(10)) * time.Minute), Interval: 5 * time.Second}
		caps := lifted
		caps.Window = window
		if capped {
			err = db.CreateDeviceAuthCapped(ctx, d, caps)
		} else {
			err = db.CreateDeviceAuth(ctx, d)
		}
		if err != nil {
			t.Fatalf("create %d: %v", n, err)
		}
	}
	for range 200 {
		at := base.Add(time.Duration(r.IntN(30*60)) * time.Second)
		switch op := r.IntN(100); {
		case op < 70:
			create(at, windows[r.IntN(len(windows))], true)
		case op < 75:
			create(at, 0, false)
		case op < 85 && n > 0:
			_, err := db.ApproveDeviceAuth(ctx, fmt.Sprintf("CODE%04d", 1+r.IntN(n)), "sub-1", "", at)
			if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrExpired) && !errors.Is(err, store.ErrAlreadyUsed) {
				t.Fatalf("approve: %v", err)
			}
		case op < 95 && n > 0:
			err := db.DenyDeviceAuth(ctx, fmt.Sprintf("CODE%04d", 1+r.IntN(n)), "sub-1", at)
			if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrExpired) && !errors.Is(err, store.ErrAlreadyUsed) {
				t.Fatalf("deny: %v", err)
			}
		case op >= 97:
			if err := db.Purge(ctx, at.Add(-10*time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
		if r.IntN(20) > 0 {
			continue
		}
		// Now and then, check the counts for a capped create's time and window: never
		// too low, even while a sweep waits (sweepEvery), and exact after one.
		window := windows[r.IntN(len(windows))]
		create(at, window, true)
		checkDeviceAuthCounts(t, db, at, window, false)
		db.caps.sweptAt = 0 // the next create sweeps, as it would a second later
		create(at, window, true)
		checkDeviceAuthCounts(t, db, at, window, true)
	}
}

// checkDeviceAuthCounts compares device_auth_counts with the rows' own counts at now
// and window: equal when exact, else at least as high.
func checkDeviceAuthCounts(t *testing.T, db *DB, now time.Time, window time.Duration, exact bool) {
	t.Helper()
	ctx := context.Background()
	want := map[string]int{}
	rows, err := db.read.QueryContext(ctx, `
		SELECT 'waiting ip', request_ip, COUNT(*) FROM device_auths WHERE state = 'pending' AND expires_at > ?1 GROUP BY request_ip
		UNION ALL SELECT 'waiting client', client_id, COUNT(*) FROM device_auths WHERE state = 'pending' AND expires_at > ?1 GROUP BY client_id
		UNION ALL SELECT 'waiting', '', COUNT(*) FROM device_auths WHERE state = 'pending' AND expires_at > ?1 HAVING COUNT(*) > 0
		UNION ALL SELECT 'rate ip', request_ip, COUNT(*) FROM device_auths WHERE created_at > ?2 GROUP BY request_ip
		UNION ALL SELECT 'rate client', client_id, COUNT(*) FROM device_auths WHERE created_at > ?2 GROUP BY client_id`,
		ts(now), ts(now.Add(-window)))
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var kind, key string
		var n int
		if err := rows.Scan(&kind, &key, &n); err != nil {
			t.Fatal(err)
		}
		want[kind+" "+key] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	got := map[string]int{}
	rows, err = db.read.QueryContext(ctx, `SELECT kind, key, n FROM device_auth_counts`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var kind, key string
		var n int
		if err := rows.Scan(&kind, &key, &n); err != nil {
			t.Fatal(err)
		}
		got[kind+" "+key] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	for k, n := range want {
		if got[k] < n || exact && got[k] != n {
			t.Errorf("at %v, window %v: count %q = %d, want %d (exact %v)", now, window, k, got[k], n, exact)
		}
	}
	if !exact {
		return
	}
	for k, n := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("at %v, window %v: count %q = %d, want none", now, window, k, n)
		}
	}
}

// TestSweepLagNeverRefuses: between sweeps (sweepEvery) a request that left the rate
// window still counts, but a create that finds a cap reached sweeps first, so it is
// not refused because of a request the window no longer holds.
func TestSweepLagNeverRefuses(t *testing.T) {
	ctx := context.Background()
	db, _ := openTemp(t)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	caps := store.RequestCaps{Window: time.Minute, PerIPRate: 2}
	create := func(n int, at time.Time) error {
		return db.CreateDeviceAuthCapped(ctx, store.DeviceAuth{DeviceCode: fmt.Sprintf("lag-%d", n),
			UserCode: fmt.Sprintf("LAGC%04d", n), ClientID: "tv", RequestIP: "192.0.2.9", CreatedAt: at,
			ExpiresAt: at.Add(10 * time.Minute), Interval: 5 * time.Second}, caps)
	}
	if err := create(1, t0); err != nil {
		t.Fatal(err)
	}
	if err := create(2, t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := create(3, t0.Add(2*time.Second)); !errors.Is(err, store.ErrLimited) {
		t.Fatalf("third request in the window: %v, want limited", err)
	}
	// Request 1 has left the window; a sweep ran a moment ago, so none is due.
	now := t0.Add(time.Minute + 500*time.Millisecond)
	db.caps.sweptAt = ts(now.Add(-100 * time.Millisecond))
	if err := create(4, now); err != nil {
		t.Fatalf("a request the window allows again: %v", err)
	}
	if err := create(5, now); !errors.Is(err, store.ErrLimited) {
		t.Fatalf("one more: %v, want limited", err)
	}
}

// TestSweepInBatches: requests leaving the rate window together are flipped a batch
// (sweepBatch) per create, so no create holds the writer for all of them, and the
// counts stay too high, never too low, until done; a create that finds a cap reached
// sweeps to the end first.
func TestSweepInBatches(t *testing.T) {
	ctx := context.Background()
	db, _ := openTemp(t)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	open := store.RequestCaps{Window: time.Minute, PerIPRate: 1 << 20, PerIP: 1 << 20}
	create := func(n int, at time.Time, caps store.RequestCaps) error {
		return db.CreateDeviceAuthCapped(ctx, store.DeviceAuth{DeviceCode: fmt.Sprintf("burst-%d", n),
			UserCode: fmt.Sprintf("BRST%04d", n), ClientID: "tv", RequestIP: "192.0.2.7", CreatedAt: at,
			ExpiresAt: at.Add(10 * time.Minute), Interval: 5 * time.Second}, caps)
	}
	rate := func() int {
		var n int
		if err := db.read.QueryRowContext(ctx, `SELECT n FROM device_auth_counts WHERE kind = 'rate ip' AND key = '192.0.2.7'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	const burst = 2*sweepBatch + 50
	for i := range burst {
		if err := create(i, t0, open); err != nil {
			t.Fatal(err)
		}
	}
	// A minute later the burst has left the window: one batch flips per create.
	now := t0.Add(time.Minute + time.Second)
	if err := create(burst, now, open); err != nil {
		t.Fatal(err)
	}
	if got, want := rate(), burst-sweepBatch+1; got != want {
		t.Fatalf("rate count after one create = %d, want %d (one batch flipped)", got, want)
	}
	if err := create(burst+1, now, open); err != nil { // the last sweep left work: on at once
		t.Fatal(err)
	}
	if got, want := rate(), burst-2*sweepBatch+2; got != want {
		t.Fatalf("rate count after two creates = %d, want %d", got, want)
	}
	// A cap that the lagging count reaches but the window does not: swept to the end.
	if err := create(burst+2, now, store.RequestCaps{Window: time.Minute, PerIPRate: 3}); err != nil {
		t.Fatalf("create under a cap the window allows: %v", err)
	}
	if got := rate(); got != 3 {
		t.Fatalf("rate count after the full sweep = %d, want 3", got)
	}
}

// TestCappedCreatesShareACommit: capped creates that share one transaction (group
// commit) count each other before their counts are written (insertCounts): a cap is
// reached inside the batch exactly where it would be one create at a time, a sweep
// in the batch that turns off the flags of a request the batch inserted leaves its
// counts right, and after the commit device_auth_counts matches the rows.
func TestCappedCreatesShareACommit(t *testing.T) {
	ctx := context.Background()
	db, _ := openTemp(t)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	later := t0.Add(2 * time.Minute) // the first request has expired and left the window
	caps := store.RequestCaps{Window: time.Minute, PerIP: 3}
	create := func(n int, ip string, at time.Time, expires time.Duration) func() error {
		return func() error {
			return db.CreateDeviceAuthCapped(ctx, store.DeviceAuth{DeviceCode: fmt.Sprintf("batch-%d", n),
				UserCode: fmt.Sprintf("BTCH%04d", n), ClientID: "tv", RequestIP: ip, CreatedAt: at,
				ExpiresAt: at.Add(expires), Interval: 5 * time.Second}, caps)
		}
	}
	// Request 0, from an address of its own, is swept by request 1 in the same
	// transaction: its address's counts go back to zero and must not stay as rows.
	ops := []func() error{create(0, "192.0.2.21", t0, time.Minute)}
	for n := 1; n <= 6; n++ {
		ops = append(ops, create(n, "192.0.2.20", later, 10*time.Minute))
	}

	release := make(chan struct{})
	held := holdWriter(t, db, release)
	db.group.mu.Lock()
	shared0 := db.group.shared
	db.group.mu.Unlock()
	errs := queueInOrder(t, db, ops, release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	for i, err := range errs {
		// Request 0 and the three that fit under the cap once it has expired.
		if wantOK := i <= 3; wantOK != (err == nil) || !wantOK && !errors.Is(err, store.ErrLimited) {
			t.Errorf("create %d: %v (want refused: %v)", i, err, !wantOK)
		}
	}
	db.group.mu.Lock()
	shared := db.group.shared - shared0
	db.group.mu.Unlock()
	if shared < len(ops) {
		t.Fatalf("%d of %d creates shared a commit", shared, len(ops))
	}
	checkDeviceAuthCounts(t, db, later, caps.Window, true)
}

// TestCappedCreatesForgetChangedCounts: the capped creates of one batch read their
// counts once (capsState.counted), and forget them when another operation in the
// batch may have changed the table. Here one moves a request onto the address the
// creates come from, so the address's rate count grows behind their backs: the
// create after it must see the larger count and be refused, as it would be alone.
func TestCappedCreatesForgetChangedCounts(t *testing.T) {
	ctx := context.Background()
	db, _ := openTemp(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	caps := store.RequestCaps{Window: time.Minute, PerIPRate: 3}
	create := func(n int, ip string) func() error {
		return func() error {
			return db.CreateDeviceAuthCapped(ctx, store.DeviceAuth{DeviceCode: fmt.Sprintf("forget-%d", n),
				UserCode: fmt.Sprintf("FRGT%04d", n), ClientID: "tv", RequestIP: ip, CreatedAt: now,
				ExpiresAt: now.Add(10 * time.Minute), Interval: 5 * time.Second}, caps)
		}
	}
	for n, ip := range []string{"192.0.2.40", "192.0.2.41"} { // one request from each address
		if err := create(n, ip)(); err != nil {
			t.Fatal(err)
		}
	}
	release := make(chan struct{})
	held := holdWriter(t, db, release)
	errs := queueInOrder(t, db, []func() error{
		create(2, "192.0.2.40"), // the address's second request: allowed
		func() error {
			return db.inTx(ctx, "move a request", func(tx *sql.Tx) error {
				_, err := tx.Exec(`UPDATE device_auths SET request_ip = '192.0.2.40' WHERE user_code = 'FRGT0001'`)
				return err
			})
		},
		create(3, "192.0.2.40"), // its fourth counting the one moved: over the cap
	}, release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("create: %v; move: %v", errs[0], errs[1])
	}
	if !errors.Is(errs[2], store.ErrLimited) {
		t.Fatalf("create after the move: %v, want refused (store.ErrLimited)", errs[2])
	}
	checkDeviceAuthCounts(t, db, now, caps.Window, true)
}

// queueInOrder queues each op behind the held writer in turn, waiting until it has
// joined the queue before starting the next, then releases the writer and returns
// their results in that order.
func queueInOrder(t *testing.T, db *DB, ops []func() error, release chan<- struct{}) []error {
	t.Helper()
	joined := make(chan int, len(ops))
	db.group.q.OnQueued(func(n int) { joined <- n })
	errs := make([]error, len(ops))
	done := make(chan struct{})
	var wg sync.WaitGroup
	for i, op := range ops {
		wg.Go(func() { errs[i] = op() })
		select {
		case <-joined:
		case <-time.After(30 * time.Second):
			t.Fatalf("operation %d never queued behind the writer", i)
		}
	}
	close(release)
	go func() { wg.Wait(); close(done) }()
	<-done
	return errs
}

// TestCapsStateAfterRollback: a capped create whose shared transaction rolls back
// (another write in it breaks the batch) loses its sweep with it, so when it runs
// again alone it sweeps again: the requests stored with their flags off are counted
// after all.
func TestCapsStateAfterRollback(t *testing.T) {
	ctx := context.Background()
	db, _ := openTemp(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	caps := store.RequestCaps{Window: time.Minute, PerIP: 100}
	for i := range 3 { // stored with both flags off (uncapped)
		d := deviceAuth(200 + i)
		d.RequestIP, d.CreatedAt, d.ExpiresAt = "192.0.2.30", now, now.Add(10*time.Minute)
		if err := db.CreateDeviceAuth(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	release := make(chan struct{})
	held := holdWriter(t, db, release)
	errs := queueInOrder(t, db, []func() error{
		func() error {
			return db.CreateDeviceAuthCapped(ctx, store.DeviceAuth{DeviceCode: "rollback-1", UserCode: "RLBK0001",
				ClientID: "tv", RequestIP: "192.0.2.30", CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute),
				Interval: 5 * time.Second}, caps)
		},
		func() error { return brokenWrite(ctx, db) },
	}, release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	if errs[0] != nil || errs[1] == nil {
		t.Fatalf("capped create: %v; broken write: %v (want an error)", errs[0], errs[1])
	}
	checkDeviceAuthCounts(t, db, now, caps.Window, true)
}
