package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/store"
)

const grantCols = `id, subject, client_id, scopes, flow, name, device_name, device_model, device_kind,
	auth_time, created_at, last_seen_at, last_ip`

func scanGrant(s scanner) (store.Grant, error) {
	var g store.Grant
	var scopes, flow, kind string
	var authTime, created, lastSeen int64
	err := s.Scan(&g.ID, &g.Subject, &g.ClientID, &scopes, &flow, &g.Name, &g.Device.Name,
		&g.Device.Model, &kind, &authTime, &created, &lastSeen, &g.LastIP)
	if err != nil {
		return store.Grant{}, err
	}
	g.Flow = store.GrantFlow(flow)
	g.Device.Kind = devices.DeviceKind(kind)
	g.AuthTime, g.CreatedAt, g.LastSeenAt = tm(authTime), tm(created), tm(lastSeen)
	g.Scopes, err = unlist(scopes)
	return g, err
}

// insertGrantSQL stores a grant (one of the writer's prepared hotWrites).
const insertGrantSQL = `INSERT INTO grants (` + grantCols + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

func insertGrant(ctx context.Context, tx txRunner, g store.Grant) error {
	_, err := tx.ExecContext(ctx, insertGrantSQL,
		g.ID, g.Subject, g.ClientID, list(g.Scopes), string(g.Flow), g.Name, g.Device.Name,
		g.Device.Model, string(g.Device.Kind), ts(g.AuthTime), ts(g.CreatedAt), ts(g.LastSeenAt), g.LastIP)
	if isUnique(err) {
		return fmt.Errorf("sqlite: create grant %q: %w", g.ID, store.ErrDuplicate)
	}
	if err != nil {
		return fmt.Errorf("sqlite: create grant: %w", err)
	}
	return nil
}

// CreateGrant stores a grant whose ID the caller chose; store.ErrDuplicate if it exists.
// A zero CreatedAt is set to the current time.
func (db *DB) CreateGrant(ctx context.Context, g store.Grant) error {
	if g.ID == "" || g.Subject == "" || g.ClientID == "" {
		return fmt.Errorf("sqlite: create grant: id, subject and client id are required")
	}
	if g.CreatedAt.IsZero() {
		g.CreatedAt = time.Now()
	}
	return db.inTx(ctx, "create grant", func(tx *sql.Tx) error { return insertGrant(ctx, tx, g) })
}

// GrantByID returns a grant; subject "" matches any owner, otherwise a grant of another
// subject is store.ErrNotFound.
func (db *DB) GrantByID(ctx context.Context, subject, id string) (store.Grant, error) {
	g, err := grantByID(ctx, db.read, subject, id)
	if err != nil {
		return store.Grant{}, err
	}
	return g, nil
}

// querier is a *sql.DB or *sql.Tx.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func grantByID(ctx context.Context, q querier, subject, id string) (store.Grant, error) {
	g, err := scanGrant(q.QueryRowContext(ctx, `SELECT `+grantCols+` FROM grants
		WHERE id = ? AND (? = '' OR subject = ?)`, id, subject, subject))
	if err != nil {
		return store.Grant{}, notFound(err, "grant by id")
	}
	return g, nil
}

// ListGrants returns the subject's grants of one flow, newest first (creation order
// breaks ties). It returns an empty, non-nil slice when there are none.
func (db *DB) ListGrants(ctx context.Context, subject string, flow store.GrantFlow) ([]store.Grant, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+grantCols+` FROM grants
		WHERE subject = ? AND flow = ? ORDER BY created_at DESC, rowid DESC`, subject, string(flow))
	if err != nil {
		return nil, unavailable(fmt.Errorf("sqlite: list grants: %w", err))
	}
	defer rows.Close()
	out := []store.Grant{}
	for rows.Next() {
		g, err := scanGrant(rows)
		if err != nil {
			return nil, unavailable(fmt.Errorf("sqlite: list grants: %w", err))
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable(fmt.Errorf("sqlite: list grants: %w", err))
	}
	return out, nil
}

