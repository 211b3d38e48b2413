package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/store"
)

// slowDownStep is how much the polling interval grows on each slow_down (RFC 8628 §3.5).
const slowDownStep = 5 * time.Second

const deviceAuthCols = `user_code, client_id, scopes, device_name, device_model, device_kind,
	request_ip, created_at, expires_at, interval_ns, last_poll_at, state, subject, grant_id, auth_time`

func scanDeviceAuth(s scanner) (store.DeviceAuth, error) {
	var d store.DeviceAuth
	var scopes, kind, state string
	var created, expires, interval, lastPoll, authTime int64
	err := s.Scan(&d.UserCode, &d.ClientID, &scopes, &d.Device.Name, &d.Device.Model, &kind,
		&d.RequestIP, &created, &expires, &interval, &lastPoll, &state, &d.Subject, &d.GrantID, &authTime)
	if err != nil {
		return store.DeviceAuth{}, err
	}
	d.Device.Kind = devices.DeviceKind(kind)
	d.State = store.DeviceAuthState(state)
	d.CreatedAt, d.ExpiresAt, d.LastPollAt, d.AuthTime = tm(created), tm(expires), tm(lastPoll), tm(authTime)
	d.Interval = time.Duration(interval)
	d.Scopes, err = unlist(scopes)
	return d, err
}

// CreateDeviceAuth stores a new pending device authorization. "Now" is d.CreatedAt
// (the current time when zero): a row holding the same user code that expired by then
// is deleted first; one that has not yet expired makes this fail with
// store.ErrDuplicateUserCode.
func (db *DB) CreateDeviceAuth(ctx context.Context, d store.DeviceAuth) error {
	if d.DeviceCode == "" || d.UserCode == "" || d.ClientID == "" {
		return fmt.Errorf("sqlite: create device auth: device code, user code and client id are required")
	}
	if d.CreatedAt.IsZero() {
		d.CreatedAt = time.Now()
	}
	if d.State == "" {
		d.State = store.DeviceAuthPending
	}
	return db.inTx(ctx, "create device auth", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM device_auths WHERE user_code = ? AND expires_at <= ?`,
			d.UserCode, ts(d.CreatedAt)); err != nil {
			return fmt.Errorf("sqlite: create device auth: purge expired: %w", err)
		}
		var clash int
		err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM device_auths WHERE user_code = ?`, d.UserCode).Scan(&clash)
		if err != nil {
			return fmt.Errorf("sqlite: create device auth: %w", err)
		}
		if clash > 0 {
			return fmt.Errorf("sqlite: create device auth: %w", store.ErrDuplicateUserCode)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO device_auths (device_code_hash, `+deviceAuthCols+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			hash(d.DeviceCode), d.UserCode, d.ClientID, list(d.Scopes), d.Device.Name, d.Device.Model,
			string(d.Device.Kind), d.RequestIP, ts(d.CreatedAt), ts(d.ExpiresAt), int64(d.Interval),
			ts(d.LastPollAt), string(d.State), d.Subject, d.GrantID, ts(d.AuthTime))
		if isUnique(err) {
			return fmt.Errorf("sqlite: create device auth: device code: %w", store.ErrDuplicate)
		}
		if err != nil {
			return fmt.Errorf("sqlite: create device auth: %w", err)
		}
		return nil
	})
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

// DeviceAuthByDeviceCode reads clientID's request by device code without recording a
// poll (so it never causes slow_down), whatever its state and even when expired (until
// purged); store.ErrNotFound when unknown or issued to another client. It is not part
// of store.Store: the push channel (links.DeviceAuthReader) asserts it.
func (db *DB) DeviceAuthByDeviceCode(ctx context.Context, clientID, deviceCode string) (store.DeviceAuth, error) {
	d, err := scanDeviceAuth(db.read.QueryRowContext(ctx, `SELECT `+deviceAuthCols+
		` FROM device_auths WHERE device_code_hash = ? AND client_id = ?`, hash(deviceCode), clientID))
	if err != nil {
		return store.DeviceAuth{}, notFound(err, "device auth by device code")
	}
	return d, nil
}

// PollDeviceAuth records a poll at now of clientID's device code and returns the
// request in whatever state it is, expired or not (the caller answers expired_token
// from ExpiresAt). A poll sooner than Interval after the previous one sets SlowDown and
// grows the stored Interval by 5 s. store.ErrNotFound when the code is unknown or was
// issued to another client.
func (db *DB) PollDeviceAuth(ctx context.Context, clientID, deviceCode string, now time.Time) (store.PollResult, error) {
	var res store.PollResult
	h := hash(deviceCode)
	err := db.inTx(ctx, "poll device auth", func(tx *sql.Tx) error {
		d, err := scanDeviceAuth(tx.QueryRowContext(ctx, `SELECT `+deviceAuthCols+
			` FROM device_auths WHERE device_code_hash = ? AND client_id = ?`, h, clientID))
		if err != nil {
			return notFound(err, "poll device auth")
		}
		if !d.LastPollAt.IsZero() && now.Sub(d.LastPollAt) < d.Interval {
			res.SlowDown = true
			d.Interval += slowDownStep
		}
		d.LastPollAt = now
		if _, err := tx.ExecContext(ctx, `UPDATE device_auths SET last_poll_at = ?, interval_ns = ?
			WHERE device_code_hash = ?`, ts(now), int64(d.Interval), h); err != nil {
			return fmt.Errorf("sqlite: poll device auth: %w", err)
		}
		d.LastPollAt = tm(ts(now))
		res.Auth = d
		return nil
	})
	return res, err
}

// pendingByUserCode loads a request that approve or deny may act on: it must exist,
// be pending, and not be expired at now.
func pendingByUserCode(ctx context.Context, tx *sql.Tx, userCode string, now time.Time) (store.DeviceAuth, string, error) {
	var h string
	row := tx.QueryRowContext(ctx, `SELECT device_code_hash, `+deviceAuthCols+
		` FROM device_auths WHERE user_code = ?`, userCode)
	d, err := scanDeviceAuth(scanFunc(func(dest ...any) error {
		return row.Scan(append([]any{&h}, dest...)...)
	}))
	if err != nil {
		return d, "", notFound(err, "device auth by user code")
	}
	if d.State != store.DeviceAuthPending {
		return d, "", fmt.Errorf("sqlite: device auth is %s: %w", d.State, store.ErrAlreadyUsed)
	}
	if !now.Before(d.ExpiresAt) {
		return d, "", fmt.Errorf("sqlite: device auth: %w", store.ErrExpired)
	}
	return d, h, nil
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
		d, h, err := pendingByUserCode(ctx, tx, userCode, now)
		if err != nil {
			return err
		}
		if name == "" {
			name = d.Device.Name
		}
		if name == "" {
			err := tx.QueryRowContext(ctx, `SELECT name FROM clients WHERE id = ?`, d.ClientID).Scan(&name)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("sqlite: approve device auth: client name: %w", err)
			}
		}
		if name == "" {
			name = d.ClientID
		}
		g = store.Grant{
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
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE device_auths SET state = ?, subject = ?, grant_id = ?, auth_time = ?
			WHERE device_code_hash = ?`, string(store.DeviceAuthApproved), subject, g.ID, ts(now), h)
		if err != nil {
			return fmt.Errorf("sqlite: approve device auth: %w", err)
		}
		return nil
	})
	if err != nil {
		return store.Grant{}, err
	}
	return g, nil
}

