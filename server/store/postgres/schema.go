package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// migrations is the schema history, oldest first. Migration i (0-based) brings the
// database to schema version i+1. Never edit a migration that has shipped: append a new
// one.
//
// The schema is the SQLite store's at its newest version, in PostgreSQL's types. Times
// are BIGINT UTC unix nanoseconds, 0 meaning "never" (stored.Nanos), so both stores
// keep every instant to the nanosecond and clamp the same far-future times. Lists are
// JSON arrays in TEXT (stored.List). Secrets the store must find but never show (device
// codes, refresh tokens, auth codes, access-token ids, session ids) are kept only as
// lowercase hex SHA-256. seq columns give "inserted later" (SQLite's rowid) for ties.
var migrations = []string{
	// 1: initial schema.
	`
CREATE TABLE users (
	subject       TEXT PRIMARY KEY,
	username      TEXT NOT NULL,
	username_key  TEXT NOT NULL UNIQUE, -- lower-cased username, for case-insensitive lookup
	display_name  TEXT NOT NULL DEFAULT '',
	email         TEXT NOT NULL DEFAULT '',
	password_hash TEXT NOT NULL DEFAULT '',
	totp_secret   TEXT NOT NULL DEFAULT '',
	created_at    BIGINT NOT NULL
);

CREATE TABLE clients (
	id            TEXT PRIMARY KEY,
	name          TEXT NOT NULL DEFAULT '',
	logo_uri      TEXT NOT NULL DEFAULT '',
	secret_hash   TEXT NOT NULL DEFAULT '',
	scopes        TEXT NOT NULL DEFAULT '[]',
	redirect_uris TEXT NOT NULL DEFAULT '[]',
	grant_types   TEXT NOT NULL DEFAULT '[]',
	created_at    BIGINT NOT NULL
);

-- user_code is unique over all rows; CreateDeviceAuth deletes an expired row holding
-- the same code in the same transaction, so uniqueness effectively holds among
-- unexpired rows only.
CREATE TABLE device_auths (
	device_code_hash    TEXT PRIMARY KEY,
	user_code           TEXT NOT NULL CONSTRAINT device_auths_user_code_key UNIQUE,
	client_id           TEXT NOT NULL,
	scopes              TEXT NOT NULL DEFAULT '[]',
	device_name         TEXT NOT NULL DEFAULT '',
	device_model        TEXT NOT NULL DEFAULT '',
	device_kind         TEXT NOT NULL DEFAULT '',
	request_ip          TEXT NOT NULL DEFAULT '',
	created_at          BIGINT NOT NULL,
	expires_at          BIGINT NOT NULL,
	interval_ns         BIGINT NOT NULL,
	state               TEXT NOT NULL,
	subject             TEXT NOT NULL DEFAULT '',
	grant_id            TEXT NOT NULL DEFAULT '',
	auth_time           BIGINT NOT NULL DEFAULT 0,
	collected_at        BIGINT NOT NULL DEFAULT 0,
	answer_access_id    TEXT NOT NULL DEFAULT '',
	answer_refresh_hash TEXT NOT NULL DEFAULT ''
);
CREATE INDEX device_auths_expires_at ON device_auths (expires_at);
CREATE INDEX device_auths_ip_created ON device_auths (request_ip, created_at);
CREATE INDEX device_auths_client_created ON device_auths (client_id, created_at);
CREATE INDEX device_auths_ip_waiting ON device_auths (request_ip, state, expires_at);
CREATE INDEX device_auths_client_waiting ON device_auths (client_id, state, expires_at);
CREATE INDEX device_auths_state_expires ON device_auths (state, expires_at);

CREATE TABLE grants (
	id           TEXT PRIMARY KEY,
	seq          BIGINT GENERATED ALWAYS AS IDENTITY,
	subject      TEXT NOT NULL,
	client_id    TEXT NOT NULL,
	scopes       TEXT NOT NULL DEFAULT '[]',
	flow         TEXT NOT NULL,
	name         TEXT NOT NULL DEFAULT '',
	device_name  TEXT NOT NULL DEFAULT '',
	device_model TEXT NOT NULL DEFAULT '',
	device_kind  TEXT NOT NULL DEFAULT '',
	auth_time    BIGINT NOT NULL DEFAULT 0,
	created_at   BIGINT NOT NULL,
	last_seen_at BIGINT NOT NULL DEFAULT 0,
	last_ip      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX grants_subject_flow ON grants (subject, flow, created_at);

-- Tokens die with their grant (ON DELETE CASCADE), so an unlink takes effect on the
-- very next request, on every replica.
CREATE TABLE access_tokens (
	id         TEXT PRIMARY KEY, -- SHA-256 of the token id
	grant_id   TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
	subject    TEXT NOT NULL,
	client_id  TEXT NOT NULL,
	scopes     TEXT NOT NULL DEFAULT '[]',
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL
);
CREATE INDEX access_tokens_grant_id ON access_tokens (grant_id);
CREATE INDEX access_tokens_expires_at ON access_tokens (expires_at);

-- A rotated refresh token keeps its row with used_at set until it expires, so
-- presenting it again is recognised as reuse; it remembers its successor and the
-- access token issued with it, to revoke both when a lost answer is retried.
CREATE TABLE refresh_tokens (
	token_hash      TEXT PRIMARY KEY,
	grant_id        TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
	subject         TEXT NOT NULL,
	client_id       TEXT NOT NULL,
	scopes          TEXT NOT NULL DEFAULT '[]',
	auth_time       BIGINT NOT NULL DEFAULT 0,
	amr             TEXT NOT NULL DEFAULT '[]',
	created_at      BIGINT NOT NULL,
	expires_at      BIGINT NOT NULL,
	used_at         BIGINT NOT NULL DEFAULT 0,
	successor_hash  TEXT NOT NULL DEFAULT '',
	access_token_id TEXT NOT NULL DEFAULT ''
);
CREATE INDEX refresh_tokens_grant_id ON refresh_tokens (grant_id);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);

CREATE TABLE auth_requests (
	id                    TEXT PRIMARY KEY,
	code_hash             TEXT UNIQUE, -- NULL until a code is issued
	client_id             TEXT NOT NULL,
	redirect_uri          TEXT NOT NULL DEFAULT '',
	state                 TEXT NOT NULL DEFAULT '',
	nonce                 TEXT NOT NULL DEFAULT '',
	scopes                TEXT NOT NULL DEFAULT '[]',
	response_type         TEXT NOT NULL DEFAULT '',
	response_mode         TEXT NOT NULL DEFAULT '',
	code_challenge        TEXT NOT NULL DEFAULT '',
	code_challenge_method TEXT NOT NULL DEFAULT '',
	prompt                TEXT NOT NULL DEFAULT '[]',
	max_age               BIGINT, -- NULL when the request had no max_age
	login_hint            TEXT NOT NULL DEFAULT '',
	subject               TEXT NOT NULL DEFAULT '',
	auth_time             BIGINT NOT NULL DEFAULT 0,
	amr                   TEXT NOT NULL DEFAULT '[]',
	done                  BOOLEAN NOT NULL DEFAULT false,
	created_at            BIGINT NOT NULL,
	expires_at            BIGINT NOT NULL,
	request_ip            TEXT NOT NULL DEFAULT ''
);
CREATE INDEX auth_requests_expires_at ON auth_requests (expires_at);
CREATE INDEX auth_requests_ip_created ON auth_requests (request_ip, created_at);
CREATE INDEX auth_requests_client_created ON auth_requests (client_id, created_at);
CREATE INDEX auth_requests_ip_waiting ON auth_requests (request_ip, done, expires_at);
CREATE INDEX auth_requests_client_waiting ON auth_requests (client_id, done, expires_at);
CREATE INDEX auth_requests_done_expires ON auth_requests (done, expires_at);

CREATE TABLE signing_keys (
	id              TEXT PRIMARY KEY,
	seq             BIGINT GENERATED ALWAYS AS IDENTITY,
	algorithm       TEXT NOT NULL,
	private_key_pem BYTEA NOT NULL,
	created_at      BIGINT NOT NULL
);

-- One row per failed user-code lookup or reserved attempt; counting rows in a window
-- gives a sliding window that every replica sees.
CREATE TABLE failures (
	id  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	key TEXT NOT NULL,
	at  BIGINT NOT NULL
);
CREATE INDEX failures_key_at ON failures (key, at);
CREATE INDEX failures_at ON failures (at);

-- The last one-time-code step that signed each account in.
CREATE TABLE totp_steps (
	subject TEXT PRIMARY KEY,
	step    BIGINT NOT NULL
);

-- Web sessions signed out before they expired, by the SHA-256 of their id.
CREATE TABLE web_signouts (
	session_hash TEXT PRIMARY KEY,
	expires_at   BIGINT NOT NULL
);
CREATE INDEX web_signouts_expires_at ON web_signouts (expires_at);
`,
	// 2: signing keys say when they may start signing (one key set for all replicas:
	// a rotated key is published before any replica signs with it).
	`
ALTER TABLE signing_keys ADD COLUMN not_before BIGINT NOT NULL DEFAULT 0;
UPDATE signing_keys SET not_before = created_at;
`,
	// 3 (client policy): the operator's rules per device client (store.ClientPolicy),
	// and an index for the idle-link sweep, which reads one client's device grants.
	`
ALTER TABLE clients ADD COLUMN device_flow_off BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE clients ADD COLUMN allowed_networks TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN approve_same_network BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE clients ADD COLUMN max_devices INTEGER NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN unlink_after_ns BIGINT NOT NULL DEFAULT 0;
CREATE INDEX grants_client_flow ON grants (client_id, flow);
`,
	// 4: the nearby device list: each request keeps its address's network
	// (store.NetworkKey), so pending requests from one network are one index range.
	// Rows made before have none and are not listed (they expire within minutes).
	`
ALTER TABLE device_auths ADD COLUMN request_net TEXT NOT NULL DEFAULT '';
CREATE INDEX device_auths_net_pending ON device_auths (request_net, created_at) WHERE state = 'pending';
`,
}

