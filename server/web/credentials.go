package web

import (
	"sync"
	"time"

	"github.com/linkdesk/linkdesk/server/accounts"
)

// checkTOTP is the default TOTPVerifier: RFC 6238 through server/accounts, one 30-second
// step of drift either way.
func checkTOTP(_, secret, code string, now time.Time) bool {
	return accounts.CheckTOTP(secret, code, now)
}

// totpReplay refuses a one-time code that already signed an account in while it could
// still be valid, whichever TOTPVerifier is configured, so a code seen over someone's
// shoulder cannot be used again (RFC 6238 §5.2). It is in memory, per process.
type totpReplay struct {
	mu   sync.Mutex
	used map[string]time.Time // subject + "\x00" + code -> until when it is refused
}

// replayWindow covers every step a code can be accepted in: the current one and one
// either side.
const replayWindow = 3 * accounts.TOTPPeriod

func newTOTPReplay() *totpReplay { return &totpReplay{used: map[string]time.Time{}} }

// seen reports whether subject already used code within the window.
func (r *totpReplay) seen(subject, code string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	until, ok := r.used[subject+"\x00"+code]
	return ok && now.Before(until)
}

// use records that subject signed in with code at now.
func (r *totpReplay) use(subject, code string, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, until := range r.used {
		if !now.Before(until) {
			delete(r.used, k)
		}
	}
	r.used[subject+"\x00"+code] = now.Add(replayWindow)
}
