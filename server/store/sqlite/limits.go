package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/linkdesk/linkdesk/server/store"
)

// ReserveAttempt records one attempt under each limit's key at now unless a limit is
// reached; it reads and writes in one BEGIN IMMEDIATE transaction, so concurrent
// reservations (on any replica sharing the database) are counted one after another.
func (db *DB) ReserveAttempt(ctx context.Context, limits []store.AttemptLimit, now time.Time) (time.Duration, error) {
	var wait time.Duration
	err := db.inTx(ctx, "reserve attempt", func(tx *sql.Tx) error {
		for _, l := range limits {
			d, err := attemptWait(ctx, tx, l, now)
			if err != nil {
				return err
			}
			wait = max(wait, d)
		}
		if wait > 0 {
			return nil
		}
		seen := map[string]bool{}
		for _, l := range limits {
			if seen[l.Key] {
				continue
			}
			seen[l.Key] = true
			if _, err := tx.ExecContext(ctx, `INSERT INTO failures (key, at) VALUES (?, ?)`, l.Key, ts(now)); err != nil {
				return fmt.Errorf("sqlite: reserve attempt: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return wait, nil
}

// attemptWait is how long from now until l allows one more attempt (0: it does now).
func attemptWait(ctx context.Context, tx *sql.Tx, l store.AttemptLimit, now time.Time) (time.Duration, error) {
	rows, err := tx.QueryContext(ctx, `SELECT at FROM failures WHERE key = ? AND at >= ? ORDER BY at`,
		l.Key, ts(now.Add(-l.Window)))
	if err != nil {
		return 0, fmt.Errorf("sqlite: count attempts: %w", err)
	}
	defer rows.Close()
	var ats []time.Time
	for rows.Next() {
		var at int64
		if err := rows.Scan(&at); err != nil {
			return 0, fmt.Errorf("sqlite: count attempts: %w", err)
		}
		ats = append(ats, tm(at))
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("sqlite: count attempts: %w", err)
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
