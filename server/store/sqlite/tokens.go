package sqlite

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
		return fmt.Errorf("sqlite: create access token: id and grant id are required")
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO access_tokens
		(id, grant_id, subject, client_id, scopes, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		accessIDKey(t.ID), t.GrantID, t.Subject, t.ClientID, list(t.Scopes), ts(t.CreatedAt), ts(t.ExpiresAt))
	if isUnique(err) {
		return fmt.Errorf("sqlite: create access token: %w", store.ErrDuplicate)
	}
	if err != nil {
		return fmt.Errorf("sqlite: create access token: %w", err)
	}
	return nil
}

// CreateAccessToken stores an access token of an existing grant; it fails (with
// store.ErrNotFound) when the grant is gone, so a token is never minted for a link
// that was just deleted.
func (db *DB) CreateAccessToken(ctx context.Context, t store.AccessToken) error {
	return db.inTx(ctx, "create access token", func(tx *sql.Tx) error {
		if err := grantExists(ctx, tx, t.GrantID); err != nil {
			return err
		}
		return insertAccessToken(ctx, tx, t)
	})
}

func grantExists(ctx context.Context, tx *sql.Tx, id string) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM grants WHERE id = ?`, id).Scan(&n); err != nil {
		return fmt.Errorf("sqlite: grant exists: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("sqlite: grant %q: %w", id, store.ErrNotFound)
	}
	return nil
}

// accessTokenByIDSQL reads a live access token of a live grant; every API call and
// userinfo request runs it, so it is prepared on the read pool (readStmt).
const accessTokenByIDSQL = `SELECT a.grant_id, a.subject, a.client_id, a.scopes,
	a.created_at, a.expires_at FROM access_tokens a JOIN grants g ON g.id = a.grant_id
	WHERE a.id = ? AND a.expires_at > ?`

// AccessTokenByID returns a live access token: store.ErrNotFound when unknown, revoked,
// expired at now, or when its grant is gone. Ids are stored as SHA-256 (accessIDKey),
// so the returned ID is the one asked for.
func (db *DB) AccessTokenByID(ctx context.Context, id string, now time.Time) (store.AccessToken, error) {
	var t store.AccessToken
	var scopes string
	var created, expires int64
	st, err := db.readStmt(ctx, accessTokenByIDSQL)
	if err != nil {
		return store.AccessToken{}, err
	}
	err = st.QueryRowContext(ctx, accessIDKey(id), ts(now)).
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

// DeleteAccessToken revokes one access token; store.ErrNotFound when there was none
// (callers revoking per RFC 7009 treat that as success).
func (db *DB) DeleteAccessToken(ctx context.Context, id string) error {
	return db.inTx(ctx, "delete access token", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM access_tokens WHERE id = ?`, accessIDKey(id))
		if err != nil {
			return fmt.Errorf("sqlite: delete access token: %w", err)
		}
		return mustAffect(res, "delete access token")
	})
}

// insertRefreshToken stores t, remembering accessID (as accessIDKey), the access token
// issued with it (revoked with it when its answer is retried).
func insertRefreshToken(ctx context.Context, tx *sql.Tx, t store.RefreshToken, accessID string) error {
	if t.Token == "" || t.GrantID == "" {
		return fmt.Errorf("sqlite: create refresh token: token and grant id are required")
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO refresh_tokens
		(token_hash, grant_id, subject, client_id, scopes, auth_time, amr, created_at, expires_at, access_token_id)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		hash(t.Token), t.GrantID, t.Subject, t.ClientID, list(t.Scopes), ts(t.AuthTime), list(t.AMR),
		ts(t.CreatedAt), ts(t.ExpiresAt), accessIDKey(accessID))
	if isUnique(err) {
		return fmt.Errorf("sqlite: create refresh token: %w", store.ErrDuplicate)
	}
	if err != nil {
		return fmt.Errorf("sqlite: create refresh token: %w", err)
	}
	return nil
}

// CreateRefreshToken stores a refresh token of an existing grant (store.ErrNotFound when
// the grant is gone); only its SHA-256 is kept.
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

func refreshByHash(ctx context.Context, tx *sql.Tx, h string) (refreshRow, error) {
	var r refreshRow
	var scopes, amr string
	var authTime, created, expires int64
	err := tx.QueryRowContext(ctx, `SELECT grant_id, subject, client_id, scopes, auth_time, amr,
		created_at, expires_at, used_at, successor_hash, access_token_id FROM refresh_tokens WHERE token_hash = ?`, h).
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
	return commitThen(fmt.Errorf("sqlite: refresh token of grant %q: %w", r.GrantID, store.ErrRefreshReused))
}

