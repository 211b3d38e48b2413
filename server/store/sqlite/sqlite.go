// Package sqlite is the embedded SQLite implementation of store.Store, linkd's default
// storage. It uses the pure-Go modernc.org/sqlite driver, so linkd needs no cgo.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"runtime"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/linkdesk/linkdesk/server/store"
	"github.com/linkdesk/linkdesk/server/store/internal/batching"
	"github.com/linkdesk/linkdesk/server/store/internal/faultlog"
	"github.com/linkdesk/linkdesk/server/store/internal/stored"
)

// readerIdle is how long a read connection may stay idle before it is closed.
const readerIdle = 3 * time.Second

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
	writes preparedWrites
	group  groupCommit
	// caps is what the writer knows about device requests' flags and counts
	// (CreateDeviceAuthCapped); only write transactions, one at a time, use it.
	caps capsState
	// attempts is what the writer knows about the attempts under each limit key
	// (limitsWait); only write transactions, one at a time, use it.
	attempts attemptKeys
	// box encrypts signing keys and TOTP secrets at rest (WithSecretsKey); nil: they
	// are stored as given.
	box *stored.Sealer
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
	var box *stored.Sealer
	if o.secretsKey != nil {
		var err error
		if box, err = stored.NewSealer(o.secretsKey); err != nil {
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
	// linger in the file's free space. temp_store keeps the savepoint journal of each
	// operation in a shared commit (groupCommit) in memory rather than in a temporary
	// file written for every page a savepoint first changes; it only serves rollbacks
	// within a transaction, so durability is unchanged. cache_size gives the writer
	// 16 MiB of pages instead of 2: the device requests' indexes on random keys (device
	// code, user code) touch pages all over the file, and each one the writer does not
	// hold is read again with a system call.
	writePragmas := append(append([]string{"journal_mode(WAL)", "secure_delete(1)", "temp_store(MEMORY)", "cache_size(-16384)"}, common...), walPragmas(o.walLimit)...)
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
	// An idle read connection left open made the writer read pages from the file
	// again on every transaction (linkdbench: device requests ran at half speed after
	// the polls table, and a quarter slower with only the start-up health check's
	// reader open). The cause is not known; this modernc build shares one page cache
	// among connections. Closing readers idle for a few seconds costs one connection
	// open per burst of reads.
	r.SetConnMaxIdleTime(readerIdle)
	log := o.log
	if log == nil {
		log = slog.Default()
	}
	db := &DB{write: w, read: r, faults: faults{path: path, once: faultlog.Log{Logger: o.log}}, box: box, log: log,
		caps: newCapsState(), group: groupCommit{q: batching.Queue[*writeOp]{Max: maxBatch}}}
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

// The stored forms shared with the other stores (package stored): hash for secrets
// looked up but never shown, ts and tm for times, list and unlist for string lists,
// newID for new identifiers.
var (
	hash   = stored.Hash
	newID  = stored.NewID
	ts     = stored.Nanos
	tm     = stored.Time
	list   = stored.List
	unlist = stored.Unlist
)

// scanner is a *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}
