package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/linkdesk/linkdesk/server/store"
	"github.com/linkdesk/linkdesk/server/store/internal/stored"
)

// CreateUser stores a new account; store.ErrDuplicate when the username (compared
// case-insensitively) or the subject is taken.
func (db *DB) CreateUser(ctx context.Context, u store.User) error {
	if u.Subject == "" || u.Username == "" {
		return fmt.Errorf("sqlite: create user: subject and username are required")
	}
	return db.inTx(ctx, "create user", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO users
			(subject, username, username_key, display_name, email, password_hash, totp_secret, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			u.Subject, u.Username, usernameKey(u.Username), u.DisplayName, u.Email,
			u.PasswordHash, db.sealTOTP(u.Subject, u.TOTPSecret), ts(u.CreatedAt))
		if isUnique(err) {
			return fmt.Errorf("sqlite: create user %q: %w", u.Username, store.ErrDuplicate)
		}
		if err != nil {
			return fmt.Errorf("sqlite: create user: %w", err)
		}
		return nil
	})
}

// usernameKey is the case-folded username that uniqueness and lookups use.
func usernameKey(username string) string { return strings.ToLower(username) }

const userCols = `subject, username, display_name, email, password_hash, totp_secret, created_at`

// scanUser reads a row of userCols, decrypting the TOTP secret.
func (db *DB) scanUser(s scanner) (store.User, error) {
	var u store.User
	var created int64
	var totp string
	if err := s.Scan(&u.Subject, &u.Username, &u.DisplayName, &u.Email, &u.PasswordHash, &totp, &created); err != nil {
		return store.User{}, err
	}
	u.CreatedAt = tm(created)
	var err error
	u.TOTPSecret, err = db.openTOTP(u.Subject, totp)
	return u, err
}

// UserByUsername finds an account by username, case-insensitively.
func (db *DB) UserByUsername(ctx context.Context, username string) (store.User, error) {
	u, err := db.scanUser(db.read.QueryRowContext(ctx,
		`SELECT `+userCols+` FROM users WHERE username_key = ?`, usernameKey(username)))
	if err != nil {
		return store.User{}, notFound(err, "user by username")
	}
	return u, nil
}

// UserBySubject finds an account by its subject.
func (db *DB) UserBySubject(ctx context.Context, subject string) (store.User, error) {
	u, err := db.scanUser(db.read.QueryRowContext(ctx,
		`SELECT `+userCols+` FROM users WHERE subject = ?`, subject))
	if err != nil {
		return store.User{}, notFound(err, "user by subject")
	}
	return u, nil
}

// ListUsers returns every account, by username.
func (db *DB) ListUsers(ctx context.Context) ([]store.User, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+userCols+` FROM users ORDER BY username_key`)
	if err != nil {
		return nil, unavailable(fmt.Errorf("sqlite: list users: %w", err))
	}
	defer rows.Close()
	var out []store.User
	for rows.Next() {
		u, err := db.scanUser(rows)
		if err != nil {
			return nil, unavailable(fmt.Errorf("sqlite: list users: %w", err))
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable(fmt.Errorf("sqlite: list users: %w", err))
	}
	return out, nil
}

// SetUserTOTP sets (or, with "", clears) an account's TOTP secret.
func (db *DB) SetUserTOTP(ctx context.Context, subject, secret string) error {
	return db.inTx(ctx, "set user totp", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE users SET totp_secret = ? WHERE subject = ?`, db.sealTOTP(subject, secret), subject)
		if err != nil {
			return fmt.Errorf("sqlite: set user totp: %w", err)
		}
		return mustAffect(res, "set user totp")
	})
}

// UpsertClient creates a client or replaces every field of an existing one but its
// creation time.
func (db *DB) UpsertClient(ctx context.Context, c store.Client) error {
	if c.ID == "" {
		return fmt.Errorf("sqlite: upsert client: id is required")
	}
	return db.inTx(ctx, "upsert client", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO clients
			(id, name, logo_uri, secret_hash, scopes, redirect_uris, grant_types, created_at,
			device_flow_off, allowed_networks, approve_same_network, max_devices, unlink_after_ns)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET
				name = excluded.name, logo_uri = excluded.logo_uri,
				secret_hash = excluded.secret_hash, scopes = excluded.scopes,
				redirect_uris = excluded.redirect_uris, grant_types = excluded.grant_types,
				device_flow_off = excluded.device_flow_off, allowed_networks = excluded.allowed_networks,
				approve_same_network = excluded.approve_same_network, max_devices = excluded.max_devices,
				unlink_after_ns = excluded.unlink_after_ns`,
			c.ID, c.Name, c.LogoURI, c.SecretHash, list(c.Scopes), list(c.RedirectURIs),
			list(c.GrantTypes), ts(c.CreatedAt), c.Policy.DeviceFlowOff, list(c.Policy.AllowedNetworks),
			c.Policy.ApproveSameNetwork, c.Policy.MaxDevices, int64(c.Policy.UnlinkAfter))
		if err != nil {
			return fmt.Errorf("sqlite: upsert client: %w", err)
		}
		return nil
	})
}

