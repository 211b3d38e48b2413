// Package postgres is the PostgreSQL implementation of store.Store, for running several
// linkd replicas on one shared database. It passes the same conformance suite as the
// SQLite store (server/store/storetest) and keeps the same things hashed and encrypted
// (package stored).
//
// It uses database/sql with pgx's stdlib driver rather than pgxpool: the operations
// then have the same shape as the SQLite store's (sql.Tx, sql.ErrNoRows,
// RowsAffected), so the two read side by side and differ only where the databases do.
//
// Concurrency: SQLite runs one write transaction at a time, PostgreSQL many. Each
// operation says which isolation it uses and why; in short, one-shot claims are single
// conditional statements (UPDATE … WHERE … RETURNING, INSERT … ON CONFLICT), state
// machines lock their row first (SELECT … FOR UPDATE at READ COMMITTED), and counts
// that must not be passed by a burst (caps, attempt limits) take a transaction-scoped
// advisory lock before counting. Deadlocks and serialization failures are retried.
package postgres

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver

	"github.com/linkdesk/linkdesk/server/store"
	"github.com/linkdesk/linkdesk/server/store/internal/batching"
	"github.com/linkdesk/linkdesk/server/store/internal/faultlog"
	"github.com/linkdesk/linkdesk/server/store/internal/stored"
)

// DB is a store.Store backed by a PostgreSQL database.
type DB struct {
	db     *sql.DB
	box    *stored.Sealer // nil: secrets stored as given (see WithSecretsKey)
	log    *slog.Logger
	faults faultlog.Log
	// capsBatch lets concurrent capped device requests share a transaction.
	capsBatch capsBatcher
}

var _ store.Store = (*DB)(nil)

// Option changes how Open sets up the store.
type Option func(*options)

type options struct {
	log        *slog.Logger
	secretsKey []byte
	maxConns   int
}

// WithLogger makes the store log to l instead of slog.Default().
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithSecretsKey makes the store encrypt signing keys and TOTP secrets with key (32
// bytes, see sealing.Derive with sealing.LabelStore), exactly as the SQLite store's
// option of the same name, encrypting on open any still stored in plaintext.
func WithSecretsKey(key []byte) Option {
	return func(o *options) { o.secretsKey = bytes.Clone(key) }
}

// WithMaxConns bounds the connections this store opens (default 20), so N replicas
// stay within the server's max_connections.
func WithMaxConns(n int) Option { return func(o *options) { o.maxConns = n } }

// Open connects to the database at url (postgres://… or a key=value DSN), migrates it
// to the current schema (exactly once however many replicas start together) and checks
// it answers.
func Open(ctx context.Context, url string, opt ...Option) (*DB, error) {
	o := options{maxConns: 20}
	for _, f := range opt {
		f(&o)
	}
	if o.log == nil {
		o.log = slog.Default()
	}
	var box *stored.Sealer
	if o.secretsKey != nil {
		var err error
		if box, err = stored.NewSealer(o.secretsKey); err != nil {
			return nil, fmt.Errorf("postgres: secrets key: %w", err)
		}
	}
	sdb, err := sql.Open("pgx", url)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	sdb.SetMaxOpenConns(o.maxConns)
	sdb.SetMaxIdleConns(o.maxConns)
	sdb.SetConnMaxIdleTime(5 * time.Minute)
	db := &DB{db: sdb, box: box, log: o.log, faults: faultlog.Log{Logger: o.log},
		capsBatch: capsBatcher{q: batching.Queue[*cappedCreate]{Max: maxCapsBatch}}}
	if err := migrate(ctx, sdb); err != nil {
		sdb.Close()
		return nil, unavailable(err)
	}
	if err := db.Health(ctx); err != nil {
		sdb.Close()
		return nil, err
	}
	if err := db.sealPlaintext(ctx); err != nil {
		sdb.Close()
		return nil, err
	}
	return db, nil
}

// Health checks that the database answers.
func (db *DB) Health(ctx context.Context) error {
	var one int
	if err := db.db.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return unavailable(fmt.Errorf("postgres: health: %w", err))
	}
	return nil
}

// Close closes the connections.
func (db *DB) Close() error { return db.db.Close() }

// maxTries bounds how often a transaction that hit a serialization failure or a
// deadlock is run again before the fault is reported as store.ErrUnavailable.
const maxTries = 10

// inTx runs fn in a READ COMMITTED transaction and commits it when fn returns nil or
// commitThen(err); anything else rolls it back. A deadlock or serialization failure
// runs it again (fn must only assign its results, never accumulate them); a fault that
// may pass comes back wrapped with store.ErrUnavailable.
func (db *DB) inTx(ctx context.Context, what string, fn func(tx *sql.Tx) error) error {
	var err error
	for try := range maxTries {
		if try > 0 {
			// Back off a little, randomly, so the transactions that collided do not
			// collide again.
			select {
			case <-ctx.Done():
				return fmt.Errorf("postgres: %s: %w", what, ctx.Err())
			case <-time.After(time.Duration(rand.Int64N(int64(time.Millisecond) << min(try, 6)))):
			}
		}
		err = db.tryTx(ctx, what, fn)
		if !retryable(err) {
			db.noteFault(err)
			return unavailable(err)
		}
	}
	return unavailable(fmt.Errorf("postgres: %s: gave up after %d tries: %w", what, maxTries, err))
}

