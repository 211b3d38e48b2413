package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/linkdesk/linkdesk/server/store"
)

// keepBatch is how many long-expired never-approved requests one capped create
// deletes: more than one, so deleting keeps up with creating.
const keepBatch = 20

// capQuery is one count a cap is checked against: query selects one row per request
// counted.
type capQuery struct {
	name  string
	limit int
	query string
	args  []any
}

// checkCaps runs the counts of qs in tx and fails with store.ErrLimited, naming the
// cap, at the first that has reached its limit. A zero limit is skipped. Each count
// stops at its limit, so a check reads at most limit rows of an index.
func checkCaps(ctx context.Context, tx *sql.Tx, what string, qs []capQuery) error {
	for _, q := range qs {
		if q.limit <= 0 {
			continue
		}
		var n int
		err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM (`+q.query+` LIMIT ?)`, append(q.args, q.limit)...).Scan(&n)
		if err != nil {
			return fmt.Errorf("sqlite: %s: count %s: %w", what, q.name, err)
		}
		if err := reached(what, q.name, n, q.limit); err != nil {
			return err
		}
	}
	return nil
}

// reached is store.ErrLimited, naming the cap, when n has reached a non-zero limit.
func reached(what, name string, n, limit int) error {
	if limit > 0 && n >= limit {
		return fmt.Errorf("sqlite: %s: %s reached %d: %w", what, name, limit, store.ErrLimited)
	}
	return nil
}

// The sweeps of sweepDeviceAuths: each flips one flag of at most sweepBatch rows where
// it is wrong for the time given, found through an index that holds little more than
// those rows (named, as the planner would rather take another for some).
var deviceAuthSweeps = []struct {
	query string
	arg   int  // what its argument is besides the batch: sweepNow, sweepSince or none (0)
	up    bool // it turns a flag on: a count it fixes was too low
}{
	{sweepSQL("waiting = 0", "device_auths_waiting_expires", "waiting = 1 AND expires_at <= ?"), sweepNow, false},
	{sweepSQL("waiting = 0", "device_auths_waiting_done", "waiting = 1 AND state != 'pending'"), 0, false},
	{sweepSQL("waiting = 1", "device_auths_pending_unwaiting", "waiting = 0 AND state = 'pending' AND expires_at > ?"), sweepNow, true},
	{sweepSQL("recent = 0", "device_auths_recent", "recent = 1 AND created_at <= ?"), sweepSince, false},
	{sweepSQL("recent = 1", "device_auths_recent", "recent = 0 AND created_at > ?"), sweepSince, true},
}

// sweepSQL is the statement that applies set to at most a batch (its last argument)
// of the rows matching where, found through index.
func sweepSQL(set, index, where string) string {
	return `UPDATE device_auths SET ` + set + ` WHERE rowid IN (SELECT rowid FROM device_auths INDEXED BY ` +
		index + ` WHERE ` + where + ` LIMIT ?)`
}

// sweepBatch bounds the rows one sweep flips: a burst of requests leaves the rate
// window together a minute later, and flipping ten thousand of them (each adjusting
// its counts) in one create held the writer, and every approval and request waiting
// for it, for a second. A create that needs exact counts sweeps on to the end.
const sweepBatch = 256

// The arguments of deviceAuthSweeps.
const (
	sweepNow = iota + 1
	sweepSince
)

// sweepDeviceAuths brings device authorizations' flags up to date for now and since,
// at most sweepBatch rows a flag, and so device_auth_counts, which triggers keep equal
// to the flagged rows (migrations 8 and 11). A request is waiting when it is pending
// and expires after now, and recent when created after since. Each sweep reads only
// the rows it flips: with time moving forward, the requests that expired, were
// approved or denied, or left the window since the last sweep; any other time or
// window is still right, at the cost of the rows it flips. It reports whether a sweep
// stopped at its batch, so flags may still be wrong (more), and whether one that turns
// flags on did (moreUp), so a count may still be too low.
func sweepDeviceAuths(ctx context.Context, tx txRunner, now, since int64) (more, moreUp bool, err error) {
	for _, s := range deviceAuthSweeps {
		var args []any
		switch s.arg {
		case sweepNow:
			args = []any{now}
		case sweepSince:
			args = []any{since}
		}
		res, err := tx.ExecContext(ctx, s.query, append(args, sweepBatch)...)
		if err != nil {
			return false, false, fmt.Errorf("sqlite: create device auth: sweep: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return false, false, fmt.Errorf("sqlite: create device auth: sweep: %w", err)
		}
		more = more || n >= sweepBatch
		moreUp = moreUp || s.up && n >= sweepBatch
	}
	return more, moreUp, nil
}

// The statements that read device_auth_counts and delete old requests.
const (
	// readCounts reads the counts of address ?1 and client ?2 in the order the caps are
	// checked, then when the request holding user code ?3 expires (NULL: none does).
	// Whether a sweep or a deletion is due is not probed here but remembered by the
	// writer (capsState). Every column is named: the driver copies each column's name on
	// every query, and an unnamed one is named by its whole expression.
	readCounts = `SELECT
	COALESCE((SELECT n FROM device_auth_counts WHERE kind = 'rate ip' AND key = ?1), 0) AS ip_rate,
	COALESCE((SELECT n FROM device_auth_counts WHERE kind = 'rate client' AND key = ?2), 0) AS client_rate,
	COALESCE((SELECT n FROM device_auth_counts WHERE kind = 'waiting ip' AND key = ?1), 0) AS ip_waiting,
	COALESCE((SELECT n FROM device_auth_counts WHERE kind = 'waiting client' AND key = ?2), 0) AS client_waiting,
	COALESCE((SELECT n FROM device_auth_counts WHERE kind = 'waiting' AND key = ''), 0) AS waiting,
	(SELECT expires_at FROM device_auths WHERE user_code = ?3) AS held`
	// readIPCounts is readCounts for a request whose client's counts and the overall
	// one the transaction has already read (capsState.counted): address ?1, user code ?2.
	readIPCounts = `SELECT
	COALESCE((SELECT n FROM device_auth_counts WHERE kind = 'rate ip' AND key = ?1), 0) AS ip_rate,
	COALESCE((SELECT n FROM device_auth_counts WHERE kind = 'waiting ip' AND key = ?1), 0) AS ip_waiting,
	(SELECT expires_at FROM device_auths WHERE user_code = ?2) AS held`
	// deleteKept deletes up to ?2 never-approved requests that expired before ?1:
	// pending ones (no longer waiting once swept) and denied ones.
	deleteKept = `DELETE FROM device_auths WHERE rowid IN (
	SELECT rowid FROM device_auths INDEXED BY device_auths_pending_unwaiting WHERE waiting = 0 AND state = 'pending' AND expires_at < ?1
	UNION ALL
	SELECT rowid FROM device_auths INDEXED BY device_auths_denied WHERE state = 'denied' AND expires_at < ?1
	LIMIT ?2)`
)

// createCappedQueries are the statements of CreateDeviceAuthCapped (hotWrites).
var createCappedQueries = func() []string {
	qs := []string{readCounts, readIPCounts, deleteKept, purgeUserCode, insertDeviceAuth, addCountSQL, dropCountSQL}
	for _, s := range deviceAuthSweeps {
		qs = append(qs, s.query)
	}
	return qs
}()

// deviceAuthCounts are the counts a capped create checks and when the request
// holding its user code expires.
type deviceAuthCounts struct {
	ipRate, clientRate, ipWaiting, clientWaiting, waiting int
	held                                                  sql.NullInt64
}

// capsState is what the writer remembers about device requests' flags between its
// transactions, so that a capped create reads only the counts it checks: whether a
// sweep or a deletion of long-expired requests is due is known here instead of probed
// in seven index lookups per create (a tenth of its CPU). Only the writer uses it, one
// transaction at a time. Another process writing the same file could leave a flag off
// unseen until the next timed sweep (sweepEvery): linkd runs one process per SQLite
// file.
type capsState struct {
	// inserted are the counts of the requests the transaction under way inserted
	// (insertCounts).
	inserted insertCounts
	// counted are the counts the transaction under way read from device_auth_counts,
	// as they stand there (inserted not added), so the capped creates of one batch
	// read their client's counts and the overall one once, not once each. Whatever may
	// change a count in the table forgets them (forgetCounts): a sweep, a deletion, and
	// any operation in the batch but a capped create.
	counted map[countKey]int
	// sweptAt and sweptSince are the time and the window's start (ts) of the last
	// sweep, and sweepMore whether it stopped at its batch.
	sweptAt, sweptSince int64
	sweepMore           bool
	// flagsOff: a request may have a flag off that should be on (one stored so, or an
	// up sweep stopped at its batch), so a count may be too low: the next capped create
	// sweeps to the end before it trusts one.
	flagsOff bool
	// keptAt is when (ts) long-expired requests were last deleted, and keepMore
	// whether that deletion stopped at its batch.
	keptAt   int64
	keepMore bool
	// changed: the transaction under way changed this state and has not committed.
	changed bool
}

// newCapsState is the state of a database just opened: flags may be off anywhere,
// and everything is due.
func newCapsState() capsState {
	return capsState{inserted: insertCounts{}, counted: map[countKey]int{}, flagsOff: true}
}

// begin starts a write transaction. When the last one that changed the state did not
// commit, its sweeps, deletions and inserts were undone with it, so the state starts
// over as on open.
func (s *capsState) begin() {
	clear(s.inserted)
	s.forgetCounts()
	if s.changed {
		*s = capsState{inserted: s.inserted, counted: s.counted, flagsOff: true}
	}
}

// forgetCounts forgets the counts read so far: the table's may have changed.
func (s *capsState) forgetCounts() { clear(s.counted) }

// committed notes that the transaction under way committed.
func (s *capsState) committed() { s.changed = false }

// storedFlags notes a request stored with its waiting and recent flags: one stored
// with a flag off may need it on for another time or window.
func (s *capsState) storedFlags(waiting, recent bool) {
	if !waiting || !recent {
		s.flagsOff, s.changed = true, true
	}
}

// reached is store.ErrLimited, naming the first cap of caps that c has reached.
func (c deviceAuthCounts) reached(what string, caps store.RequestCaps) error {
	for _, k := range []struct {
		name     string
		n, limit int
	}{
		{"address rate", c.ipRate, caps.PerIPRate},
		{"client rate", c.clientRate, caps.PerClientRate},
		{"waiting per address", c.ipWaiting, caps.PerIP},
		{"waiting per client", c.clientWaiting, caps.PerClient},
		{"waiting overall", c.waiting, caps.Total},
	} {
		if err := reached(what, k.name, k.n, k.limit); err != nil {
			return err
		}
	}
	return nil
}

// sweepEvery is how often, at most, a capped create turns off flags while no cap looks
// reached. In between, a request that left the rate window, expired or was approved
// is still counted: the counts can only be too high (a flag to turn on is swept at
// once), and a cap that looks reached is checked again after a sweep, so no request
// is refused that the caps allow and none is let through that they refuse. At a
// steady rate every create would otherwise sweep the one request that left the window
// since the one before, which doubled its cost.
const sweepEvery = time.Second

// readDeviceAuthCounts reads d's counts: those the transaction has not read yet
// (readCounts, or readIPCounts when its client's are known) and when the request
// holding d's user code expires. It adds the counts of the requests this transaction
// inserted but has not yet written (insertCounts).
func (db *DB) readDeviceAuthCounts(ctx context.Context, tx txRunner, d store.DeviceAuth) (deviceAuthCounts, error) {
	var c deviceAuthCounts
	known := db.caps.counted
	ip, client := countKey{countRateIP, d.RequestIP}, countKey{countRateClient, d.ClientID}
	_, ipKnown := known[ip]
	_, clientKnown := known[client]
	var err error
	switch {
	case ipKnown && clientKnown:
		if err = tx.QueryRowContext(ctx, userCodeExpiry, d.UserCode).Scan(&c.held); errors.Is(err, sql.ErrNoRows) {
			err = nil
		}
	case clientKnown:
		err = tx.QueryRowContext(ctx, readIPCounts, d.RequestIP, d.UserCode).Scan(&c.ipRate, &c.ipWaiting, &c.held)
		if err == nil {
			known[ip], known[countKey{countWaitingIP, d.RequestIP}] = c.ipRate, c.ipWaiting
		}
	default:
		err = tx.QueryRowContext(ctx, readCounts, d.RequestIP, d.ClientID, d.UserCode).
			Scan(&c.ipRate, &c.clientRate, &c.ipWaiting, &c.clientWaiting, &c.waiting, &c.held)
		if err == nil {
			known[ip], known[countKey{countWaitingIP, d.RequestIP}] = c.ipRate, c.ipWaiting
			known[client], known[countKey{countWaitingClient, d.ClientID}] = c.clientRate, c.clientWaiting
			known[countKey{countWaiting, ""}] = c.waiting
		}
	}
	if err != nil {
		return c, fmt.Errorf("sqlite: create device auth: counts: %w", err)
	}
	c.ipRate, c.ipWaiting = known[ip], known[countKey{countWaitingIP, d.RequestIP}]
	c.clientRate, c.clientWaiting = known[client], known[countKey{countWaitingClient, d.ClientID}]
	c.waiting = known[countKey{countWaiting, ""}]
	db.caps.inserted.addTo(&c, d)
	return c, nil
}

// CreateDeviceAuthCapped is CreateDeviceAuth under caps, all in one transaction: the
// counts of d.RequestIP's and d.ClientID's requests (a refusal stores no request), the
// deletion of a few pending or denied requests that expired more than caps.Keep before
// d.CreatedAt (at most every sweepEvery, unless the last one stopped at its batch),
// and the insert. The counts are read from device_auth_counts, brought up
// to date by a sweep (sweepDeviceAuths, at most every sweepEvery unless a cap looks
// reached), not by counting rows, so a create costs about the same with 10 or 100,000
// requests waiting.
func (db *DB) CreateDeviceAuthCapped(ctx context.Context, d store.DeviceAuth, caps store.RequestCaps) error {
	d, err := newDeviceAuth(d)
	if err != nil {
		return err
	}
	const what = "create device auth"
	now, since := ts(d.CreatedAt), ts(d.CreatedAt.Add(-caps.Window))
	keepBefore := ts(d.CreatedAt.Add(-caps.Keep)) // with caps.Keep > 0 only
	// Refusals come before the insert; what a refused create may have written (a
	// sweep, the deletion of long-expired requests) stands on its own.
	return db.enqueue(&writeOp{ctx: ctx, what: what, refusesFirst: true, keepsCounts: true, fn: func(sqlTx *sql.Tx) error {
		tx := db.prepared(sqlTx)
		// A caller gone before its turn is skipped (inTx); once begun, the statements
		// take microseconds and are not interrupted, which costs a goroutine each.
		ctx := context.WithoutCancel(ctx)
		c, err := db.readDeviceAuthCounts(ctx, tx, d)
		if err != nil {
			return err
		}
		// A flag to turn on (a count too low) is swept at once, to the end: one stored
		// off, or any flag for an earlier time or a wider window than the last sweep's.
		// Flags to turn off only count a request a little longer, so they are swept a
		// batch at a time, at most every sweepEvery unless the last sweep left work, and
		// to the end when a cap looks reached.
		st := &db.caps
		up := st.flagsOff || now < st.sweptAt || since < st.sweptSince
		swept := false
		due := up || st.sweepMore || now-st.sweptAt >= int64(sweepEvery) || c.reached(what, caps) != nil
		for due {
			more, moreUp, err := sweepDeviceAuths(ctx, tx, now, since)
			st.forgetCounts()
			if err != nil {
				return err
			}
			if c, err = db.readDeviceAuthCounts(ctx, tx, d); err != nil {
				return err
			}
			st.sweptAt, st.sweptSince, st.sweepMore, st.flagsOff, st.changed = now, since, more, moreUp, true
			swept = true
			due = moreUp || more && c.reached(what, caps) != nil
		}
		if err := c.reached(what, caps); err != nil {
			if swept {
				// The swept flags and counts agree, so they are kept; no request is.
				return commitThen(err)
			}
			return err
		}
		// Long-expired requests are deleted a batch at a time, like the sweeps.
		if caps.Keep > 0 && (st.keepMore || now-st.keptAt >= int64(sweepEvery) || now < st.keptAt) {
			res, err := tx.ExecContext(ctx, deleteKept, keepBefore, keepBatch)
			st.forgetCounts()
			if err != nil {
				return fmt.Errorf("sqlite: %s: delete old: %w", what, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("sqlite: %s: delete old: %w", what, err)
			}
			st.keptAt, st.keepMore, st.changed = now, n >= keepBatch, true
		}
		waiting := d.State == store.DeviceAuthPending && ts(d.ExpiresAt) > now
		recent := ts(d.CreatedAt) > since
		err = insertDeviceAuthTx(ctx, tx, d, c.held, waiting, recent)
		if c.held.Valid {
			st.forgetCounts() // an expired request holding the code was deleted
		}
		if err != nil {
			return err
		}
		st.inserted.add(d, waiting, recent)
		st.storedFlags(waiting, recent)
		return nil
	}})
}

// CreateAuthRequestCapped is CreateAuthRequest under caps, all in one transaction: the
// counts of a.RequestIP's and a.ClientID's requests not yet signed in, the insert, and
// the deletion of a few such requests that expired more than caps.Keep before
// a.CreatedAt.
func (db *DB) CreateAuthRequestCapped(ctx context.Context, a store.AuthRequest, caps store.RequestCaps) error {
	a, err := authRequestDefaults(a)
	if err != nil {
		return err
	}
	now, since := ts(a.CreatedAt), ts(a.CreatedAt.Add(-caps.Window))
	return db.inTx(ctx, "create auth request", func(tx *sql.Tx) error {
		err := checkCaps(ctx, tx, "create auth request", []capQuery{
			{"address rate", caps.PerIPRate,
				`SELECT 1 FROM auth_requests WHERE request_ip = ? AND created_at > ?`, []any{a.RequestIP, since}},
			{"client rate", caps.PerClientRate,
				`SELECT 1 FROM auth_requests WHERE client_id = ? AND created_at > ?`, []any{a.ClientID, since}},
			{"waiting per address", caps.PerIP,
				`SELECT 1 FROM auth_requests WHERE request_ip = ? AND done = 0 AND expires_at > ?`, []any{a.RequestIP, now}},
			{"waiting per client", caps.PerClient,
				`SELECT 1 FROM auth_requests WHERE client_id = ? AND done = 0 AND expires_at > ?`, []any{a.ClientID, now}},
			{"waiting overall", caps.Total,
				`SELECT 1 FROM auth_requests WHERE done = 0 AND expires_at > ?`, []any{now}},
		})
		if err != nil {
			return err
		}
		if caps.Keep > 0 {
			if _, err := tx.ExecContext(ctx, `DELETE FROM auth_requests WHERE rowid IN (
				SELECT rowid FROM auth_requests WHERE done = 0 AND expires_at < ? LIMIT ?)`,
				ts(a.CreatedAt.Add(-caps.Keep)), keepBatch); err != nil {
				return fmt.Errorf("sqlite: create auth request: delete old: %w", err)
			}
		}
		return createAuthRequestTx(ctx, tx, a)
	})
}
