package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/linkdesk/linkdesk/server/store"
	"github.com/linkdesk/linkdesk/server/store/internal/stored"
)

// CreateUser stores a new account; store.ErrDuplicate when the username (compared
// case-insensitively) or the subject is taken. One INSERT (READ COMMITTED): the unique
// indexes settle concurrent creates.
func (db *DB) CreateUser(ctx context.Context, u store.User) error {
	if u.Subject == "" || u.Username == "" {
		return fmt.Errorf("postgres: create user: subject and username are required")
	}
	return db.inTx(ctx, "create user", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO users
			(subject, username, username_key, display_name, email, password_hash, totp_secret, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			u.Subject, u.Username, usernameKey(u.Username), u.DisplayName, u.Email,
			u.PasswordHash, db.box.SealTOTP(u.Subject, u.TOTPSecret), ts(u.CreatedAt))
		if _, dup := isUnique(err); dup {
			return fmt.Errorf("postgres: create user %q: %w", u.Username, store.ErrDuplicate)
		}
		if err != nil {
			return fmt.Errorf("postgres: create user: %w", err)
		}
		return nil
	})
}

// usernameKey is the case-folded username that uniqueness and lookups use (the same
// folding as the SQLite store's).
func usernameKey(username string) string { return strings.ToLower(username) }

const userCols = `subject, username, display_name, email, password_hash, totp_secret, created_at`

func (db *DB) scanUser(s scanner) (store.User, error) {
	var u store.User
	var created int64
	var totp string
	if err := s.Scan(&u.Subject, &u.Username, &u.DisplayName, &u.Email, &u.PasswordHash, &totp, &created); err != nil {
		return store.User{}, err
	}
	u.CreatedAt = tm(created)
	var err error
	u.TOTPSecret, err = db.box.OpenTOTP(u.Subject, totp)
	return u, err
}

// UserByUsername finds an account by username, case-insensitively.
func (db *DB) UserByUsername(ctx context.Context, username string) (store.User, error) {
	u, err := db.scanUser(db.db.QueryRowContext(ctx,
		`SELECT `+userCols+` FROM users WHERE username_key = $1`, usernameKey(username)))
	if err != nil {
		return store.User{}, notFound(err, "user by username")
	}
	return u, nil
}

// UserBySubject finds an account by its subject.
func (db *DB) UserBySubject(ctx context.Context, subject string) (store.User, error) {
	u, err := db.scanUser(db.db.QueryRowContext(ctx,
		`SELECT `+userCols+` FROM users WHERE subject = $1`, subject))
	if err != nil {
		return store.User{}, notFound(err, "user by subject")
	}
	return u, nil
}

// ListUsers returns every account, by username.
func (db *DB) ListUsers(ctx context.Context) ([]store.User, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT `+userCols+` FROM users ORDER BY username_key COLLATE "C"`)
	if err != nil {
		return nil, unavailable(fmt.Errorf("postgres: list users: %w", err))
	}
	defer rows.Close()
	var out []store.User
	for rows.Next() {
		u, err := db.scanUser(rows)
		if err != nil {
			return nil, unavailable(fmt.Errorf("postgres: list users: %w", err))
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable(fmt.Errorf("postgres: list users: %w", err))
	}
	return out, nil
}

// SetUserTOTP sets (or, with "", clears) an account's TOTP secret: one UPDATE.
func (db *DB) SetUserTOTP(ctx context.Context, subject, secret string) error {
	return db.inTx(ctx, "set user totp", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE users SET totp_secret = $1 WHERE subject = $2`,
			db.box.SealTOTP(subject, secret), subject)
		if err != nil {
			return fmt.Errorf("postgres: set user totp: %w", err)
		}
		return mustAffect(res, "set user totp")
	})
}

// UpsertClient creates a client or replaces every field of an existing one but its
// creation time.
func (db *DB) UpsertClient(ctx context.Context, c store.Client) error {
	if c.ID == "" {
		return fmt.Errorf("postgres: upsert client: id is required")
	}
	return db.inTx(ctx, "upsert client", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO clients
			(id, name, logo_uri, secret_hash, scopes, redirect_uris, grant_types, created_at,
			device_flow_off, allowed_networks, approve_same_network, max_devices, unlink_after_ns)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
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
			return fmt.Errorf("postgres: upsert client: %w", err)
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
	c, err := scanClient(db.db.QueryRowContext(ctx, `SELECT `+clientCols+` FROM clients WHERE id = $1`, id))
	if err != nil {
		return store.Client{}, notFound(err, "client by id")
	}
	return c, nil
}

// ListClients returns every registered client, by id.
func (db *DB) ListClients(ctx context.Context) ([]store.Client, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT `+clientCols+` FROM clients ORDER BY id`)
	if err != nil {
		return nil, unavailable(fmt.Errorf("postgres: list clients: %w", err))
	}
	defer rows.Close()
	out := []store.Client{}
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return nil, unavailable(fmt.Errorf("postgres: list clients: %w", err))
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable(fmt.Errorf("postgres: list clients: %w", err))
	}
	return out, nil
}

// sealPlaintext encrypts, in one transaction, every TOTP secret and signing key still
// stored in plaintext (written by a linkd without the secrets key). Without a secrets
// key it does nothing. Rows are locked (FOR UPDATE) so replicas starting together
// encrypt each once.
func (db *DB) sealPlaintext(ctx context.Context) error {
	if !db.box.Enabled() {
		return nil
	}
	return db.inTx(ctx, "encrypt secrets", func(tx *sql.Tx) error {
		type row struct {
			id    string
			value []byte
		}
		read := func(q string, args ...any) ([]row, error) {
			rows, err := tx.QueryContext(ctx, q, args...)
			if err != nil {
				return nil, err
			}
			defer rows.Close()
			var out []row
			for rows.Next() {
				var r row
				if err := rows.Scan(&r.id, &r.value); err != nil {
					return nil, err
				}
				out = append(out, r)
			}
			return out, rows.Err()
		}
		users, err := read(`SELECT subject, totp_secret FROM users
			WHERE totp_secret != '' AND NOT starts_with(totp_secret, $1) FOR UPDATE`, stored.SealedTOTPPrefix)
		if err != nil {
			return fmt.Errorf("postgres: encrypt TOTP secrets: %w", err)
		}
		for _, u := range users {
			if _, err := tx.ExecContext(ctx, `UPDATE users SET totp_secret = $1 WHERE subject = $2`,
				db.box.SealTOTP(u.id, string(u.value)), u.id); err != nil {
				return fmt.Errorf("postgres: encrypt TOTP secrets: %w", err)
			}
		}
		keys, err := read(`SELECT id, private_key_pem FROM signing_keys FOR UPDATE`)
		if err != nil {
			return fmt.Errorf("postgres: encrypt signing keys: %w", err)
		}
		sealedKeys := 0
		for _, k := range keys {
			if stored.KeySealed(k.value) {
				continue
			}
			sealedKeys++
			if _, err := tx.ExecContext(ctx, `UPDATE signing_keys SET private_key_pem = $1 WHERE id = $2`,
				db.box.SealKey(k.id, k.value), k.id); err != nil {
				return fmt.Errorf("postgres: encrypt signing keys: %w", err)
			}
		}
		if len(users)+sealedKeys > 0 {
			db.log.Info("postgres: encrypted secrets that were stored in plaintext", "totp_secrets", len(users), "signing_keys", sealedKeys)
		}
		return nil
	})
}
