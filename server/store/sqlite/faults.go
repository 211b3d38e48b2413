package sqlite

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/linkdesk/linkdesk/server/store"
	"github.com/linkdesk/linkdesk/server/store/internal/faultlog"
)

// Option changes how Open sets up the database.
type Option func(*options)

type options struct {
	log      *slog.Logger
	walLimit int64
	// secretsKey encrypts secrets at rest (WithSecretsKey, server/store/sqlite/secrets.go).
	secretsKey []byte
}

// WithLogger makes the store log storage faults (a full disk, a read-only data
// directory) to l; without it they go to slog.Default() at the time they happen.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.log = l }
}

// DefaultWALLimit is the size the write-ahead log is cut back to after a checkpoint
// (journal_size_limit), so one burst of writes or one long reader does not leave a
// large WAL file behind for good.
const DefaultWALLimit = 64 << 20

// WithWALLimit sets the WAL size bound (journal_size_limit) to n bytes instead of
// DefaultWALLimit; automatic checkpoints then run once the WAL holds half of it (at
// most every 1000 pages, SQLite's default), so the WAL stays below n while no reader
// holds it back. Tests use it to see the bound at work with few writes.
func WithWALLimit(n int64) Option {
	return func(o *options) { o.walLimit = n }
}

// walPragmas are the writer's pragmas that bound the WAL to limit bytes.
func walPragmas(limit int64) []string {
	const pageSize = 4096 // SQLite's default page size, which linkd keeps
	pages := min(max(limit/2/pageSize, 1), 1000)
	return []string{
		fmt.Sprintf("journal_size_limit(%d)", limit),
		fmt.Sprintf("wal_autocheckpoint(%d)", pages),
	}
}

// transient reports whether err is a SQLite fault that may pass without anything
// being wrong with the request: the disk is full, the database is read-only or cannot
// be opened, an I/O error, a lock still held after busy_timeout, out of memory, or a
// locking protocol race. The operation changed nothing and can be repeated later.
func transient(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff { // the primary code of an extended one
	case sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR,
		sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_CANTOPEN,
		sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_PROTOCOL:
		return true
	}
	return false
}

// unavailable wraps a transient fault with store.ErrUnavailable (the SQLite error
// stays in the chain); any other error, and nil, come back unchanged.
func unavailable(err error) error {
	if err == nil || errors.Is(err, store.ErrUnavailable) || !transient(err) {
		return err
	}
	return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
}

// The operator-visible faults of SQLite (faultlog kinds).
const (
	noFault  = faultlog.None
	diskFull = faultlog.Kind(iota)
	readOnly
)

// kindOf tells which operator-visible fault err is, if any.
func kindOf(err error) faultlog.Kind {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return noFault
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_FULL:
		return diskFull
	case sqlite3.SQLITE_READONLY:
		return readOnly
	}
	return noFault
}

// faults logs a full disk or a read-only directory once at ERROR with what to do, not
// once per request, and its end once at INFO (see faultlog.Log).
type faults struct {
	path string
	once faultlog.Log // its Logger nil: slog.Default() when logging
}

// failed notes a failed write; a disk-full or read-only fault that starts now is
// logged at ERROR, or at WARN once when it comes back soon after its ERROR.
func (f *faults) failed(err error) {
	var msg string
	k := kindOf(err)
	switch k {
	case diskFull:
		msg = "sqlite: the disk holding " + f.path + " is full: free space on it; until then devices are told to slow down, " +
			"people are asked to try again in a moment, and nothing saved is lost"
	case readOnly:
		msg = "sqlite: " + f.path + " cannot be written (read-only file or directory " + filepath.Dir(f.path) + "): make both " +
			"writable by the user linkd runs as; until then devices are told to slow down, people are asked to try again " +
			"in a moment, and nothing saved is lost"
	default:
		return
	}
	f.once.Failed(k, msg, err)
}

// succeeded notes a successful write: the end of a logged fault is logged once.
func (f *faults) succeeded() {
	f.once.Succeeded("sqlite: writes to " + f.path + " work again")
}
