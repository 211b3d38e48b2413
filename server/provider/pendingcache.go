package provider

import (
	"sync"
	"time"

	"github.com/linkdesk/linkdesk/server/store"
)

// pendingFreshFor bounds how long a cached pending state is trusted without news from
// the hub: a change whose event was somehow missed delays that device's link by at most
// this long, never loses it (the store stays the truth; only "still pending" is cached).
const pendingFreshFor = time.Minute

// pendingCache remembers device authorizations that were pending when a poll read
// them, so the next polls of a still-pending code answer from memory instead of the
// store (issue 13: a poll at the speed of a bare handler). It forgets a code the moment
// the hub reports a change of its state (approve, deny, or a wake-up of all), which is
// also how a replica hears of changes made through another replica; an entry is
// trusted at most pendingFreshFor and never past the code's expiry. It is bounded like
// the pacer and is per process, like the pacer.
type pendingCache struct {
	mu      sync.Mutex
	now     func() time.Time
	gen     uint64 // bumped by every forget: a read older than a forget is not cached
	entries map[pollKey]cachedPending
	byCode  map[string]pollKey // hub key (canonical user code) → entry
	swept   time.Time
}

type cachedPending struct {
	auth  store.DeviceAuth
	until time.Time
}

func newPendingCache(now func() time.Time) *pendingCache {
	return &pendingCache{now: now, entries: make(map[pollKey]cachedPending), byCode: make(map[string]pollKey)}
}

// generation returns the value to hand to put for a store read that starts now.
func (c *pendingCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// get returns the cached pending state of key, if there is one still trusted.
func (c *pendingCache) get(key pollKey) (store.DeviceAuth, bool) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || !now.Before(e.until) {
		return store.DeviceAuth{}, false
	}
	return e.auth, true
}

// put caches d, read from the store when the cache was at generation gen, unless a
// change was reported since (the read may predate it) or the cache is full.
func (c *pendingCache) put(key pollKey, d store.DeviceAuth, hubKey string, gen uint64) {
	now := c.now()
	until := min(now.Add(pendingFreshFor).UnixNano(), d.ExpiresAt.UnixNano())
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if now.Sub(c.swept) >= time.Minute || len(c.entries) >= maxPacedCodes {
		c.sweep(now)
	}
	if len(c.entries) >= maxPacedCodes {
		return
	}
	c.entries[key] = cachedPending{auth: d, until: time.Unix(0, until)}
	c.byCode[hubKey] = key
}

// forget drops the entry of the authorization with hub key hubKey; "" drops them all.
func (c *pendingCache) forget(hubKey string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if hubKey == "" {
		clear(c.entries)
		clear(c.byCode)
		return
	}
	if key, ok := c.byCode[hubKey]; ok {
		delete(c.entries, key)
		delete(c.byCode, hubKey)
	}
}

func (c *pendingCache) sweep(now time.Time) {
	c.swept = now
	for hubKey, key := range c.byCode {
		if e, ok := c.entries[key]; !ok || !now.Before(e.until) {
			delete(c.entries, key)
			delete(c.byCode, hubKey)
		}
	}
}
