// Package events is linkd's in-process publish/subscribe hub. It carries two kinds of
// news: account events (a device was linked, renamed or unlinked), which feed the
// management API's server-sent event stream, and device-authorization state changes,
// which wake a kiosk waiting on the push channel the moment a person approves or denies.
//
// The hub is in memory and per process. With several linkd replicas on one database,
// StartRelay connects the hubs through a Relay (server/store/postgres: LISTEN/NOTIFY):
// every local publish is also sent to the other replicas, and theirs are delivered
// here. The relay delivers at most once, so every waiter also re-reads the store now
// and then (see server/api), and after a gap in the relay's subscription the hub wakes
// every waiter and drops every account stream; the relay makes the common case
// instant, the store keeps the rare case correct.
//
// Delivery policy: publishers never block. Each subscription has a small buffer.
//   - An account subscription whose buffer is full is closed (its channel is closed and
//     Dropped reports true): a lagging SSE client is disconnected rather than silently
//     missing an event, and an EventSource client reconnects and re-reads the list.
//   - A device-authorization subscription coalesces: it holds at most the latest state,
//     since a waiter only needs to learn that it must look again.
//
// Order: a stream gets one replica's events in the order they were published there, but
// events made through different replicas (or by concurrent requests) may arrive in
// either order. A late "linked" or "renamed" of a device the hub already announced as
// unlinked is not delivered, so a client never brings a gone device back.
package events

import (
	"sync"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/store"
)

// DefaultAccountBuffer is how many account events a subscriber may fall behind by
// before it is dropped.
const DefaultAccountBuffer = 32

// Hub fans events out to subscribers in the same process. The zero value is not
// usable; call NewHub. A Hub is safe for concurrent use.
type Hub struct {
	mu       sync.Mutex
	accounts map[string]map[*AccountSubscription]struct{}
	auths    map[string]map[*AuthSubscription]struct{}
	watchers map[*func(key string)]struct{}
	relay    *relayState // nil without StartRelay
	gone     unlinkedDevices
}

// DefaultUnlinkedMemory is how many recently unlinked devices a hub remembers, so a
// late "linked" or "renamed" of one of them is not delivered after its "unlinked".
const DefaultUnlinkedMemory = 4096

// unlinkedDevices remembers the IDs of the most recent unlinks, oldest forgotten first.
// Events from different replicas (or from concurrent requests in one process) are not
// ordered with each other: a rename made through A can reach C's stream after an unlink
// made through C, and a client that applied it would show a device that is gone.
type unlinkedDevices struct {
	ids  map[string]struct{}
	ring []string // len DefaultUnlinkedMemory once used; next is the slot to reuse
	next int
}

func (u *unlinkedDevices) add(id string) {
	if id == "" {
		return
	}
	if u.ids == nil {
		u.ids = make(map[string]struct{}, DefaultUnlinkedMemory)
		u.ring = make([]string, DefaultUnlinkedMemory)
	}
	if _, ok := u.ids[id]; ok {
		return
	}
	if old := u.ring[u.next]; old != "" {
		delete(u.ids, old)
	}
	u.ring[u.next] = id
	u.next = (u.next + 1) % len(u.ring)
	u.ids[id] = struct{}{}
}

func (u *unlinkedDevices) has(id string) bool {
	_, ok := u.ids[id]
	return ok
}

// NewHub returns an empty hub.
func NewHub() *Hub {
	return &Hub{
		accounts: make(map[string]map[*AccountSubscription]struct{}),
		auths:    make(map[string]map[*AuthSubscription]struct{}),
		watchers: make(map[*func(key string)]struct{}),
	}
}

// WatchDeviceAuths calls fn with the key of every device-authorization change published
// from now on, and with "" for WakeDeviceAuths (any authorization may have changed),
// until stop is called. fn is called before waiters wake, on the publisher's goroutine
// with the hub locked, so it must be quick and must not call the hub: the provider's
// cache of pending polls uses it to forget a state before the kiosk polls again.
func (h *Hub) WatchDeviceAuths(fn func(key string)) (stop func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.watchers[&fn] = struct{}{}
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.watchers, &fn)
	}
}

// AccountSubscription receives the events of one account. Read C until it is closed;
// call Close when done (safe to call more than once, and after a drop).
type AccountSubscription struct {
	// C delivers events in publish order. It is closed by Close or when the
	// subscriber fell behind by more than its buffer (then Dropped reports true).
	C <-chan devices.Event

	hub     *Hub
	subject string
	ch      chan devices.Event
	closed  bool // guarded by hub.mu
	dropped bool // guarded by hub.mu
}

// SubscribeAccount starts delivering subject's events. buffer <= 0 means
// DefaultAccountBuffer.
func (h *Hub) SubscribeAccount(subject string, buffer int) *AccountSubscription {
	if buffer <= 0 {
		buffer = DefaultAccountBuffer
	}
	ch := make(chan devices.Event, buffer)
	s := &AccountSubscription{C: ch, hub: h, subject: subject, ch: ch}
	h.mu.Lock()
	defer h.mu.Unlock()
	set := h.accounts[subject]
	if set == nil {
		set = make(map[*AccountSubscription]struct{})
		h.accounts[subject] = set
	}
	set[s] = struct{}{}
	return s
}

// Close stops delivery and closes C. It never blocks.
func (s *AccountSubscription) Close() {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	s.closeLocked()
}