// retryable reports whether a rotated refresh token may be rotated again at now: it was
// rotated less than grace ago and its successor was never used, so the device cannot
// have received the answer that carried the successor.
func retryable(ctx context.Context, tx *sql.Tx, r refreshRow, now time.Time, grace time.Duration) (bool, error) {
	if r.usedAt == 0 || r.successorHash == "" || now.Sub(tm(r.usedAt)) >= grace {
		return false, nil
	}
	var usedAt int64
	err := tx.QueryRowContext(ctx, `SELECT used_at FROM refresh_tokens WHERE token_hash = ?`, r.successorHash).Scan(&usedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("sqlite: refresh token successor: %w", err)
	}
	return usedAt == 0, nil
}

// retryOrReused judges a rotated refresh token presented at now: nil when it may be
// rotated again (retryable), else its grant is deleted and ErrRefreshReused returned.
func retryOrReused(ctx context.Context, tx *sql.Tx, r refreshRow, now time.Time, grace time.Duration) error {
	ok, err := retryable(ctx, tx, r, now, grace)
	if err != nil {
		return err
	}
	if !ok {
		return reused(ctx, tx, r)
	}
	return nil
}

// RefreshTokenByToken returns a refresh token (Token left empty) that may be used at
// now: a live one, or a rotated one within grace whose successor is unused (its answer
// was lost). Any other rotated token deletes its grant and returns
// store.ErrRefreshReused with the token's record; unknown tokens and tokens expired at
// now are store.ErrNotFound.
func (db *DB) RefreshTokenByToken(ctx context.Context, token string, now time.Time, grace time.Duration) (store.RefreshToken, error) {
	var t store.RefreshToken
	err := db.inTx(ctx, "refresh token", func(tx *sql.Tx) error {
		r, err := refreshByHash(ctx, tx, hash(token))
		if err != nil {
			return err
		}
		if !now.Before(r.ExpiresAt) {
			return fmt.Errorf("sqlite: refresh token expired: %w", store.ErrNotFound)
		}
		t = r.RefreshToken
		if r.usedAt != 0 {
			return retryOrReused(ctx, tx, r, now, grace)
		}
		return nil
	})
	if err != nil && !errors.Is(err, store.ErrRefreshReused) {
		return store.RefreshToken{}, err
	}
	return t, err
}

// RotateRefreshToken marks old used and stores next and access in one transaction.
// An empty GrantID in next or access is filled with old's grant. A retry of a lost
// answer (old rotated less than grace before next.CreatedAt, successor unused) revokes
// that successor and its access token and stores next in their place; any other rotated
// old is reuse: store.ErrRefreshReused, grant deleted. store.ErrNotFound when old is
// unknown. Expiry of old is the caller's check (RefreshTokenByToken).
func (db *DB) RotateRefreshToken(ctx context.Context, old string, next store.RefreshToken, access store.AccessToken, grace time.Duration) error {
	now := next.CreatedAt
	if now.IsZero() {
		now = time.Now()
	}
	return db.inTx(ctx, "rotate refresh token", func(tx *sql.Tx) error {
		h := hash(old)
		r, err := refreshByHash(ctx, tx, h)
		if err != nil {
			return err
		}
		usedAt := ts(now)
		if r.usedAt != 0 {
			if err := retryOrReused(ctx, tx, r, now, grace); err != nil {
				return err
			}
			succ, err := refreshByHash(ctx, tx, r.successorHash)
			if err != nil {
				return err
			}
			for _, q := range []struct{ sql, arg string }{
				{`DELETE FROM access_tokens WHERE id = ?`, succ.accessID},
				{`DELETE FROM refresh_tokens WHERE token_hash = ?`, r.successorHash},
			} {
				if _, err := tx.ExecContext(ctx, q.sql, q.arg); err != nil {
					return fmt.Errorf("sqlite: rotate refresh token: revoke lost answer: %w", err)
				}
			}
			usedAt = r.usedAt // the grace period runs from the first rotation
		}
		if _, err := tx.ExecContext(ctx, `UPDATE refresh_tokens SET used_at = ?, successor_hash = ? WHERE token_hash = ?`,
			usedAt, hash(next.Token), h); err != nil {
			return fmt.Errorf("sqlite: rotate refresh token: %w", err)
		}
		if next.GrantID == "" {
			next.GrantID = r.GrantID
		}
		if access.GrantID == "" {
			access.GrantID = r.GrantID
		}
		if err := insertRefreshToken(ctx, tx, next, access.ID); err != nil {
			return err
		}
		return insertAccessToken(ctx, tx, access)
	})
}

// RevokeRefreshToken deletes the grant the token belongs to, and so every token of it
// (RFC 7009 §2.1); store.ErrNotFound when the token is unknown.
func (db *DB) RevokeRefreshToken(ctx context.Context, token string) error {
	return db.inTx(ctx, "revoke refresh token", func(tx *sql.Tx) error {
		r, err := refreshByHash(ctx, tx, hash(token))
		if err != nil {
			return err
		}
		return deleteGrant(ctx, tx, r.GrantID)
	})
}
