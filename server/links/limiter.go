package links

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/linkdesk/linkdesk/server/store"
)

// Limits bound how many failed user-code lookups (unknown, expired or already used
// codes) an account and an address may make within Window before linkd answers
// rate_limited (RFC 8628 §5.1). Zero fields take the defaults.
type Limits struct {
	AccountFailures int           // per signed-in account; default 10
	AddressFailures int           // per client address (IPv6: per /64); default 20
	Window          time.Duration // sliding window; default 15 minutes
}

// Default limits.
const (
	DefaultAccountFailures = 10
	DefaultAddressFailures = 20
	DefaultWindow          = 15 * time.Minute
)

func (l Limits) withDefaults() Limits {
	if l.AccountFailures <= 0 {
		l.AccountFailures = DefaultAccountFailures
	}
	if l.AddressFailures <= 0 {
		l.AddressFailures = DefaultAddressFailures
	}
	if l.Window <= 0 {
		l.Window = DefaultWindow
	}
	return l
}

// ErrRateLimited is returned by Limiter.Reserve when a limit is reached.
var ErrRateLimited = errors.New("links: too many failed code lookups")

// Limiter throttles guessing: user codes per account and per address, and (for the
// web pages) passwords and one-time codes. Every password or one-time code is reserved
// in the store before it is looked at (store.ReserveAttempt counts and records in one
// transaction), so a burst of concurrent guesses gets exactly the limit's number
// checked, and an attempt that succeeds is released, so only failures count. A user
// code is checked against the same counters inside the store transaction that looks
// it up, approves or denies it (store.ApproveUserCode and its kin), which records a
// failure there and then: the same guarantee with one write instead of three. The
// counters live in the store, so the management API, the web pages and every linkd
// replica share them.
type Limiter struct {
	store  FailureCounter
	limits Limits
	now    func() time.Time

	mu      sync.Mutex
	unfreed []Attempt // releases a storage fault refused, retried before each Reserve
}

// FailureCounter is the part of the store a Limiter needs: the shared counters of
// failed attempts (store.Store has them).
type FailureCounter interface {
	ReserveAttempt(ctx context.Context, limits []store.AttemptLimit, now time.Time) (time.Duration, error)
	ReleaseAttempt(ctx context.Context, keys []string, at time.Time) error
}

// NewLimiter returns a limiter over s's failure counters; now may be nil (time.Now).
func NewLimiter(s FailureCounter, limits Limits, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{store: s, limits: limits.withDefaults(), now: now}
}

// AccountKey is the failure-counter key of an account.
func AccountKey(subject string) string { return "sub:" + subject }

// AddressKey is the failure-counter key of a client address: its network
// (store.NetworkKey), so IPv6 addresses count per /64, since one machine commonly
// holds a whole /64, and IPv4-mapped addresses count as IPv4.
func AddressKey(ip string) string { return "ip:" + store.NetworkKey(ip) }

// Sign-in limits, shared by every sign-in page. Wrong passwords count per account and
// address together, so a stranger's guesses elsewhere never lock the account's owner
// out: SignInFreeTries at once, then each further try only after SignInBackoff,
// doubling (30 s, 1 min, 2 min…), at most SignInPairMax in SignInWindow. Looser
// bounds per account (guesses from many addresses) and per address (many accounts
// from one) come on top. The one-time-code step allows OneTimeCodeTries wrong codes
// per account in SignInWindow, whatever the cookie says.
const (
	SignInWindow       = 15 * time.Minute
	SignInFreeTries    = 3
	SignInBackoff      = 30 * time.Second
	SignInPairMax      = 10
	SignInAccountMax   = 30
	SignInAddressFree  = 10
	SignInAddressMax   = 30
	OneTimeCodeTries   = 5
	signInAddressDelay = 10 * time.Second
)

// signInKeys are the counter keys of a sign-in by username from ip: the account and
// address together, the account, the address (IPv6 per /64). They are distinct from
// the code-lookup keys, so mistyped passwords never block code entry.
func signInKeys(username, ip string) (pair, account, address string) {
	user := strings.ToLower(strings.TrimSpace(username))
	addr := strings.TrimPrefix(AddressKey(ip), "ip:")
	return "signin:" + user + "@" + addr, "signin:" + user, "ip:signin:" + addr
}

