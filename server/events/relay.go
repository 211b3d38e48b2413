package events

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/store"
)

// Relay carries the hub's news between linkd replicas that share a database, so a
// change made through one replica reaches the waiters and streams of all. Delivery is
// at most once: a message sent while a replica was not subscribed is lost to it, which
// the relay reports as a gap. server/store/postgres has one on LISTEN/NOTIFY.
type Relay interface {
	// Publish sends payload (UTF-8 text) to every subscribed replica, this one
	// included. It returns ErrPayloadTooLarge for a payload the relay cannot carry.
	Publish(ctx context.Context, payload string) error
	// Run subscribes and calls deliver with every payload received, on one goroutine,
	// until ctx ends. It calls gap each time it has (re)subscribed, the first time
	// included: messages sent before that moment may have been missed. Run
	// reconnects by itself after failures; it returns only when ctx ends.
	Run(ctx context.Context, deliver func(payload string), gap func())
}

// ErrPayloadTooLarge is what Relay.Publish returns for a payload above its limit.
var ErrPayloadTooLarge = errors.New("events: relay payload too large")

// DefaultRelayQueue is how many outgoing messages may wait for the relay before new
// ones are dropped (and counted): publishers never wait on the database.
const DefaultRelayQueue = 1024

// relayPublishTimeout bounds one Publish, so a database that hangs holds the queue
// for a bounded time (messages behind it overflow and are counted).
const relayPublishTimeout = 5 * time.Second

// RelayOptions tune Hub.StartRelay.
type RelayOptions struct {
	// Replica names this process in its messages, so it ignores its own; "" makes a
	// random one.
	Replica string
	// Queue bounds outgoing messages waiting for the relay (0: DefaultRelayQueue).
	Queue int
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// RelayStats counts what the hub's relay did, for tests and metrics.
type RelayStats struct {
	Sent     uint64 // messages handed to Relay.Publish without error
	Received uint64 // messages from other replicas delivered here
	Dropped  uint64 // messages not sent: queue full, publish failed, or too large
	Gaps     uint64 // (re)subscriptions, the first included
}

// message is what crosses replicas: a device-authorization change (Key, State) or an
// account event (Subject, Event), or, when an account event was too large to carry,
// a resync of Subject (its streams are dropped so clients re-read).
type message struct {
	Origin  string                `json:"o"`
	Key     string                `json:"k,omitempty"`
	State   store.DeviceAuthState `json:"s,omitempty"`
	Subject string                `json:"u,omitempty"`
	Event   *devices.Event        `json:"e,omitempty"`
	Resync  bool                  `json:"r,omitempty"`
}

// relayState is the hub's side of a started relay.
type relayState struct {
	replica string
	queue   chan message
	log     *slog.Logger
	ready   chan struct{} // closed at the first subscription
	once    sync.Once

	sent, received, dropped, gaps atomic.Uint64
	lastOverflowLog               atomic.Int64 // unix nanos; overflow logged at most once a second
}

// StartRelay makes the hub share its news with other replicas through r until ctx
// ends: every PublishDeviceAuth and PublishAccount from now on is also queued for r
// (never blocking the publisher), messages of other replicas are delivered here
// without being relayed again, and after every gap in r's subscription the hub wakes
// all device-authorization waiters (WakeDeviceAuths) and drops every account
// subscription, since either may have missed a change. Call it at most once.
func (h *Hub) StartRelay(ctx context.Context, r Relay, o RelayOptions) {
	if o.Replica == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		o.Replica = hex.EncodeToString(b[:])
	}
	if o.Queue <= 0 {
		o.Queue = DefaultRelayQueue
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	rs := &relayState{replica: o.Replica, queue: make(chan message, o.Queue), log: o.Logger, ready: make(chan struct{})}
	h.mu.Lock()
	if h.relay != nil {
		h.mu.Unlock()
		panic("events: StartRelay called twice")
	}
	h.relay = rs
	h.mu.Unlock()
	go h.drainRelay(ctx, r, rs)
	go r.Run(ctx, func(p string) { h.receive(rs, p) }, func() { h.gap(rs) })
}

// RelayReady is closed once the relay has first subscribed (never without
// StartRelay): from then on changes made through other replicas reach this hub.
func (h *Hub) RelayReady() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.relay == nil {
		return nil
	}
	return h.relay.ready
}