// migrationLock is the pg_advisory_xact_lock key the migration holds: "linkdmig" in
// ASCII, so it clashes with no other use of advisory locks by accident.
const migrationLock = 0x6c696e6b646d6967

// migrate brings the database to the newest schema version in one transaction that
// first takes an advisory lock, so replicas starting at once apply each migration
// exactly once: the first runs them, the others wait and then find nothing to do.
// PostgreSQL's DDL is transactional, so a crash mid-migration leaves the previous
// version intact. It refuses a database written by a newer linkd.
func migrate(ctx context.Context, db *sql.DB) error {
	// Up to date already (every start but the first): nothing to lock or write, so a
	// replica also starts on a read-only database.
	var exists bool
	if err := db.QueryRowContext(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return fmt.Errorf("postgres: read schema version: %w", err)
	}
	if exists {
		var current int
		if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
			return fmt.Errorf("postgres: read schema version: %w", err)
		}
		if current == len(migrations) {
			return nil
		}
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("postgres: begin migration: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLock)); err != nil {
		return fmt.Errorf("postgres: migration lock: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at BIGINT NOT NULL
	)`); err != nil {
		return fmt.Errorf("postgres: create schema_migrations: %w", err)
	}
	var version int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&version); err != nil {
		return fmt.Errorf("postgres: read schema version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("postgres: database schema version %d is newer than this program knows (%d)", version, len(migrations))
	}
	for v := version + 1; v <= len(migrations); v++ {
		if _, err := tx.ExecContext(ctx, migrations[v-1]); err != nil {
			return fmt.Errorf("postgres: migration %d: %w", v, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`,
			v, time.Now().UTC().UnixNano()); err != nil {
			return fmt.Errorf("postgres: record migration %d: %w", v, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("postgres: commit migration: %w", err)
	}
	return nil
}

// SchemaVersion reports the schema version the database is at.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := db.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	if err != nil {
		return 0, unavailable(fmt.Errorf("postgres: read schema version: %w", err))
	}
	return v, nil
}