// SignInLimits are the limits of one password try for username from ip.
func SignInLimits(username, ip string) []store.AttemptLimit {
	pair, account, address := signInKeys(username, ip)
	return []store.AttemptLimit{
		{Key: pair, Max: SignInPairMax, Window: SignInWindow, Free: SignInFreeTries, Backoff: SignInBackoff},
		{Key: account, Max: SignInAccountMax, Window: SignInWindow},
		{Key: address, Max: SignInAddressMax, Window: SignInWindow, Free: SignInAddressFree, Backoff: signInAddressDelay},
	}
}

// OneTimeCodeLimits are the limits of one one-time code tried for the account subject
// from ip: OneTimeCodeTries per account, and the address's sign-in bound.
func OneTimeCodeLimits(subject, ip string) []store.AttemptLimit {
	_, _, address := signInKeys("", ip)
	return []store.AttemptLimit{
		{Key: "otp:" + subject, Max: OneTimeCodeTries, Window: SignInWindow},
		{Key: address, Max: SignInAddressMax, Window: SignInWindow, Free: SignInAddressFree, Backoff: signInAddressDelay},
	}
}

// codeLimits are the user-code lookup limits of keys: "ip:" keys get the address
// limit, all others the account limit.
func (l *Limiter) codeLimits(keys []string) []store.AttemptLimit {
	out := make([]store.AttemptLimit, len(keys))
	for i, k := range keys {
		max := l.limits.AccountFailures
		if strings.HasPrefix(k, "ip:") {
			max = l.limits.AddressFailures
		}
		out[i] = store.AttemptLimit{Key: k, Max: max, Window: l.limits.Window}
	}
	return out
}

// Attempt is a reserved attempt; Release it when it succeeded.
type Attempt struct {
	keys []string
	at   time.Time
}

// Reserve counts one attempt against every limit before the guess is checked. When a
// limit is reached it records nothing and returns ErrRateLimited with how long to wait
// (to the second).
func (l *Limiter) Reserve(ctx context.Context, limits ...store.AttemptLimit) (Attempt, time.Duration, error) {
	l.retryReleases(ctx)
	now := l.now()
	wait, err := l.store.ReserveAttempt(ctx, limits, now)
	if err != nil {
		return Attempt{}, 0, fmt.Errorf("links: reserve attempt: %w", err)
	}
	if wait > 0 {
		return Attempt{}, l.retryAfter(wait, limits), ErrRateLimited
	}
	keys := make([]string, 0, len(limits))
	for _, lim := range limits {
		if !slices.Contains(keys, lim.Key) {
			keys = append(keys, lim.Key)
		}
	}
	return Attempt{keys: keys, at: now}, 0, nil
}

// retryAfter rounds the store's wait for limits up to whole seconds, never longer than
// the longest window.
func (l *Limiter) retryAfter(wait time.Duration, limits []store.AttemptLimit) time.Duration {
	longest := time.Duration(0)
	for _, lim := range limits {
		longest = max(longest, lim.Window)
	}
	return min((wait + time.Second - 1).Truncate(time.Second), longest)
}

// Release uncounts a reserved attempt that succeeded, so only failures count.
func (l *Limiter) Release(ctx context.Context, a Attempt) error {
	if len(a.keys) == 0 {
		return nil
	}
	if err := l.store.ReleaseAttempt(ctx, a.keys, a.at); err != nil {
		// Keep it, so a passing storage fault does not leave a success counted.
		l.mu.Lock()
		if len(l.unfreed) < maxUnfreed {
			l.unfreed = append(l.unfreed, a)
		}
		l.mu.Unlock()
		return fmt.Errorf("links: release attempt: %w", err)
	}
	return nil
}

// maxUnfreed bounds the releases a Limiter keeps for retrying.
const maxUnfreed = 1024

// retryReleases tries again the releases that failed; those failing again are kept.
func (l *Limiter) retryReleases(ctx context.Context) {
	l.mu.Lock()
	todo := l.unfreed
	l.unfreed = nil
	l.mu.Unlock()
	for i, a := range todo {
		if err := l.store.ReleaseAttempt(ctx, a.keys, a.at); err != nil {
			l.mu.Lock()
			l.unfreed = append(l.unfreed, todo[i:]...)
			l.mu.Unlock()
			return
		}
	}
}

// reserveCode reserves one user-code lookup against keys' limits.
func (l *Limiter) reserveCode(ctx context.Context, keys []string) (Attempt, time.Duration, error) {
	return l.Reserve(ctx, l.codeLimits(keys)...)
}

// RetryAfterSeconds renders d for a Retry-After header: whole seconds, at least 1.
func RetryAfterSeconds(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return fmt.Sprint(s)
}
