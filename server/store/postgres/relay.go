package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/linkdesk/linkdesk/server/events"
)

// RelayChannel is the NOTIFY channel the replicas of one database share.
const RelayChannel = "linkd_events"

// RelayApplicationName is the application_name of the relay's listening connection,
// so an operator (or a test) can find it in pg_stat_activity.
const RelayApplicationName = "linkd-relay"

// MaxRelayPayload is the largest payload Publish sends: PostgreSQL refuses a NOTIFY
// payload of 8000 bytes or more (in its default build). A larger one is refused with
// events.ErrPayloadTooLarge before it reaches the server; the hub then asks the other
// replicas to resync that account instead.
const MaxRelayPayload = 7999

// Relay bounds.
const (
	relayMinBackoff = 100 * time.Millisecond
	// relayMaxBackoff is short: a replica not listening misses other replicas'
	// news (its waiters fall back to their slower re-reads), and one connection
	// attempt a second per replica costs a database nothing.
	relayMaxBackoff  = time.Second
	relayConnTimeout = 10 * time.Second
	// relayHealthEvery is how long the listener waits for a notification before it
	// checks that its connection still answers, so a connection that died without a
	// word (a vanished host) is noticed within about this long.
	relayHealthEvery = 30 * time.Second
	// relayStableAfter is how long a listening connection must have lived for its
	// loss to restart the backoff at the minimum (a connection that keeps dropping
	// right away is retried ever more slowly).
	relayStableAfter = 10 * time.Second
)

// Relay is an events.Relay over PostgreSQL's LISTEN/NOTIFY: Publish notifies through
// the store's connection pool, Run listens on a dedicated connection of its own,
// reconnecting with backoff (and resubscribing) whenever that connection fails, for
// example when the database restarts or an administrator terminates it.
type Relay struct {
	db  *DB
	cfg *pgx.ConnConfig
	log *slog.Logger

	quiet  time.Duration // relayHealthEvery; shorter in tests
	pinged func()        // called after every health check that passed; tests only
}

var _ events.Relay = (*Relay)(nil)

// NewRelay returns a relay for the replicas sharing the database of db, which was
// opened with url (the listening connection is opened from url too). log nil means
// the store's logger.
func NewRelay(db *DB, url string, log *slog.Logger) (*Relay, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: relay: %w", err)
	}
	cfg.RuntimeParams["application_name"] = RelayApplicationName
	if log == nil {
		log = db.log
	}
	return &Relay{db: db, cfg: cfg, log: log, quiet: relayHealthEvery}, nil
}

// Publish notifies every listening replica (this one included) of payload. The
// notification is sent when its implicit transaction commits, at once.
func (r *Relay) Publish(ctx context.Context, payload string) error {
	if len(payload) > MaxRelayPayload {
		return fmt.Errorf("postgres: notify of %d bytes: %w", len(payload), events.ErrPayloadTooLarge)
	}
	if _, err := r.db.db.ExecContext(ctx, `SELECT pg_notify($1, $2)`, RelayChannel, payload); err != nil {
		return unavailable(fmt.Errorf("postgres: notify: %w", err))
	}
	return nil
}

// Run listens until ctx ends, calling deliver with every payload and gap after every
// successful LISTEN (the first included), since notifications sent while no
// connection listened are lost.
func (r *Relay) Run(ctx context.Context, deliver func(payload string), gap func()) {
	backoff := relayMinBackoff
	for ctx.Err() == nil {
		conn, err := r.listen(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			r.log.Warn("events relay: cannot listen, retrying", "err", err, "retry_in", backoff)
			if !relaySleep(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, relayMaxBackoff)
			continue
		}
		since := time.Now()
		gap()
		err = r.receive(ctx, conn, deliver)
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = conn.Close(cctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if time.Since(since) >= relayStableAfter {
			backoff = relayMinBackoff
		}
		r.log.Warn("events relay: listening connection lost, reconnecting", "err", err, "retry_in", backoff)
		if !relaySleep(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, relayMaxBackoff)
	}
}

// listen opens the dedicated connection and subscribes it.
func (r *Relay) listen(ctx context.Context) (*pgx.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, relayConnTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, r.cfg)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(cctx, `LISTEN `+pgx.Identifier{RelayChannel}.Sanitize()); err != nil {
		_ = conn.Close(context.Background())
		return nil, err
	}
	return conn, nil
}

// receive delivers notifications until the connection fails or ctx ends.
func (r *Relay) receive(ctx context.Context, conn *pgx.Conn, deliver func(string)) error {
	for {
		wctx, cancel := context.WithTimeout(ctx, r.quiet)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			deliver(n.Payload)
		case ctx.Err() != nil:
			return ctx.Err()
		case pgconn.Timeout(err) && errors.Is(err, context.DeadlineExceeded):
			// Quiet for a while: make sure the connection is still there.
			pctx, cancel := context.WithTimeout(ctx, relayConnTimeout)
			err = conn.Ping(pctx)
			cancel()
			if err != nil {
				return err
			}
			if r.pinged != nil {
				r.pinged()
			}
		default:
			return err
		}
	}
}

// relaySleep waits d plus up to a quarter more at random (so replicas that lost the
// database together do not come back in lockstep), reporting false if ctx ended.
func relaySleep(ctx context.Context, d time.Duration) bool {
	d += time.Duration(rand.Int64N(int64(d)/4 + 1))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
