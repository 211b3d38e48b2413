package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// migrations is the schema history, oldest first. Migration i (0-based) brings the
// database to schema version i+1. Never edit a migration that has shipped: append a new
// one, so every database reaches the same schema whatever version it started from.
//
// Times are INTEGER UTC unix nanoseconds, 0 meaning "never" (the zero time.Time).
// Lists (scopes, AMR, redirect URIs...) are JSON arrays in TEXT columns. Secrets the
// store must be able to find but never show (device codes, refresh tokens, auth codes)
// are kept only as lowercase hex SHA-256.
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
	created_at    INTEGER NOT NULL
);

CREATE TABLE clients (
	id            TEXT PRIMARY KEY,
	name          TEXT NOT NULL DEFAULT '',
	logo_uri      TEXT NOT NULL DEFAULT '',
	secret_hash   TEXT NOT NULL DEFAULT '',
	scopes        TEXT NOT NULL DEFAULT '[]',
	redirect_uris TEXT NOT NULL DEFAULT '[]',
	grant_types   TEXT NOT NULL DEFAULT '[]',
	created_at    INTEGER NOT NULL
);

-- user_code is unique over all rows; CreateDeviceAuth deletes an expired row holding
-- the same code in the same transaction, so uniqueness effectively holds among
-- unexpired rows only.
CREATE TABLE device_auths (
	device_code_hash TEXT PRIMARY KEY,
	user_code        TEXT NOT NULL UNIQUE,
	client_id        TEXT NOT NULL,
	scopes           TEXT NOT NULL DEFAULT '[]',
	device_name      TEXT NOT NULL DEFAULT '',
	device_model     TEXT NOT NULL DEFAULT '',
	device_kind      TEXT NOT NULL DEFAULT '',
	request_ip       TEXT NOT NULL DEFAULT '',
	created_at       INTEGER NOT NULL,
	expires_at       INTEGER NOT NULL,
	interval_ns      INTEGER NOT NULL,
	last_poll_at     INTEGER NOT NULL DEFAULT 0,
	state            TEXT NOT NULL,
	subject          TEXT NOT NULL DEFAULT '',
	grant_id         TEXT NOT NULL DEFAULT '',
	auth_time        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX device_auths_expires_at ON device_auths (expires_at);

CREATE TABLE grants (
	id           TEXT PRIMARY KEY,
	subject      TEXT NOT NULL,
	client_id    TEXT NOT NULL,
	scopes       TEXT NOT NULL DEFAULT '[]',
	flow         TEXT NOT NULL,
	name         TEXT NOT NULL DEFAULT '',
	device_name  TEXT NOT NULL DEFAULT '',
	device_model TEXT NOT NULL DEFAULT '',
	device_kind  TEXT NOT NULL DEFAULT '',
	auth_time    INTEGER NOT NULL DEFAULT 0,
	created_at   INTEGER NOT NULL,
	last_seen_at INTEGER NOT NULL DEFAULT 0,
	last_ip      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX grants_subject_flow ON grants (subject, flow, created_at);

-- Tokens die with their grant: ON DELETE CASCADE (foreign_keys is on for every
-- connection), so an unlink takes effect on the very next request.
CREATE TABLE access_tokens (
	id         TEXT PRIMARY KEY,
	grant_id   TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
	subject    TEXT NOT NULL,
	client_id  TEXT NOT NULL,
	scopes     TEXT NOT NULL DEFAULT '[]',
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
);
CREATE INDEX access_tokens_grant_id ON access_tokens (grant_id);
CREATE INDEX access_tokens_expires_at ON access_tokens (expires_at);

-- A rotated refresh token keeps its row with used_at set until it expires, so
-- presenting it again is recognised as reuse.
CREATE TABLE refresh_tokens (
	token_hash TEXT PRIMARY KEY,
	grant_id   TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
	subject    TEXT NOT NULL,
	client_id  TEXT NOT NULL,
	scopes     TEXT NOT NULL DEFAULT '[]',
	auth_time  INTEGER NOT NULL DEFAULT 0,
	amr        TEXT NOT NULL DEFAULT '[]',
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	used_at    INTEGER NOT NULL DEFAULT 0
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
	max_age               INTEGER, -- NULL when the request had no max_age
	login_hint            TEXT NOT NULL DEFAULT '',
	subject               TEXT NOT NULL DEFAULT '',
	auth_time             INTEGER NOT NULL DEFAULT 0,
	amr                   TEXT NOT NULL DEFAULT '[]',
	done                  INTEGER NOT NULL DEFAULT 0,
	created_at            INTEGER NOT NULL,
	expires_at            INTEGER NOT NULL
);
CREATE INDEX auth_requests_expires_at ON auth_requests (expires_at);

CREATE TABLE signing_keys (
	id              TEXT PRIMARY KEY,
	algorithm       TEXT NOT NULL,
	private_key_pem BLOB NOT NULL,
	created_at      INTEGER NOT NULL
);

-- One row per failed user-code lookup; counting rows in a window gives a sliding
-- window that every process sharing the database sees.
CREATE TABLE failures (
	id  INTEGER PRIMARY KEY AUTOINCREMENT,
	key TEXT NOT NULL,
	at  INTEGER NOT NULL
);
CREATE INDEX failures_key_at ON failures (key, at);
CREATE INDEX failures_at ON failures (at);
`,
	// 2: lost answers. A device whose token answer was lost may ask again for a short
	// while: device_auths remembers when its tokens were collected and which they were
	// (to revoke them on a repeat), and a rotated refresh token remembers its successor
	// and the access token issued with it.
	`
ALTER TABLE device_auths ADD COLUMN collected_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE device_auths ADD COLUMN answer_access_id TEXT NOT NULL DEFAULT '';
ALTER TABLE device_auths ADD COLUMN answer_refresh_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE refresh_tokens ADD COLUMN successor_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE refresh_tokens ADD COLUMN access_token_id TEXT NOT NULL DEFAULT '';
`,
	// 3: sign-in limits. The last one-time-code step that signed each account in, so a
	// code (or an older one) is never accepted twice, across restarts and replicas.
	// Attempt reservations share the failures table.
	`
CREATE TABLE totp_steps (
	subject TEXT PRIMARY KEY,
	step    INTEGER NOT NULL
);
`,
	// 4: caps on requests nobody approved yet (store.RequestCaps). Auth
	// requests remember their caller; indexes let the caps count by address, client and
	// state, and find never-approved requests to delete soon after they expire.
	`
ALTER TABLE auth_requests ADD COLUMN request_ip TEXT NOT NULL DEFAULT '';
CREATE INDEX auth_requests_ip_created ON auth_requests (request_ip, created_at);
CREATE INDEX auth_requests_ip_waiting ON auth_requests (request_ip, done, expires_at);
CREATE INDEX auth_requests_client_waiting ON auth_requests (client_id, done, expires_at);
CREATE INDEX auth_requests_done_expires ON auth_requests (done, expires_at);
CREATE INDEX device_auths_ip_created ON device_auths (request_ip, created_at);
CREATE INDEX device_auths_client_created ON device_auths (client_id, created_at);
CREATE INDEX device_auths_ip_waiting ON device_auths (request_ip, state, expires_at);
CREATE INDEX device_auths_client_waiting ON device_auths (client_id, state, expires_at);
CREATE INDEX device_auths_state_expires ON device_auths (state, expires_at);
`,
	// 5: access-token ids are kept only as SHA-256 (hex), like the other secrets
	// the store must find but never show, so a copy of the database names no live
	// access token. linkd_sha256_hex is registered by this package (secrets.go).
	`
UPDATE access_tokens SET id = linkd_sha256_hex(id);
UPDATE refresh_tokens SET access_token_id = linkd_sha256_hex(access_token_id) WHERE access_token_id != '';
UPDATE device_auths SET answer_access_id = linkd_sha256_hex(answer_access_id) WHERE answer_access_id != '';
`,
	// 6: sign-outs. A web session signed out before it expired, by the SHA-256 of its id,
	// kept until the session would have expired anyway, so a sign-out holds across
	// restarts and replicas.
	`
CREATE TABLE web_signouts (
	session_hash TEXT PRIMARY KEY,
	expires_at   INTEGER NOT NULL
);
CREATE INDEX web_signouts_expires_at ON web_signouts (expires_at);
`,
	// 7: a signing key signs only from not_before on, so a rotation is published by
	// every replica before any of them signs with the new key. Keys stored before
	// signed from their creation.
	`
ALTER TABLE signing_keys ADD COLUMN not_before INTEGER NOT NULL DEFAULT 0;
UPDATE signing_keys SET not_before = created_at;
`,
	// 8: device authorization caps kept as counts (device_auth_counts), so a capped
	// create reads five numbers instead of counting every waiting row. Each request
	// carries two flags, waiting (pending and unexpired) and recent (in the rate
	// window), which a capped create brings up to date for its own time before it
	// reads the counts (sweepDeviceAuths); the partial indexes find exactly the rows
	// to flip. Triggers keep the counts equal to the flagged rows, by address and
	// client, when a row is inserted, deleted (whoever deletes it) or flagged; an
	// approval or denial is seen by the next sweep, so it compiles no trigger.
	// Existing rows start with both flags off and no counts; the first sweep sets
	// them. The indexes the old counts used go, and so does device_auths_state_expires:
	// never-approved requests to delete are found through
	// device_auths_pending_unwaiting and device_auths_denied, which a new request
	// does not enter.
	`
ALTER TABLE device_auths ADD COLUMN waiting INTEGER NOT NULL DEFAULT 0;
ALTER TABLE device_auths ADD COLUMN recent INTEGER NOT NULL DEFAULT 0;
CREATE INDEX device_auths_waiting_expires ON device_auths (expires_at) WHERE waiting = 1;
CREATE INDEX device_auths_waiting_done ON device_auths (expires_at) WHERE waiting = 1 AND state != 'pending';
CREATE INDEX device_auths_pending_unwaiting ON device_auths (expires_at) WHERE waiting = 0 AND state = 'pending';
CREATE INDEX device_auths_recent ON device_auths (recent, created_at);
CREATE INDEX device_auths_denied ON device_auths (expires_at) WHERE state = 'denied';
DROP INDEX device_auths_state_expires;
DROP INDEX device_auths_ip_created;
DROP INDEX device_auths_client_created;
DROP INDEX device_auths_ip_waiting;
DROP INDEX device_auths_client_waiting;
CREATE TABLE device_auth_counts (
	kind TEXT NOT NULL, -- 'waiting ip', 'waiting client', 'waiting', 'rate ip', 'rate client'
	key  TEXT NOT NULL, -- the address or client id; '' for 'waiting'
	n    INTEGER NOT NULL,
	PRIMARY KEY (kind, key)
) WITHOUT ROWID;
CREATE TRIGGER device_auths_count AFTER INSERT ON device_auths WHEN NEW.waiting OR NEW.recent BEGIN
	INSERT INTO device_auth_counts (kind, key, n)
		SELECT kind, key, 1 FROM (SELECT 'waiting ip' AS kind, NEW.request_ip AS key
			UNION ALL SELECT 'waiting client', NEW.client_id UNION ALL SELECT 'waiting', '')
		WHERE NEW.waiting
		ON CONFLICT (kind, key) DO UPDATE SET n = n + 1;
	INSERT INTO device_auth_counts (kind, key, n)
		SELECT kind, key, 1 FROM (SELECT 'rate ip' AS kind, NEW.request_ip AS key UNION ALL SELECT 'rate client', NEW.client_id)
		WHERE NEW.recent
		ON CONFLICT (kind, key) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER device_auths_recount AFTER UPDATE OF waiting, recent, request_ip, client_id ON device_auths BEGIN
	UPDATE device_auth_counts SET n = n - 1 WHERE OLD.waiting AND kind = 'waiting ip' AND key = OLD.request_ip;
	UPDATE device_auth_counts SET n = n - 1 WHERE OLD.waiting AND kind = 'waiting client' AND key = OLD.client_id;
	UPDATE device_auth_counts SET n = n - 1 WHERE OLD.waiting AND kind = 'waiting' AND key = '';
	UPDATE device_auth_counts SET n = n - 1 WHERE OLD.recent AND kind = 'rate ip' AND key = OLD.request_ip;
	UPDATE device_auth_counts SET n = n - 1 WHERE OLD.recent AND kind = 'rate client' AND key = OLD.client_id;
	DELETE FROM device_auth_counts WHERE n = 0
		AND kind IN ('waiting ip', 'waiting client', 'waiting', 'rate ip', 'rate client')
		AND key IN (OLD.request_ip, OLD.client_id, '');
	INSERT INTO device_auth_counts (kind, key, n)
		SELECT kind, key, 1 FROM (SELECT 'waiting ip' AS kind, NEW.request_ip AS key
			UNION ALL SELECT 'waiting client', NEW.client_id UNION ALL SELECT 'waiting', '')
		WHERE NEW.waiting
		ON CONFLICT (kind, key) DO UPDATE SET n = n + 1;
	INSERT INTO device_auth_counts (kind, key, n)
		SELECT kind, key, 1 FROM (SELECT 'rate ip' AS kind, NEW.request_ip AS key UNION ALL SELECT 'rate client', NEW.client_id)
		WHERE NEW.recent
		ON CONFLICT (kind, key) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER device_auths_uncount AFTER DELETE ON device_auths WHEN OLD.waiting OR OLD.recent BEGIN
	UPDATE device_auth_counts SET n = n - 1 WHERE OLD.waiting AND kind = 'waiting ip' AND key = OLD.request_ip;
	UPDATE device_auth_counts SET n = n - 1 WHERE OLD.waiting AND kind = 'waiting client' AND key = OLD.client_id;
	UPDATE device_auth_counts SET n = n - 1 WHERE OLD.waiting AND kind = 'waiting' AND key = '';
	UPDATE device_auth_counts SET n = n - 1 WHERE OLD.recent AND kind = 'rate ip' AND key = OLD.request_ip;
	UPDATE device_auth_counts SET n = n - 1 WHERE OLD.recent AND kind = 'rate client' AND key = OLD.client_id;
	DELETE FROM device_auth_counts WHERE n = 0
		AND kind IN ('waiting ip', 'waiting client', 'waiting', 'rate ip', 'rate client')
		AND key IN (OLD.request_ip, OLD.client_id, '');
END;
`,
	// 9 (client policy): the operator's rules per device client (store.ClientPolicy),
	// and an index for the idle-link sweep, which reads one client's device grants.
	`
ALTER TABLE clients ADD COLUMN device_flow_off INTEGER NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN allowed_networks TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN approve_same_network INTEGER NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN max_devices INTEGER NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN unlink_after_ns INTEGER NOT NULL DEFAULT 0;
CREATE INDEX grants_client_flow ON grants (client_id, flow);
`,
	// 10: the nearby device list. Each request keeps its address's network
	// (store.NetworkKey: the IPv4 address, the IPv6 /64), so the list of pending
	// requests from an approver's network is one index range. Rows made before this
	// migration have none and are not listed (they expire within minutes).
	`
ALTER TABLE device_auths ADD COLUMN request_net TEXT NOT NULL DEFAULT '';
CREATE INDEX device_auths_net_pending ON device_auths (request_net, created_at) WHERE state = 'pending';
`,
	// 11: a sweep that turns one flag of a request (device_auths_recount, migration 8)
	// adjusts only that flag's counts: the one trigger for any change subtracted and
	// added back all five, nine statements for each request leaving the rate window
	// while still waiting. Changes of a request's address or client, which no code
	// makes, keep the full recount.
	`
DROP TRIGGER device_auths_recount;
CREATE TRIGGER device_auths_recount AFTER UPDATE OF waiting, recent, request_ip, client_id ON device_auths
	WHEN OLD.request_ip != NEW.request_ip OR OLD.client_id != NEW.client_id BEGIN
	UPDATE device_auth_counts SET n = n - 1 WHERE OLD.waiting AND kind = 'waiting ip' AND key = OLD.request_ip;
	UPDATE device_auth_counts SET n = n - 1 WHERE OLD.waiting AND kind = 'waiting client' AND key = OLD.client_id;
	UPDATE device_auth_counts SET n = n - 1 WHERE OLD.waiting AND kind = 'waiting' AND key = '';
	UPDATE device_auth_counts SET n = n - 1 WHERE OLD.recent AND kind = 'rate ip' AND key = OLD.request_ip;
	UPDATE device_auth_counts SET n = n - 1 WHERE OLD.recent AND kind = 'rate client' AND key = OLD.client_id;
	DELETE FROM device_auth_counts WHERE n = 0
		AND kind IN ('waiting ip', 'waiting client', 'waiting', 'rate ip', 'rate client')
		AND key IN (OLD.request_ip, OLD.client_id, '');
	INSERT INTO device_auth_counts (kind, key, n)
		SELECT kind, key, 1 FROM (SELECT 'waiting ip' AS kind, NEW.request_ip AS key
			UNION ALL SELECT 'waiting client', NEW.client_id UNION ALL SELECT 'waiting', '')
		WHERE NEW.waiting
		ON CONFLICT (kind, key) DO UPDATE SET n = n + 1;
	INSERT INTO device_auth_counts (kind, key, n)
		SELECT kind, key, 1 FROM (SELECT 'rate ip' AS kind, NEW.request_ip AS key UNION ALL SELECT 'rate client', NEW.client_id)
		WHERE NEW.recent
		ON CONFLICT (kind, key) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER device_auths_recount_waiting AFTER UPDATE OF waiting ON device_auths
	WHEN OLD.waiting != NEW.waiting AND OLD.request_ip = NEW.request_ip AND OLD.client_id = NEW.client_id BEGIN
	INSERT INTO device_auth_counts (kind, key, n)
		VALUES ('waiting ip', NEW.request_ip, NEW.waiting - OLD.waiting), ('waiting client', NEW.client_id, NEW.waiting - OLD.waiting),
			('waiting', '', NEW.waiting - OLD.waiting)
		ON CONFLICT (kind, key) DO UPDATE SET n = n + excluded.n;
	DELETE FROM device_auth_counts WHERE n = 0 AND kind IN ('waiting ip', 'waiting client', 'waiting')
		AND key IN (NEW.request_ip, NEW.client_id, '');
END;
CREATE TRIGGER device_auths_recount_recent AFTER UPDATE OF recent ON device_auths
	WHEN OLD.recent != NEW.recent AND OLD.request_ip = NEW.request_ip AND OLD.client_id = NEW.client_id BEGIN
	INSERT INTO device_auth_counts (kind, key, n)
		VALUES ('rate ip', NEW.request_ip, NEW.recent - OLD.recent), ('rate client', NEW.client_id, NEW.recent - OLD.recent)
		ON CONFLICT (kind, key) DO UPDATE SET n = n + excluded.n;
	DELETE FROM device_auth_counts WHERE n = 0 AND kind IN ('rate ip', 'rate client')
		AND key IN (NEW.request_ip, NEW.client_id);
END;
`,
	// 12: a new request's counts are added by the writer once per transaction
	// (insertCounts), not by a trigger for each request. The only inserts with a flag
	// set are capped creates, which count what they insert; any other insert stores
	// both flags off, and the next capped create's sweep counts it.
	`
DROP TRIGGER device_auths_count;
`,
}

// migrate brings the database to the newest schema version in one transaction, so a
// crash mid-migration leaves the previous version intact. It refuses a database written
// by a newer linkd rather than guess at a schema it does not know.
func migrate(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin migration: %w", err)
	}
	defer tx.Rollback()

	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
		version    INTEGER PRIMARY KEY,
		applied_at INTEGER NOT NULL
	)`); err != nil {
		return fmt.Errorf("sqlite: create schema_version: %w", err)
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&current); err != nil {
		return fmt.Errorf("sqlite: read schema version: %w", err)
	}
	if current > len(migrations) {
		return fmt.Errorf("sqlite: database schema version %d is newer than this program knows (%d)", current, len(migrations))
	}
	for v := current + 1; v <= len(migrations); v++ {
		if _, err := tx.ExecContext(ctx, migrations[v-1]); err != nil {
			return fmt.Errorf("sqlite: migration %d: %w", v, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version, applied_at) VALUES (?, ?)`,
			v, time.Now().UTC().UnixNano()); err != nil {
			return fmt.Errorf("sqlite: record migration %d: %w", v, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: commit migration: %w", err)
	}
	return nil
}

// SchemaVersion reports the schema version the database is at.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := db.read.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("sqlite: read schema version: %w", err)
	}
	return v, nil
}
