package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/linkdesk/linkdesk/server/store"
)

const authRequestCols = `id, client_id, redirect_uri, state, nonce, scopes, response_type, response_mode,
	code_challenge, code_challenge_method, prompt, max_age, login_hint, subject, auth_time, amr, done,
	created_at, expires_at, request_ip`

func scanAuthRequest(s scanner) (store.AuthRequest, error) {
	var a store.AuthRequest
	var scopes, prompt, amr string
	var maxAge sql.NullInt64
	var authTime, created, expires int64
	err := s.Scan(&a.ID, &a.ClientID, &a.RedirectURI, &a.State, &a.Nonce, &scopes, &a.ResponseType,
		&a.ResponseMode, &a.CodeChallenge, &a.CodeChallengeMethod, &prompt, &maxAge, &a.LoginHint,
		&a.Subject, &authTime, &amr, &a.Done, &created, &expires, &a.RequestIP)
	if err != nil {
		return store.AuthRequest{}, err
	}
	if maxAge.Valid {
		v := uint(maxAge.Int64)
		a.MaxAge = &v
	}
	a.AuthTime, a.CreatedAt, a.ExpiresAt = tm(authTime), tm(created), tm(expires)
	if a.Scopes, err = unlist(scopes); err != nil {
		return store.AuthRequest{}, err
	}
	if a.Prompt, err = unlist(prompt); err != nil {
		return store.AuthRequest{}, err
	}
	if a.AMR, err = unlist(amr); err != nil {
		return store.AuthRequest{}, err
	}
	return a, nil
}

// CreateAuthRequest stores a new authorization request; store.ErrDuplicate if its ID
// exists. A zero CreatedAt is set to the current time.
func (db *DB) CreateAuthRequest(ctx context.Context, a store.AuthRequest) error {
	a, err := authRequestDefaults(a)
	if err != nil {
		return err
	}
	return db.inTx(ctx, "create auth request", func(tx *sql.Tx) error {
		return createAuthRequestTx(ctx, tx, a)
	})
}

// authRequestDefaults checks a new request and fills in its CreatedAt.
func authRequestDefaults(a store.AuthRequest) (store.AuthRequest, error) {
	if a.ID == "" || a.ClientID == "" {
		return a, fmt.Errorf("sqlite: create auth request: id and client id are required")
	}
	if a.CreatedAt.IsZero() {
		a.CreatedAt = time.Now()
	}
	return a, nil
}

// createAuthRequestTx is CreateAuthRequest's insert inside tx.
func createAuthRequestTx(ctx context.Context, tx *sql.Tx, a store.AuthRequest) error {
	var maxAge sql.NullInt64
	if a.MaxAge != nil {
		maxAge = sql.NullInt64{Int64: int64(*a.MaxAge), Valid: true}
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO auth_requests (`+authRequestCols+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.ID, a.ClientID, a.RedirectURI, a.State, a.Nonce, list(a.Scopes), a.ResponseType,
		a.ResponseMode, a.CodeChallenge, a.CodeChallengeMethod, list(a.Prompt), maxAge, a.LoginHint,
		a.Subject, ts(a.AuthTime), list(a.AMR), a.Done, ts(a.CreatedAt), ts(a.ExpiresAt), a.RequestIP)
	if isUnique(err) {
		return fmt.Errorf("sqlite: create auth request: %w", store.ErrDuplicate)
	}
	if err != nil {
		return fmt.Errorf("sqlite: create auth request: %w", err)
	}
	return nil
}

// AuthRequestByID returns an authorization request, expired or not (until purged);
// the caller checks ExpiresAt.
func (db *DB) AuthRequestByID(ctx context.Context, id string) (store.AuthRequest, error) {
	a, err := scanAuthRequest(db.read.QueryRowContext(ctx,
		`SELECT `+authRequestCols+` FROM auth_requests WHERE id = ?`, id))
	if err != nil {
		return store.AuthRequest{}, notFound(err, "auth request by id")
	}
	return a, nil
}

// AuthRequestByCode claims an auth code: it returns the request the code was issued
// for and, in the same transaction, marks the code used, so of concurrent redemptions
// exactly one finds it and every later one gets store.ErrNotFound.
func (db *DB) AuthRequestByCode(ctx context.Context, code string) (store.AuthRequest, error) {
	var a store.AuthRequest
	err := db.inTx(ctx, "claim auth code", func(tx *sql.Tx) error {
		var err error
		a, err = scanAuthRequest(tx.QueryRowContext(ctx,
			`SELECT `+authRequestCols+` FROM auth_requests WHERE code_hash = ?`, hash(code)))
		if err != nil {
			return notFound(err, "auth request by code")
		}
		// A used code keeps a placeholder, so SaveAuthCode cannot issue another.
		_, err = tx.ExecContext(ctx, `UPDATE auth_requests SET code_hash = ? WHERE id = ?`, usedCode+a.ID, a.ID)
		if err != nil {
			return fmt.Errorf("sqlite: claim auth code: %w", err)
		}
		return nil
	})
	if err != nil {
		return store.AuthRequest{}, err
	}
	return a, nil
}

// usedCode prefixes the placeholder a claimed code's hash is replaced with; no SHA-256
// hex matches it.
const usedCode = "used:"

// SaveAuthCode attaches an auth code (stored as its SHA-256) to a request that has
// none yet: one code per request. store.ErrAlreadyUsed when a code was issued before
// (a re-opened callback), store.ErrNotFound when there is no such request.
func (db *DB) SaveAuthCode(ctx context.Context, id, code string) error {
	if code == "" {
		return fmt.Errorf("sqlite: save auth code: empty code")
	}
	return db.inTx(ctx, "save auth code", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE auth_requests SET code_hash = ? WHERE id = ? AND code_hash IS NULL`, hash(code), id)
		if isUnique(err) {
			return fmt.Errorf("sqlite: save auth code: %w", store.ErrDuplicate)
		}
		if err != nil {
			return fmt.Errorf("sqlite: save auth code: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		var exists int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM auth_requests WHERE id = ?`, id).Scan(&exists); err != nil {
			return fmt.Errorf("sqlite: save auth code: %w", err)
		}
		if exists == 0 {
			return fmt.Errorf("sqlite: save auth code: %w", store.ErrNotFound)
		}
		return fmt.Errorf("sqlite: save auth code: %w", store.ErrAlreadyUsed)
	})
}

// CompleteAuthRequest records who signed in, when and how, and marks the request done.
func (db *DB) CompleteAuthRequest(ctx context.Context, id, subject string, authTime time.Time, amr []string) error {
	return db.inTx(ctx, "complete auth request", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE auth_requests SET subject = ?, auth_time = ?, amr = ?, done = 1
			WHERE id = ?`, subject, ts(authTime), list(amr), id)
		if err != nil {
			return fmt.Errorf("sqlite: complete auth request: %w", err)
		}
		return mustAffect(res, "complete auth request")
	})
}

// DeleteAuthRequest deletes an authorization request (and so its code);
// store.ErrNotFound when there was none.
func (db *DB) DeleteAuthRequest(ctx context.Context, id string) error {
	return db.inTx(ctx, "delete auth request", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM auth_requests WHERE id = ?`, id)
		if err != nil {
			return fmt.Errorf("sqlite: delete auth request: %w", err)
		}
		return mustAffect(res, "delete auth request")
	})
}
