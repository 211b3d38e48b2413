package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
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

func insertGrant(ctx context.Context, tx *sql.Tx, g store.Grant) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO grants (`+grantCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		g.ID, g.Subject, g.ClientID, list(g.Scopes), string(g.Flow), g.Name, g.Device.Name,
		g.Device.Model, string(g.Device.Kind), ts(g.AuthTime), ts(g.CreatedAt), ts(g.LastSeenAt), g.LastIP)
	if _, dup := isUnique(err); dup {
		return fmt.Errorf("postgres: create grant %q: %w", g.ID, store.ErrDuplicate)
	}
	if err != nil {
		return fmt.Errorf("postgres: create grant: %w", err)
	}
	return nil
}

// CreateGrant stores a grant whose ID the caller chose; store.ErrDuplicate if it exists.
// A zero CreatedAt is set to the current time. One INSERT.
func (db *DB) CreateGrant(ctx context.Context, g store.Grant) error {
	if g.ID == "" || g.Subject == "" || g.ClientID == "" {
		return fmt.Errorf("postgres: create grant: id, subject and client id are required")
	}
	if g.CreatedAt.IsZero() {
		g.CreatedAt = time.Now()
	}
	return db.inTx(ctx, "create grant", func(tx *sql.Tx) error { return insertGrant(ctx, tx, g) })
}

// GrantByID returns a grant; subject "" matches any owner.
func (db *DB) GrantByID(ctx context.Context, subject, id string) (store.Grant, error) {
	g, err := scanGrant(db.db.QueryRowContext(ctx, `SELECT `+grantCols+` FROM grants
		WHERE id = $1 AND ($2 = '' OR subject = $2)`, id, subject))
	if err != nil {
		return store.Grant{}, notFound(err, "grant by id")
	}
	return g, nil
}

// ListGrants returns the subject's grants of one flow, newest first (creation order
// breaks ties); an empty, non-nil slice when there are none.
func (db *DB) ListGrants(ctx context.Context, subject string, flow store.GrantFlow) ([]store.Grant, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT `+grantCols+` FROM grants
		WHERE subject = $1 AND flow = $2 ORDER BY created_at DESC, seq DESC`, subject, string(flow))
	if err != nil {
		return nil, unavailable(fmt.Errorf("postgres: list grants: %w", err))
	}
	defer rows.Close()
	out := []store.Grant{}
	for rows.Next() {
		g, err := scanGrant(rows)
		if err != nil {
			return nil, unavailable(fmt.Errorf("postgres: list grants: %w", err))
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable(fmt.Errorf("postgres: list grants: %w", err))
	}
	return out, nil
}

// RenameGrant renames the subject's grant and returns it as renamed: one UPDATE …
// RETURNING.
func (db *DB) RenameGrant(ctx context.Context, subject, id, name string) (store.Grant, error) {
	var g store.Grant
	err := db.inTx(ctx, "rename grant", func(tx *sql.Tx) error {
		var err error
		g, err = scanGrant(tx.QueryRowContext(ctx, `UPDATE grants SET name = $1
			WHERE id = $2 AND ($3 = '' OR subject = $3) RETURNING `+grantCols, name, id, subject))
		if err != nil {
			return notFound(err, "rename grant")
		}
		return nil
	})
	if err != nil {
		return store.Grant{}, err
	}
	return g, nil
}

// DeleteGrant deletes the subject's grant, and with it (ON DELETE CASCADE) every access
// and refresh token of it, and returns the grant as it was: one DELETE … RETURNING, so
// of concurrent deletes exactly one returns the grant.
func (db *DB) DeleteGrant(ctx context.Context, subject, id string) (store.Grant, error) {
	var g store.Grant
	err := db.inTx(ctx, "delete grant", func(tx *sql.Tx) error {
		var err error
		g, err = scanGrant(tx.QueryRowContext(ctx, `DELETE FROM grants
			WHERE id = $1 AND ($2 = '' OR subject = $2) RETURNING `+grantCols, id, subject))
		if err != nil {
			return notFound(err, "delete grant")
		}
		return nil
	})
	if err != nil {
		return store.Grant{}, err
	}
	return g, nil
}

// deleteGrant removes a grant; its tokens go with it (ON DELETE CASCADE).
func deleteGrant(ctx context.Context, tx *sql.Tx, id string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM grants WHERE id = $1`, id); err != nil {
		return fmt.Errorf("postgres: delete grant: %w", err)
	}
	return nil
}

// TouchGrant records that the grant was used at now from ip (an empty ip keeps the
// last one known). One UPDATE.
func (db *DB) TouchGrant(ctx context.Context, id, ip string, now time.Time) error {
	return db.inTx(ctx, "touch grant", func(tx *sql.Tx) error { return touchGrant(ctx, tx, id, ip, now) })
}

func touchGrant(ctx context.Context, tx *sql.Tx, id, ip string, now time.Time) error {
	res, err := tx.ExecContext(ctx, `UPDATE grants SET last_seen_at = $1,
		last_ip = CASE WHEN $2 = '' THEN last_ip ELSE $2 END WHERE id = $3`, ts(now), ip, id)
	if err != nil {
		return fmt.Errorf("postgres: touch grant: %w", err)
	}
	return mustAffect(res, "touch grant")
}

// grantExists checks that grant id exists and holds it (FOR KEY SHARE) until the
// transaction ends, so an unlink running at the same time waits and then deletes what
// this transaction stored for the grant too, instead of leaving tokens of a deleted
// grant.
func grantExists(ctx context.Context, tx *sql.Tx, id string) error {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM grants WHERE id = $1 FOR KEY SHARE`, id).Scan(&one)
	if err != nil {
		return notFound(err, fmt.Sprintf("grant %q", id))
	}
	return nil
}

// DeleteIdleGrants deletes up to limit device grants of clientID last used (last seen,
// else created) before before, oldest first, with their tokens (ON DELETE CASCADE), and
// returns them as they were: one DELETE … RETURNING over rows locked with SKIP LOCKED,
// so replicas sweeping at once delete each grant once.
func (db *DB) DeleteIdleGrants(ctx context.Context, clientID string, before time.Time, limit int) ([]store.Grant, error) {
	out := []store.Grant{}
	if limit <= 0 {
		return out, nil
	}
	err := db.inTx(ctx, "delete idle grants", func(tx *sql.Tx) error {
		out = out[:0]
		rows, err := tx.QueryContext(ctx, `DELETE FROM grants WHERE id IN (
				SELECT id FROM grants WHERE client_id = $1 AND flow = $2
				AND (CASE WHEN last_seen_at = 0 THEN created_at ELSE last_seen_at END) < $3
				ORDER BY (CASE WHEN last_seen_at = 0 THEN created_at ELSE last_seen_at END), id
				LIMIT $4 FOR UPDATE SKIP LOCKED)
			RETURNING `+grantCols, clientID, string(store.FlowDevice), ts(before), limit)
		if err != nil {
			return fmt.Errorf("postgres: delete idle grants: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			g, err := scanGrant(rows)
			if err != nil {
				return fmt.Errorf("postgres: delete idle grants: %w", err)
			}
			out = append(out, g)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b store.Grant) int { return a.LastUsed().Compare(b.LastUsed()) })
	return out, nil
}
