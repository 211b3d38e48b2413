package sqlite

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"fmt"

	"modernc.org/sqlite"

	"github.com/linkdesk/linkdesk/server/store/internal/stored"
)

// Secrets at rest. Signing keys and TOTP secrets are stored encrypted with a key
// derived from the secrets key file, which is not in the database; access-token ids
// are stored only as SHA-256. A copy of the database file alone therefore signs
// nothing, shows no second factor and names no live access token.

// WithSecretsKey makes the store encrypt signing keys and TOTP secrets with key (32
// bytes, see sealing.Derive with sealing.LabelStore), encrypting on open any still
// stored in plaintext. Without it they are stored as given, and an encrypted one cannot
// be read.
func WithSecretsKey(key []byte) Option {
	return func(o *options) { o.secretsKey = bytes.Clone(key) }
}

// Prefixes marking an encrypted value (see stored.Sealer).
const (
	sealedTOTPPrefix = stored.SealedTOTPPrefix
	sealedKeyPrefix  = stored.SealedKeyPrefix
)

// accessIDKey is the stored form of an access-token id: its SHA-256 in hex.
var accessIDKey = stored.AccessID

func init() {
	// linkd_sha256_hex lets a migration hash the access-token ids stored before
	// version 3 in place.
	err := sqlite.RegisterDeterministicScalarFunction("linkd_sha256_hex", 1,
		func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
			var b []byte
			switch v := args[0].(type) {
			case string:
				b = []byte(v)
			case []byte:
				b = v
			case nil:
				return nil, nil
			default:
				b = fmt.Append(nil, v)
			}
			sum := sha256.Sum256(b)
			return hex.EncodeToString(sum[:]), nil
		})
	if err != nil {
		panic("sqlite: register linkd_sha256_hex: " + err.Error())
	}
}

// sealTOTP is the stored form of subject's TOTP secret (stored.Sealer.SealTOTP).
func (db *DB) sealTOTP(subject, secret string) string { return db.box.SealTOTP(subject, secret) }

// openTOTP is the inverse of sealTOTP.
func (db *DB) openTOTP(subject, s string) (string, error) { return db.box.OpenTOTP(subject, s) }

// sealKey is the stored form of signing key id's private key (stored.Sealer.SealKey).
func (db *DB) sealKey(id string, pem []byte) []byte { return db.box.SealKey(id, pem) }

// sealPlaintext encrypts, in one transaction, every TOTP secret and signing key still
// stored in plaintext (a database from before encryption at rest). Without a secrets
// key it does nothing.
func (db *DB) sealPlaintext(ctx context.Context) error {
	if !db.box.Enabled() {
		return nil
	}
	return db.inTx(ctx, "encrypt secrets", func(tx *sql.Tx) error {
		type row struct {
			id    string
			value []byte
		}
		read := func(q string) ([]row, error) {
			rows, err := tx.QueryContext(ctx, q)
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
		users, err := read(`SELECT subject, totp_secret FROM users WHERE totp_secret != '' AND totp_secret NOT LIKE '` + sealedTOTPPrefix + `%'`)
		if err != nil {
			return fmt.Errorf("sqlite: encrypt TOTP secrets: %w", err)
		}
		for _, u := range users {
			if _, err := tx.ExecContext(ctx, `UPDATE users SET totp_secret = ? WHERE subject = ?`,
				db.sealTOTP(u.id, string(u.value)), u.id); err != nil {
				return fmt.Errorf("sqlite: encrypt TOTP secrets: %w", err)
			}
		}
		keys, err := read(`SELECT id, private_key_pem FROM signing_keys`)
		if err != nil {
			return fmt.Errorf("sqlite: encrypt signing keys: %w", err)
		}
		sealedKeys := 0
		for _, k := range keys {
			if stored.KeySealed(k.value) {
				continue
			}
			sealedKeys++
			if _, err := tx.ExecContext(ctx, `UPDATE signing_keys SET private_key_pem = ? WHERE id = ?`,
				db.sealKey(k.id, k.value), k.id); err != nil {
				return fmt.Errorf("sqlite: encrypt signing keys: %w", err)
			}
		}
		if len(users)+sealedKeys > 0 {
			db.log.Info("sqlite: encrypted secrets that were stored in plaintext", "totp_secrets", len(users), "signing_keys", sealedKeys)
		}
		return nil
	})
}
