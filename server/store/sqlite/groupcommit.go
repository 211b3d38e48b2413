package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"

	"github.com/linkdesk/linkdesk/server/store/internal/batching"

	"modernc.org/sqlite"
)

// maxBatch bounds how many write operations share one transaction, and so one fsync.
const maxBatch = 64

// writeOp is one caller's write transaction waiting for the writer.
type writeOp struct {
	ctx  context.Context
	what string
	fn   func(tx *sql.Tx) error
	// refusesFirst: fn refuses (returns an error of the store's own) only before its
	// first write, or keeps what it wrote (commitThen), so in a shared transaction it
	// needs no savepoint to undo a refusal (inTxRefusingFirst).
	refusesFirst bool
	// keepsCounts: fn is a capped create, which tells the writer's remembered counts
	// (capsState.counted) of every change it makes to device_auth_counts; before any
	// other operation in a shared transaction they are forgotten.
	keepsCounts bool
}

// groupCommit lets concurrent write transactions share one commit. With
// synchronous=FULL every commit waits for an fsync of the WAL; when approvals, device
// authorizations and token collections arrive together they queue for the single
// writer anyway, so the caller at the head of the queue runs everyone waiting (up to
// maxBatch) in one transaction, each in a savepoint of its own, and commits once
// (batching.Queue: no background goroutine, the lead passes from caller to caller).
// Every caller hears its result only after that commit: an acknowledged write is as
// durable as before.
type groupCommit struct {
	q       batching.Queue[*writeOp]
	mu      sync.Mutex // guards shared and batches
	shared  int        // operations committed in a shared transaction so far (tests read it)
	batches int        // shared transactions committed so far (benchmarks read it)
}

// inTx runs fn in a write transaction, alone or in a batch with others (see
// groupCommit), and commits it when fn returns nil or commitThen(err); anything else
// rolls fn's changes back. A storage fault that may pass (see transient) comes back
// wrapped with store.ErrUnavailable, and a full disk or read-only database is logged
// once.
func (db *DB) inTx(ctx context.Context, what string, fn func(tx *sql.Tx) error) error {
	return db.enqueue(&writeOp{ctx: ctx, what: what, fn: fn})
}

// inTxRefusingFirst is inTx for an fn that refuses only before it writes anything,
// or keeps what it wrote (commitThen, or writes that stand on their own such as a
// sweep or the deletion of expired rows): a refusal has nothing to roll back, so in a
// shared transaction it runs without the savepoint that keeps other operations
// apart. Each savepoint costs two statements and a copy of every page the operation
// first changes, about a tenth of a device authorization's CPU. A SQLite error still
// rolls the whole batch back and reruns every operation alone.
func (db *DB) inTxRefusingFirst(ctx context.Context, what string, fn func(tx *sql.Tx) error) error {
	return db.enqueue(&writeOp{ctx: ctx, what: what, fn: fn, refusesFirst: true})
}

// enqueue runs op as inTx describes: in a batch (commitBatch), or alone (runAlone)
// when it waited alone or its batch could not commit together.
func (db *DB) enqueue(op *writeOp) error {
	return db.group.q.Do(op, db.commitBatch, db.runAlone)
}

// runAlone runs one operation in a transaction of its own (BEGIN IMMEDIATE).
func (db *DB) runAlone(op *writeOp) error {
	db.caps.begin()
	db.attempts.begin()
	tx, err := db.write.BeginTx(op.ctx, nil)
	if err != nil {
		return db.failed(fmt.Errorf("sqlite: %s: begin: %w", op.what, err))
	}
	ferr := op.fn(tx)
	var c *committed
	if ferr != nil && !errors.As(ferr, &c) {
		tx.Rollback()
		return db.failed(ferr)
	}
	if err := db.flushInsertCounts(context.WithoutCancel(op.ctx), db.prepared(tx)); err != nil {
		tx.Rollback()
		return db.failed(fmt.Errorf("sqlite: %s: %w", op.what, err))
	}
	if err := tx.Commit(); err != nil {
		return db.failed(fmt.Errorf("sqlite: %s: commit: %w", op.what, err))
	}
	db.caps.committed()
	db.attempts.committed()
	db.faults.succeeded()
	if c != nil {
		return c.err
	}
	return nil
}

// commitBatch runs batch in one transaction, each operation in a savepoint, commits
// once and returns every result. An operation that refuses (a store error such as
// ErrNotFound) rolls back to its savepoint and leaves the others be. When anything
// else goes wrong — a SQLite error (which may have rolled the whole transaction back),
// a cancelled context, a failed commit — it rolls everything back and reports false,
// and the caller runs each operation alone, so every caller gets the answer its own
// transaction would have given.
func (db *DB) commitBatch(batch []*writeOp) ([]error, bool) {
	db.caps.begin()
	db.attempts.begin()
	tx, err := db.write.BeginTx(context.Background(), nil)
	if err != nil {
		return nil, false
	}
	t := db.prepared(tx)
	ctx := context.Background()
	results := make([]error, len(batch))
	for i, op := range batch {
		if err := op.ctx.Err(); err != nil {
			results[i] = err // gone before its turn: nothing was done
			continue
		}
		if !op.refusesFirst {
			if _, err := t.ExecContext(ctx, savepointSQL); err != nil {
				tx.Rollback()
				return nil, false
			}
		}
		if !op.keepsCounts {
			db.caps.forgetCounts()
		}
		ferr := op.fn(tx)
		var c *committed
		switch {
		case ferr == nil || errors.As(ferr, &c):
			if !op.refusesFirst {
				if _, err := t.ExecContext(ctx, releaseSQL); err != nil {
					tx.Rollback()
					return nil, false
				}
			}
			if c != nil {
				results[i] = c.err
			}
		case breaksBatch(ferr):
			tx.Rollback()
			return nil, false
		case op.refusesFirst:
			results[i] = ferr // refused before writing: nothing to undo
		default:
			if _, err := t.ExecContext(ctx, rollbackToSQL); err != nil {
				tx.Rollback()
				return nil, false
			}
			if _, err := t.ExecContext(ctx, releaseSQL); err != nil {
				tx.Rollback()
				return nil, false
			}
			results[i] = ferr
		}
	}
	if err := db.flushInsertCounts(ctx, t); err != nil {
		tx.Rollback()
		return nil, false
	}
	if err := tx.Commit(); err != nil {
		return nil, false
	}
	db.caps.committed()
	db.attempts.committed()
	db.faults.succeeded()
	db.group.mu.Lock()
	db.group.shared += len(batch)
	db.group.batches++
	db.group.mu.Unlock()
	return results, true
}

// The statements that keep each operation of a shared transaction apart (hotWrites).
const (
	savepointSQL  = `SAVEPOINT op`
	releaseSQL    = `RELEASE op`
	rollbackToSQL = `ROLLBACK TO op`
)

// breaksBatch reports whether an operation's error may have ended the shared
// transaction or come from outside the store's own rules: a SQLite error or a context
// error.
func breaksBatch(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