// RelayStats reports the relay's counters (zero without StartRelay).
func (h *Hub) RelayStats() RelayStats {
	h.mu.Lock()
	rs := h.relay
	h.mu.Unlock()
	if rs == nil {
		return RelayStats{}
	}
	return RelayStats{Sent: rs.sent.Load(), Received: rs.received.Load(), Dropped: rs.dropped.Load(), Gaps: rs.gaps.Load()}
}

// forwardLocked queues m for the relay, if there is one; h.mu is held. It never
// blocks: a full queue drops m, counts it and says so in the log.
func (h *Hub) forwardLocked(m message) {
	rs := h.relay
	if rs == nil {
		return
	}
	m.Origin = rs.replica
	select {
	case rs.queue <- m:
	default:
		n := rs.dropped.Add(1)
		now := time.Now().UnixNano()
		if last := rs.lastOverflowLog.Load(); now-last >= int64(time.Second) && rs.lastOverflowLog.CompareAndSwap(last, now) {
			rs.log.Warn("events: relay queue full, event not sent to other replicas (their waiters re-read the store)",
				"queue", cap(rs.queue), "dropped_total", n)
		}
	}
}

// drainRelay publishes queued messages one at a time until ctx ends.
func (h *Hub) drainRelay(ctx context.Context, r Relay, rs *relayState) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-rs.queue:
			h.publishRemote(ctx, r, rs, m)
		}
	}
}

func (h *Hub) publishRemote(ctx context.Context, r Relay, rs *relayState, m message) {
	b, err := json.Marshal(m)
	if err != nil {
		rs.dropped.Add(1)
		rs.log.Error("events: encode relay message", "err", err)
		return
	}
	pctx, cancel := context.WithTimeout(ctx, relayPublishTimeout)
	defer cancel()
	err = r.Publish(pctx, string(b))
	if errors.Is(err, ErrPayloadTooLarge) && m.Event != nil {
		// Too large to carry: tell the others to drop the account's streams, whose
		// clients then reconnect and re-read the list.
		b, _ = json.Marshal(message{Origin: m.Origin, Subject: m.Subject, Resync: true})
		rs.log.Warn("events: account event too large for the relay, asking other replicas to resync the account",
			"bytes", len(b))
		err = r.Publish(pctx, string(b))
	}
	if err != nil {
		rs.dropped.Add(1)
		if ctx.Err() == nil {
			rs.log.Warn("events: relay publish failed, event not sent to other replicas (their waiters re-read the store)",
				"err", err)
		}
		return
	}
	rs.sent.Add(1)
}

// receive delivers a message of another replica locally, without relaying it again.
func (h *Hub) receive(rs *relayState, payload string) {
	var m message
	if err := json.Unmarshal([]byte(payload), &m); err != nil {
		rs.log.Warn("events: undecodable relay message ignored", "err", err, "bytes", len(payload))
		return
	}
	if m.Origin == rs.replica {
		return
	}
	rs.received.Add(1)
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case m.Resync:
		h.dropAccountsLocked(m.Subject)
	case m.Event != nil:
		h.deliverAccountLocked(m.Subject, *m.Event)
	case m.Key != "":
		h.deliverDeviceAuthLocked(m.Key, m.State)
	}
}

// gap handles a (re)subscription: anything may have changed meanwhile.
func (h *Hub) gap(rs *relayState) {
	if n := rs.gaps.Add(1); n > 1 {
		rs.log.Info("events: relay resubscribed; waking device waiters and dropping event streams so they re-read",
			"resubscriptions", n-1)
	}
	h.WakeDeviceAuths()
	h.mu.Lock()
	h.dropAllAccountsLocked()
	h.mu.Unlock()
	rs.once.Do(func() { close(rs.ready) })
}
