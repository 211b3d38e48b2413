// Package sqlite is the embedded SQLite implementation of store.Store, linkd's default
// storage. It uses the pure-Go modernc.org/sqlite driver, so linkd needs no cgo.
package sqlite

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"path/filepath"
	"runtime"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/linkdesk/linkdesk/server/sealing"
	"github.com/linkdesk/linkdesk/server/store"
)

// busyTimeout is how long a connection waits for another connection or process that
// holds the write lock before giving up with SQLITE_BUSY.
const busyTimeout = 10 * time.Second

// DB is a store.Store backed by one SQLite database file.
//
// It keeps two connection pools on the file: a single writer connection whose
// transactions start with BEGIN IMMEDIATE (so a transaction that reads and then writes
// never fails half-way on a lock upgrade, and writers in this process queue in Go
// rather than spin on the busy handler), and a read-only pool that, thanks to WAL,
// reads concurrently with the writer. Other processes on the same file are
// serialised by SQLite's file locks and busy_timeout.
type DB struct {
	write  *sql.DB
	read   *sql.DB
	faults faults
	hot    hotStatements
	writes writeStatements
	group  groupCommit
	// box encrypts signing keys and TOTP secrets at rest (WithSecretsKey); nil: they
	// are stored as given.
	box *sealing.Box
	log *slog.Logger
}

var _ store.Store = (*DB)(nil)

// Open opens (creating if needed) the SQLite database at path and migrates it to the
// current schema. The database and its -wal and -shm files are made 0600, and a
// directory that group or others may read or write is tightened to 0700 when this
// process owns it, and refused otherwise (see secureFiles). With WithSecretsKey it
// encrypts any signing key or TOTP secret still stored in plaintext.
func Open(ctx context.Context, path string, opt ...Option) (*DB, error) {
	if path == "" {
		return nil, errors.New("sqlite: empty database path")
	}
	o := options{walLimit: DefaultWALLimit}
	for _, f := range opt {
		f(&o)
	}
	var box *sealing.Box
	if o.secretsKey != nil {
		var err error
		if box, err = sealing.NewBox(o.secretsKey); err != nil {
			return nil, fmt.Errorf("sqlite: secrets key: %w", err)
		}
	}
	if err := secureFiles(path); err != nil {
		return nil, err
	}
	// synchronous=FULL: in WAL mode NORMAL only syncs the WAL at checkpoints, so a
	// power loss can roll back transactions that had already committed — such as an
	// approval the person was told succeeded. FULL syncs the WAL on every commit, so
	// a committed link survives any crash; linkd's write rate is low enough that the
	// extra fsync costs nothing that matters.
	common := []string{
		fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()),
		"foreign_keys(1)",
		"synchronous(FULL)",
	}
	// The writer also bounds the WAL (see WithWALLimit); these pragmas act on the
	// connection that writes and checkpoints. secure_delete zeroes the space a deleted
	// or rewritten row leaves, so a secret replaced (encrypted, turned off) does not
	// linger in the file's free space.
	writePragmas := append(append([]string{"journal_mode(WAL)", "secure_delete(1)", "temp_store(MEMORY)"}, common...), walPragmas(o.walLimit)...)
	writeDSN := dsn(path, writePragmas, "immediate")
	w, err := sql.Open("sqlite", writeDSN)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	w.SetConnMaxLifetime(0)
	if err := migrate(ctx, w); err != nil {
		w.Close()
		return nil, err
	}

	r, err := sql.Open("sqlite", dsn(path, append(common, "query_only(1)"), ""))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	log := o.log
	if log == nil {
		log = slog.Default()
	}
	db := &DB{write: w, read: r, faults: faults{path: path, log: o.log}, box: box, log: log}
	if err := db.prepareWrites(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if err := db.Health(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if err := secureSidecars(path); err != nil {
		db.Close()
		return nil, err
	}
	if err := db.sealPlaintext(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// dsn builds a modernc.org/sqlite data source name for path with the given pragmas,
// applied to every new connection of the pool.
func dsn(path string, pragmas []string, txlock string) string {
	q := url.Values{}
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	if txlock != "" {
		q.Set("_txlock", txlock)
	}
	// SQLite parses this as a URI (SQLITE_OPEN_URI) and percent-decodes the path, so
	// characters such as '?', '#' and '%' in a directory name are escaped here.
	u := url.URL{Scheme: "file", Opaque: (&url.URL{Path: filepath.ToSlash(path)}).EscapedPath(), RawQuery: q.Encode()}
	return u.String()
}

// Health checks that both pools can reach the database.
func (db *DB) Health(ctx context.Context) error {
	var one int
	if err := db.read.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return fmt.Errorf("sqlite: health (read): %w", err)
	}
	if err := db.write.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: health (write): %w", err)
	}
	return nil
}

// Checkpoint copies the whole WAL into the database file and truncates the WAL to
// zero bytes (wal_checkpoint(TRUNCATE)), waiting up to busy_timeout for readers. It
// fails when readers kept part of the WAL in use.
func (db *DB) Checkpoint(ctx context.Context) error {
	var busy, logFrames, done int
	err := db.write.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logFrames, &done)
	if err != nil {
		return db.failed(fmt.Errorf("sqlite: checkpoint: %w", err))
	}
	if busy != 0 {
		return fmt.Errorf("sqlite: checkpoint: %w", errCheckpointBusy)
	}
	return nil
}

