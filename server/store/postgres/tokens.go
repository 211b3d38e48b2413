package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/linkdesk/linkdesk/server/store"
)

func insertAccessToken(ctx context.Context, tx *sql.Tx, t store.AccessToken) error {
	if t.ID == "" || t.GrantID == "" {
		return fmt.Errorf("postgres: create access token: id and grant id are required")
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO access_tokens
		(id, grant_id, subject, client_id, scopes, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		accessIDKey(t.ID), t.GrantID, t.Subject, t.ClientID, list(t.Scopes), ts(t.CreatedAt), ts(t.ExpiresAt))
	if _, dup := isUnique(err); dup {
		return fmt.Errorf("postgres: create access token: %w", store.ErrDuplicate)
	}
	if isForeignKey(err) {
		return fmt.Errorf("postgres: create access token: grant %q: %w", t.GrantID, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("postgres: create access token: %w", err)
	}
	return nil
}

// CreateAccessToken stores an access token of an existing grant (store.ErrNotFound
// when the grant is gone): READ COMMITTED, the grant held by grantExists.
func (db *DB) CreateAccessToken(ctx context.Context, t store.AccessToken) error {
	return db.inTx(ctx, "create access token", func(tx *sql.Tx) error {
		if err := grantExists(ctx, tx, t.GrantID); err != nil {
			return err
		}
		return insertAccessToken(ctx, tx, t)
	})
}

// AccessTokenByID returns a live access token: store.ErrNotFound when unknown,
// revoked, expired at now, or when its grant is gone.
func (db *DB) AccessTokenByID(ctx context.Context, id string, now time.Time) (store.AccessToken, error) {
	var t store.AccessToken
	var scopes string
	var created, expires int64
	err := db.db.QueryRowContext(ctx, `SELECT a.grant_id, a.subject, a.client_id, a.scopes,
		a.created_at, a.expires_at FROM access_tokens a JOIN grants g ON g.id = a.grant_id
		WHERE a.id = $1 AND a.expires_at > $2`, accessIDKey(id), ts(now)).
		Scan(&t.GrantID, &t.Subject, &t.ClientID, &scopes, &created, &expires)
	if err != nil {
		return store.AccessToken{}, notFound(err, "access token")
	}
	t.ID = id
	t.CreatedAt, t.ExpiresAt = tm(created), tm(expires)
	if t.Scopes, err = unlist(scopes); err != nil {
		return store.AccessToken{}, err
	}
	return t, nil
}

// DeleteAccessToken revokes one access token (one DELETE); store.ErrNotFound when
// there was none.
func (db *DB) DeleteAccessToken(ctx context.Context, id string) error {
	return db.inTx(ctx, "delete access token", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM access_tokens WHERE id = $1`, accessIDKey(id))
		if err != nil {
			return fmt.Errorf("postgres: delete access token: %w", err)
		}
		return mustAffect(res, "delete access token")
	})
}

// insertRefreshToken stores t, remembering accessID (as its stored form), the access
// token issued with it.
func insertRefreshToken(ctx context.Context, tx *sql.Tx, t store.RefreshToken, accessID string) error {
	if t.Token == "" || t.GrantID == "" {
		return fmt.Errorf("postgres: create refresh token: token and grant id are required")
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO refresh_tokens
		(token_hash, grant_id, subject, client_id, scopes, auth_time, amr, created_at, expires_at, access_token_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		hash(t.Token), t.GrantID, t.Subject, t.ClientID, list(t.Scopes), ts(t.AuthTime), list(t.AMR),
		ts(t.CreatedAt), ts(t.ExpiresAt), accessIDKey(accessID))
	if _, dup := isUnique(err); dup {
		return fmt.Errorf("postgres: create refresh token: %w", store.ErrDuplicate)
	}
	if isForeignKey(err) {
		return fmt.Errorf("postgres: create refresh token: grant %q: %w", t.GrantID, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("postgres: create refresh token: %w", err)
	}
	return nil
}

// CreateRefreshToken stores a refresh token of an existing grant (store.ErrNotFound
// when the grant is gone); only its SHA-256 is kept. READ COMMITTED, grant held.
func (db *DB) CreateRefreshToken(ctx context.Context, t store.RefreshToken) error {
	return db.inTx(ctx, "create refresh token", func(tx *sql.Tx) error {
		if err := grantExists(ctx, tx, t.GrantID); err != nil {
			return err
		}
		return insertRefreshToken(ctx, tx, t, "")
	})
}

// refreshRow is a refresh token row as stored: when it was rotated (0: live), the
// token that replaced it, and the access token issued with it.
type refreshRow struct {
	store.RefreshToken
	usedAt        int64
	successorHash string
	accessID      string
}

// lockRefresh reads and locks (FOR UPDATE) the refresh token with hash h: every
// operation that judges or changes a refresh token holds its row, so a rotation, a
// retry of it, a reuse check and a device's repeat collection of one token take turns
// and each sees what the previous one committed.
func lockRefresh(ctx context.Context, tx *sql.Tx, h string) (refreshRow, error) {
	var r refreshRow
	var scopes, amr string
	var authTime, created, expires int64
	err := tx.QueryRowContext(ctx, `SELECT grant_id, subject, client_id, scopes, auth_time, amr,
		created_at, expires_at, used_at, successor_hash, access_token_id FROM refresh_tokens
		WHERE token_hash = $1 FOR UPDATE`, h).
		Scan(&r.GrantID, &r.Subject, &r.ClientID, &scopes, &authTime, &amr, &created, &expires, &r.usedAt,
			&r.successorHash, &r.accessID)
	if err != nil {
		return refreshRow{}, notFound(err, "refresh token")
	}
	r.AuthTime, r.CreatedAt, r.ExpiresAt = tm(authTime), tm(created), tm(expires)
	if r.Scopes, err = unlist(scopes); err != nil {
		return refreshRow{}, err
	}
	if r.AMR, err = unlist(amr); err != nil {
		return refreshRow{}, err
	}
	return r, nil
}

// reused deletes the grant of a refresh token presented after it was rotated, commits,
// and reports store.ErrRefreshReused.
func reused(ctx context.Context, tx *sql.Tx, r refreshRow) error {
	if err := deleteGrant(ctx, tx, r.GrantID); err != nil {
		return err
	}
	return commitThen(fmt.Errorf("postgres: refresh token of grant %q: %w", r.GrantID, store.ErrRefreshReused))
}

// retryOrReused judges a rotated refresh token presented at now: nil when it may be
// rotated again (rotated less than grace ago, its successor never used, the
// successor's row locked so its first use cannot slip in), else its grant is deleted
// and ErrRefreshReused returned. It returns the successor's row when it may.
func retryOrReused(ctx context.Context, tx *sql.Tx, r refreshRow, now time.Time, grace time.Duration) (refreshRow, error) {
	if r.usedAt == 0 || r.successorHash == "" || now.Sub(tm(r.usedAt)) >= grace {
		return refreshRow{}, reused(ctx, tx, r)
	}
	succ, err := lockRefresh(ctx, tx, r.successorHash)
	if errors.Is(err, store.ErrNotFound) || (err == nil && succ.usedAt != 0) {
		return refreshRow{}, reused(ctx, tx, r)
	}
	if err != nil {
		return refreshRow{}, fmt.Errorf("postgres: refresh token successor: %w", err)
	}
	return succ, nil
}

// RefreshTokenByToken returns a refresh token that may be used at now (see
// store.Store). READ COMMITTED with the token's row locked (lockRefresh).
func (db *DB) RefreshTokenByToken(ctx context.Context, token string, now time.Time, grace time.Duration) (store.RefreshToken, error) {
	var t store.RefreshToken
	err := db.inTx(ctx, "refresh token", func(tx *sql.Tx) error {
		r, err := lockRefresh(ctx, tx, hash(token))
		if err != nil {
			return err
		}
		if !now.Before(r.ExpiresAt) {
			return fmt.Errorf("postgres: refresh token expired: %w", store.ErrNotFound)
		}
		t = r.RefreshToken
		if r.usedAt != 0 {
			_, err := retryOrReused(ctx, tx, r, now, grace)
			return err
		}
		return nil
	})
	if err != nil && !errors.Is(err, store.ErrRefreshReused) {
		return store.RefreshToken{}, err
	}
	return t, err
}

// RotateRefreshToken marks old used and stores next and access in one transaction
// (see store.Store). READ COMMITTED with old's row locked (and its successor's, on a
// retry), so of concurrent rotations of one token exactly one succeeds first and the
// others are judged against what it committed.
func (db *DB) RotateRefreshToken(ctx context.Context, old string, next store.RefreshToken, access store.AccessToken, grace time.Duration) error {
	now := next.CreatedAt
	if now.IsZero() {
		now = time.Now()
	}
	return db.inTx(ctx, "rotate refresh token", func(tx *sql.Tx) error {
		h := hash(old)
		r, err := lockRefresh(ctx, tx, h)
		if err != nil {
			return err
		}
		usedAt := ts(now)
		if r.usedAt != 0 {
			succ, err := retryOrReused(ctx, tx, r, now, grace)
			if err != nil {
				return err
			}
			for _, q := range []struct{ sql, arg string }{
				{`DELETE FROM access_tokens WHERE id = $1`, succ.accessID},
				{`DELETE FROM refresh_tokens WHERE token_hash = $1`, r.successorHash},
			} {
				if _, err := tx.ExecContext(ctx, q.sql, q.arg); err != nil {
					return fmt.Errorf("postgres: rotate refresh token: revoke lost answer: %w", err)
				}
			}
			usedAt = r.usedAt // the grace period runs from the first rotation
		}
		if _, err := tx.ExecContext(ctx, `UPDATE refresh_tokens SET used_at = $1, successor_hash = $2 WHERE token_hash = $3`,
			usedAt, hash(next.Token), h); err != nil {
			return fmt.Errorf("postgres: rotate refresh token: %w", err)
		}
		n, a := next, access
		if n.GrantID == "" {
			n.GrantID = r.GrantID
		}
		if a.GrantID == "" {
			a.GrantID = r.GrantID
		}
		if err := insertRefreshToken(ctx, tx, n, a.ID); err != nil {
			return err
		}
		return insertAccessToken(ctx, tx, a)
	})
}

// RevokeRefreshToken deletes the grant the token belongs to, and so every token of it
// (RFC 7009 §2.1); store.ErrNotFound when the token is unknown. The token's row is
// locked first (lockRefresh), then the grant deleted.
func (db *DB) RevokeRefreshToken(ctx context.Context, token string) error {
	return db.inTx(ctx, "revoke refresh token", func(tx *sql.Tx) error {
		r, err := lockRefresh(ctx, tx, hash(token))
		if err != nil {
			return err
		}
		return deleteGrant(ctx, tx, r.GrantID)
	})
}
