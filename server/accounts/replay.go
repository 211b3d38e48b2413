package accounts

import (
	"sync"
	"time"
)

// TOTPReplay refuses a one-time code that already signed an account in while it could
// still be valid (RFC 6238 §5.2), so a code seen over someone's shoulder cannot be used
// again. linkd gives every sign-in page the same one, so a code used on one page is
// refused on the others too. It is in memory, per process, and safe for concurrent use.
type TOTPReplay struct {
	mu   sync.Mutex
	used map[string]time.Time // subject + "\x00" + code -> until when it is refused
}

// TOTPReplayWindow covers every step a code can be accepted in: the current one and
// one either side.
const TOTPReplayWindow = (2*totpSkew + 1) * TOTPPeriod

// NewTOTPReplay returns an empty replay guard.
func NewTOTPReplay() *TOTPReplay { return &TOTPReplay{used: map[string]time.Time{}} }

// Seen reports whether subject already signed in with code within the window before now.
func (r *TOTPReplay) Seen(subject, code string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	until, ok := r.used[subject+"\x00"+code]
	return ok && now.Before(until)
}

// Use records that subject signed in with code at now; it reports false (and records
// nothing) when the code was already used, so two sign-ins racing with one code cannot
// both succeed.
func (r *TOTPReplay) Use(subject, code string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := subject + "\x00" + code
	if until, ok := r.used[k]; ok && now.Before(until) {
		return false
	}
	for k, until := range r.used {
		if !now.Before(until) {
			delete(r.used, k)
		}
	}
	r.used[k] = now.Add(TOTPReplayWindow)
	return true
}
