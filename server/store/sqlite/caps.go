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

// capQuery is one count a cap is checked against.
type capQuery struct {
	name  string
	limit int
	query string
	args  []any
}

// checkCaps runs the counts of qs in tx and fails with store.ErrLimited, naming the
// cap, at the first that has reached its limit. A zero limit is skipped.
func checkCaps(ctx context.Context, tx *sql.Tx, what string, qs []capQuery) error {
	for _, q := range qs {
		if q.limit <= 0 {
			continue
		}
		var n int
		if err := tx.QueryRowContext(ctx, q.query, q.args...).Scan(&n); err != nil {
			return fmt.Errorf("sqlite: %s: count %s: %w", what, q.name, err)
		}
		if n >= q.limit {
			return fmt.Errorf("sqlite: %s: %s reached %d: %w", what, q.name, q.limit, store.ErrLimited)
		}
	}
	return nil
}

// CreateDeviceAuthCapped is CreateDeviceAuth under caps, all in one transaction: the
// counts of d.RequestIP's and d.ClientID's requests (a refusal writes nothing), the
// deletion of a few pending or denied requests that expired more than caps.Keep before
// d.CreatedAt, and the insert.
func (db *DB) CreateDeviceAuthCapped(ctx context.Context, d store.DeviceAuth, caps store.RequestCaps) error {
	d, err := newDeviceAuth(d)
	if err != nil {
		return err
	}
	now, since := ts(d.CreatedAt), ts(d.CreatedAt.Add(-caps.Window))
	pending := string(store.DeviceAuthPending)
	return db.inTx(ctx, "create device auth", func(tx *sql.Tx) error {
		err := checkCaps(ctx, tx, "create device auth", []capQuery{
			{"address rate", caps.PerIPRate,
				`SELECT COUNT(*) FROM device_auths WHERE request_ip = ? AND created_at > ?`, []any{d.RequestIP, since}},
			{"client rate", caps.PerClientRate,
				`SELECT COUNT(*) FROM device_auths WHERE client_id = ? AND created_at > ?`, []any{d.ClientID, since}},
			{"waiting per address", caps.PerIP,
				`SELECT COUNT(*) FROM device_auths WHERE request_ip = ? AND state = ? AND expires_at > ?`, []any{d.RequestIP, pending, now}},
			{"waiting per client", caps.PerClient,
				`SELECT COUNT(*) FROM device_auths WHERE client_id = ? AND state = ? AND expires_at > ?`, []any{d.ClientID, pending, now}},
			{"waiting overall", caps.Total,
				`SELECT COUNT(*) FROM device_auths WHERE state = ? AND expires_at > ?`, []any{pending, now}},
		})
		if err != nil {
			return err
		}
		if caps.Keep > 0 {
			if _, err := tx.ExecContext(ctx, `DELETE FROM device_auths WHERE rowid IN (
				SELECT rowid FROM device_auths WHERE state IN (?, ?) AND expires_at < ? LIMIT ?)`,
				pending, string(store.DeviceAuthDenied), ts(d.CreatedAt.Add(-caps.Keep)), keepBatch); err != nil {
				return fmt.Errorf("sqlite: create device auth: delete old: %w", err)
			}
		}
		return createDeviceAuthTx(ctx, tx, d)
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
				`SELECT COUNT(*) FROM auth_requests WHERE request_ip = ? AND created_at > ?`, []any{a.RequestIP, since}},
			{"client rate", caps.PerClientRate,
				`SELECT COUNT(*) FROM auth_requests WHERE client_id = ? AND created_at > ?`, []any{a.ClientID, since}},
			{"waiting per address", caps.PerIP,
				`SELECT COUNT(*) FROM auth_requests WHERE request_ip = ? AND done = 0 AND expires_at > ?`, []any{a.RequestIP, now}},
			{"waiting per client", caps.PerClient,
				`SELECT COUNT(*) FROM auth_requests WHERE client_id = ? AND done = 0 AND expires_at > ?`, []any{a.ClientID, now}},
			{"waiting overall", caps.Total,
				`SELECT COUNT(*) FROM auth_requests WHERE done = 0 AND expires_at > ?`, []any{now}},
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
