package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/linkdesk/linkdesk/server/store"
)

// The statements of attemptKeys (hotWrites): whether another connection wrote the
// file since the writer last looked, and the latest attempt under each key, at most
// ?1 keys.
const (
	dataVersionSQL    = `PRAGMA data_version`
	latestAttemptsSQL = `SELECT key, MAX(at) AS latest FROM failures GROUP BY key LIMIT ?`
)

// Bounds of attemptKeys: how many keys it holds (about 100 bytes each), and how soon
// it reads the table again after it could not hold every key, or after another
// connection wrote the file.
const (
	attemptKeysMax          = 50_000
	attemptKeysRetry        = time.Second
	attemptKeysRetryTooMany = time.Minute
)

// attemptKeys is what the writer knows about the failures table, so that a user-code
// operation whose limit keys have no attempt in their windows (nearly every approval
// and lookup) skips their index reads, a seventh of an approval's CPU on the writer:
// the latest attempt (ts) under every key in the table, read from it once and raised
// by every attempt the writer records. Entries are never lowered between readings, so
// a deletion (a purge, a released attempt) only leaves a key looking busier than it
// is, which costs a read. A write by another connection (another process on the file)
// is seen through SQLite's data_version before each transaction that checks limits,
// and the table is read again. Only the writer uses it, one transaction at a time.
type attemptKeys struct {
	// latest is complete when known: a key missing has no attempt at all.
	latest map[string]int64
	known  bool
	// version is the writer connection's data_version when latest was read or last
	// found current; checked: in the transaction under way.
	version int64
	checked bool
	// readInTx: latest was read in the transaction under way, which may also have
	// deleted attempts earlier; if it does not commit they come back unseen.
	readInTx bool
	// nextRead is when latest may next be read from the table once not known.
	nextRead time.Time
}

// begin starts a write transaction: data_version is checked again, and a reading made
// by a transaction that did not commit is not trusted.
func (k *attemptKeys) begin() {
	if k.readInTx {
		k.forget()
	}
	k.checked = false
}

// committed notes that the transaction under way committed.
func (k *attemptKeys) committed() { k.readInTx = false }

// forget drops what is known, until the table is read again.
func (k *attemptKeys) forget() {
	k.latest, k.known, k.readInTx = nil, false, false
}

// recorded notes an attempt under key at at (ts), written in the transaction under
// way: if it rolls back, the key only looks busier than it is.
func (k *attemptKeys) recorded(key string, at int64) {
	if !k.known {
		return
	}
	if cur, ok := k.latest[key]; !ok || at > cur {
		k.latest[key] = at
	}
	if len(k.latest) > attemptKeysMax {
		k.forget()
	}
}

// quiet reports whether key surely has no attempt at or after since (ts), so its
// attempts need not be read. It is only asked after ready.
func (k *attemptKeys) quiet(key string, since int64) bool {
	if !k.known {
		return false
	}
	latest, ok := k.latest[key]
	return !ok || latest < since
}

// ready brings what is known up to date in the transaction under way before limits
// are checked: once per transaction it compares data_version, and it reads the
// table when nothing is known and the last try is long enough ago.
func (k *attemptKeys) ready(ctx context.Context, tx txRunner, now time.Time) error {
	if !k.checked {
		var v int64
		if err := tx.QueryRowContext(ctx, dataVersionSQL).Scan(&v); err != nil {
			return fmt.Errorf("sqlite: data version: %w", err)
		}
		if v != k.version {
			k.forget() // another connection wrote the file
			k.version = v
		}
		k.checked = true
	}
	if k.known || now.Before(k.nextRead) {
		return nil
	}
	return k.read(ctx, tx, now)
}

// read loads the latest attempt of every key, unless there are more than
// attemptKeysMax keys (then nothing is known for a minute, and limits read as before).
func (k *attemptKeys) read(ctx context.Context, tx txRunner, now time.Time) error {
	rows, err := tx.QueryContext(ctx, latestAttemptsSQL, attemptKeysMax+1)
	if err != nil {
		return fmt.Errorf("sqlite: read attempt keys: %w", err)
	}
	defer rows.Close()
	latest := map[string]int64{}
	for rows.Next() {
		var key string
		var at int64
		if err := rows.Scan(&key, &at); err != nil {
			return fmt.Errorf("sqlite: read attempt keys: %w", err)
		}
		latest[key] = at
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite: read attempt keys: %w", err)
	}
	if len(latest) > attemptKeysMax {
		k.nextRead = now.Add(attemptKeysRetryTooMany)
		return nil
	}
	k.latest, k.known, k.readInTx, k.nextRead = latest, true, true, now.Add(attemptKeysRetry)
	return nil
}

// attemptsQuiet reports whether none of limits' keys has an attempt in its window
// before now, by what the writer knows (false when it cannot tell).
func (k *attemptKeys) attemptsQuiet(limits []store.AttemptLimit, now time.Time) bool {
	for _, l := range limits {
		if !k.quiet(l.Key, ts(now.Add(-l.Window))) {
			return false
		}
	}
	return true
}