// errCheckpointBusy means a checkpoint could not finish because readers still used
// the WAL; a later one will.
var errCheckpointBusy = errors.New("readers still use the WAL; try again later")

// Close closes both pools; the WAL is checkpointed by SQLite when the last
// connection closes.
func (db *DB) Close() error {
	return errors.Join(db.closeHot(), db.closeWrites(), db.read.Close(), db.write.Close())
}

// committed wraps an error that a transaction returns after its changes must still be
// committed (for example, a reused refresh token deletes its grant and then reports
// store.ErrRefreshReused).
type committed struct{ err error }

func (c *committed) Error() string { return c.err.Error() }
func (c *committed) Unwrap() error { return c.err }

// commitThen makes inTx commit the transaction and then return err.
func commitThen(err error) error { return &committed{err} }

// failed notes a failed write (for the once-only fault log) and wraps a transient
// fault with store.ErrUnavailable.
func (db *DB) failed(err error) error {
	db.faults.failed(err)
	return unavailable(err)
}

// notFound turns sql.ErrNoRows into store.ErrNotFound, adding what was looked for; a
// transient fault (see transient) is wrapped with store.ErrUnavailable.
func notFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sqlite: %s: %w", what, store.ErrNotFound)
	}
	return unavailable(fmt.Errorf("sqlite: %s: %w", what, err))
}

// isUnique reports whether err is a UNIQUE or PRIMARY KEY constraint violation.
func isUnique(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return true
		}
	}
	return false
}

// mustAffect returns store.ErrNotFound when an UPDATE or DELETE matched no row.
func mustAffect(res sql.Result, what string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlite: %s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlite: %s: %w", what, store.ErrNotFound)
	}
	return nil
}

// hash is the stored form of a secret: lowercase hex SHA-256.
func hash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// newID returns a random 128-bit identifier in hex.
func newID() string {
	b := make([]byte, 16)
	rand.Read(b) // never fails (crypto/rand documents it panics on failure instead)
	return hex.EncodeToString(b)
}

// Unix nanoseconds in an int64 cover 1678 to 2262; times outside are clamped to these
// bounds (a "never expires" far-future time stays far in the future).
var (
	minTime = time.Unix(0, math.MinInt64+1).UTC()
	maxTime = time.Unix(0, math.MaxInt64).UTC()
)

// ts is the stored form of a time: UTC unix nanoseconds, 0 for the zero time.
func ts(t time.Time) int64 {
	switch {
	case t.IsZero():
		return 0
	case t.After(maxTime):
		return math.MaxInt64
	case t.Before(minTime):
		return math.MinInt64 + 1
	}
	return t.UnixNano()
}

// tm is the inverse of ts; times come back in UTC.
func tm(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// list is the stored form of a string list: a JSON array, never null.
func list(s []string) string {
	if len(s) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(s) // marshalling []string cannot fail
	return string(b)
}

// unlist is the inverse of list; an empty list comes back as nil.
func unlist(s string) ([]string, error) {
	var out []string
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, fmt.Errorf("sqlite: decode list: %w", err)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}
