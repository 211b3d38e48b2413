package links

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
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

// ErrRateLimited is returned by Limiter.Check when a key is over its limit.
var ErrRateLimited = errors.New("links: too many failed code lookups")

// Limiter throttles user-code guessing per account and per address. Its counters live
// in the store (store.AddFailure), so the management API, the web pages and every
// linkd replica share them.
type Limiter struct {
	store  FailureCounter
	limits Limits
	now    func() time.Time
}

// FailureCounter is the part of the store a Limiter needs: the shared counters of
// failed attempts (store.Store has them).
type FailureCounter interface {
	AddFailure(ctx context.Context, key string, now, since time.Time) (int, error)
	CountFailures(ctx context.Context, key string, since time.Time) (int, error)
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

// AddressKey is the failure-counter key of a client address. IPv6 addresses count per
// /64, since one machine commonly holds a whole /64; IPv4-mapped addresses count as IPv4.
func AddressKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return "ip:" + ip
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return "ip:" + p.String()
	}
	return "ip:" + a.String()
}

// SignInKeys are the failure-counter keys of a sign-in attempt: the username (with the
// account limit) and the address (with the address limit). They are distinct from the
// code-lookup keys, so mistyped passwords never block code entry, and every sign-in
// page uses them, so the app's sign-in and the phone pages share one count.
func SignInKeys(username, ip string) []string {
	return []string{
		"signin:" + strings.ToLower(strings.TrimSpace(username)),
		"ip:signin:" + strings.TrimPrefix(AddressKey(ip), "ip:"),
	}
}

func (l *Limiter) limitOf(key string) int {
	if len(key) >= 3 && key[:3] == "ip:" {
		return l.limits.AddressFailures
	}
	return l.limits.AccountFailures
}

// Check reports whether every key is still under its limit. When one is not it
// returns ErrRateLimited and how long to wait before that key is under its limit
// again (to the second). Keys starting with "ip:" get the address limit, all others
// the account limit.
func (l *Limiter) Check(ctx context.Context, keys ...string) (time.Duration, error) {
	now := l.now()
	since := now.Add(-l.limits.Window)
	var wait time.Duration
	for _, k := range keys {
		n, err := l.store.CountFailures(ctx, k, since)
		if err != nil {
			return 0, fmt.Errorf("links: count failures: %w", err)
		}
		if n >= l.limitOf(k) {
			d, err := l.until(ctx, k, now)
			if err != nil {
				return 0, err
			}
			wait = max(wait, d)
		}
	}
	if wait > 0 {
		return wait, ErrRateLimited
	}
	return 0, nil
}

// until finds, by binary search over whole seconds, how long from now until enough of
// key's failures have left the window for key to be under its limit. The store keeps
// timestamps but only answers counts, so this costs about log2(window in seconds)
// queries — only ever on the already-throttled path.
func (l *Limiter) until(ctx context.Context, key string, now time.Time) (time.Duration, error) {
	limit := l.limitOf(key)
	lo, hi := int64(1), int64((l.limits.Window+time.Second-1)/time.Second)
	for lo < hi {
		mid := lo + (hi-lo)/2
		n, err := l.store.CountFailures(ctx, key, now.Add(-l.limits.Window+time.Duration(mid)*time.Second))
		if err != nil {
			return 0, fmt.Errorf("links: count failures: %w", err)
		}
		if n < limit {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return time.Duration(lo) * time.Second, nil
}

// Fail counts one failed lookup against every key.
func (l *Limiter) Fail(ctx context.Context, keys ...string) error {
	now := l.now()
	since := now.Add(-l.limits.Window)
	var errs []error
	for _, k := range keys {
		if _, err := l.store.AddFailure(ctx, k, now, since); err != nil {
			errs = append(errs, fmt.Errorf("links: add failure: %w", err))
		}
	}
	return errors.Join(errs...)
}

// RetryAfterSeconds renders d for a Retry-After header: whole seconds, at least 1.
func RetryAfterSeconds(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return fmt.Sprint(s)
}
