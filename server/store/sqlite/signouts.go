package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// AddSignOut records that the web session sessionID was signed out; the record lasts
// until expires, when the session's cookie dies anyway. Only the id's SHA-256 is kept,
// and every call first deletes up to purgeBatch records expired at now, so the table
// holds only sign-outs of sessions that could still be presented.
func (db *DB) AddSignOut(ctx context.Context, sessionID string, expires, now time.Time) error {
	if sessionID == "" {
		return fmt.Errorf("sqlite: add sign-out: session id is required")
	}
	return db.inTx(ctx, "add sign-out", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`DELETE FROM web_signouts WHERE rowid IN
			(SELECT rowid FROM web_signouts WHERE expires_at <= ? LIMIT %d)`, purgeBatch), ts(now)); err != nil {
			return fmt.Errorf("sqlite: add sign-out: purge: %w", err)
		}
		if !expires.After(now) {
			return nil
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO web_signouts (session_hash, expires_at) VALUES (?, ?)
			ON CONFLICT (session_hash) DO UPDATE SET expires_at = max(expires_at, excluded.expires_at)`,
			hash(sessionID), ts(expires))
		if err != nil {
			return fmt.Errorf("sqlite: add sign-out: %w", err)
		}
		return nil
	})
}

// SignedOut reports whether the web session sessionID was signed out and its record
// has not expired at now.
func (db *DB) SignedOut(ctx context.Context, sessionID string, now time.Time) (bool, error) {
	var n int
	err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM web_signouts WHERE session_hash = ? AND expires_at > ?`,
		hash(sessionID), ts(now)).Scan(&n)
	if err != nil {
		return false, unavailable(fmt.Errorf("sqlite: signed out: %w", err))
	}
	return n > 0, nil
}
