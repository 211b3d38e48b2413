package postgres

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/events"
	"github.com/linkdesk/linkdesk/server/store"
	"github.com/linkdesk/linkdesk/server/store/postgres/pgtest"
)

// observedRelay is a Relay that also tells the test of every gap it reports.
type observedRelay struct {
	*Relay
	gaps chan struct{}
}

func (o observedRelay) Run(ctx context.Context, deliver func(string), gap func()) {
	o.Relay.Run(ctx, deliver, func() {
		gap()
		o.gaps <- struct{}{}
	})
}

type replica struct {
	db   *DB
	hub  *events.Hub
	gaps chan struct{}
	done chan struct{} // closed when the relay's Run returned
}

// startReplica opens a store on url and a hub relaying through it, as linkd does, and
// waits until the relay listens. Everything stops when the test ends.
func startReplica(t *testing.T, url, name string) *replica {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	db, err := Open(context.Background(), url, WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	r, err := NewRelay(db, url, log)
	if err != nil {
		t.Fatal(err)
	}
	rep := &replica{db: db, hub: events.NewHub(), gaps: make(chan struct{}, 16), done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	relay := observedRelay{Relay: r, gaps: rep.gaps}
	rep.hub.StartRelay(ctx, runDone{relay, rep.done}, events.RelayOptions{Replica: name, Logger: log})
	t.Cleanup(func() {
		cancel()
		wait(t, rep.done, name+"'s relay to stop with its context")
	})
	wait(t, rep.gaps, name+"'s first subscription")
	return rep
}

// runDone closes done when Run returns.
type runDone struct {
	events.Relay
	done chan struct{}
}

func (r runDone) Run(ctx context.Context, deliver func(string), gap func()) {
	defer close(r.done)
	r.Relay.Run(ctx, deliver, gap)
}

func wait[T any](t *testing.T, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// Two replicas on one database hear each other's device-authorization and account
// events, and not their own twice.
func TestRelayCarriesEventsBetweenReplicas(t *testing.T) {
	url := pgtest.DB(t)
	a := startReplica(t, url, "A")
	b := startReplica(t, url, "B")

	key := events.DeviceAuthKey("BCDFGHJK")
	w := a.hub.SubscribeDeviceAuth(key)
	defer w.Close()
	start := time.Now()
	b.hub.PublishDeviceAuth(key, store.DeviceAuthApproved)
	if st := wait(t, w.C, "the approval made on B"); st != store.DeviceAuthApproved {
		t.Fatalf("waiter on A got %q, want approved", st)
	}
	t.Logf("approval on B reached A's waiter in %v", time.Since(start))

	sa := a.hub.SubscribeAccount("alice", 8)
	defer sa.Close()
	sb := b.hub.SubscribeAccount("alice", 8)
	defer sb.Close()
	a.hub.PublishAccount("alice", devices.Event{Type: devices.EventRenamed, Device: devices.Device{ID: "d1", Name: "Kitchen"}})
	if ev := wait(t, sb.C, "A's rename on B"); ev.Type != devices.EventRenamed || ev.Device.Name != "Kitchen" {
		t.Fatalf("B got %+v", ev)
	}
	if ev := wait(t, sa.C, "A's rename on A"); ev.Type != devices.EventRenamed {
		t.Fatalf("A got %+v", ev)
	}
	b.hub.PublishAccount("alice", devices.Event{Type: devices.EventUnlinked, Device: devices.Device{ID: "marker"}})
	if ev := wait(t, sa.C, "B's marker on A"); ev.Device.ID != "marker" {
		t.Fatalf("A got %+v before B's marker: its own rename came back", ev)
	}
}

// The relay survives its listening connection being terminated: it reconnects,
// reports a gap (device waiters wake, account streams are dropped so clients
// re-read) and then carries events again.
func TestRelayReconnectsAfterItsConnectionIsKilled(t *testing.T) {
	url := pgtest.DB(t)
	a := startReplica(t, url, "A")
	b := startReplica(t, url, "B")
	w := a.hub.SubscribeDeviceAuth(events.DeviceAuthKey("AAAA"))
	defer w.Close()
	s := a.hub.SubscribeAccount("alice", 8)
	defer s.Close()

	var killed int
	err := a.db.db.QueryRowContext(context.Background(),
		`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()`,
		RelayApplicationName).Scan(&killed)
	if err != nil {
		t.Fatal(err)
	}
	if killed != 2 {
		t.Fatalf("terminated %d listening connections, want 2 (one per replica)", killed)
	}
	wait(t, a.gaps, "A to resubscribe")
	wait(t, b.gaps, "B to resubscribe")
	if st := wait(t, w.C, "A's waiter woken by the gap"); st != store.DeviceAuthPending {
		t.Fatalf("waiter got %q, want a plain wake-up", st)
	}
	for range s.C {
	}
	if !s.Dropped() {
		t.Fatal("A's account stream was closed but not marked dropped")
	}

	s2 := a.hub.SubscribeAccount("alice", 8)
	defer s2.Close()
	b.hub.PublishAccount("alice", devices.Event{Type: devices.EventLinked, Device: devices.Device{ID: "d2"}})
	if ev := wait(t, s2.C, "B's event after the reconnect"); ev.Device.ID != "d2" {
		t.Fatalf("A got %+v", ev)
	}
	if st := a.hub.RelayStats(); st.Gaps != 2 {
		t.Fatalf("A's relay gaps = %d, want 2 (first subscription and one reconnect)", st.Gaps)
	}
}

// PostgreSQL takes a payload of MaxRelayPayload bytes; a longer one is refused before
// it is sent, as events.ErrPayloadTooLarge.
func TestRelayPayloadLimit(t *testing.T) {
	url := pgtest.DB(t)
	db, err := Open(context.Background(), url, WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r, err := NewRelay(db, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := r.Publish(ctx, strings.Repeat("x", MaxRelayPayload)); err != nil {
		t.Fatalf("payload of MaxRelayPayload bytes: %v", err)
	}
	if err := r.Publish(ctx, strings.Repeat("x", MaxRelayPayload+1)); !errors.Is(err, events.ErrPayloadTooLarge) {
		t.Fatalf("payload over the limit: %v, want events.ErrPayloadTooLarge", err)
	}
}

// A quiet listener checks its connection now and then; a check that passes is not a
// gap, and notifications still arrive afterwards on the same connection.
func TestRelayQuietHealthChecksKeepTheSubscription(t *testing.T) {
	url := pgtest.DB(t)
	db, err := Open(context.Background(), url, WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r, err := NewRelay(db, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.quiet = 20 * time.Millisecond
	pings := make(chan struct{}, 100)
	r.pinged = func() {
		select {
		case pings <- struct{}{}:
		default:
		}
	}
	got := make(chan string, 1)
	gaps := make(chan struct{}, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx, func(p string) { got <- p }, func() { gaps <- struct{}{} })
	}()
	defer func() { cancel(); wait(t, done, "Run to return") }()
	wait(t, gaps, "the first subscription")
	for i := range 3 {
		wait(t, pings, "health check "+string(rune('1'+i)))
	}
	if err := r.Publish(ctx, "after the quiet"); err != nil {
		t.Fatal(err)
	}
	if p := wait(t, got, "the notification after the health checks"); p != "after the quiet" {
		t.Fatalf("got %q", p)
	}
	select {
	case <-gaps:
		t.Fatal("a health check that passed was reported as a gap")
	default:
	}
}

// lineSignal is a log writer that sends every line it is given.
type lineSignal chan string

func (l lineSignal) Write(p []byte) (int, error) {
	select {
	case l <- string(p):
	default:
	}
	return len(p), nil
}

// While the database cannot be reached the relay keeps retrying, reports no gap, and
// still stops when its context ends.
func TestRelayRetriesWhileTheDatabaseIsUnreachable(t *testing.T) {
	url := pgtest.DB(t)
	db, err := Open(context.Background(), url, WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := closed.Addr().String()
	closed.Close() // nothing listens there now
	lines := make(lineSignal, 16)
	r, err := NewRelay(db, "postgres://postgres@"+addr+"/x?sslmode=disable&connect_timeout=5", slog.New(slog.NewTextHandler(lines, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	gaps := make(chan struct{}, 1)
	go func() {
		defer close(done)
		r.Run(ctx, func(string) {}, func() { gaps <- struct{}{} })
	}()
	for i := range 3 {
		if l := wait(t, lines, "a retry"); !strings.Contains(l, "cannot listen, retrying") {
			t.Fatalf("log line %d: %q", i, l)
		}
	}
	cancel()
	wait(t, done, "Run to return after its context ended")
	select {
	case <-gaps:
		t.Fatal("a gap was reported without a subscription")
	default:
	}
}
