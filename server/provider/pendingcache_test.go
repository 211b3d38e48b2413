package provider

import (
	"testing"
	"time"

	"github.com/linkdesk/linkdesk/server/store"
)

// TestPendingCache: a cached pending state is served until the hub reports a change of
// that code (or of all codes), until pendingFreshFor passes, or until the code expires;
// a store read that started before a reported change is not cached, since it may show
// the state from before the change.
func TestPendingCache(t *testing.T) {
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	now := base
	c := newPendingCache(func() time.Time { return now })
	a := store.DeviceAuth{UserCode: "AAAABBBB", State: store.DeviceAuthPending, ExpiresAt: base.Add(10 * time.Minute)}
	b := store.DeviceAuth{UserCode: "CCCCDDDD", State: store.DeviceAuthPending, ExpiresAt: base.Add(10 * time.Second)}
	ka, kb := newPollKey("tv", "code-a"), newPollKey("tv", "code-b")

	c.put(ka, a, "a", c.generation())
	c.put(kb, b, "b", c.generation())
	if got, ok := c.get(ka); !ok || got.UserCode != a.UserCode {
		t.Fatalf("fresh entry: %+v %v", got, ok)
	}

	c.forget("a")
	if _, ok := c.get(ka); ok {
		t.Fatal("a reported change did not drop the entry")
	}
	if _, ok := c.get(kb); !ok {
		t.Fatal("a change of another code dropped this one")
	}

	// A read that raced with a change is not cached.
	gen := c.generation()
	c.forget("a")
	c.put(ka, a, "a", gen)
	if _, ok := c.get(ka); ok {
		t.Fatal("a read from before a change was cached")
	}

	// Expiry of the code, then of the trust.
	c.put(ka, a, "a", c.generation())
	now = base.Add(10 * time.Second)
	if _, ok := c.get(kb); ok {
		t.Fatal("an expired code is still served from the cache")
	}
	now = base.Add(pendingFreshFor)
	if _, ok := c.get(ka); ok {
		t.Fatal("an entry older than pendingFreshFor is still trusted")
	}

	c.put(ka, a, "a", c.generation())
	c.forget("")
	if _, ok := c.get(ka); ok {
		t.Fatal("a wake-up of all codes did not drop the entry")
	}
}
