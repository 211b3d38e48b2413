package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/store"
	"github.com/linkdesk/linkdesk/server/store/internal/stored"
)

const deviceAuthCols = `user_code, client_id, scopes, device_name, device_model, device_kind,
	request_ip, created_at, expires_at, interval_ns, state, subject, grant_id, auth_time, collected_at`

func scanDeviceAuth(s scanner) (store.DeviceAuth, error) {
	var d store.DeviceAuth
	var scopes, kind, state string
	var created, expires, interval, authTime, collected int64
	err := s.Scan(&d.UserCode, &d.ClientID, &scopes, &d.Device.Name, &d.Device.Model, &kind,
		&d.RequestIP, &created, &expires, &interval, &state, &d.Subject, &d.GrantID, &authTime, &collected)
	if err != nil {
		return store.DeviceAuth{}, err
	}
	d.Device.Kind = devices.DeviceKind(kind)
	d.State = store.DeviceAuthState(state)
	d.CreatedAt, d.ExpiresAt, d.AuthTime = tm(created), tm(expires), tm(authTime)
	d.CollectedAt = tm(collected)
	d.Interval = time.Duration(interval)
	d.Scopes, err = unlist(scopes)
	return d, err
}

// newDeviceAuth checks a request about to be stored and fills its defaults: created
// now, pending.
func newDeviceAuth(d store.DeviceAuth) (store.DeviceAuth, error) {
	if d.DeviceCode == "" || d.UserCode == "" || d.ClientID == "" {
		return d, fmt.Errorf("postgres: create device auth: device code, user code and client id are required")
	}
	if d.CreatedAt.IsZero() {
		d.CreatedAt = time.Now()
	}
	if d.State == "" {
		d.State = store.DeviceAuthPending
	}
	return d, nil
}

// CreateDeviceAuth stores a new pending device authorization (see store.Store). READ
// COMMITTED: the expired holder of the code is deleted, then the INSERT relies on the
// unique index on user_code, which makes a concurrent create of the same code wait for
// the first and then fail with store.ErrDuplicateUserCode.
func (db *DB) CreateDeviceAuth(ctx context.Context, d store.DeviceAuth) error {
	d, err := newDeviceAuth(d)
	if err != nil {
		return err
	}
	return db.inTx(ctx, "create device auth", func(tx *sql.Tx) error {
		return createDeviceAuthTx(ctx, tx, d)
	})
}

