package provider

import (
	"crypto/sha256"
	"sync"
	"time"
)

// slowDownStep is how much a device's polling interval grows on each slow_down
// (RFC 8628 §3.5: "by 5 seconds for this and all subsequent requests").
const slowDownStep = 5 * time.Second

// maxPacedCodes bounds the pacer's memory: beyond it, a poll of a code it does not know
// is answered without pacing until expired entries are swept (pending codes are capped
// well below it, so this only matters under attack).
const maxPacedCodes = 100_000

// pacer paces device polls in memory, per process: a poll sooner than its code's
// interval answers slow_down and grows that code's interval by slowDownStep. slow_down
// is advice to a well-behaved device, so pacing per replica is enough, and a poll never
// has to write to the store. A gap at most a fifth of the interval (up to a second) short
// still counts as on time: devices poll on timers that jitter (x/oauth2 ticks every 5 s
// and was seen arriving 4.998 s apart).
type pacer struct {
	mu      sync.Mutex
	now     func() time.Time
	entries map[pollKey]*pace
	swept   time.Time
}

// pollKey identifies a device code of a client in the pacer and the pending cache
// without keeping the code itself in memory.
type pollKey [sha256.Size]byte

func newPollKey(clientID, deviceCode string) pollKey {
	return sha256.Sum256([]byte(clientID + "\x00" + deviceCode))
}

type pace struct {
	last     time.Time
	interval time.Duration
	expires  time.Time
}

func newPacer(now func() time.Time) *pacer {
	return &pacer{now: now, entries: make(map[pollKey]*pace)}
}

// poll records a poll of the code key at now for a code expiring at expires whose base
// interval is base, and reports whether it came too soon.
func (p *pacer) poll(key pollKey, base time.Duration, expires time.Time) (slowDown bool) {
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.entries[key]
	if !ok {
		if len(p.entries) >= maxPacedCodes {
			p.sweep(now)
			if len(p.entries) >= maxPacedCodes {
				return false
			}
		}
		p.entries[key] = &pace{last: now, interval: base, expires: expires}
		p.maybeSweep(now)
		return false
	}
	jitter := min(e.interval/5, time.Second)
	if now.Sub(e.last) < e.interval-jitter {
		e.interval += slowDownStep
		e.last = now
		return true
	}
	e.last = now
	return false
}

// forget drops a code's pacing (it was answered for good).
func (p *pacer) forget(key pollKey) {
	p.mu.Lock()
	delete(p.entries, key)
	p.mu.Unlock()
}

// maybeSweep drops expired entries at most once a minute.
func (p *pacer) maybeSweep(now time.Time) {
	if now.Sub(p.swept) >= time.Minute {
		p.sweep(now)
	}
}

func (p *pacer) sweep(now time.Time) {
	p.swept = now
	for k, e := range p.entries {
		if !now.Before(e.expires) {
			delete(p.entries, k)
		}
	}
}
