package events

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/store"
)

// bus is an in-memory stand-in for the database: every fakeRelay on it receives what
// any of them publishes, its own messages included, as LISTEN/NOTIFY does.
type bus struct {
	mu     sync.Mutex
	relays []*fakeRelay
}

type fakeRelay struct {
	bus       *bus
	in        chan string
	gaps      chan struct{} // a send makes Run report a gap
	block     chan struct{} // when non-nil, Publish waits for it to close
	limit     int           // payloads longer than this are refused (0: no limit)
	published chan string   // gets every payload published, when there is room
}

func (b *bus) relay() *fakeRelay {
	r := &fakeRelay{bus: b, in: make(chan string, 64), gaps: make(chan struct{}), published: make(chan string, 64)}
	b.mu.Lock()
	b.relays = append(b.relays, r)
	b.mu.Unlock()
	return r
}

func (r *fakeRelay) Publish(ctx context.Context, payload string) error {
	if r.block != nil {
		select {
		case <-r.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if r.limit > 0 && len(payload) > r.limit {
		return ErrPayloadTooLarge
	}
	select {
	case r.published <- payload:
	default:
	}
	r.bus.mu.Lock()
	defer r.bus.mu.Unlock()
	for _, o := range r.bus.relays {
		o.in <- payload
	}
	return nil
}

func (r *fakeRelay) Run(ctx context.Context, deliver func(string), gap func()) {
	gap()
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-r.in:
			deliver(p)
		case <-r.gaps:
			gap()
		}
	}
}

// started returns a hub relaying through r, ready (subscribed).
func started(t *testing.T, r Relay, o RelayOptions) *Hub {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h := NewHub()
	h.StartRelay(ctx, r, o)
	waitFor(t, h.RelayReady(), "relay ready")
	return h
}

