package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/linkdesk/linkdesk/server/store"
	"github.com/linkdesk/linkdesk/server/store/internal/stored"
)

// ensureKeyLock is the advisory lock EnsureSigningKey holds for its transaction:
// whether a stored key opens is decided in Go, so a conditional INSERT alone cannot
// keep two replicas from each adding a first key.
const ensureKeyLock = 0x6c696e6b6b657973 // "linkkeys"

// rowsQuerier is what reading signing keys needs: the pool or a transaction.
type rowsQuerier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// SigningKeys returns every signing key, newest first, decrypted. A key that does not
// open with this store's secrets key is left out with a warning, as in the SQLite store.
func (db *DB) SigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	keys, err := db.signingKeys(ctx, db.db)
	if err != nil {
		return nil, unavailable(err)
	}
	return keys, nil
}

func (db *DB) signingKeys(ctx context.Context, q rowsQuerier) ([]store.SigningKey, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, algorithm, private_key_pem, created_at, not_before
		FROM signing_keys ORDER BY created_at DESC, seq DESC`)
	if err != nil {
		return nil, fmt.Errorf("postgres: signing keys: %w", err)
	}
	return stored.SigningKeys(rows, db.box, db.log, "postgres")
}

// AddSigningKey stores a new signing key; store.ErrDuplicate when its ID exists. A zero
// NotBefore is stored as CreatedAt: the key signs at once.
func (db *DB) AddSigningKey(ctx context.Context, k store.SigningKey) error {
	if k.ID == "" || len(k.PrivateKeyPEM) == 0 {
		return fmt.Errorf("postgres: add signing key: id and key are required")
	}
	return db.inTx(ctx, "add signing key", func(tx *sql.Tx) error { return db.addSigningKey(ctx, tx, k) })
}

func (db *DB) addSigningKey(ctx context.Context, tx *sql.Tx, k store.SigningKey) error {
	notBefore := k.NotBefore
	if notBefore.IsZero() {
		notBefore = k.CreatedAt
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO signing_keys (id, algorithm, private_key_pem, created_at, not_before)
		VALUES ($1, $2, $3, $4, $5)`, k.ID, k.Algorithm, db.box.SealKey(k.ID, k.PrivateKeyPEM), ts(k.CreatedAt), ts(notBefore))
	if _, dup := isUnique(err); dup {
		return fmt.Errorf("postgres: add signing key %q: %w", k.ID, store.ErrDuplicate)
	}
	if err != nil {
		return fmt.Errorf("postgres: add signing key: %w", err)
	}
	return nil
}

// EnsureSigningKey stores k only when no stored key opens with this store's secrets
// key, and returns the keys as SigningKeys would, in one transaction under an advisory
// lock: replicas starting at once on an empty database add exactly one key and all get
// it back.
func (db *DB) EnsureSigningKey(ctx context.Context, k store.SigningKey) ([]store.SigningKey, error) {
	if k.ID == "" || len(k.PrivateKeyPEM) == 0 {
		return nil, fmt.Errorf("postgres: ensure signing key: id and key are required")
	}
	var keys []store.SigningKey
	err := db.inTx(ctx, "ensure signing key", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(ensureKeyLock)); err != nil {
			return fmt.Errorf("postgres: ensure signing key: %w", err)
		}
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
// before, has replaced, and reports how many; the newest key always stays, and so does
// the key that signs now. One DELETE.
func (db *DB) RetireSigningKeys(ctx context.Context, before time.Time) (int, error) {
	var n int64
	err := db.inTx(ctx, "retire signing keys", func(tx *sql.Tx) error {
		// "Newer" is SigningKeys' order: by creation time, then by insertion.
		res, err := tx.ExecContext(ctx, `DELETE FROM signing_keys o WHERE EXISTS (SELECT 1 FROM signing_keys n
			WHERE (n.created_at > o.created_at OR (n.created_at = o.created_at AND n.seq > o.seq))
			AND n.not_before < $1)`, ts(before))
		if err != nil {
			return fmt.Errorf("postgres: retire signing keys: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}