// clientCols are the clients table's columns, read by stored.ScanClient.
const clientCols = stored.ClientColumns

// scanClient reads a row of clientCols.
func scanClient(s scanner) (store.Client, error) { return stored.ScanClient(s) }

// ClientByID finds a registered client.
func (db *DB) ClientByID(ctx context.Context, id string) (store.Client, error) {
	st, err := db.readStmt(ctx, clientByIDSQL)
	if err != nil {
		return store.Client{}, err
	}
	c, err := scanClient(st.QueryRowContext(ctx, id))
	if err != nil {
		return store.Client{}, notFound(err, "client by id")
	}
	return c, nil
}

// ListClients returns every registered client, by id.
func (db *DB) ListClients(ctx context.Context) ([]store.Client, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+clientCols+` FROM clients ORDER BY id`)
	if err != nil {
		return nil, unavailable(fmt.Errorf("sqlite: list clients: %w", err))
	}
	defer rows.Close()
	out := []store.Client{}
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return nil, unavailable(fmt.Errorf("sqlite: list clients: %w", err))
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable(fmt.Errorf("sqlite: list clients: %w", err))
	}
	return out, nil
}

// AddFailure records one failure for key at now and counts key's failures at or
// after since, in one transaction so concurrent callers see consistent counts.
func (db *DB) AddFailure(ctx context.Context, key string, now, since time.Time) (int, error) {
	var n int
	err := db.inTx(ctx, "add failure", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO failures (key, at) VALUES (?, ?)`, key, ts(now)); err != nil {
			return fmt.Errorf("sqlite: add failure: %w", err)
		}
		db.attempts.recorded(key, ts(now))
		err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM failures WHERE key = ? AND at >= ?`,
			key, ts(since)).Scan(&n)
		if err != nil {
			return unavailable(fmt.Errorf("sqlite: count failures: %w", err))
		}
		return nil
	})
	return n, err
}

// CountFailures counts key's failures at or after since.
func (db *DB) CountFailures(ctx context.Context, key string, since time.Time) (int, error) {
	var n int
	err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM failures WHERE key = ? AND at >= ?`,
		key, ts(since)).Scan(&n)
	if err != nil {
		return 0, unavailable(fmt.Errorf("sqlite: count failures: %w", err))
	}
	return n, nil
}

// purgeBatch is how many rows one purge transaction deletes from one table, so a
// purge of many rows never holds the writer for long: device polls and approvals get
// their turn between batches.
const purgeBatch = 500

// Purge deletes device authorizations, auth requests, access and refresh tokens that
// expired before before, and failures recorded before before, purgeBatch rows per
// transaction, then checkpoints the WAL (see Checkpoint) so the space the deleted rows
// took is not held in the WAL. Grants are never purged: they live until the person
// unlinks them. A checkpoint that readers held back is not an error.
func (db *DB) Purge(ctx context.Context, before time.Time) error {
	b := ts(before)
	for _, table := range []struct{ name, column string }{
		{"device_auths", "expires_at"},
		{"auth_requests", "expires_at"},
		{"access_tokens", "expires_at"},
		{"refresh_tokens", "expires_at"},
		{"failures", "at"},
	} {
		q := fmt.Sprintf(`DELETE FROM %[1]s WHERE rowid IN (SELECT rowid FROM %[1]s WHERE %[2]s < ? LIMIT %[3]d)`,
			table.name, table.column, purgeBatch)
		for {
			var n int64
			err := db.inTx(ctx, "purge "+table.name, func(tx *sql.Tx) error {
				res, err := tx.ExecContext(ctx, q, b)
				if err != nil {
					return fmt.Errorf("sqlite: purge %s: %w", table.name, err)
				}
				n, err = res.RowsAffected()
				if table.name == "failures" && n > 0 {
					db.attempts.forget() // read again, without the keys purged
				}
				return err
			})
			if err != nil {
				return err
			}
			if n < purgeBatch {
				break
			}
		}
	}
	if err := db.Checkpoint(ctx); err != nil && !errors.Is(err, errCheckpointBusy) {
		return err
	}
	return nil
}
