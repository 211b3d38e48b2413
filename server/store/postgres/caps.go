package postgres

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/linkdesk/linkdesk/server/store"
)

// keepBatch is how many long-expired never-approved requests one capped create
// deletes: more than one, so deleting keeps up with creating.
const keepBatch = 20

// Advisory lock keys (pg_advisory_xact_lock) under which capped creates count and
// insert: "linkdcdv" and "linkdcar" in ASCII.
const (
	lockDeviceCaps  = 0x6c696e6b64636476
	lockAuthReqCaps = 0x6c696e6b64636172
)

// capQuery is one count a cap is checked against: query selects one row per request
// counted, and checkCaps reads at most limit of them, so a count costs no more than
// its cap however many rows match.
type capQuery struct {
	name  string
	limit int
	query string
	args  []any
	// known: the count is n, already read in this transaction (batchCounts);
	// counted, when set, is told a count read from the database (exact when below
	// the limit, else a lower bound) and returns the count to judge (raised by what
	// the transaction will insert before this).
	known   bool
	n       int
	counted func(n int, exact bool) int
}

// checkCaps runs the counts of qs in tx and fails with store.ErrLimited, naming the
// cap, at the first that has reached its limit. A zero limit is skipped.
func checkCaps(ctx context.Context, tx *sql.Tx, what string, qs []capQuery) error {
	for _, q := range qs {
		if q.limit <= 0 {
			continue
		}
		n := q.n
		if !q.known {
			bounded := fmt.Sprintf(`SELECT COUNT(*) FROM (%s LIMIT $%d) AS counted`, q.query, len(q.args)+1)
			if err := tx.QueryRowContext(ctx, bounded, append(q.args, q.limit)...).Scan(&n); err != nil {
				return fmt.Errorf("postgres: %s: count %s: %w", what, q.name, err)
			}
			if q.counted != nil {
				n = q.counted(n, n < q.limit)
			}
		}
		if n >= q.limit {
			return fmt.Errorf("postgres: %s: %s reached %d: %w", what, q.name, q.limit, store.ErrLimited)
		}
	}
	return nil
}

// capsLock takes the transaction-scoped advisory lock key when any cap is set. Counts
// at READ COMMITTED see only rows committed before each statement, so two concurrent
// creates could both count below a cap and both insert; under the lock, capped creates
// of every replica take turns, and each counts after the previous one committed. (The
// caps include a total over all requests, so one lock per kind of request, not per
// address or client.)
func capsLock(ctx context.Context, tx *sql.Tx, key int64, caps store.RequestCaps) error {
	if !caps.Any() {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, key); err != nil {
		return fmt.Errorf("postgres: caps lock: %w", err)
	}
	return nil
}

// CreateDeviceAuthCapped is CreateDeviceAuth under caps, all in one transaction
// (READ COMMITTED under capsLock): the counts, the deletion of a few pending or denied
// requests that expired more than caps.Keep before d.CreatedAt, and the insert.
// Concurrent capped creates of this replica share that transaction (capsBatcher).
func (db *DB) CreateDeviceAuthCapped(ctx context.Context, d store.DeviceAuth, caps store.RequestCaps) error {
	d, err := newDeviceAuth(d)
	if err != nil {
		return err
	}
	op := &cappedCreate{ctx: ctx, d: d, caps: caps}
	if !caps.Any() {
		return db.createCappedAlone(op)
	}
	return db.capsBatch.q.Do(op, db.createCappedBatch, db.createCappedAlone)
}

// createCappedAlone is CreateDeviceAuthCapped in a transaction of its own: a batch
// of one, in the order counts, deletion, insert.
func (db *DB) createCappedAlone(op *cappedCreate) error {
	ctx, one := op.ctx, []*cappedCreate{op}
	return db.inTx(ctx, "create device auth", func(tx *sql.Tx) error {
		if err := capsLock(ctx, tx, lockDeviceCaps, op.caps); err != nil {
			return err
		}
		if err := checkCaps(ctx, tx, "create device auth", newBatchCounts(one).queries(op)); err != nil {
			return err
		}
		if err := deleteKept(ctx, tx, one); err != nil {
			return err
		}
		return createDeviceAuthTx(ctx, tx, op.d)
	})
}

// CreateAuthRequestCapped is CreateAuthRequest under caps, all in one transaction
// (READ COMMITTED under capsLock): the counts of a.RequestIP's and a.ClientID's
// requests not yet signed in, the deletion of a few such requests that expired more
// than caps.Keep before a.CreatedAt, and the insert.
func (db *DB) CreateAuthRequestCapped(ctx context.Context, a store.AuthRequest, caps store.RequestCaps) error {
	a, err := authRequestDefaults(a)
	if err != nil {
		return err
	}
	now, since := ts(a.CreatedAt), ts(a.CreatedAt.Add(-caps.Window))
	return db.inTx(ctx, "create auth request", func(tx *sql.Tx) error {
		if err := capsLock(ctx, tx, lockAuthReqCaps, caps); err != nil {
			return err
		}
		err := checkCaps(ctx, tx, "create auth request", []capQuery{
			{name: "address rate", limit: caps.PerIPRate,
				query: `SELECT 1 FROM auth_requests WHERE request_ip = $1 AND created_at > $2`, args: []any{a.RequestIP, since}},
			{name: "client rate", limit: caps.PerClientRate,
				query: `SELECT 1 FROM auth_requests WHERE client_id = $1 AND created_at > $2`, args: []any{a.ClientID, since}},
			{name: "waiting per address", limit: caps.PerIP,
				query: `SELECT 1 FROM auth_requests WHERE request_ip = $1 AND NOT done AND expires_at > $2`, args: []any{a.RequestIP, now}},
			{name: "waiting per client", limit: caps.PerClient,
				query: `SELECT 1 FROM auth_requests WHERE client_id = $1 AND NOT done AND expires_at > $2`, args: []any{a.ClientID, now}},
			{name: "waiting overall", limit: caps.Total,
				query: `SELECT 1 FROM auth_requests WHERE NOT done AND expires_at > $1`, args: []any{now}},
		})
		if err != nil {
			return err
		}
		if caps.Keep > 0 {
			if _, err := tx.ExecContext(ctx, `DELETE FROM auth_requests WHERE id IN (
				SELECT id FROM auth_requests WHERE NOT done AND expires_at < $1 LIMIT $2)`,
				ts(a.CreatedAt.Add(-caps.Keep)), keepBatch); err != nil {
				return fmt.Errorf("postgres: create auth request: delete old: %w", err)
			}
		}
		return createAuthRequestTx(ctx, tx, a)
	})
}
