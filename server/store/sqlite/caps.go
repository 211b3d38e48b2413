package sqlite

import (
	"context"
	"database/sql"
	"fmt"

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

// sweepDeviceAuths brings every device authorization's live and recent flags up to
// date for now and since (live: expires_at > now; recent: created_at > since), so
// device_auth_counts, which triggers keep equal to the flagged rows (migration 7),
// holds exact counts for this now and window. Each statement reads only the rows it
// flips (through device_auths_live and device_auths_recent): with time moving forward
// these are the requests that expired or left the window since the last sweep, and
// any time or window is still right, at the cost of the rows it flips.
func sweepDeviceAuths(ctx context.Context, tx *sql.Tx, now, since int64) error {
	for _, q := range []struct {
		query string
		arg   int64
	}{
		{`UPDATE device_auths SET live = 0 WHERE live = 1 AND expires_at <= ?`, now},
		{`UPDATE device_auths SET live = 1 WHERE live = 0 AND expires_at > ?`, now},
		{`UPDATE device_auths SET recent = 0 WHERE recent = 1 AND created_at <= ?`, since},
		{`UPDATE device_auths SET recent = 1 WHERE recent = 0 AND created_at > ?`, since},
	} {
		if _, err := tx.ExecContext(ctx, q.query, q.arg); err != nil {
			return fmt.Errorf("sqlite: create device auth: sweep: %w", err)
		}
	}
	return nil
}

// deviceAuthCounts is the counts query of CreateDeviceAuthCapped, in the order its caps
// are checked: rate per address and client, waiting per address and client, waiting
// overall.
const deviceAuthCounts = `SELECT
	COALESCE((SELECT n FROM device_auth_counts WHERE kind = 'rate ip' AND key = ?1), 0),
	COALESCE((SELECT n FROM device_auth_counts WHERE kind = 'rate client' AND key = ?2), 0),
	COALESCE((SELECT n FROM device_auth_counts WHERE kind = 'waiting ip' AND key = ?1), 0),
	COALESCE((SELECT n FROM device_auth_counts WHERE kind = 'waiting client' AND key = ?2), 0),
	COALESCE((SELECT n FROM device_auth_counts WHERE kind = 'waiting' AND key = ''), 0)`

// CreateDeviceAuthCapped is CreateDeviceAuth under caps, all in one transaction: the
// counts of d.RequestIP's and d.ClientID's requests (a refusal writes nothing), the
// deletion of a few pending or denied requests that expired more than caps.Keep before
// d.CreatedAt, and the insert. The counts are read from device_auth_counts after a
// sweep (sweepDeviceAuths), not by counting rows, so a create costs the same with
// 10 or 100,000 requests waiting.
func (db *DB) CreateDeviceAuthCapped(ctx context.Context, d store.DeviceAuth, caps store.RequestCaps) error {
	d, err := newDeviceAuth(d)
	if err != nil {
		return err
	}
	const what = "create device auth"
	now, since := ts(d.CreatedAt), ts(d.CreatedAt.Add(-caps.Window))
	return db.inTx(ctx, what, func(tx *sql.Tx) error {
		if err := sweepDeviceAuths(ctx, tx, now, since); err != nil {
			return err
		}
		var ipRate, clientRate, ipWaiting, clientWaiting, waiting int
		if err := tx.QueryRowContext(ctx, deviceAuthCounts, d.RequestIP, d.ClientID).
			Scan(&ipRate, &clientRate, &ipWaiting, &clientWaiting, &waiting); err != nil {
			return fmt.Errorf("sqlite: %s: counts: %w", what, err)
		}
		for _, c := range []struct {
			name     string
			n, limit int
		}{
			{"address rate", ipRate, caps.PerIPRate},
			{"client rate", clientRate, caps.PerClientRate},
			{"waiting per address", ipWaiting, caps.PerIP},
			{"waiting per client", clientWaiting, caps.PerClient},
			{"waiting overall", waiting, caps.Total},
		} {
			if err := reached(what, c.name, c.n, c.limit); err != nil {
				return err
			}
		}
		if caps.Keep > 0 {
			if _, err := tx.ExecContext(ctx, `DELETE FROM device_auths WHERE rowid IN (
				SELECT rowid FROM device_auths WHERE state IN (?, ?) AND expires_at < ? LIMIT ?)`,
				string(store.DeviceAuthPending), string(store.DeviceAuthDenied), ts(d.CreatedAt.Add(-caps.Keep)), keepBatch); err != nil {
				return fmt.Errorf("sqlite: %s: delete old: %w", what, err)
			}
		}
		return createDeviceAuthTx(ctx, tx, d, now, since)
	})
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