// The faults of PostgreSQL an operator has to act on (faultlog kinds).
const (
	diskFull = faultlog.Kind(iota + 1)
	readOnly
	unreachable
	tooManyConnections
)

// noteFault logs the start of an operator-visible fault once (and its end once, on the
// next write that succeeds, err nil).
func (db *DB) noteFault(err error) {
	const meanwhile = "; until then devices are told to slow down, people are asked to try again in a moment, and nothing saved is lost"
	if !transient(err) {
		if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) { // the server answered
			db.faults.Succeeded("postgres: writes to the database work again")
		}
		return
	}
	code := pgCode(err)
	switch {
	case code == "53100":
		db.faults.Failed(diskFull, "postgres: the database server's disk is full: free space on it"+meanwhile, err)
	case code == "25006":
		db.faults.Failed(readOnly, "postgres: the database is read-only (a standby, or default_transaction_read_only): "+
			"point --db at the primary"+meanwhile, err)
	case code == "53300":
		db.faults.Failed(tooManyConnections, "postgres: the database server has no connection slot left: raise its "+
			"max_connections or run fewer replicas"+meanwhile, err)
	case code == "" || code[:2] == "08" || code[:3] == "57P":
		db.faults.Failed(unreachable, "postgres: the database server cannot be reached or went away: start it or check "+
			"the network"+meanwhile, err)
	}
}

func (db *DB) tryTx(ctx context.Context, what string, fn func(tx *sql.Tx) error) error {
	tx, err := db.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return fmt.Errorf("postgres: %s: begin: %w", what, err)
	}
	ferr := fn(tx)
	var c *committed
	if ferr != nil && !errors.As(ferr, &c) {
		tx.Rollback()
		return ferr
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("postgres: %s: commit: %w", what, err)
	}
	if c != nil {
		return c.err
	}
	return nil
}

// committed wraps an error that a transaction returns after its changes must still be
// committed (a reused refresh token deletes its grant and then reports
// store.ErrRefreshReused).
type committed struct{ err error }

func (c *committed) Error() string { return c.err.Error() }
func (c *committed) Unwrap() error { return c.err }

// commitThen makes inTx commit the transaction and then return err.
func commitThen(err error) error { return &committed{err} }

// pgCode is the SQLSTATE of a PostgreSQL error in err's chain, or "".
func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// retryable reports whether err is a serialization failure or deadlock: the
// transaction was rolled back and running it again may succeed.
func retryable(err error) bool {
	switch pgCode(err) {
	case "40001", "40P01":
		return true
	}
	return false
}

// transient reports whether err is a fault that may pass without anything being wrong
// with the request: the server cannot be reached or went away (connection refused or
// lost, admin or crash shutdown, starting up), too many connections, out of memory or
// disk (53xxx), a read-only server (25006, e.g. a standby), an I/O error (58xxx), a
// lock timeout, or a serialization failure that persisted past maxTries.
func transient(err error) bool {
	if err == nil {
		return false
	}
	if code := pgCode(err); code != "" {
		switch {
		case code[:2] == "08", code[:2] == "53", code[:2] == "58":
			return true
		}
		switch code {
		case "25006", "57P01", "57P02", "57P03", "55P03", "40001", "40P01":
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, driver.ErrBadConn) || pgconn.Timeout(err) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// unavailable wraps a transient fault with store.ErrUnavailable (the database error
// stays in the chain); any other error, and nil, come back unchanged.
func unavailable(err error) error {
	if err == nil || errors.Is(err, store.ErrUnavailable) || !transient(err) {
		return err
	}
	return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
}

// notFound turns sql.ErrNoRows into store.ErrNotFound, adding what was looked for; a
// transient fault is wrapped with store.ErrUnavailable.
func notFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("postgres: %s: %w", what, store.ErrNotFound)
	}
	return unavailable(fmt.Errorf("postgres: %s: %w", what, err))
}

// isUnique reports whether err is a unique or primary key violation, and of which
// constraint.
func isUnique(err error) (string, bool) {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		return pe.ConstraintName, true
	}
	return "", false
}

// isForeignKey reports whether err is a foreign key violation (a token for a grant
// that is gone).
func isForeignKey(err error) bool { return pgCode(err) == "23503" }

// mustAffect returns store.ErrNotFound when an UPDATE or DELETE matched no row.
func mustAffect(res sql.Result, what string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("postgres: %s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("postgres: %s: %w", what, store.ErrNotFound)
	}
	return nil
}

// The stored forms shared with the SQLite store (package stored).
var (
	hash        = stored.Hash
	newID       = stored.NewID
	ts          = stored.Nanos
	tm          = stored.Time
	list        = stored.List
	unlist      = stored.Unlist
	accessIDKey = stored.AccessID
)

// scanner is a *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// scanFunc adapts a function to the scanner interface.
type scanFunc func(dest ...any) error

func (f scanFunc) Scan(dest ...any) error { return f(dest...) }