// Dropped reports whether the hub closed the subscription because it fell behind.
func (s *AccountSubscription) Dropped() bool {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	return s.dropped
}

func (s *AccountSubscription) closeLocked() {
	if s.closed {
		return
	}
	s.closed = true
	close(s.ch)
	if set := s.hub.accounts[s.subject]; set != nil {
		delete(set, s)
		if len(set) == 0 {
			delete(s.hub.accounts, s.subject)
		}
	}
}

// PublishAccount delivers ev to every subscriber of subject without blocking; a
// subscriber whose buffer is full is dropped, and late news of an unlinked device is
// held back (see the package comment). With a relay it is also queued for the other
// replicas.
func (h *Hub) PublishAccount(subject string, ev devices.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.deliverAccountLocked(subject, ev)
	h.forwardLocked(message{Subject: subject, Event: &ev})
}

// deliverAccountLocked hands ev to subject's subscribers, unless it is news of a
// device this hub already announced as unlinked (a late event, see unlinkedDevices).
func (h *Hub) deliverAccountLocked(subject string, ev devices.Event) {
	switch ev.Type {
	case devices.EventUnlinked:
		h.gone.add(ev.Device.ID)
	case devices.EventLinked, devices.EventRenamed:
		if h.gone.has(ev.Device.ID) {
			return
		}
	}
	for s := range h.accounts[subject] {
		select {
		case s.ch <- ev:
		default:
			s.dropped = true
			s.closeLocked()
		}
	}
}

// dropAccountsLocked drops every subscription of subject, as if each had fallen
// behind: its client reconnects and re-reads.
func (h *Hub) dropAccountsLocked(subject string) {
	for s := range h.accounts[subject] {
		s.dropped = true
		s.closeLocked()
	}
}

// dropAllAccountsLocked drops every account subscription.
func (h *Hub) dropAllAccountsLocked() {
	for subject := range h.accounts {
		h.dropAccountsLocked(subject)
	}
}

// AuthSubscription wakes a waiter when a device authorization changes state.
type AuthSubscription struct {
	// C receives the most recent state published since the last receive; at most one
	// value is buffered. It is never closed; select on it together with a context.
	C <-chan store.DeviceAuthState

	hub    *Hub
	key    string
	ch     chan store.DeviceAuthState
	closed bool // guarded by hub.mu
}

// SubscribeDeviceAuth starts watching the device authorization identified by key:
// linkd uses the canonical user code (see DeviceAuthKey), which both the approving side
// and the waiting side know.
func (h *Hub) SubscribeDeviceAuth(key string) *AuthSubscription {
	ch := make(chan store.DeviceAuthState, 1)
	s := &AuthSubscription{C: ch, hub: h, key: key, ch: ch}
	h.mu.Lock()
	defer h.mu.Unlock()
	set := h.auths[key]
	if set == nil {
		set = make(map[*AuthSubscription]struct{})
		h.auths[key] = set
	}
	set[s] = struct{}{}
	return s
}

// Close stops delivery. Safe to call more than once.
func (s *AuthSubscription) Close() {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	if set := s.hub.auths[s.key]; set != nil {
		delete(set, s)
		if len(set) == 0 {
			delete(s.hub.auths, s.key)
		}
	}
}

// PublishDeviceAuth tells every waiter on key that the authorization is now in state.
// It never blocks: an unread older state is replaced by the newer one. With a relay
// it is also queued for the other replicas.
func (h *Hub) PublishDeviceAuth(key string, state store.DeviceAuthState) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.deliverDeviceAuthLocked(key, state)
	h.forwardLocked(message{Key: key, State: state})
}

// NoteDeviceAuth tells this process's watchers and waiters on key that the
// authorization is now in state, as PublishDeviceAuth does, but does not relay it: for
// a change this replica found by reading the store, which the replica that made it
// may never have relayed (it died first), so the cache of pending polls forgets it.
func (h *Hub) NoteDeviceAuth(key string, state store.DeviceAuthState) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.deliverDeviceAuthLocked(key, state)
}

func (h *Hub) deliverDeviceAuthLocked(key string, state store.DeviceAuthState) {
	for fn := range h.watchers {
		(*fn)(key)
	}
	for s := range h.auths[key] {
		for {
			select {
			case s.ch <- state:
			default:
				// Full: discard the stale value and try again. Only publishers send,
				// and they hold h.mu, so this loop ends on the next iteration.
				select {
				case <-s.ch:
				default:
				}
				continue
			}
			break
		}
	}
}

// WakeDeviceAuths tells every device-authorization waiter to look at the store again,
// without a new state: for changes that touch many requests at once, such as a clock
// moved forward in a test so codes expire. A waiter that already has a wake-up unread
// keeps it. It is not relayed to other replicas.
func (h *Hub) WakeDeviceAuths() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for fn := range h.watchers {
		(*fn)("")
	}
	for _, set := range h.auths {
		for s := range set {
			select {
			case s.ch <- store.DeviceAuthPending:
			default:
			}
		}
	}
}

// DeviceAuthKey is the hub key of a device authorization: its canonical user code.
// Use it on both sides so publishers and waiters agree.
func DeviceAuthKey(userCode string) string { return "user_code:" + userCode }

// Subscribers reports how many subscriptions of both kinds are live, for tests and
// metrics (a leak shows up as a number that never goes down).
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, set := range h.accounts {
		n += len(set)
	}
	for _, set := range h.auths {
		n += len(set)
	}
	return n
}