// DenyDeviceAuth denies a pending, unexpired request; same errors as ApproveDeviceAuth.
func (db *DB) DenyDeviceAuth(ctx context.Context, userCode, subject string, now time.Time) error {
	return db.inTx(ctx, "deny device auth", func(tx *sql.Tx) error {
		_, h, err := pendingByUserCode(ctx, tx, userCode, now)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE device_auths SET state = ?, subject = ?, auth_time = ?
			WHERE device_code_hash = ?`, string(store.DeviceAuthDenied), subject, ts(now), h)
		if err != nil {
			return fmt.Errorf("sqlite: deny device auth: %w", err)
		}
		return nil
	})
}

// ConsumeDeviceAuth moves clientID's approved request to consumed and returns it (in
// the consumed state), exactly once. store.ErrAlreadyUsed for any request that is not
// approved (pending, denied, or consumed before); store.ErrNotFound for an unknown code
// or when the person deleted the grant between approval and this call — the request is
// then marked denied, so the device's next poll answers access_denied.
func (db *DB) ConsumeDeviceAuth(ctx context.Context, clientID, deviceCode string) (store.DeviceAuth, error) {
	var d store.DeviceAuth
	h := hash(deviceCode)
	err := db.inTx(ctx, "consume device auth", func(tx *sql.Tx) error {
		var err error
		d, err = scanDeviceAuth(tx.QueryRowContext(ctx, `SELECT `+deviceAuthCols+
			` FROM device_auths WHERE device_code_hash = ? AND client_id = ?`, h, clientID))
		if err != nil {
			return notFound(err, "consume device auth")
		}
		if d.State != store.DeviceAuthApproved {
			return fmt.Errorf("sqlite: consume device auth: request is %s: %w", d.State, store.ErrAlreadyUsed)
		}
		var live int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM grants WHERE id = ?`, d.GrantID).Scan(&live); err != nil {
			return fmt.Errorf("sqlite: consume device auth: %w", err)
		}
		next := store.DeviceAuthConsumed
		if live == 0 {
			next = store.DeviceAuthDenied
		}
		if _, err := tx.ExecContext(ctx, `UPDATE device_auths SET state = ? WHERE device_code_hash = ?`,
			string(next), h); err != nil {
			return fmt.Errorf("sqlite: consume device auth: %w", err)
		}
		d.State = next
		if live == 0 {
			return commitThen(fmt.Errorf("sqlite: consume device auth: grant was deleted: %w", store.ErrNotFound))
		}
		return nil
	})
	if err != nil {
		return store.DeviceAuth{}, err
	}
	return d, nil
}
