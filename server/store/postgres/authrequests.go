package postgres

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

// authRequestDefaults checks a new request and fills in its CreatedAt.
func authRequestDefaults(a store.AuthRequest) (store.AuthRequest, error) {
	if a.ID == "" || a.ClientID == "" {
		return a, fmt.Errorf("postgres: create auth request: id and client id are required")
	}
	if a.CreatedAt.IsZero() {
		a.CreatedAt = time.Now()
	}
	return a, nil
}

// CreateAuthRequest stores a new authorization request; store.ErrDuplicate if its ID
// exists. One INSERT.
func (db *DB) CreateAuthRequest(ctx context.Context, a store.AuthRequest) error {
	a, err := authRequestDefaults(a)
	if err != nil {
		return err
	}
	return db.inTx(ctx, "create auth request", func(tx *sql.Tx) error {
		return createAuthRequestTx(ctx, tx, a)
	})
}

func createAuthRequestTx(ctx context.Context, tx *sql.Tx, a store.AuthRequest) error {
	var maxAge sql.NullInt64
	if a.MaxAge != nil {
		maxAge = sql.NullInt64{Int64: int64(*a.MaxAge), Valid: true}
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO auth_requests (`+authRequestCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)`,
		a.ID, a.ClientID, a.RedirectURI, a.State, a.Nonce, list(a.Scopes), a.ResponseType,
		a.ResponseMode, a.CodeChallenge, a.CodeChallengeMethod, list(a.Prompt), maxAge, a.LoginHint,
		a.Subject, ts(a.AuthTime), list(a.AMR), a.Done, ts(a.CreatedAt), ts(a.ExpiresAt), a.RequestIP)
	if _, dup := isUnique(err); dup {
		return fmt.Errorf("postgres: create auth request: %w", store.ErrDuplicate)
	}
	if err != nil {
		return fmt.Errorf("postgres: create auth request: %w", err)
	}
	return nil
}

// AuthRequestByID returns an authorization request, expired or not (until purged).
func (db *DB) AuthRequestByID(ctx context.Context, id string) (store.AuthRequest, error) {
	a, err := scanAuthRequest(db.db.QueryRowContext(ctx,
		`SELECT `+authRequestCols+` FROM auth_requests WHERE id = $1`, id))
	if err != nil {
		return store.AuthRequest{}, notFound(err, "auth request by id")
	}
	return a, nil
}

// usedCode prefixes the placeholder a claimed code's hash is replaced with; no SHA-256
// hex matches it, and SaveAuthCode cannot issue another code for the request.
const usedCode = "used:"

// AuthRequestByCode claims an auth code with one conditional UPDATE … RETURNING (READ
// COMMITTED): a concurrent claim waits on the row, re-checks code_hash on the version
// the first committed, matches nothing and gets store.ErrNotFound, so a code is
// redeemed exactly once.
func (db *DB) AuthRequestByCode(ctx context.Context, code string) (store.AuthRequest, error) {
	var a store.AuthRequest
	err := db.inTx(ctx, "claim auth code", func(tx *sql.Tx) error {
		var err error
		a, err = scanAuthRequest(tx.QueryRowContext(ctx, `UPDATE auth_requests SET code_hash = $1 || id
			WHERE code_hash = $2 RETURNING `+authRequestCols, usedCode, hash(code)))
		if err != nil {
			return notFound(err, "auth request by code")
		}
		return nil
	})
	if err != nil {
		return store.AuthRequest{}, err
	}
	return a, nil
}

// SaveAuthCode attaches an auth code (stored as its SHA-256) to a request that has
// none yet, with one conditional UPDATE; store.ErrAlreadyUsed when it had one,
// store.ErrNotFound when there is no such request.
func (db *DB) SaveAuthCode(ctx context.Context, id, code string) error {
	if code == "" {
		return fmt.Errorf("postgres: save auth code: empty code")
	}
	return db.inTx(ctx, "save auth code", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE auth_requests SET code_hash = $1 WHERE id = $2 AND code_hash IS NULL`, hash(code), id)
		if _, dup := isUnique(err); dup {
			return fmt.Errorf("postgres: save auth code: %w", store.ErrDuplicate)
		}
		if err != nil {
			return fmt.Errorf("postgres: save auth code: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		var exists int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM auth_requests WHERE id = $1`, id).Scan(&exists); err != nil {
			return fmt.Errorf("postgres: save auth code: %w", err)
		}
		if exists == 0 {
			return fmt.Errorf("postgres: save auth code: %w", store.ErrNotFound)
		}
		return fmt.Errorf("postgres: save auth code: %w", store.ErrAlreadyUsed)
	})
}

// CompleteAuthRequest records who signed in, when and how, and marks the request done
// (one UPDATE).
func (db *DB) CompleteAuthRequest(ctx context.Context, id, subject string, authTime time.Time, amr []string) error {
	return db.inTx(ctx, "complete auth request", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE auth_requests SET subject = $1, auth_time = $2, amr = $3, done = true
			WHERE id = $4`, subject, ts(authTime), list(amr), id)
		if err != nil {
			return fmt.Errorf("postgres: complete auth request: %w", err)
		}
		return mustAffect(res, "complete auth request")
	})
}

// DeleteAuthRequest deletes an authorization request (and so its code);
// store.ErrNotFound when there was none.
func (db *DB) DeleteAuthRequest(ctx context.Context, id string) error {
	return db.inTx(ctx, "delete auth request", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM auth_requests WHERE id = $1`, id)
		if err != nil {
			return fmt.Errorf("postgres: delete auth request: %w", err)
		}
		return mustAffect(res, "delete auth request")
	})
}
