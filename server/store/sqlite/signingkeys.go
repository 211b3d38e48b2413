package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/linkdesk/linkdesk/server/store"
	"github.com/linkdesk/linkdesk/server/store/internal/stored"
)

// rowsQuerier is what reading signing keys needs: the read pool or a write transaction.
type rowsQuerier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// SigningKeys returns every signing key, newest first, decrypted. A key that does not
// open with this store's secrets key (a database restored without its key file) is
// left out with a warning, so linkd starts with a new key rather than not at all.
func (db *DB) SigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	keys, err := db.signingKeys(ctx, db.read)
	if err != nil {
		return nil, unavailable(err)
	}
	return keys, nil
}

// signingKeys is SigningKeys read through q.
func (db *DB) signingKeys(ctx context.Context, q rowsQuerier) ([]store.SigningKey, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, algorithm, private_key_pem, created_at, not_before
		FROM signing_keys ORDER BY created_at DESC, rowid DESC`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: signing keys: %w", err)
	}
	return stored.SigningKeys(rows, db.box, db.log, "sqlite")
}

// AddSigningKey stores a new signing key; store.ErrDuplicate when its ID exists. A zero
// NotBefore is stored as CreatedAt: the key signs at once.
func (db *DB) AddSigningKey(ctx context.Context, k store.SigningKey) error {
	if k.ID == "" || len(k.PrivateKeyPEM) == 0 {
		return fmt.Errorf("sqlite: add signing key: id and key are required")
	}
	return db.inTx(ctx, "add signing key", func(tx *sql.Tx) error { return db.addSigningKey(ctx, tx, k) })
}

func (db *DB) addSigningKey(ctx context.Context, tx *sql.Tx, k store.SigningKey) error {
	notBefore := k.NotBefore
	if notBefore.IsZero() {
		notBefore = k.CreatedAt
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO signing_keys (id, algorithm, private_key_pem, created_at, not_before)
		VALUES (?, ?, ?, ?, ?)`, k.ID, k.Algorithm, db.sealKey(k.ID, k.PrivateKeyPEM), ts(k.CreatedAt), ts(notBefore))
	if isUnique(err) {
		return fmt.Errorf("sqlite: add signing key %q: %w", k.ID, store.ErrDuplicate)
	}
	if err != nil {
		return fmt.Errorf("sqlite: add signing key: %w", err)
	}
	return nil
}

// EnsureSigningKey stores k only when no stored key opens with this store's secrets
// key, and returns the keys as SigningKeys would, all in one write transaction: replicas
// starting at once on an empty database add exactly one key and all get it back.
func (db *DB) EnsureSigningKey(ctx context.Context, k store.SigningKey) ([]store.SigningKey, error) {
	if k.ID == "" || len(k.PrivateKeyPEM) == 0 {
		return nil, fmt.Errorf("sqlite: ensure signing key: id and key are required")
	}
	var keys []store.SigningKey
	err := db.inTx(ctx, "ensure signing key", func(tx *sql.Tx) error {
		var err error
		if keys, err = db.signingKeys(ctx, tx); err != nil || len(keys) > 0 {
			return err
		}
		if err := db.addSigningKey(ctx, tx, k); err != nil {
			return err
		}
		keys, err = db.signingKeys(ctx, tx)
		return err
	})
	if err != nil {
		return nil, err
	}
	return keys, nil
}

// RetireSigningKeys deletes every signing key that a newer key, signing since before
// before, has replaced, and reports how many it deleted; the newest key always stays,
// and so does the key that signs now.
func (db *DB) RetireSigningKeys(ctx context.Context, before time.Time) (int, error) {
	var n int64
	err := db.inTx(ctx, "retire signing keys", func(tx *sql.Tx) error {
		// "Newer" is SigningKeys' order: by creation time, then by insertion.
		res, err := tx.ExecContext(ctx, `DELETE FROM signing_keys WHERE EXISTS (SELECT 1 FROM signing_keys n
			WHERE (n.created_at > signing_keys.created_at
				OR (n.created_at = signing_keys.created_at AND n.rowid > signing_keys.rowid))
			AND n.not_before < ?)`, ts(before))
		if err != nil {
			return fmt.Errorf("sqlite: retire signing keys: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}
