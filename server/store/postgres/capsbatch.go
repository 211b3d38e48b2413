package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linkdesk/linkdesk/server/store"
	"github.com/linkdesk/linkdesk/server/store/internal/batching"
)

// maxCapsBatch bounds how many capped device requests share one transaction.
const maxCapsBatch = 64

// cappedCreate is one caller's capped device request waiting for its batch.
type cappedCreate struct {
	ctx  context.Context
	d    store.DeviceAuth
	caps store.RequestCaps
}

// capsBatcher lets the capped device requests of one replica share a transaction.
// Capped creates of every replica take turns under one advisory lock, and each used
// to count all waiting requests on its own (five counts, the total over every
// request), so device requests ran at about 130/s whatever the number of replicas
// (linkdbench). Now the caller at the head of the queue (batching.Queue, as the SQLite
// store's group commit) takes everyone waiting (up to maxCapsBatch), takes the lock
// once, counts each address, client and total once, adds the batch's own inserts in
// memory, and commits once; every caller hears its result after that commit. A
// caller that gives up still waits for the batch before its own; a batch whose
// callers have all given up ends at once (batchContext).
type capsBatcher struct {
	q      batching.Queue[*cappedCreate]
	mu     sync.Mutex // guards shared
	shared int        // requests committed in a transaction with others (tests read it)
}

// createCappedBatch runs batch in one transaction and returns every result, or
// reports false (a fault that is not the database being away), and the caller runs
// each request alone. When the database is unavailable every caller hears so at
// once, rather than waiting for it once more alone.
func (db *DB) createCappedBatch(batch []*cappedCreate) ([]error, bool) {
	ctx, cancel := batchContext(batch)
	defer cancel()
	results := make([]error, len(batch))
	err := db.inTx(ctx, "create device auths", func(tx *sql.Tx) error {
		clear(results)
		if err := capsLock(ctx, tx, lockDeviceCaps, batch[0].caps); err != nil { // every batched create has caps
			return err
		}
		counts := newBatchCounts(batch)
		for i, op := range batch {
			if err := op.ctx.Err(); err != nil {
				results[i] = err // gone before its turn: nothing was done
				continue
			}
			err := checkCaps(ctx, tx, "create device auth", counts.queries(op))
			if errors.Is(err, store.ErrLimited) {
				results[i] = err
				continue
			}
			if err != nil {
				return err
			}
			err = createDeviceAuthTx(ctx, tx, op.d)
			if errors.Is(err, store.ErrDuplicate) || errors.Is(err, store.ErrDuplicateUserCode) {
				results[i] = err
				continue
			}
			if err != nil {
				return err
			}
			counts.inserted(op.d)
		}
		return deleteKept(ctx, tx, batch)
	})
	if err != nil {
		if !errors.Is(err, store.ErrUnavailable) {
			return nil, false
		}
		for i := range results {
			results[i] = err
		}
		return results, true
	}
	db.capsBatch.mu.Lock()
	db.capsBatch.shared += len(batch)
	db.capsBatch.mu.Unlock()
	return results, true
}

// batchContext is the context of batch's transaction: done when every caller of the
// batch has gone, as a request alone would be abandoned when its caller has.
func batchContext(batch []*cappedCreate) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	var left atomic.Int64
	left.Store(int64(len(batch)))
	stops := make([]func() bool, len(batch))
	for i, op := range batch {
		stops[i] = context.AfterFunc(op.ctx, func() {
			if left.Add(-1) == 0 {
				cancel()
			}
		})
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}

// deleteKept deletes, for the requests of batch that keep expired ones for a while
// (caps.Keep), up to keepBatch long-expired pending or denied requests each, expired
// before the earliest of their cut-offs.
func deleteKept(ctx context.Context, tx *sql.Tx, batch []*cappedCreate) error {
	var before time.Time
	n := 0
	for _, op := range batch {
		if op.caps.Keep <= 0 {
			continue
		}
		if cut := op.d.CreatedAt.Add(-op.caps.Keep); n == 0 || cut.Before(before) {
			before = cut
		}
		n += keepBatch
	}
	if n == 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, deleteKeptSQL, string(store.DeviceAuthPending), string(store.DeviceAuthDenied), ts(before), n)
	if err != nil {
		return fmt.Errorf("postgres: create device auth: delete old: %w", err)
	}
	return nil
}

