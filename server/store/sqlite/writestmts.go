package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// txRunner is what the statements of a write transaction run on: a *sql.Tx, or a
// preparedTx that reuses the writer's prepared statements.
type txRunner interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// hotWrites are the savepoints of a shared commit (groupCommit), the statements of the approval path (user-code limits, approve,
// deny) and of creating a device request (createCappedQueries), prepared once on the
// writer connection when the database opens: parsing a statement costs about as much
// CPU as running it (more for device_auths, whose delete trigger SQLite compiles into
// each), and the writer is the one thing every approval and request waits for.
var hotWrites = append([]string{
	savepointSQL,
	releaseSQL,
	rollbackToSQL,
	attemptsSQL,
	recordAttemptSQL,
	dataVersionSQL,
	pendingByUserCodeSQL,
	insertGrantSQL,
	approveSQL,
	denySQL,
	userCodeExpiry,
}, createCappedQueries...)

// preparedWrites are the writer connection's prepared hotWrites, by query text.
type preparedWrites map[string]*sql.Stmt

// prepareWrites prepares hotWrites on the writer connection; it must run while no
// transaction holds that connection (Open).
func (db *DB) prepareWrites(ctx context.Context) error {
	db.writes = preparedWrites{}
	for _, q := range hotWrites {
		st, err := db.write.PrepareContext(ctx, q)
		if err != nil {
			return errors.Join(fmt.Errorf("sqlite: prepare: %w", err), db.closeWrites())
		}
		db.writes[q] = st
	}
	return nil
}

// closeWrites closes the prepared hotWrites.
func (db *DB) closeWrites() error {
	var errs []error
	for _, st := range db.writes {
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}

// prepared wraps tx so the hotWrites run as the writer's prepared statements (tx
// reuses one prepared on its own connection) and any other query as usual.
func (db *DB) prepared(tx *sql.Tx) preparedTx { return preparedTx{Tx: tx, stmts: db.writes} }

// preparedTx is a write transaction that runs the hotWrites prepared.
type preparedTx struct {
	*sql.Tx
	stmts preparedWrites
}

func (t preparedTx) stmt(ctx context.Context, query string) *sql.Stmt {
	if st, ok := t.stmts[query]; ok {
		return t.Tx.StmtContext(ctx, st)
	}
	return nil
}

// ExecContext runs query, prepared when it is one of the hotWrites.
func (t preparedTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := t.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return t.Tx.ExecContext(ctx, query, args...)
}

// QueryContext runs query, prepared when it is one of the hotWrites.
func (t preparedTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := t.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return t.Tx.QueryContext(ctx, query, args...)
}

// QueryRowContext runs query, prepared when it is one of the hotWrites.
func (t preparedTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := t.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return t.Tx.QueryRowContext(ctx, query, args...)
}
