package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/store"
	"github.com/linkdesk/linkdesk/server/store/internal/stored"
)

const deviceAuthCols = `user_code, client_id, scopes, device_name, device_model, device_kind,
	request_ip, created_at, expires_at, interval_ns, last_poll_at, state, subject, grant_id, auth_time,
	collected_at`

func scanDeviceAuth(s scanner) (store.DeviceAuth, error) {
	var d store.DeviceAuth
	var scopes, kind, state string
	var created, expires, interval, lastPoll, authTime, collected int64
	err := s.Scan(&d.UserCode, &d.ClientID, &scopes, &d.Device.Name, &d.Device.Model, &kind,
		&d.RequestIP, &created, &expires, &interval, &lastPoll, &state, &d.Subject, &d.GrantID, &authTime,
		&collected)
	if err != nil {
		return store.DeviceAuth{}, err
	}
	d.Device.Kind = devices.DeviceKind(kind)
	d.State = store.DeviceAuthState(state)
	_ = lastPoll // last_poll_at is no longer written: polls are read-only (schema 2 and older wrote it)
	d.CreatedAt, d.ExpiresAt, d.AuthTime = tm(created), tm(expires), tm(authTime)
	d.CollectedAt = tm(collected)
	d.Interval = time.Duration(interval)
	d.Scopes, err = unlist(scopes)
	return d, err
}

// CreateDeviceAuth stores a new pending device authorization. "Now" is d.CreatedAt
// (the current time when zero): a row holding the same user code that expired by then
// is deleted first; one that has not yet expired makes this fail with
// store.ErrDuplicateUserCode.
func (db *DB) CreateDeviceAuth(ctx context.Context, d store.DeviceAuth) error {
	d, err := newDeviceAuth(d)
	if err != nil {
		return err
	}
	return db.inTx(ctx, "create device auth", func(tx *sql.Tx) error {
		// Flags off: the next capped create's sweep counts the row.
		if err := createDeviceAuthTx(ctx, db.prepared(tx), d, false, false); err != nil {
			return err
		}
		db.caps.storedFlags(false, false)
		return nil
	})
}

// createDeviceAuthTx is CreateDeviceAuth's work inside tx (d already defaulted), with
// the row's waiting and recent flags (see sweepDeviceAuths) as given.
func createDeviceAuthTx(ctx context.Context, tx txRunner, d store.DeviceAuth, waiting, recent bool) error {
	var held sql.NullInt64
	err := tx.QueryRowContext(ctx, userCodeExpiry, d.UserCode).Scan(&held)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sqlite: create device auth: %w", err)
	}
	return insertDeviceAuthTx(ctx, tx, d, held, waiting, recent)
}

// insertDeviceAuthTx stores d in tx, given when the request already holding d.UserCode
// expires (held; NULL when none does): an expired one is deleted first, an unexpired
// one fails with store.ErrDuplicateUserCode.
func insertDeviceAuthTx(ctx context.Context, tx txRunner, d store.DeviceAuth, held sql.NullInt64, waiting, recent bool) error {
	switch {
	case !held.Valid:
	case held.Int64 > ts(d.CreatedAt):
		return fmt.Errorf("sqlite: create device auth: %w", store.ErrDuplicateUserCode)
	default: // expired: its code is free again
		if _, err := tx.ExecContext(ctx, purgeUserCode, d.UserCode); err != nil {
			return fmt.Errorf("sqlite: create device auth: purge expired: %w", err)
		}
	}
	_, err := tx.ExecContext(ctx, insertDeviceAuth,
		deviceCodeKey(d.DeviceCode), d.UserCode, d.ClientID, list(d.Scopes), d.Device.Name, d.Device.Model,
		string(d.Device.Kind), d.RequestIP, ts(d.CreatedAt), ts(d.ExpiresAt), int64(d.Interval),
		0, string(d.State), d.Subject, d.GrantID, ts(d.AuthTime), ts(d.CollectedAt), waiting, recent,
		store.NetworkKey(d.RequestIP))
	if isUnique(err) {
		return fmt.Errorf("sqlite: create device auth: device code: %w", store.ErrDuplicate)
	}
	if err != nil {
		return fmt.Errorf("sqlite: create device auth: %w", err)
	}
	return nil
}