// deleteKeptSQL deletes up to $4 pending or denied requests that expired before $3.
const deleteKeptSQL = `DELETE FROM device_auths WHERE device_code_hash IN (
	SELECT device_code_hash FROM device_auths WHERE state IN ($1, $2) AND expires_at < $3 LIMIT $4)`

// batchCounts are the counts of one batch's caps, each read once from the database
// and then raised by the batch's own inserts. They are taken at the earliest request
// time of the batch: a later request's window starts a little later and fewer of
// the stored requests have expired by then, so its counts can only be too high by
// what changed within the batch's milliseconds. A cap is reached a little early, never
// late.
type batchCounts struct {
	at    time.Time
	known map[countKey]int
}

// countKey names one count: its kind, the address or client it is of, and for a
// rate, its window.
type countKey struct {
	kind   string
	of     string
	window time.Duration
}

func newBatchCounts(batch []*cappedCreate) *batchCounts {
	at := batch[0].d.CreatedAt
	for _, op := range batch[1:] {
		if op.d.CreatedAt.Before(at) {
			at = op.d.CreatedAt
		}
	}
	return &batchCounts{at: at, known: make(map[countKey]int)}
}

// The kinds of count a device request's caps are checked against.
const (
	ipRate        = "address rate"
	clientRate    = "client rate"
	ipWaiting     = "waiting per address"
	clientWaiting = "waiting per client"
	allWaiting    = "waiting overall"
)

// queries are op's caps as counts: one already read in this batch comes back
// known, and one read now is remembered.
func (c *batchCounts) queries(op *cappedCreate) []capQuery {
	d, caps := op.d, op.caps
	now, since := ts(c.at), ts(c.at.Add(-caps.Window))
	pending := string(store.DeviceAuthPending)
	qs := []capQuery{
		{name: ipRate, limit: caps.PerIPRate, query: countIPRateSQL, args: []any{d.RequestIP, since}},
		{name: clientRate, limit: caps.PerClientRate, query: countClientRateSQL, args: []any{d.ClientID, since}},
		{name: ipWaiting, limit: caps.PerIP, query: countIPWaitingSQL, args: []any{d.RequestIP, pending, now}},
		{name: clientWaiting, limit: caps.PerClient, query: countClientWaitingSQL, args: []any{d.ClientID, pending, now}},
		{name: allWaiting, limit: caps.Total, query: countAllWaitingSQL, args: []any{pending, now}},
	}
	keys := []countKey{
		{ipRate, d.RequestIP, caps.Window}, {clientRate, d.ClientID, caps.Window},
		{ipWaiting, d.RequestIP, 0}, {clientWaiting, d.ClientID, 0}, {allWaiting, "", 0},
	}
	for i := range qs {
		k := keys[i]
		if n, ok := c.known[k]; ok {
			qs[i].known, qs[i].n = true, n
			continue
		}
		qs[i].counted = func(n int) { c.known[k] = n }
	}
	return qs
}

// inserted counts d, just stored in the batch, in every count already read that
// includes it: being new, it is within every window, pending and unexpired.
func (c *batchCounts) inserted(d store.DeviceAuth) {
	for k := range c.known {
		switch k.kind {
		case ipRate, ipWaiting:
			if k.of != d.RequestIP {
				continue
			}
		case clientRate, clientWaiting:
			if k.of != d.ClientID {
				continue
			}
		}
		c.known[k]++
	}
}

// The counts of a capped device request (see CreateDeviceAuthCapped).
const (
	countIPRateSQL        = `SELECT COUNT(*) FROM device_auths WHERE request_ip = $1 AND created_at > $2`
	countClientRateSQL    = `SELECT COUNT(*) FROM device_auths WHERE client_id = $1 AND created_at > $2`
	countIPWaitingSQL     = `SELECT COUNT(*) FROM device_auths WHERE request_ip = $1 AND state = $2 AND expires_at > $3`
	countClientWaitingSQL = `SELECT COUNT(*) FROM device_auths WHERE client_id = $1 AND state = $2 AND expires_at > $3`
	countAllWaitingSQL    = `SELECT COUNT(*) FROM device_auths WHERE state = $1 AND expires_at > $2`
)
