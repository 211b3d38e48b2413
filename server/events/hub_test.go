package events

import (
	"sync"
	"testing"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/store"
)

func TestAccountEventsReachOnlyTheirSubject(t *testing.T) {
	h := NewHub()
	a := h.SubscribeAccount("alice", 4)
	defer a.Close()
	b := h.SubscribeAccount("bob", 4)
	defer b.Close()

	h.PublishAccount("alice", devices.Event{Type: devices.EventLinked, Device: devices.Device{ID: "d1"}})
	h.PublishAccount("alice", devices.Event{Type: devices.EventRenamed, Device: devices.Device{ID: "d1"}})

	if ev := <-a.C; ev.Type != devices.EventLinked || ev.Device.ID != "d1" {
		t.Fatalf("first event = %+v", ev)
	}
	if ev := <-a.C; ev.Type != devices.EventRenamed {
		t.Fatalf("second event = %+v", ev)
	}
	select {
	case ev := <-b.C:
		t.Fatalf("bob got alice's event %+v", ev)
	default:
	}
}

func TestSlowAccountSubscriberIsDroppedNotBlocking(t *testing.T) {
	h := NewHub()
	s := h.SubscribeAccount("alice", 2)
	defer s.Close()
	for range 5 { // would block forever if publishing waited on the reader
		h.PublishAccount("alice", devices.Event{Type: devices.EventLinked})
	}
	if !s.Dropped() {
		t.Fatal("subscriber that fell behind was not dropped")
	}
	n := 0
	for range s.C {
		n++
	}
	if n != 2 {
		t.Fatalf("got %d buffered events before close, want 2", n)
	}
	if got := h.Subscribers(); got != 0 {
		t.Fatalf("Subscribers() = %d after drop, want 0", got)
	}
}

func TestCloseIsIdempotentAndUnregisters(t *testing.T) {
	h := NewHub()
	s := h.SubscribeAccount("alice", 0)
	w := h.SubscribeDeviceAuth(DeviceAuthKey("BCDFGHJK"))
	if got := h.Subscribers(); got != 2 {
		t.Fatalf("Subscribers() = %d, want 2", got)
	}
	s.Close()
	s.Close()
	w.Close()
	w.Close()
	if got := h.Subscribers(); got != 0 {
		t.Fatalf("Subscribers() = %d after close, want 0", got)
	}
	if _, ok := <-s.C; ok {
		t.Fatal("closed subscription still delivers")
	}
	h.PublishAccount("alice", devices.Event{}) // must not panic on a closed channel
	h.PublishDeviceAuth(DeviceAuthKey("BCDFGHJK"), store.DeviceAuthApproved)
}

func TestDeviceAuthWaitersCoalesceToLatest(t *testing.T) {
	h := NewHub()
	key := DeviceAuthKey("BCDFGHJK")
	w := h.SubscribeDeviceAuth(key)
	defer w.Close()
	other := h.SubscribeDeviceAuth(DeviceAuthKey("ZZZZZZZZ"))
	defer other.Close()

	h.PublishDeviceAuth(key, store.DeviceAuthApproved)
	h.PublishDeviceAuth(key, store.DeviceAuthConsumed)
	if st := <-w.C; st != store.DeviceAuthConsumed {
		t.Fatalf("state = %q, want the latest (consumed)", st)
	}
	select {
	case st := <-other.C:
		t.Fatalf("unrelated waiter woke with %q", st)
	default:
	}
}

func TestConcurrentPublishSubscribe(t *testing.T) {
	h := NewHub()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 100 {
				s := h.SubscribeAccount("alice", 1)
				w := h.SubscribeDeviceAuth("k")
				h.PublishAccount("alice", devices.Event{Type: devices.EventLinked})
				h.PublishDeviceAuth("k", store.DeviceAuthState(rune('a'+i)))
				s.Close()
				w.Close()
			}
		})
	}
	wg.Wait()
	if got := h.Subscribers(); got != 0 {
		t.Fatalf("Subscribers() = %d, want 0", got)
	}
}

func TestWakeDeviceAuthsKeepsUnreadStates(t *testing.T) {
	h := NewHub()
	a := h.SubscribeDeviceAuth(DeviceAuthKey("AAAA"))
	defer a.Close()
	b := h.SubscribeDeviceAuth(DeviceAuthKey("BBBB"))
	defer b.Close()
	h.PublishDeviceAuth(DeviceAuthKey("AAAA"), store.DeviceAuthApproved)
	h.WakeDeviceAuths()
	if st := <-a.C; st != store.DeviceAuthApproved {
		t.Fatalf("a = %q, want the unread approval kept", st)
	}
	if st := <-b.C; st != store.DeviceAuthPending {
		t.Fatalf("b = %q, want a plain wake-up (pending)", st)
	}
	select {
	case st := <-a.C:
		t.Fatalf("a got a second value %q", st)
	default:
	}
}
