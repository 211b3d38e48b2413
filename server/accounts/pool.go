package accounts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"runtime"
	"strings"
	"sync"
	"time"
)

// ErrBusy is Pool.Do's answer when the pool's queue is full or the wait for a slot ran
// out: the caller should answer "try again shortly" (429 or 503 with Retry-After).
var ErrBusy = errors.New("accounts: too many password checks at once")

// Pool bounds the password checks that run at once. Each argon2id check takes 64 MiB,
// so without a bound a burst of sign-ins takes as many times that; with it, memory
// stays at slots × 64 MiB and a burst beyond the queue is refused at once.
type Pool struct {
	slots chan struct{} // one token per running check
	admit chan struct{} // one token per running or waiting check
	wait  time.Duration
}

// NewPool returns a pool running at most slots checks at once, with at most queue more
// waiting, each for at most wait.
func NewPool(slots, queue int, wait time.Duration) *Pool {
	slots = max(slots, 1)
	return &Pool{slots: make(chan struct{}, slots), admit: make(chan struct{}, slots+max(queue, 0)), wait: wait}
}

// Passwords is the process's pool for password checks: one slot per core, twice that
// waiting, for at most PoolWait.
var Passwords = NewPool(runtime.NumCPU(), 2*runtime.NumCPU(), PoolWait)

// PoolWait bounds how long a password check waits for a slot in Passwords.
const PoolWait = 10 * time.Second

// Do runs fn (a password check) in a slot, waiting for one while the queue has room.
// It returns ErrBusy, without running fn, when the queue is full or no slot came
// within the pool's wait, and ctx's error when ctx ends first.
func (p *Pool) Do(ctx context.Context, fn func()) error {
	select {
	case p.admit <- struct{}{}:
	default:
		return ErrBusy
	}
	defer func() { <-p.admit }()
	t := time.NewTimer(p.wait)
	defer t.Stop()
	select {
	case p.slots <- struct{}{}:
	case <-t.C:
		return ErrBusy
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-p.slots }()
	fn()
	return nil
}

// Gate caps the sign-in requests one address may have in progress at once, so one
// caller cannot fill the password pool's queue. It is in memory, per process.
type Gate struct {
	mu  sync.Mutex
	max int
	in  map[string]int
}

// NewGate returns a gate letting max requests per key in at once.
func NewGate(max int) *Gate { return &Gate{max: max, in: map[string]int{}} }

// Enter lets one more request of key in, or reports false when key has max in
// progress. Call Leave(key) when an entered request ends.
func (g *Gate) Enter(key string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.in[key] >= g.max {
		return false
	}
	g.in[key]++
	return true
}

// Leave ends one of key's requests.
func (g *Gate) Leave(key string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.in[key]--; g.in[key] <= 0 {
		delete(g.in, key)
	}
}

// UserTag names a username in logs without giving it away: the first 12 hex digits of
// the SHA-256 of a fixed prefix and the lower-cased username. The same name always
// gives the same tag, so an operator can follow one account's failures.
func UserTag(username string) string {
	sum := sha256.Sum256([]byte("linkd-user-tag:" + strings.ToLower(strings.TrimSpace(username))))
	return hex.EncodeToString(sum[:6])
}
