package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/linkdesk/linkdesk/server/store"
	"github.com/linkdesk/linkdesk/server/store/internal/stored"
)

// AddFailure records one failure for key at now and counts key's failures at or
// after since (READ COMMITTED: the count includes this one and every committed one).
func (db *DB) AddFailure(ctx context.Context, key string, now, since time.Time) (int, error) {
	var n int
	err := db.inTx(ctx, "add failure", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO failures (key, at) VALUES ($1, $2)`, key, ts(now)); err != nil {
			return fmt.Errorf("postgres: add failure: %w", err)
		}
		err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM failures WHERE key = $1 AND at >= $2`,
			key, ts(since)).Scan(&n)
		if err != nil {
			return fmt.Errorf("postgres: count failures: %w", err)
		}
		return nil
	})
	return n, err
}

// CountFailures counts key's failures at or after since.
func (db *DB) CountFailures(ctx context.Context, key string, since time.Time) (int, error) {
	var n int
	err := db.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM failures WHERE key = $1 AND at >= $2`,
		key, ts(since)).Scan(&n)
	if err != nil {
		return 0, unavailable(fmt.Errorf("postgres: count failures: %w", err))
	}
	return n, nil
}

// ReserveAttempt records one attempt under each limit's key at now unless a limit is
// reached (see store.Store). READ COMMITTED under one transaction-scoped advisory lock
// per key (taken in sorted order, so two reservations never wait on each other in a
// cycle): reservations sharing a key, on any replica, take turns, and each counts
// after the previous one committed, so concurrent callers never get more attempts
// than the limits allow.
func (db *DB) ReserveAttempt(ctx context.Context, limits []store.AttemptLimit, now time.Time) (time.Duration, error) {
	var wait time.Duration
	err := db.inTx(ctx, "reserve attempt", func(tx *sql.Tx) error {
		var err error
		if wait, err = lockedLimitsWait(ctx, tx, limits, now); err != nil || wait > 0 {
			return err
		}
		return recordAttempt(ctx, tx, limits, now)
	})
	if err != nil {
		return 0, err
	}
	return wait, nil
}

// limitedCode runs op, an operation on the request holding a user code, behind limits
// in one transaction (see store.Store's ApproveUserCode), under ReserveAttempt's
// per-key locks: when a limit is reached it returns the wait and runs nothing; when op
// finds the code unknown, used or expired it records one attempt under every limit's
// key and commits that before returning op's error. A success records nothing.
func (db *DB) limitedCode(ctx context.Context, what string, limits []store.AttemptLimit, now time.Time, op func(tx *sql.Tx) error) (time.Duration, error) {
	var wait time.Duration
	err := db.inTx(ctx, what, func(tx *sql.Tx) error {
		var err error
		if wait, err = lockedLimitsWait(ctx, tx, limits, now); err != nil || wait > 0 {
			return err
		}
		err = op(tx)
		if !stored.FailedLookup(err) {
			return err
		}
		if rerr := recordAttempt(ctx, tx, limits, now); rerr != nil {
			return rerr
		}
		return commitThen(err)
	})
	if err != nil {
		return 0, err
	}
	return wait, nil
}

// limitKeys are the distinct keys of limits, sorted.
func limitKeys(limits []store.AttemptLimit) []string {
	var keys []string
	for _, l := range limits {
		keys = append(keys, l.Key)
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// lockedLimitsWait takes the transaction-scoped advisory lock of every key of limits
// (in sorted order, so two callers never wait on each other in a cycle) and returns how
// long from now until every limit allows one more attempt (0: they do now). Callers
// sharing a key, on any replica, take turns, and each counts after the previous one
// committed.
func lockedLimitsWait(ctx context.Context, tx *sql.Tx, limits []store.AttemptLimit, now time.Time) (time.Duration, error) {
	for _, k := range limitKeys(limits) {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('linkd attempts:' || $1, 0))`, k); err != nil {
			return 0, fmt.Errorf("postgres: attempts: lock: %w", err)
		}
	}
	var wait time.Duration
	for _, l := range limits {
		d, err := attemptWait(ctx, tx, l, now)
		if err != nil {
			return 0, err
		}
		wait = max(wait, d)
	}
	return wait, nil
}

// recordAttempt records one attempt at now under each distinct key of limits.
func recordAttempt(ctx context.Context, tx *sql.Tx, limits []store.AttemptLimit, now time.Time) error {
	for _, k := range limitKeys(limits) {
		if _, err := tx.ExecContext(ctx, `INSERT INTO failures (key, at) VALUES ($1, $2)`, k, ts(now)); err != nil {
			return fmt.Errorf("postgres: record attempt: %w", err)
		}
	}
	return nil
}