// RenameGrant renames the subject's grant and returns it as renamed.
func (db *DB) RenameGrant(ctx context.Context, subject, id, name string) (store.Grant, error) {
	var g store.Grant
	err := db.inTx(ctx, "rename grant", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE grants SET name = ? WHERE id = ? AND (? = '' OR subject = ?)`,
			name, id, subject, subject)
		if err != nil {
			return fmt.Errorf("sqlite: rename grant: %w", err)
		}
		if err := mustAffect(res, "rename grant"); err != nil {
			return err
		}
		g, err = grantByID(ctx, tx, subject, id)
		return err
	})
	if err != nil {
		return store.Grant{}, err
	}
	return g, nil
}

// DeleteGrant deletes the subject's grant with every access and refresh token of it,
// and returns the grant as it was.
func (db *DB) DeleteGrant(ctx context.Context, subject, id string) (store.Grant, error) {
	var g store.Grant
	err := db.inTx(ctx, "delete grant", func(tx *sql.Tx) error {
		var err error
		if g, err = grantByID(ctx, tx, subject, id); err != nil {
			return err
		}
		return deleteGrant(ctx, tx, id)
	})
	if err != nil {
		return store.Grant{}, err
	}
	return g, nil
}

// deleteGrant removes a grant and its tokens. The foreign keys cascade, but the tokens
// are deleted explicitly too so that correctness never hangs on a pragma.
func deleteGrant(ctx context.Context, tx *sql.Tx, id string) error {
	for _, q := range []string{
		`DELETE FROM access_tokens WHERE grant_id = ?`,
		`DELETE FROM refresh_tokens WHERE grant_id = ?`,
		`DELETE FROM grants WHERE id = ?`,
	} {
		if _, err := tx.ExecContext(ctx, q, id); err != nil {
			return fmt.Errorf("sqlite: delete grant: %w", err)
		}
	}
	return nil
}

// TouchGrant records that the grant was used at now from ip (an empty ip keeps the
// last one known).
func (db *DB) TouchGrant(ctx context.Context, id, ip string, now time.Time) error {
	return db.inTx(ctx, "touch grant", func(tx *sql.Tx) error { return touchGrant(ctx, tx, id, ip, now) })
}

func touchGrant(ctx context.Context, tx *sql.Tx, id, ip string, now time.Time) error {
	res, err := tx.ExecContext(ctx, `UPDATE grants SET last_seen_at = ?,
		last_ip = CASE WHEN ? = '' THEN last_ip ELSE ? END WHERE id = ?`, ts(now), ip, ip, id)
	if err != nil {
		return fmt.Errorf("sqlite: touch grant: %w", err)
	}
	return mustAffect(res, "touch grant")
}

// DeleteIdleGrants deletes up to limit device grants of clientID last used (last seen,
// else created) before before, oldest first, with their tokens, in one transaction,
// and returns them as they were.
func (db *DB) DeleteIdleGrants(ctx context.Context, clientID string, before time.Time, limit int) ([]store.Grant, error) {
	out := []store.Grant{}
	if limit <= 0 {
		return out, nil
	}
	err := db.inTx(ctx, "delete idle grants", func(tx *sql.Tx) error {
		out = out[:0] // a batch that failed runs this again alone
		rows, err := tx.QueryContext(ctx, `SELECT `+grantCols+` FROM grants
			WHERE client_id = ? AND flow = ?
			AND (CASE WHEN last_seen_at = 0 THEN created_at ELSE last_seen_at END) < ?
			ORDER BY (CASE WHEN last_seen_at = 0 THEN created_at ELSE last_seen_at END), id LIMIT ?`,
			clientID, string(store.FlowDevice), ts(before), limit)
		if err != nil {
			return fmt.Errorf("sqlite: idle grants: %w", err)
		}
		for rows.Next() {
			g, err := scanGrant(rows)
			if err != nil {
				rows.Close()
				return fmt.Errorf("sqlite: idle grants: %w", err)
			}
			out = append(out, g)
		}
		if err := rows.Close(); err != nil {
			return fmt.Errorf("sqlite: idle grants: %w", err)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("sqlite: idle grants: %w", err)
		}
		for _, g := range out {
			if err := deleteGrant(ctx, tx, g.ID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
