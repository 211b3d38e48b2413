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
// memory, stores them with one statement, and commits once; every caller hears its
// result after that commit. A caller that gives up still waits for the batch before
// its own; a batch whose callers have all given up ends at once (batchContext).
type capsBatcher struct {
	q      batching.Queue[*cappedCreate]
	mu     sync.Mutex // guards shared
	shared int        // requests committed in a transaction with others (tests read it)
}

// createCappedBatch runs batch in one transaction and returns every result, or
// reports false (a fault that is not the database being away, or a code taken by a
// writer outside the batch meanwhile), and the caller runs each request alone. When
// the database is unavailable every caller hears so at once, rather than waiting for
// it once more alone.
//
// The transaction makes a fixed number of round trips whatever the batch's size: the
// lock, each count once, one read of the rows already holding the batch's codes, then
// one DELETE of their expired holders and one INSERT of every request admitted. Which
// requests are admitted is decided in memory, in queue order, exactly as one request
// after another would be (see admitBatch); the INSERT must then store every one of
// them, or the transaction is rolled back.
func (db *DB) createCappedBatch(batch []*cappedCreate) ([]error, bool) {
	ctx, cancel := batchContext(batch)
	defer cancel()
	results := make([]error, len(batch))
	err := db.inTx(ctx, "create device auths", func(tx *sql.Tx) error {
		clear(results)
		if err := capsLock(ctx, tx, lockDeviceCaps, batch[0].caps); err != nil { // every batched create has caps
			return err
		}
		held, err := readHolders(ctx, tx, batch)
		if err != nil {
			return err
		}
		purge, admitted, err := admitBatch(ctx, tx, batch, held, results)
		if err != nil {
			return err
		}
		if err := purgeExpiredHolders(ctx, tx, purge); err != nil {
			return err
		}
		if err := insertDeviceAuths(ctx, tx, admitted); err != nil {
			return err
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

// codeHolder is a stored request holding one of a batch's codes.
type codeHolder struct {
	userCode, deviceCodeHash string
	expiresAt                int64
	gone                     bool // its expired row is purged by a request of the batch
}

// codeHolders are the stored requests holding a batch's user or device codes, and the
// batch's own admitted requests as they are added.
type codeHolders struct {
	byUserCode   map[string]*codeHolder
	byDeviceHash map[string]*codeHolder
}

// readHolders reads, in one query, every stored request holding a user code or a
// device code of batch.
func readHolders(ctx context.Context, tx *sql.Tx, batch []*cappedCreate) (*codeHolders, error) {
	userCodes, hashes := make([]string, len(batch)), make([]string, len(batch))
	for i, op := range batch {
		userCodes[i], hashes[i] = op.d.UserCode, hash(op.d.DeviceCode)
	}
	rows, err := tx.QueryContext(ctx, `SELECT user_code, device_code_hash, expires_at FROM device_auths
		WHERE user_code = ANY($1::text[]) OR device_code_hash = ANY($2::text[])`, userCodes, hashes)
	if err != nil {
		return nil, fmt.Errorf("postgres: create device auths: read holders: %w", err)
	}
	defer rows.Close()
	h := &codeHolders{byUserCode: make(map[string]*codeHolder), byDeviceHash: make(map[string]*codeHolder)}
	for rows.Next() {
		c := new(codeHolder)
		if err := rows.Scan(&c.userCode, &c.deviceCodeHash, &c.expiresAt); err != nil {
			return nil, fmt.Errorf("postgres: create device auths: read holders: %w", err)
		}
		h.add(c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: create device auths: read holders: %w", err)
	}
	return h, nil
}

func (h *codeHolders) add(c *codeHolder) {
	h.byUserCode[c.userCode] = c
	h.byDeviceHash[c.deviceCodeHash] = c
}

// admitBatch decides, in queue order, what each request of batch gets, as
// createCappedAlone would one after another: a caller already gone gets its
// context's error; then its caps are checked (counts read once, raised by the
// requests admitted before it); then an expired holder of its user code is purged
// (purge, even when the insert then fails, as createDeviceAuthTx does); then a code
// still held is refused, and otherwise the request is admitted. results gets every
// refusal; admitted lists the requests to insert.
func admitBatch(ctx context.Context, tx *sql.Tx, batch []*cappedCreate, held *codeHolders, results []error) (purge []*cappedCreate, admitted []store.DeviceAuth, err error) {
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
			return nil, nil, err
		}
		purge = append(purge, op)
		if c := held.byUserCode[op.d.UserCode]; c != nil && !c.gone {
			if c.expiresAt > ts(op.d.CreatedAt) {
				results[i] = fmt.Errorf("postgres: create device auth: %w", store.ErrDuplicateUserCode)
				continue
			}
			c.gone = true // expired: purged before the insert
		}
		h := hash(op.d.DeviceCode)
		if c := held.byDeviceHash[h]; c != nil && !c.gone {
			results[i] = fmt.Errorf("postgres: create device auth: device code: %w", store.ErrDuplicate)
			continue
		}
		held.add(&codeHolder{userCode: op.d.UserCode, deviceCodeHash: h, expiresAt: ts(op.d.ExpiresAt)})
		admitted = append(admitted, op.d)
		counts.inserted(op.d)
	}
	return purge, admitted, nil
}

// purgeExpiredHolders deletes, in one statement, each request that holds the user
// code of a request of ops and had expired by that request's time.
func purgeExpiredHolders(ctx context.Context, tx *sql.Tx, ops []*cappedCreate) error {
	if len(ops) == 0 {
		return nil
	}
	codes, ats := make([]string, len(ops)), make([]int64, len(ops))
	for i, op := range ops {
		codes[i], ats[i] = op.d.UserCode, ts(op.d.CreatedAt)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM device_auths d USING unnest($1::text[], $2::bigint[]) AS u(code, at)
		WHERE d.user_code = u.code AND d.expires_at <= u.at`, codes, ats); err != nil {
		return fmt.Errorf("postgres: create device auths: purge expired: %w", err)
	}
	return nil
}

// errBatchRaced is what insertDeviceAuths returns when a request it was to store had
// its code taken meanwhile (by a create that does not take the caps lock): the
// batch's transaction is rolled back and each request runs alone.
var errBatchRaced = errors.New("postgres: create device auths: a code was taken outside the batch")

// insertDeviceAuths stores ds in one statement, all of them or, with errBatchRaced,
// none.
func insertDeviceAuths(ctx context.Context, tx *sql.Tx, ds []store.DeviceAuth) error {
	if len(ds) == 0 {
		return nil
	}
	n := len(ds)
	hashes, userCodes, clients, scopes := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	names, models, kinds, ips := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	created, expires, intervals := make([]int64, n), make([]int64, n), make([]int64, n)
	states, subjects, grants, nets := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	authTimes, collected := make([]int64, n), make([]int64, n)
	for i, d := range ds {
		hashes[i], userCodes[i], clients[i], scopes[i] = hash(d.DeviceCode), d.UserCode, d.ClientID, list(d.Scopes)
		names[i], models[i], kinds[i], ips[i] = d.Device.Name, d.Device.Model, string(d.Device.Kind), d.RequestIP
		created[i], expires[i], intervals[i] = ts(d.CreatedAt), ts(d.ExpiresAt), int64(d.Interval)
		states[i], subjects[i], grants[i], nets[i] = string(d.State), d.Subject, d.GrantID, store.NetworkKey(d.RequestIP)
		authTimes[i], collected[i] = ts(d.AuthTime), ts(d.CollectedAt)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO device_auths (device_code_hash, `+deviceAuthCols+`, request_net)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
			$8::text[], $9::bigint[], $10::bigint[], $11::bigint[], $12::text[], $13::text[], $14::text[],
			$15::bigint[], $16::bigint[], $17::text[])
		ON CONFLICT DO NOTHING`,
		hashes, userCodes, clients, scopes, names, models, kinds, ips, created, expires, intervals,
		states, subjects, grants, authTimes, collected, nets)
	if err != nil {
		return fmt.Errorf("postgres: create device auths: %w", err)
	}
	stored, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("postgres: create device auths: %w", err)
	}
	if stored != int64(n) {
		return errBatchRaced
	}
	return nil
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
//
// The batch's requests are inserted together at the end, so a count first read after
// some of them were admitted does not include them; it is raised by those it covers
// (admitted) as it is read.
type batchCounts struct {
	at       time.Time
	known    map[countKey]knownCount
	admitted []store.DeviceAuth
}

// knownCount is a count read in the batch: exact, or (stopped at a cap) a lower bound.
type knownCount struct {
	n     int
	exact bool
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
	return &batchCounts{at: at, known: make(map[countKey]knownCount)}
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
		// A count read under another request's lower limit may have stopped there;
		// it answers only when exact or when it already reaches this limit.
		if kn, ok := c.known[k]; ok && (kn.exact || kn.n >= qs[i].limit) {
			qs[i].known, qs[i].n = true, kn.n
			continue
		}
		qs[i].counted = func(n int, exact bool) int {
			for _, a := range c.admitted {
				if k.covers(a) {
					n++
				}
			}
			c.known[k] = knownCount{n, exact}
			return n
		}
	}
	return qs
}

// inserted counts d, admitted to the batch, in every count already read that
// includes it: being new, it is within every window, pending and unexpired.
func (c *batchCounts) inserted(d store.DeviceAuth) {
	c.admitted = append(c.admitted, d)
	for k, kn := range c.known {
		if k.covers(d) {
			kn.n++
			c.known[k] = kn
		}
	}
}

// covers reports whether the count k includes d, a request just made.
func (k countKey) covers(d store.DeviceAuth) bool {
	switch k.kind {
	case ipRate, ipWaiting:
		return k.of == d.RequestIP
	case clientRate, clientWaiting:
		return k.of == d.ClientID
	}
	return true
}

// The counts of a capped device request (see CreateDeviceAuthCapped).
const (
	countIPRateSQL        = `SELECT 1 FROM device_auths WHERE request_ip = $1 AND created_at > $2`
	countClientRateSQL    = `SELECT 1 FROM device_auths WHERE client_id = $1 AND created_at > $2`
	countIPWaitingSQL     = `SELECT 1 FROM device_auths WHERE request_ip = $1 AND state = $2 AND expires_at > $3`
	countClientWaitingSQL = `SELECT 1 FROM device_auths WHERE client_id = $1 AND state = $2 AND expires_at > $3`
	countAllWaitingSQL    = `SELECT 1 FROM device_auths WHERE state = $1 AND expires_at > $2`
)
