package links

import (
	"sync"
	"time"

	"github.com/linkdesk/linkdesk/devices"
)

// clientNameTTL is how long a client's display name and logo are reused before the
// store is asked again: a rename by the operator shows everywhere within it, and an
// approval, a code lookup or a device list does not read the client's row each time.
const clientNameTTL = time.Minute

// maxClientNames bounds the cache; clients are registered by the operator, so it is
// only reached by a deployment with very many, and then it simply starts over.
const maxClientNames = 1024

// clientNames keeps the display side of clients (devices.ClientInfo) for
// clientNameTTL. Only what is shown is kept: rules that decide (client policy) are
// always read from the store.
type clientNames struct {
	mu      sync.Mutex
	entries map[string]clientNameEntry
}

type clientNameEntry struct {
	info devices.ClientInfo
	at   time.Time
}

// get returns id's display info as stored no longer than clientNameTTL before now.
func (c *clientNames) get(id string, now time.Time) (devices.ClientInfo, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[id]
	if !ok || now.Sub(e.at) >= clientNameTTL || now.Before(e.at) {
		return devices.ClientInfo{}, false
	}
	return e.info, true
}

// put keeps id's display info, read at now.
func (c *clientNames) put(id string, info devices.ClientInfo, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= maxClientNames {
		c.entries = map[string]clientNameEntry{}
	}
	c.entries[id] = clientNameEntry{info: info, at: now}
}