// attemptWait is how long from now until l allows one more attempt (store.AttemptLimit.Wait).
func attemptWait(ctx context.Context, tx *sql.Tx, l store.AttemptLimit, now time.Time) (time.Duration, error) {
	rows, err := tx.QueryContext(ctx, `SELECT at FROM failures WHERE key = $1 AND at >= $2 ORDER BY at`,
		l.Key, ts(now.Add(-l.Window)))
	if err != nil {
		return 0, fmt.Errorf("postgres: count attempts: %w", err)
	}
	ats, err := stored.AttemptTimes(rows, "postgres")
	if err != nil {
		return 0, err
	}
	return l.Wait(ats, now), nil
}

// ReleaseAttempt deletes one attempt recorded at at under each of keys. SKIP LOCKED
// makes two concurrent releases of the same key and time delete two rows, not one
// twice.
func (db *DB) ReleaseAttempt(ctx context.Context, keys []string, at time.Time) error {
	return db.inTx(ctx, "release attempt", func(tx *sql.Tx) error {
		for _, k := range keys {
			if _, err := tx.ExecContext(ctx, `DELETE FROM failures WHERE id IN
				(SELECT id FROM failures WHERE key = $1 AND at = $2 LIMIT 1 FOR UPDATE SKIP LOCKED)`, k, ts(at)); err != nil {
				return fmt.Errorf("postgres: release attempt: %w", err)
			}
		}
		return nil
	})
}

// UseTOTPStep raises subject's last used step to step, if step is later: one INSERT …
// ON CONFLICT DO UPDATE … WHERE, which locks the row and judges the condition on the
// newest committed version, so of concurrent uses of one step exactly one is told true.
func (db *DB) UseTOTPStep(ctx context.Context, subject string, step int64) (bool, error) {
	var used bool
	err := db.inTx(ctx, "use one-time code", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO totp_steps (subject, step) VALUES ($1, $2)
			ON CONFLICT (subject) DO UPDATE SET step = excluded.step WHERE excluded.step > totp_steps.step`,
			subject, step)
		if err != nil {
			return fmt.Errorf("postgres: use one-time code: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("postgres: use one-time code: %w", err)
		}
		used = n == 1
		return nil
	})
	return used, err
}

// purgeBatch is how many rows one purge transaction deletes from one table, so a
// purge of many rows holds no locks for long.
const purgeBatch = 500

// Purge deletes device authorizations, auth requests, access and refresh tokens that
// expired before before, and failures recorded before before, purgeBatch rows per
// transaction. Grants are never purged.
func (db *DB) Purge(ctx context.Context, before time.Time) error {
	b := ts(before)
	for _, table := range []struct{ name, key, column string }{
		{"device_auths", "device_code_hash", "expires_at"},
		{"auth_requests", "id", "expires_at"},
		{"access_tokens", "id", "expires_at"},
		{"refresh_tokens", "token_hash", "expires_at"},
		{"failures", "id", "at"},
	} {
		q := fmt.Sprintf(`DELETE FROM %[1]s WHERE %[2]s IN (SELECT %[2]s FROM %[1]s WHERE %[3]s < $1 LIMIT %[4]d)`,
			table.name, table.key, table.column, purgeBatch)
		for {
			var n int64
			err := db.inTx(ctx, "purge "+table.name, func(tx *sql.Tx) error {
				res, err := tx.ExecContext(ctx, q, b)
				if err != nil {
					return fmt.Errorf("postgres: purge %s: %w", table.name, err)
				}
				n, err = res.RowsAffected()
				return err
			})
			if err != nil {
				return err
			}
			if n < purgeBatch {
				break
			}
		}
	}
	return nil
}

// AddSignOut records that the web session sessionID was signed out, until expires;
// only the id's SHA-256 is kept, and every call first deletes up to purgeBatch records
// expired at now. The upsert keeps the later expiry (GREATEST) whoever commits first.
func (db *DB) AddSignOut(ctx context.Context, sessionID string, expires, now time.Time) error {
	if sessionID == "" {
		return fmt.Errorf("postgres: add sign-out: session id is required")
	}
	return db.inTx(ctx, "add sign-out", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`DELETE FROM web_signouts WHERE session_hash IN
			(SELECT session_hash FROM web_signouts WHERE expires_at <= $1 LIMIT %d)`, purgeBatch), ts(now)); err != nil {
			return fmt.Errorf("postgres: add sign-out: purge: %w", err)
		}
		if !expires.After(now) {
			return nil
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO web_signouts (session_hash, expires_at) VALUES ($1, $2)
			ON CONFLICT (session_hash) DO UPDATE SET expires_at = GREATEST(web_signouts.expires_at, excluded.expires_at)`,
			hash(sessionID), ts(expires))
		if err != nil {
			return fmt.Errorf("postgres: add sign-out: %w", err)
		}
		return nil
	})
}

// SignedOut reports whether the web session sessionID was signed out and its record
// has not expired at now.
func (db *DB) SignedOut(ctx context.Context, sessionID string, now time.Time) (bool, error) {
	var n int
	err := db.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM web_signouts WHERE session_hash = $1 AND expires_at > $2`,
		hash(sessionID), ts(now)).Scan(&n)
	if err != nil {
		return false, unavailable(fmt.Errorf("postgres: signed out: %w", err))
	}
	return n > 0, nil
}