// deviceCodeKey is what device_auths.device_code_hash holds for a device code: its
// SHA-256 (hex), after the code's time-ordered prefix when it has one (16 hex digits
// and a dot, as linkd's provider makes them), so new requests join the end of the
// primary key's index instead of a random page of it — one page fewer to write and
// read back per request. The prefix is the code's creation time, which the row
// stores anyway; the secret part of the code is only ever kept hashed.
func deviceCodeKey(code string) string {
	const n = 16
	if len(code) > n && code[n] == '.' && isLowerHex(code[:n]) {
		return code[:n+1] + hash(code)
	}
	return hash(code)
}

// isLowerHex reports whether s is all lowercase hexadecimal digits.
func isLowerHex(s string) bool {
	for i := range len(s) {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// The statements of createDeviceAuthTx.
const (
	userCodeExpiry   = `SELECT expires_at FROM device_auths WHERE user_code = ?`
	purgeUserCode    = `DELETE FROM device_auths WHERE user_code = ?`
	insertDeviceAuth = `INSERT INTO device_auths (device_code_hash, ` + deviceAuthCols + `, waiting, recent, request_net)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
)

// newDeviceAuth checks a request about to be stored and fills its defaults: created now,
// pending.
func newDeviceAuth(d store.DeviceAuth) (store.DeviceAuth, error) {
	if d.DeviceCode == "" || d.UserCode == "" || d.ClientID == "" {
		return d, fmt.Errorf("sqlite: create device auth: device code, user code and client id are required")
	}
	if d.CreatedAt.IsZero() {
		d.CreatedAt = time.Now()
	}
	if d.State == "" {
		d.State = store.DeviceAuthPending
	}
	return d, nil
}

// DeviceAuthByUserCode returns the request holding a canonical user code, whatever its
// state and even when expired (until purged), so callers can tell "expired" and
// "already used" apart from "invalid".
func (db *DB) DeviceAuthByUserCode(ctx context.Context, userCode string) (store.DeviceAuth, error) {
	d, err := scanDeviceAuth(db.read.QueryRowContext(ctx,
		`SELECT `+deviceAuthCols+` FROM device_auths WHERE user_code = ?`, userCode))
	if err != nil {
		return store.DeviceAuth{}, notFound(err, "device auth by user code")
	}
	return d, nil
}

// hotStatements are the read pool's statements on the hot path, prepared once instead
// of parsed on every call: the device-code lookup (every device poll) and the client
// lookup (every approval shows its client). The writer's are preparedWrites.
type hotStatements struct {
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
}

// The read pool's hot statements.
const (
	byDeviceCodeSQL = `SELECT ` + deviceAuthCols + ` FROM device_auths WHERE device_code_hash = ? AND client_id = ?`
	clientByIDSQL   = `SELECT ` + clientCols + ` FROM clients WHERE id = ?`
)

// readStmt returns query prepared on the read pool, preparing it on first use (a
// failed prepare is tried again on the next call).
func (db *DB) readStmt(ctx context.Context, query string) (*sql.Stmt, error) {
	db.hot.mu.Lock()
	defer db.hot.mu.Unlock()
	if st, ok := db.hot.stmts[query]; ok {
		return st, nil
	}
	st, err := db.read.PrepareContext(ctx, query)
	if err != nil {
		return nil, unavailable(fmt.Errorf("sqlite: prepare: %w", err))
	}
	if db.hot.stmts == nil {
		db.hot.stmts = map[string]*sql.Stmt{}
	}
	db.hot.stmts[query] = st
	return st, nil
}

// closeHot closes the prepared statements.
func (db *DB) closeHot() error {
	var errs []error
	db.hot.mu.Lock()
	defer db.hot.mu.Unlock()
	for _, st := range db.hot.stmts {
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}

// DeviceAuthByDeviceCode reads clientID's request by device code without recording
// anything (a device's poll is a read, served by the read pool), whatever its state
// and even when expired (until purged); store.ErrNotFound when unknown or issued to
// another client.
func (db *DB) DeviceAuthByDeviceCode(ctx context.Context, clientID, deviceCode string) (store.DeviceAuth, error) {
	st, err := db.readStmt(ctx, byDeviceCodeSQL)
	if err != nil {
		return store.DeviceAuth{}, err
	}
	d, err := scanDeviceAuth(st.QueryRowContext(ctx, deviceCodeKey(deviceCode), clientID))
	if err != nil {
		return store.DeviceAuth{}, notFound(err, "device auth by device code")
	}
	return d, nil
}

// The statements of approve and deny (hotWrites).
const (
	pendingByUserCodeSQL = `SELECT rowid,
		COALESCE((SELECT name FROM clients WHERE clients.id = device_auths.client_id), '') AS client_name, ` +
		deviceAuthCols + ` FROM device_auths WHERE user_code = ?`
	approveSQL = `UPDATE device_auths SET state = ?, subject = ?, grant_id = ?, auth_time = ? WHERE rowid = ?`
	denySQL    = `UPDATE device_auths SET state = ?, subject = ?, auth_time = ? WHERE rowid = ?`
)

// pendingRequest is a request that approve or deny may act on, with its row's rowid
// (read and written in the same transaction, so it still names the row) and its
// client's name ("" when the client is not stored).
type pendingRequest struct {
	store.DeviceAuth
	rowid      int64
	clientName string
}

// pendingByUserCode loads a request that approve or deny may act on: it must exist,
// be pending, and not be expired at now.
func pendingByUserCode(ctx context.Context, tx txRunner, userCode string, now time.Time) (pendingRequest, error) {
	var p pendingRequest
	row := tx.QueryRowContext(ctx, pendingByUserCodeSQL, userCode)
	d, err := scanDeviceAuth(scanFunc(func(dest ...any) error {
		return row.Scan(append([]any{&p.rowid, &p.clientName}, dest...)...)
	}))
	if err != nil {
		return p, notFound(err, "device auth by user code")
	}
	p.DeviceAuth = d
	if d.State != store.DeviceAuthPending {
		return p, fmt.Errorf("sqlite: device auth is %s: %w", d.State, store.ErrAlreadyUsed)
	}
	if !now.Before(d.ExpiresAt) {
		return p, fmt.Errorf("sqlite: device auth: %w", store.ErrExpired)
	}
	return p, nil
}

// scanFunc adapts a function to the scanner interface.
type scanFunc func(dest ...any) error

func (f scanFunc) Scan(dest ...any) error { return f(dest...) }

// ApproveDeviceAuth approves a pending, unexpired request and creates its device grant
// in the same transaction. The grant is named name, else the device's own name, else
// the client's name (else its ID). Errors: store.ErrNotFound, store.ErrAlreadyUsed when
// the request is no longer pending (checked before expiry), store.ErrExpired.
func (db *DB) ApproveDeviceAuth(ctx context.Context, userCode, subject, name string, now time.Time) (store.Grant, error) {
	if subject == "" {
		return store.Grant{}, fmt.Errorf("sqlite: approve device auth: subject is required")
	}
	var g store.Grant
	err := db.inTx(ctx, "approve device auth", func(tx *sql.Tx) error {
		var err error
		g, err = approveTx(ctx, db.prepared(tx), userCode, subject, name, now, nil)
		return err
	})
	if err != nil {
		return store.Grant{}, err
	}
	return g, nil
}

// ApproveUserCode is ApproveDeviceAuth behind code-lookup limits, in one transaction
// (see store.Store).
func (db *DB) ApproveUserCode(ctx context.Context, userCode, subject, name string, limits []store.AttemptLimit, now time.Time, check store.ApproveCheck) (store.Grant, time.Duration, error) {
	if subject == "" {
		return store.Grant{}, 0, fmt.Errorf("sqlite: approve device auth: subject is required")
	}
	var g store.Grant
	wait, err := db.limitedCode(ctx, "approve device auth", limits, now, func(ctx context.Context, tx txRunner) error {
		var err error
		g, err = approveTx(ctx, tx, userCode, subject, name, now, check)
		return err
	})
	if err != nil || wait > 0 {
		return store.Grant{}, wait, err
	}
	return g, 0, nil
}

// approveTx is ApproveDeviceAuth's work inside tx, after check (when not nil) lets
// the pending request through.
func approveTx(ctx context.Context, tx txRunner, userCode, subject, name string, now time.Time, check store.ApproveCheck) (store.Grant, error) {
	p, err := pendingByUserCode(ctx, tx, userCode, now)
	if err != nil {
		return store.Grant{}, err
	}
	d := p.DeviceAuth
	if check != nil {
		linked := func() (int, error) { return linkedCount(ctx, tx, subject, d.ClientID) }
		if err := check(d, linked); err != nil {
			return store.Grant{}, err
		}
	}
	name = stored.GrantName(name, d.Device.Name, p.clientName, d.ClientID)
	g := store.Grant{
		ID:        newID(),
		Subject:   subject,
		ClientID:  d.ClientID,
		Scopes:    d.Scopes,
		Flow:      store.FlowDevice,
		Name:      name,
		Device:    d.Device,
		AuthTime:  tm(ts(now)),
		CreatedAt: tm(ts(now)),
	}
	if err := insertGrant(ctx, tx, g); err != nil {
		return store.Grant{}, err
	}
	_, err = tx.ExecContext(ctx, approveSQL, string(store.DeviceAuthApproved), subject, g.ID, ts(now), p.rowid)
	if err != nil {
		return store.Grant{}, fmt.Errorf("sqlite: approve device auth: %w", err)
	}
	return g, nil
}

// DenyDeviceAuth denies a pending, unexpired request; same errors as ApproveDeviceAuth.
func (db *DB) DenyDeviceAuth(ctx context.Context, userCode, subject string, now time.Time) error {
	return db.inTx(ctx, "deny device auth", func(tx *sql.Tx) error {
		_, err := denyTx(ctx, db.prepared(tx), userCode, subject, now)
		return err
	})
}

// DenyUserCode is DenyDeviceAuth behind code-lookup limits, in one transaction; it
// returns the request as it was before the denial (see store.Store).
func (db *DB) DenyUserCode(ctx context.Context, userCode, subject string, limits []store.AttemptLimit, now time.Time) (store.DeviceAuth, time.Duration, error) {
	var d store.DeviceAuth
	wait, err := db.limitedCode(ctx, "deny device auth", limits, now, func(ctx context.Context, tx txRunner) error {
		var err error
		d, err = denyTx(ctx, tx, userCode, subject, now)
		return err
	})
	if err != nil || wait > 0 {
		return store.DeviceAuth{}, wait, err
	}
	return d, 0, nil
}

// denyTx is DenyDeviceAuth's work inside tx; it returns the request as it was.
func denyTx(ctx context.Context, tx txRunner, userCode, subject string, now time.Time) (store.DeviceAuth, error) {
	p, err := pendingByUserCode(ctx, tx, userCode, now)
	if err != nil {
		return store.DeviceAuth{}, err
	}
	d := p.DeviceAuth
	_, err = tx.ExecContext(ctx, denySQL, string(store.DeviceAuthDenied), subject, ts(now), p.rowid)
	if err != nil {
		return store.DeviceAuth{}, fmt.Errorf("sqlite: deny device auth: %w", err)
	}
	return d, nil
}

// PendingUserCode reads the pending, unexpired request holding userCode behind
// code-lookup limits, in one transaction (see store.Store).
func (db *DB) PendingUserCode(ctx context.Context, userCode string, limits []store.AttemptLimit, now time.Time) (store.DeviceAuth, time.Duration, error) {
	var d store.DeviceAuth
	wait, err := db.limitedCode(ctx, "look up user code", limits, now, func(ctx context.Context, tx txRunner) error {
		p, err := pendingByUserCode(ctx, tx, userCode, now)
		d = p.DeviceAuth
		return err
	})
	if err != nil || wait > 0 {
		return store.DeviceAuth{}, wait, err
	}
	return d, 0, nil
}

// CollectDeviceTokens consumes clientID's approved request and stores the tokens of
// the answer in the same transaction (see store.Store). A repeat within window of the
// first collection, while the earlier answer's refresh token is unused, deletes that
// answer's tokens and stores the new ones: at most one answer's tokens live per
// approval.
func (db *DB) CollectDeviceTokens(ctx context.Context, clientID, deviceCode string, tokens store.DeviceTokens, ip string, now time.Time, window time.Duration) (store.DeviceAuth, error) {
	var d store.DeviceAuth
	h := deviceCodeKey(deviceCode)
	err := db.inTx(ctx, "collect device tokens", func(tx *sql.Tx) error {
		var err error
		var prevAccess, prevRefresh string
		row := tx.QueryRowContext(ctx, `SELECT answer_access_id, answer_refresh_hash, `+deviceAuthCols+
			` FROM device_auths WHERE device_code_hash = ? AND client_id = ?`, h, clientID)
		d, err = scanDeviceAuth(scanFunc(func(dest ...any) error {
			return row.Scan(append([]any{&prevAccess, &prevRefresh}, dest...)...)
		}))
		if err != nil {
			return notFound(err, "collect device tokens")
		}
		switch d.State {
		case store.DeviceAuthApproved:
		case store.DeviceAuthConsumed:
			if err := lostAnswer(ctx, tx, d, prevAccess, prevRefresh, now, window); err != nil {
				return err
			}
		default:
			return fmt.Errorf("sqlite: collect device tokens: request is %s: %w", d.State, store.ErrAlreadyUsed)
		}
		if err := grantExists(ctx, tx, d.GrantID); errors.Is(err, store.ErrNotFound) {
			// Unlinked before the device collected its tokens: the request ends denied.
			if _, err := tx.ExecContext(ctx, `UPDATE device_auths SET state = ? WHERE device_code_hash = ?`,
				string(store.DeviceAuthDenied), h); err != nil {
				return fmt.Errorf("sqlite: collect device tokens: %w", err)
			}
			d.State = store.DeviceAuthDenied
			return commitThen(fmt.Errorf("sqlite: collect device tokens: grant was deleted: %w", store.ErrNotFound))
		} else if err != nil {
			return err
		}
		at, rt := tokens.Access, tokens.Refresh
		at.GrantID, at.Subject = d.GrantID, d.Subject
		if err := insertAccessToken(ctx, tx, at); err != nil {
			return err
		}
		refreshHash := ""
		if rt.Token != "" {
			rt.GrantID, rt.Subject, rt.AuthTime = d.GrantID, d.Subject, d.AuthTime
			if err := insertRefreshToken(ctx, tx, rt, at.ID); err != nil {
				return err
			}
			refreshHash = hash(rt.Token)
		}
		collected := d.CollectedAt
		if collected.IsZero() {
			collected = now
		}
		if _, err := tx.ExecContext(ctx, `UPDATE device_auths SET state = ?, collected_at = ?,
			answer_access_id = ?, answer_refresh_hash = ? WHERE device_code_hash = ?`,
			string(store.DeviceAuthConsumed), ts(collected), accessIDKey(at.ID), refreshHash, h); err != nil {
			return fmt.Errorf("sqlite: collect device tokens: %w", err)
		}
		if err := touchGrant(ctx, tx, d.GrantID, ip, now); err != nil {
			return err
		}
		d.State, d.CollectedAt = store.DeviceAuthConsumed, tm(ts(collected))
		return nil
	})
	if err != nil {
		return store.DeviceAuth{}, err
	}
	return d, nil
}

// lostAnswer decides whether a consumed request may collect again: only within window
// of its first collection and while the earlier answer's refresh token was never used
// (so the device cannot have received it). It then revokes that earlier answer.
func lostAnswer(ctx context.Context, tx *sql.Tx, d store.DeviceAuth, accessID, refreshHash string, now time.Time, window time.Duration) error {
	if d.CollectedAt.IsZero() || now.Sub(d.CollectedAt) >= window {
		return fmt.Errorf("sqlite: collect device tokens: collected at %s: %w", d.CollectedAt, store.ErrAlreadyUsed)
	}
	if refreshHash != "" {
		var usedAt int64
		err := tx.QueryRowContext(ctx, `SELECT used_at FROM refresh_tokens WHERE token_hash = ?`, refreshHash).Scan(&usedAt)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && usedAt != 0) {
			return fmt.Errorf("sqlite: collect device tokens: earlier answer was used: %w", store.ErrAlreadyUsed)
		}
		if err != nil {
			return fmt.Errorf("sqlite: collect device tokens: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM refresh_tokens WHERE token_hash = ?`, refreshHash); err != nil {
			return fmt.Errorf("sqlite: collect device tokens: revoke earlier answer: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM access_tokens WHERE id = ?`, accessID); err != nil {
		return fmt.Errorf("sqlite: collect device tokens: revoke earlier answer: %w", err)
	}
	return nil
}

// linkedCount counts subject's device links to clientID.
func linkedCount(ctx context.Context, tx txRunner, subject, clientID string) (int, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT count(*) FROM grants WHERE subject = ? AND client_id = ? AND flow = ?`,
		subject, clientID, string(store.FlowDevice)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("sqlite: count links: %w", err)
	}
	return n, nil
}