// createDeviceAuthTx stores d in tx. A code already held is refused without ending
// the transaction (ON CONFLICT DO NOTHING), which the caller may go on with.
func createDeviceAuthTx(ctx context.Context, tx *sql.Tx, d store.DeviceAuth) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM device_auths WHERE user_code = $1 AND expires_at <= $2`,
		d.UserCode, ts(d.CreatedAt)); err != nil {
		return fmt.Errorf("postgres: create device auth: purge expired: %w", err)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO device_auths (device_code_hash, `+deviceAuthCols+`, request_net)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) ON CONFLICT DO NOTHING`,
		hash(d.DeviceCode), d.UserCode, d.ClientID, list(d.Scopes), d.Device.Name, d.Device.Model,
		string(d.Device.Kind), d.RequestIP, ts(d.CreatedAt), ts(d.ExpiresAt), int64(d.Interval),
		string(d.State), d.Subject, d.GrantID, ts(d.AuthTime), ts(d.CollectedAt), store.NetworkKey(d.RequestIP))
	if err != nil {
		return fmt.Errorf("postgres: create device auth: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("postgres: create device auth: %w", err)
	} else if n == 1 {
		return nil
	}
	var userCodeHeld bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM device_auths WHERE user_code = $1)`,
		d.UserCode).Scan(&userCodeHeld); err != nil {
		return fmt.Errorf("postgres: create device auth: %w", err)
	}
	if userCodeHeld {
		return fmt.Errorf("postgres: create device auth: %w", store.ErrDuplicateUserCode)
	}
	return fmt.Errorf("postgres: create device auth: device code: %w", store.ErrDuplicate)
}

// DeviceAuthByUserCode returns the request holding a canonical user code, whatever its
// state and even when expired (until purged).
func (db *DB) DeviceAuthByUserCode(ctx context.Context, userCode string) (store.DeviceAuth, error) {
	d, err := scanDeviceAuth(db.db.QueryRowContext(ctx,
		`SELECT `+deviceAuthCols+` FROM device_auths WHERE user_code = $1`, userCode))
	if err != nil {
		return store.DeviceAuth{}, notFound(err, "device auth by user code")
	}
	return d, nil
}

// DeviceAuthByDeviceCode reads clientID's request by device code without recording
// anything (a device's poll is a read); store.ErrNotFound when unknown or issued to
// another client.
func (db *DB) DeviceAuthByDeviceCode(ctx context.Context, clientID, deviceCode string) (store.DeviceAuth, error) {
	d, err := scanDeviceAuth(db.db.QueryRowContext(ctx, `SELECT `+deviceAuthCols+
		` FROM device_auths WHERE device_code_hash = $1 AND client_id = $2`, hash(deviceCode), clientID))
	if err != nil {
		return store.DeviceAuth{}, notFound(err, "device auth by device code")
	}
	return d, nil
}

// pendingByUserCode locks (FOR UPDATE) and loads a request that approve or deny may act
// on: it must exist, be pending, and not be expired at now. The lock makes concurrent
// approvals and denials of one code take turns, and each sees the state the previous
// one committed, so the request leaves pending exactly once.
func pendingByUserCode(ctx context.Context, tx *sql.Tx, userCode string, now time.Time) (store.DeviceAuth, string, error) {
	var h string
	row := tx.QueryRowContext(ctx, `SELECT device_code_hash, `+deviceAuthCols+
		` FROM device_auths WHERE user_code = $1 FOR UPDATE`, userCode)
	d, err := scanDeviceAuth(scanFunc(func(dest ...any) error {
		return row.Scan(append([]any{&h}, dest...)...)
	}))
	if err != nil {
		return d, "", notFound(err, "device auth by user code")
	}
	if d.State != store.DeviceAuthPending {
		return d, "", fmt.Errorf("postgres: device auth is %s: %w", d.State, store.ErrAlreadyUsed)
	}
	if !now.Before(d.ExpiresAt) {
		return d, "", fmt.Errorf("postgres: device auth: %w", store.ErrExpired)
	}
	return d, h, nil
}

// ApproveDeviceAuth approves a pending, unexpired request and creates its device grant
// in the same transaction, the request's row locked (FOR UPDATE) so one of concurrent
// approvals and denials wins. The grant is named name, else the device's own name, else
// the client's name (else its ID). Errors: store.ErrNotFound, store.ErrAlreadyUsed when
// the request is no longer pending (checked before expiry), store.ErrExpired.
func (db *DB) ApproveDeviceAuth(ctx context.Context, userCode, subject, name string, now time.Time) (store.Grant, error) {
	if subject == "" {
		return store.Grant{}, fmt.Errorf("postgres: approve device auth: subject is required")
	}
	var g store.Grant
	err := db.inTx(ctx, "approve device auth", func(tx *sql.Tx) error {
		var err error
		g, err = approveTx(ctx, tx, userCode, subject, name, now, nil)
		return err
	})
	if err != nil {
		return store.Grant{}, err
	}
	return g, nil
}

// ApproveUserCode is ApproveDeviceAuth behind code-lookup limits, in one transaction
// (see store.Store and limitedCode).
func (db *DB) ApproveUserCode(ctx context.Context, userCode, subject, name string, limits []store.AttemptLimit, now time.Time, check store.ApproveCheck) (store.Grant, time.Duration, error) {
	if subject == "" {
		return store.Grant{}, 0, fmt.Errorf("postgres: approve device auth: subject is required")
	}
	var g store.Grant
	wait, err := db.limitedCode(ctx, "approve device auth", limits, now, func(tx *sql.Tx) error {
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
func approveTx(ctx context.Context, tx *sql.Tx, userCode, subject, name string, now time.Time, check store.ApproveCheck) (store.Grant, error) {
	d, h, err := pendingByUserCode(ctx, tx, userCode, now)
	if err != nil {
		return store.Grant{}, err
	}
	if check != nil {
		linked := func() (int, error) { return linkedCount(ctx, tx, subject, d.ClientID) }
		if err := check(d, linked); err != nil {
			return store.Grant{}, err
		}
	}
	var clientName string
	if name == "" && d.Device.Name == "" {
		err := tx.QueryRowContext(ctx, `SELECT name FROM clients WHERE id = $1`, d.ClientID).Scan(&clientName)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return store.Grant{}, fmt.Errorf("postgres: approve device auth: client name: %w", err)
		}
	}
	n := stored.GrantName(name, d.Device.Name, clientName, d.ClientID)
	g := store.Grant{
		ID:        newID(),
		Subject:   subject,
		ClientID:  d.ClientID,
		Scopes:    d.Scopes,
		Flow:      store.FlowDevice,
		Name:      n,
		Device:    d.Device,
		AuthTime:  tm(ts(now)),
		CreatedAt: tm(ts(now)),
	}
	if err := insertGrant(ctx, tx, g); err != nil {
		return store.Grant{}, err
	}
	_, err = tx.ExecContext(ctx, `UPDATE device_auths SET state = $1, subject = $2, grant_id = $3, auth_time = $4
		WHERE device_code_hash = $5`, string(store.DeviceAuthApproved), subject, g.ID, ts(now), h)
	if err != nil {
		return store.Grant{}, fmt.Errorf("postgres: approve device auth: %w", err)
	}
	return g, nil
}

// DenyDeviceAuth denies a pending, unexpired request; same errors and locking as
// ApproveDeviceAuth.
func (db *DB) DenyDeviceAuth(ctx context.Context, userCode, subject string, now time.Time) error {
	return db.inTx(ctx, "deny device auth", func(tx *sql.Tx) error {
		_, err := denyTx(ctx, tx, userCode, subject, now)
		return err
	})
}

// DenyUserCode is DenyDeviceAuth behind code-lookup limits, in one transaction; it
// returns the request as it was before the denial (see store.Store).
func (db *DB) DenyUserCode(ctx context.Context, userCode, subject string, limits []store.AttemptLimit, now time.Time) (store.DeviceAuth, time.Duration, error) {
	var d store.DeviceAuth
	wait, err := db.limitedCode(ctx, "deny device auth", limits, now, func(tx *sql.Tx) error {
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
func denyTx(ctx context.Context, tx *sql.Tx, userCode, subject string, now time.Time) (store.DeviceAuth, error) {
	d, h, err := pendingByUserCode(ctx, tx, userCode, now)
	if err != nil {
		return store.DeviceAuth{}, err
	}
	_, err = tx.ExecContext(ctx, `UPDATE device_auths SET state = $1, subject = $2, auth_time = $3
		WHERE device_code_hash = $4`, string(store.DeviceAuthDenied), subject, ts(now), h)
	if err != nil {
		return store.DeviceAuth{}, fmt.Errorf("postgres: deny device auth: %w", err)
	}
	return d, nil
}

// PendingUserCode reads the pending, unexpired request holding userCode behind
// code-lookup limits, in one transaction (see store.Store).
func (db *DB) PendingUserCode(ctx context.Context, userCode string, limits []store.AttemptLimit, now time.Time) (store.DeviceAuth, time.Duration, error) {
	var d store.DeviceAuth
	wait, err := db.limitedCode(ctx, "look up user code", limits, now, func(tx *sql.Tx) error {
		var err error
		d, _, err = pendingByUserCode(ctx, tx, userCode, now)
		return err
	})
	if err != nil || wait > 0 {
		return store.DeviceAuth{}, wait, err
	}
	return d, 0, nil
}

// CollectDeviceTokens consumes clientID's approved request and stores the tokens of
// the answer in the same transaction (see store.Store). READ COMMITTED with row locks
// taken in one order (request, then grant, then the earlier answer's refresh token):
// the request's row (FOR UPDATE) makes concurrent collections of one approval take
// turns, so each sees the previous one's answer and at most one answer's tokens live;
// the grant's row (FOR KEY SHARE) keeps an unlink from deleting it until this commits,
// after which the unlink's cascade takes these tokens too; the earlier refresh token's
// row (FOR UPDATE, in lostAnswer) settles a race with its first use.
func (db *DB) CollectDeviceTokens(ctx context.Context, clientID, deviceCode string, tokens store.DeviceTokens, ip string, now time.Time, window time.Duration) (store.DeviceAuth, error) {
	var d store.DeviceAuth
	h := hash(deviceCode)
	err := db.inTx(ctx, "collect device tokens", func(tx *sql.Tx) error {
		var err error
		var prevAccess, prevRefresh string
		row := tx.QueryRowContext(ctx, `SELECT answer_access_id, answer_refresh_hash, `+deviceAuthCols+
			` FROM device_auths WHERE device_code_hash = $1 AND client_id = $2 FOR UPDATE`, h, clientID)
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
			return fmt.Errorf("postgres: collect device tokens: request is %s: %w", d.State, store.ErrAlreadyUsed)
		}
		if err := grantExists(ctx, tx, d.GrantID); errors.Is(err, store.ErrNotFound) {
			// Unlinked before the device collected its tokens: the request ends denied.
			if _, err := tx.ExecContext(ctx, `UPDATE device_auths SET state = $1 WHERE device_code_hash = $2`,
				string(store.DeviceAuthDenied), h); err != nil {
				return fmt.Errorf("postgres: collect device tokens: %w", err)
			}
			d.State = store.DeviceAuthDenied
			return commitThen(fmt.Errorf("postgres: collect device tokens: grant was deleted: %w", store.ErrNotFound))
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
		if _, err := tx.ExecContext(ctx, `UPDATE device_auths SET state = $1, collected_at = $2,
			answer_access_id = $3, answer_refresh_hash = $4 WHERE device_code_hash = $5`,
			string(store.DeviceAuthConsumed), ts(collected), accessIDKey(at.ID), refreshHash, h); err != nil {
			return fmt.Errorf("postgres: collect device tokens: %w", err)
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
// of its first collection and while the earlier answer's refresh token was never used.
// It then revokes that earlier answer.
func lostAnswer(ctx context.Context, tx *sql.Tx, d store.DeviceAuth, accessID, refreshHash string, now time.Time, window time.Duration) error {
	if d.CollectedAt.IsZero() || now.Sub(d.CollectedAt) >= window {
		return fmt.Errorf("postgres: collect device tokens: collected at %s: %w", d.CollectedAt, store.ErrAlreadyUsed)
	}
	if refreshHash != "" {
		var usedAt int64
		err := tx.QueryRowContext(ctx, `SELECT used_at FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE`, refreshHash).Scan(&usedAt)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && usedAt != 0) {
			return fmt.Errorf("postgres: collect device tokens: earlier answer was used: %w", store.ErrAlreadyUsed)
		}
		if err != nil {
			return fmt.Errorf("postgres: collect device tokens: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM refresh_tokens WHERE token_hash = $1`, refreshHash); err != nil {
			return fmt.Errorf("postgres: collect device tokens: revoke earlier answer: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM access_tokens WHERE id = $1`, accessID); err != nil {
		return fmt.Errorf("postgres: collect device tokens: revoke earlier answer: %w", err)
	}
	return nil
}

// linkedCount counts subject's device links to clientID.
func linkedCount(ctx context.Context, tx *sql.Tx, subject, clientID string) (int, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT count(*) FROM grants WHERE subject = $1 AND client_id = $2 AND flow = $3`,
		subject, clientID, string(store.FlowDevice)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("postgres: count links: %w", err)
	}
	return n, nil
}
