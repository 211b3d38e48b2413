package postgres

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/linkdesk/linkdesk/server/store"
)

// Capped device requests that share one transaction (capsBatcher) get the answers
// they would get one after another: a cap is reached inside the batch exactly where
// it would be, a code taken by an earlier request of the batch is refused alone, and
// the others are stored.
func TestCappedCreatesShareATransaction(t *testing.T) {
	db, _ := openTemp(t)
	ctx := context.Background()
	at := time.Now().Truncate(time.Second)
	auth := func(n int, ip, code string) store.DeviceAuth {
		return store.DeviceAuth{DeviceCode: fmt.Sprintf("device-code-%d", n), UserCode: code, ClientID: "kiosk",
			RequestIP: ip, CreatedAt: at, ExpiresAt: at.Add(10 * time.Minute), Interval: 5 * time.Second}
	}
	const a, b = "192.0.2.1", "198.51.100.7"
	if err := db.CreateDeviceAuth(ctx, auth(100, a, "EARLIER1")); err != nil {
		t.Fatal(err)
	}
	caps := store.RequestCaps{Window: time.Minute, PerIP: 3, Total: 5}
	batch := []struct {
		d    store.DeviceAuth
		want error
	}{
		{auth(0, a, "CODE0000"), nil},
		{auth(1, a, "CODE0001"), nil},
		{auth(2, a, "CODE0002"), store.ErrLimited}, // A's third waiting request
		{auth(3, b, "CODE0000"), store.ErrDuplicateUserCode},
		{auth(4, b, "CODE0004"), nil},
		{auth(5, b, "CODE0005"), nil},
		{auth(6, b, "CODE0006"), store.ErrLimited}, // the fifth waiting overall
	}

	errs := make([]error, len(batch))
	release, wait := queueHeld(t, db, len(batch), func(i int) { errs[i] = db.CreateDeviceAuthCapped(ctx, batch[i].d, caps) })
	release()
	wait()

	for i, c := range batch {
		if !errors.Is(errs[i], c.want) || (c.want == nil) != (errs[i] == nil) {
			t.Errorf("request %d (%s from %s): %v, want %v", i, c.d.UserCode, c.d.RequestIP, errs[i], c.want)
		}
	}
	if got := db.capsBatch.shared; got != len(batch) {
		t.Errorf("%d requests committed in a shared transaction, want %d", got, len(batch))
	}
	var stored int
	if err := db.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM device_auths`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != 5 {
		t.Errorf("%d requests stored, want 5", stored)
	}
	got, err := db.DeviceAuthByUserCode(ctx, "CODE0000")
	if err != nil || got.RequestIP != a {
		t.Errorf("CODE0000 = %+v, %v; want the first request's, from %s", got, err, a)
	}
}

// Many concurrent capped creates never pass a cap, whichever batches they fall in.
func TestConcurrentCappedCreatesKeepTheCap(t *testing.T) {
	db, _ := openTemp(t)
	ctx := context.Background()
	at := time.Now()
	const n, total = 200, 120
	caps := store.RequestCaps{Window: time.Minute, Total: total}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			errs[i] = db.CreateDeviceAuthCapped(ctx, store.DeviceAuth{DeviceCode: fmt.Sprintf("device-code-%d", i),
				UserCode: fmt.Sprintf("CODE%04d", i), ClientID: "kiosk", RequestIP: fmt.Sprintf("192.0.2.%d", i%250),
				CreatedAt: at, ExpiresAt: at.Add(10 * time.Minute), Interval: 5 * time.Second}, caps)
		})
	}
	wg.Wait()
	ok, limited := 0, 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, store.ErrLimited):
			limited++
		default:
			t.Errorf("request %d: %v", i, err)
		}
	}
	if ok != total || limited != n-total {
		t.Errorf("%d stored and %d refused, want %d and %d", ok, limited, total, n-total)
	}
	t.Logf("%d of %d requests shared a transaction", db.capsBatch.shared, n)
}

// Callers that give up while their batch waits for the caps lock (held here by
// another session, as a stuck replica would) are all answered, and the lock's holder
// is not waited for: the batch's transaction ends with its last caller.
func TestCappedBatchEndsWithItsCallers(t *testing.T) {
	db, url := openTemp(t)
	ctx := context.Background()
	holder, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	conn, err := holder.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, int64(lockDeviceCaps)); err != nil {
		t.Fatal(err)
	}

	const n = 3
	at := time.Now()
	caps := store.RequestCaps{Window: time.Minute, Total: 100}
	errs := make([]error, n)
	ctxs, cancels := make([]context.Context, n), make([]context.CancelFunc, n)
	for i := range n {
		ctxs[i], cancels[i] = context.WithCancel(ctx)
	}
	release, wait := queueHeld(t, db, n, func(i int) {
		errs[i] = db.CreateDeviceAuthCapped(ctxs[i], store.DeviceAuth{DeviceCode: fmt.Sprintf("device-code-%d", i),
			UserCode: fmt.Sprintf("CODE%04d", i), ClientID: "kiosk", RequestIP: "192.0.2.1",
			CreatedAt: at, ExpiresAt: at.Add(10 * time.Minute), Interval: 5 * time.Second}, caps)
	})
	release()
	// Wait until the batch is blocked on the lock, as PostgreSQL reports it.
	for {
		var waiting int
		if err := conn.QueryRowContext(ctx, `SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		runtime.Gosched()
	}
	for _, cancel := range cancels {
		cancel()
	}
	wait()
	for i, err := range errs {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("request %d: %v, want context.Canceled", i, err)
		}
	}
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_unlock($1)`, int64(lockDeviceCaps)); err != nil {
		t.Fatal(err)
	}
	// Nothing was stored, and the next request goes through.
	if err := db.CreateDeviceAuthCapped(ctx, store.DeviceAuth{DeviceCode: "device-code-next", UserCode: "CODE0000",
		ClientID: "kiosk", RequestIP: "192.0.2.1", CreatedAt: at, ExpiresAt: at.Add(10 * time.Minute),
		Interval: 5 * time.Second}, caps); err != nil {
		t.Fatal(err)
	}
}

// queueHeld calls call(0) … call(n-1), each in a goroutine of its own once the one
// before has joined db's queue of capped creates, so they join in that order. The
// first leads and is held until release is called, so all n run in one batch. wait
// returns when every call has; the queue's test hooks are cleared then.
func queueHeld(t *testing.T, db *DB, n int, call func(i int)) (release, wait func()) {
	t.Helper()
	joined := make(chan int, n)
	held := make(chan struct{})
	release = sync.OnceFunc(func() { close(held) })
	var once sync.Once
	db.capsBatch.q.OnQueued(func(n int) { joined <- n })
	db.capsBatch.q.BeforeBatch(func() { once.Do(func() { <-held }) })
	var wg sync.WaitGroup
	wait = func() {
		wg.Wait()
		db.capsBatch.q.OnQueued(nil)
		db.capsBatch.q.BeforeBatch(nil)
	}
	for i := range n {
		wg.Go(func() { call(i) })
		if got := <-joined; got != i+1 {
			release()
			wait()
			t.Fatalf("request %d joined a queue of %d", i, got)
		}
	}
	return release, wait
}

// A batch judges each request as it would alone even where the batch's single INSERT
// could hide it: a count first read after earlier requests of the batch were admitted
// (another client's caps, with another window) includes them, and a request takes the
// code of an expired request, which is purged.
func TestCappedBatchCountsAndPurgesAsAlone(t *testing.T) {
	db, _ := openTemp(t)
	ctx := context.Background()
	at := time.Now().Truncate(time.Second)
	auth := func(n int, client, code string) store.DeviceAuth {
		return store.DeviceAuth{DeviceCode: fmt.Sprintf("device-code-%d", n), UserCode: code, ClientID: client,
			RequestIP: "192.0.2.1", CreatedAt: at, ExpiresAt: at.Add(10 * time.Minute), Interval: 5 * time.Second}
	}
	old := auth(100, "tv", "OLDCODE1")
	old.CreatedAt, old.ExpiresAt = at.Add(-time.Hour), at.Add(-50*time.Minute)
	if err := db.CreateDeviceAuth(ctx, old); err != nil {
		t.Fatal(err)
	}
	loose := store.RequestCaps{Window: time.Minute, PerIP: 10}
	tight := store.RequestCaps{Window: 2 * time.Minute, PerIPRate: 2}
	batch := []struct {
		d    store.DeviceAuth
		caps store.RequestCaps
		want error
	}{
		{auth(0, "kiosk", "CODE0000"), loose, nil},
		{auth(1, "tv", "OLDCODE1"), tight, nil}, // counts the kiosk's request: 1 of 2
		{auth(2, "tv", "CODE0002"), tight, store.ErrLimited},
	}
	errs := make([]error, len(batch))
	release, wait := queueHeld(t, db, len(batch), func(i int) {
		errs[i] = db.CreateDeviceAuthCapped(ctx, batch[i].d, batch[i].caps)
	})
	release()
	wait()
	for i, c := range batch {
		if !errors.Is(errs[i], c.want) || (c.want == nil) != (errs[i] == nil) {
			t.Errorf("request %d (%s of %s): %v, want %v", i, c.d.UserCode, c.d.ClientID, errs[i], c.want)
		}
	}
	if got := db.capsBatch.shared; got != len(batch) {
		t.Errorf("%d requests committed in a shared transaction, want %d", got, len(batch))
	}
	got, err := db.DeviceAuthByUserCode(ctx, "OLDCODE1")
	if err != nil || !got.CreatedAt.Equal(at) {
		t.Errorf("OLDCODE1 = %+v, %v; want the new request's, made at %v", got, err, at)
	}
	if _, err := db.DeviceAuthByDeviceCode(ctx, "tv", old.DeviceCode); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the expired holder of OLDCODE1: %v, want it purged", err)
	}
}

// A code taken between the batch's reading of the holders and its INSERT (by a create
// that does not take the caps lock) makes the INSERT store nothing and say so, so the
// batch is rolled back and each request runs alone.
func TestBatchInsertRefusesARacedCode(t *testing.T) {
	db, _ := openTemp(t)
	ctx := context.Background()
	at := time.Now()
	d := store.DeviceAuth{DeviceCode: "device-code-1", UserCode: "CODE0001", ClientID: "kiosk", RequestIP: "192.0.2.1",
		CreatedAt: at, ExpiresAt: at.Add(10 * time.Minute), Interval: 5 * time.Second, State: store.DeviceAuthPending}
	if err := db.CreateDeviceAuth(ctx, d); err != nil {
		t.Fatal(err)
	}
	other := d
	other.DeviceCode, other.UserCode = "device-code-2", "CODE0002"
	d.DeviceCode = "device-code-3" // a new device code, but CODE0001 is taken
	tx, err := db.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if err := insertDeviceAuths(ctx, tx, []store.DeviceAuth{other, d}); !errors.Is(err, errBatchRaced) {
		t.Fatalf("insert of a batch with a taken code: %v, want errBatchRaced", err)
	}
}

// A count stops at its cap, so one read under a lower cap is only a lower bound: a
// later request of the batch with a higher cap reads it again rather than trust it.
func TestCappedBatchRereadsACountStoppedAtALowerCap(t *testing.T) {
	db, _ := openTemp(t)
	ctx := context.Background()
	at := time.Now().Truncate(time.Second)
	auth := func(n int) store.DeviceAuth {
		return store.DeviceAuth{DeviceCode: fmt.Sprintf("device-code-%d", n), UserCode: fmt.Sprintf("CODE%04d", n),
			ClientID: "kiosk", RequestIP: "192.0.2.1", CreatedAt: at, ExpiresAt: at.Add(10 * time.Minute), Interval: 5 * time.Second}
	}
	for n := 100; n < 104; n++ { // four waiting from the address
		if err := db.CreateDeviceAuth(ctx, auth(n)); err != nil {
			t.Fatal(err)
		}
	}
	batch := []struct {
		perIP int
		want  error
	}{
		{2, store.ErrLimited}, // reads 2 and stops
		{4, store.ErrLimited}, // 4 waiting: trusting the 2 would let it through
		{6, nil},
	}
	errs := make([]error, len(batch))
	release, wait := queueHeld(t, db, len(batch), func(i int) {
		errs[i] = db.CreateDeviceAuthCapped(ctx, auth(i), store.RequestCaps{Window: time.Minute, PerIP: batch[i].perIP})
	})
	release()
	wait()
	for i, c := range batch {
		if !errors.Is(errs[i], c.want) || (c.want == nil) != (errs[i] == nil) {
			t.Errorf("request %d (%d waiting per address allowed): %v, want %v", i, c.perIP, errs[i], c.want)
		}
	}
}
