package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/linkdesk/linkdesk/server/store"
	"github.com/linkdesk/linkdesk/server/store/internal/stored"
)

// ReserveAttempt records one attempt under each limit's key at now unless a limit is
// reached; it reads and writes in one BEGIN IMMEDIATE transaction, so concurrent
// reservations (on any replica sharing the database) are counted one after another.
func (db *DB) ReserveAttempt(ctx context.Context, limits []store.AttemptLimit, now time.Time) (time.Duration, error) {
	var wait time.Duration
	err := db.inTx(ctx, "reserve attempt", func(tx *sql.Tx) error {
		var err error
		t := db.prepared(tx)
		if wait, err = db.limitsWait(ctx, t, limits, now); err != nil || wait > 0 {
			return err
		}
		return db.recordAttempt(ctx, t, limits, now)
	})
	if err != nil {
		return 0, err
	}
	return wait, nil
}

// The statements of the limits (hotWrites): a key's attempts since a time, oldest
// first, and one more attempt.
const (
	attemptsSQL      = `SELECT at FROM failures WHERE key = ? AND at >= ? ORDER BY at`
	recordAttemptSQL = `INSERT INTO failures (key, at) VALUES (?, ?)`
)

// limitsWait is how long from now until every limit allows one more attempt (0: they
// do now). Keys the writer knows have no attempt in their windows are not read
// (attemptKeys).
func (db *DB) limitsWait(ctx context.Context, tx txRunner, limits []store.AttemptLimit, now time.Time) (time.Duration, error) {
	if err := db.attempts.ready(ctx, tx, now); err != nil {
		return 0, err
	}
	if db.attempts.attemptsQuiet(limits, now) {
		return 0, nil
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
func (db *DB) recordAttempt(ctx context.Context, tx txRunner, limits []store.AttemptLimit, now time.Time) error {
	for i, l := range limits {
		if slices.ContainsFunc(limits[:i], func(o store.AttemptLimit) bool { return o.Key == l.Key }) {
			continue
		}
		if _, err := tx.ExecContext(ctx, recordAttemptSQL, l.Key, ts(now)); err != nil {
			return fmt.Errorf("sqlite: record attempt: %w", err)
		}
		db.attempts.recorded(l.Key, ts(now))
	}
	return nil
}

// limitedCode runs op, an operation on the request holding a user code, behind limits
// in one write transaction (see store.Store's ApproveUserCode): when a limit is reached
// it returns the wait and runs nothing; when op finds the code unknown, used or
// expired it records one attempt under every limit's key and commits that before
// returning op's error. A success records nothing.
func (db *DB) limitedCode(ctx context.Context, what string, limits []store.AttemptLimit, now time.Time, op func(ctx context.Context, tx txRunner) error) (time.Duration, error) {
	var wait time.Duration
	// op reads, and may refuse, before it writes; a failed lookup's attempt is kept.
	err := db.inTxRefusingFirst(ctx, what, func(sqlTx *sql.Tx) error {
		tx := db.prepared(sqlTx)
		// A caller gone before its turn is skipped (inTx); once begun, the statements
		// take microseconds and are not interrupted: a cancellable context costs the
		// driver a goroutine per statement, on the writer everyone waits for.
		ctx := context.WithoutCancel(ctx)
		var err error
		if wait, err = db.limitsWait(ctx, tx, limits, now); err != nil || wait > 0 {
			return err
		}
		err = op(ctx, tx)
		if !stored.FailedLookup(err) {
			return err
		}
		if rerr := db.recordAttempt(ctx, tx, limits, now); rerr != nil {
			return rerr
		}
		return commitThen(err)
	})
	if err != nil {
		return 0, err
	}
	return wait, nil
}

// attemptWait is how long from now until l allows one more attempt (0: it does now).
func attemptWait(ctx context.Context, tx txRunner, l store.AttemptLimit, now time.Time) (time.Duration, error) {
	rows, err := tx.QueryContext(ctx, attemptsSQL, l.Key, ts(now.Add(-l.Window)))
	if err != nil {
		return 0, fmt.Errorf("sqlite: count attempts: %w", err)
	}
	ats, err := stored.AttemptTimes(rows, "sqlite")
	if err != nil {
		return 0, err
	}
	return l.Wait(ats, now), nil
}

// ReleaseAttempt deletes one attempt recorded at at under each of keys.
func (db *DB) ReleaseAttempt(ctx context.Context, keys []string, at time.Time) error {
	return db.inTx(ctx, "release attempt", func(tx *sql.Tx) error {
		for _, k := range keys {
			if _, err := tx.ExecContext(ctx, `DELETE FROM failures WHERE rowid IN
				(SELECT rowid FROM failures WHERE key = ? AND at = ? LIMIT 1)`, k, ts(at)); err != nil {
				return fmt.Errorf("sqlite: release attempt: %w", err)
			}
		}
		return nil
	})
}

// UseTOTPStep raises subject's last used step to step, if step is later.
func (db *DB) UseTOTPStep(ctx context.Context, subject string, step int64) (bool, error) {
	var used bool
	err := db.inTx(ctx, "use one-time code", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO totp_steps (subject, step) VALUES (?, ?)
			ON CONFLICT (subject) DO UPDATE SET step = excluded.step WHERE excluded.step > totp_steps.step`,
			subject, step)
		if err != nil {
			return fmt.Errorf("sqlite: use one-time code: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("sqlite: use one-time code: %w", err)
		}
		used = n == 1
		return nil
	})
	return used, err
}