func waitFor[T any](t *testing.T, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func TestRemoteEventsAreDeliveredAndOwnIgnored(t *testing.T) {
	var b bus
	ra, rb := b.relay(), b.relay()
	a := started(t, ra, RelayOptions{Replica: "A"})
	bh := started(t, rb, RelayOptions{Replica: "B"})

	key := DeviceAuthKey("BCDFGHJK")
	wa := a.SubscribeDeviceAuth(key)
	defer wa.Close()
	var forgotten []string
	var fmu sync.Mutex
	stop := a.WatchDeviceAuths(func(k string) { fmu.Lock(); forgotten = append(forgotten, k); fmu.Unlock() })
	defer stop()
	sa := a.SubscribeAccount("alice", 4)
	defer sa.Close()

	bh.PublishDeviceAuth(key, store.DeviceAuthApproved)
	if st := waitFor(t, wa.C, "remote approval"); st != store.DeviceAuthApproved {
		t.Fatalf("waiter on A got %q, want approved", st)
	}
	fmu.Lock()
	if len(forgotten) != 1 || forgotten[0] != key {
		t.Fatalf("watchers on A saw %q, want [%q] (the pending cache must forget the code)", forgotten, key)
	}
	fmu.Unlock()

	ev := devices.Event{Type: devices.EventRenamed, Device: devices.Device{ID: "d1", Name: "Kitchen"}}
	bh.PublishAccount("alice", ev)
	if got := waitFor(t, sa.C, "remote account event"); got.Type != ev.Type || got.Device.Name != "Kitchen" {
		t.Fatalf("A's stream got %+v, want %+v", got, ev)
	}

	// A's own publish reaches A's subscriber once (locally), and comes back through
	// the bus only to be ignored; B hears it once.
	sb := bh.SubscribeAccount("alice", 4)
	defer sb.Close()
	a.PublishAccount("alice", devices.Event{Type: devices.EventUnlinked, Device: devices.Device{ID: "d1"}})
	if got := waitFor(t, sa.C, "local event"); got.Type != devices.EventUnlinked {
		t.Fatalf("A's stream got %+v", got)
	}
	if got := waitFor(t, sb.C, "event on B"); got.Type != devices.EventUnlinked {
		t.Fatalf("B's stream got %+v", got)
	}
	// A marker from B, sent after A's own unlink came back to A: when A has it, A has
	// also processed (and must have ignored) its own message, which arrived earlier.
	bh.PublishAccount("alice", devices.Event{Type: devices.EventLinked, Device: devices.Device{ID: "marker"}})
	if got := waitFor(t, sa.C, "marker"); got.Device.ID != "marker" {
		t.Fatalf("A's stream got %+v before the marker: its own event was delivered twice", got)
	}
	if st := a.RelayStats(); st.Received != 3 || st.Gaps != 1 {
		t.Fatalf("A's stats = %+v, want 3 received (its own not counted), 1 gap", st)
	}
}

func TestGapWakesWaitersAndDropsStreams(t *testing.T) {
	var b bus
	r := b.relay()
	h := started(t, r, RelayOptions{Replica: "A"})
	w := h.SubscribeDeviceAuth(DeviceAuthKey("AAAA"))
	defer w.Close()
	s := h.SubscribeAccount("alice", 4)
	defer s.Close()
	forgot := make(chan string, 4)
	stop := h.WatchDeviceAuths(func(k string) { forgot <- k })
	defer stop()

	r.gaps <- struct{}{}
	if st := waitFor(t, w.C, "wake-up after the gap"); st != store.DeviceAuthPending {
		t.Fatalf("waiter got %q, want a plain wake-up (pending)", st)
	}
	if k := waitFor(t, forgot, "watcher"); k != "" {
		t.Fatalf("watcher got %q, want \"\" (forget everything)", k)
	}
	for range s.C {
	}
	if !s.Dropped() {
		t.Fatal("account stream closed but not marked dropped")
	}
	if got := h.Subscribers(); got != 1 {
		t.Fatalf("Subscribers() = %d, want 1 (the device waiter stays)", got)
	}
	if st := h.RelayStats(); st.Gaps != 2 {
		t.Fatalf("Gaps = %d, want 2", st.Gaps)
	}
}

func TestFullRelayQueueNeverBlocksPublishers(t *testing.T) {
	var b bus
	r := b.relay()
	r.block = make(chan struct{}) // the "database" hangs
	var logs syncBuffer
	h := started(t, r, RelayOptions{Replica: "A", Queue: 2, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	s := h.SubscribeAccount("alice", 100)
	defer s.Close()
	for range 50 { // would block forever if publishing waited on the relay
		h.PublishAccount("alice", devices.Event{Type: devices.EventLinked})
		h.PublishDeviceAuth("k", store.DeviceAuthApproved)
	}
	if n := len(s.C); n != 50 {
		t.Fatalf("local subscriber got %d events, want 50 (local delivery must not depend on the relay)", n)
	}
	// One message may be held by the blocked Publish, two queued: the rest are dropped.
	if st := h.RelayStats(); st.Dropped < 97 {
		t.Fatalf("Dropped = %d, want at least 97", st.Dropped)
	}
	if !strings.Contains(logs.String(), "relay queue full") {
		t.Fatalf("overflow not logged; log:\n%s", logs.String())
	}
	close(r.block) // the held and queued messages go out once the relay answers
	waitFor(t, r.published, "first queued message sent")
	waitFor(t, r.published, "second queued message sent")
}

func TestTooLargeAccountEventResyncsOthers(t *testing.T) {
	var b bus
	ra, rb := b.relay(), b.relay()
	ra.limit = 200
	a := started(t, ra, RelayOptions{Replica: "A"})
	bh := started(t, rb, RelayOptions{Replica: "B"})
	sb := bh.SubscribeAccount("alice", 4)
	defer sb.Close()
	a.PublishAccount("alice", devices.Event{Type: devices.EventLinked, Device: devices.Device{ID: "d1", Name: strings.Repeat("x", 500)}})
	for range sb.C {
		t.Fatal("B got an event it could not have received whole")
	}
	if !sb.Dropped() {
		t.Fatal("B's stream was closed but not marked dropped")
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A rename made through B that reaches A after A announced the unlink (events of
// different replicas are not ordered with each other) is not delivered: a client that
// applied it would show a device that is gone. A's own late events are held back the
// same way, and so is a late "linked".
func TestLateEventsOfAnUnlinkedDeviceAreNotDelivered(t *testing.T) {
	var b bus
	ra, rb := b.relay(), b.relay()
	a := started(t, ra, RelayOptions{Replica: "A"})
	bh := started(t, rb, RelayOptions{Replica: "B"})
	sa := a.SubscribeAccount("alice", 8)
	defer sa.Close()

	a.PublishAccount("alice", devices.Event{Type: devices.EventUnlinked, Device: devices.Device{ID: "d1"}})
	if got := waitFor(t, sa.C, "the unlink"); got.Type != devices.EventUnlinked {
		t.Fatalf("A's stream got %+v, want the unlink", got)
	}
	bh.PublishAccount("alice", devices.Event{Type: devices.EventRenamed, Device: devices.Device{ID: "d1", Name: "Den"}})
	bh.PublishAccount("alice", devices.Event{Type: devices.EventLinked, Device: devices.Device{ID: "d1"}})
	a.PublishAccount("alice", devices.Event{Type: devices.EventRenamed, Device: devices.Device{ID: "d1", Name: "Hall"}})
	// The relay delivers B's messages in order, so once the marker is here the late
	// ones have been handled.
	bh.PublishAccount("alice", devices.Event{Type: devices.EventLinked, Device: devices.Device{ID: "marker"}})
	if got := waitFor(t, sa.C, "the marker"); got.Device.ID != "marker" {
		t.Fatalf("A's stream got %s of %s after its unlink, want it held back", got.Type, got.Device.ID)
	}
	if st := a.RelayStats(); st.Received != 3 {
		t.Fatalf("A's stats = %+v, want B's 3 messages received", st)
	}
}

// The hub remembers the last DefaultUnlinkedMemory unlinks, oldest forgotten first.
func TestUnlinkedMemoryIsBounded(t *testing.T) {
	h := NewHub()
	s := h.SubscribeAccount("alice", 4)
	defer s.Close()
	for i := range DefaultUnlinkedMemory + 1 {
		h.gone.add(fmt.Sprint("d", i))
	}
	if len(h.gone.ids) != DefaultUnlinkedMemory {
		t.Fatalf("remembers %d unlinked devices, want %d", len(h.gone.ids), DefaultUnlinkedMemory)
	}
	h.PublishAccount("alice", devices.Event{Type: devices.EventRenamed, Device: devices.Device{ID: "d1"}})
	h.PublishAccount("alice", devices.Event{Type: devices.EventRenamed, Device: devices.Device{ID: "d0"}})
	if got := <-s.C; got.Device.ID != "d0" {
		t.Fatalf("delivered a rename of %s, want only d0's (d0 forgotten, d1 still remembered)", got.Device.ID)
	}
	select {
	case got := <-s.C:
		t.Fatalf("also delivered %+v", got)
	default:
	}
}
