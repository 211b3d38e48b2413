package web

import (
	"crypto/subtle"
	"strings"
	"sync"
	"time"

	"github.com/linkdesk/linkdesk/server/accounts"
)

// checkPassword is the default PasswordVerifier: argon2id through server/accounts,
// spending the same time on an unknown username.
func checkPassword(hash, password string) bool {
	if hash == "" {
		return accounts.CheckNoUser(password)
	}
	return accounts.CheckPassword(hash, password)
}

// totpChecker is the default TOTPVerifier. It accepts the code of the current 30-second
// step or one step either side (clock drift), and accepts each step only once per
// account, so a code seen over someone's shoulder cannot be replayed (RFC 6238 §5.2).
// The used steps are kept in memory, per process.
type totpChecker struct {
	mu   sync.Mutex
	last map[string]int64 // subject -> last accepted step
}

func newTOTPChecker() *totpChecker { return &totpChecker{last: map[string]int64{}} }

func (c *totpChecker) check(subject, secret, code string, now time.Time) bool {
	code = strings.ReplaceAll(code, " ", "")
	if len(code) != accounts.TOTPDigits {
		return false
	}
	period := int64(accounts.TOTPPeriod / time.Second)
	step := now.Unix() / period
	matched := int64(-1)
	for _, s := range []int64{step - 1, step, step + 1} {
		want, err := accounts.TOTPCode(secret, time.Unix(s*period, 0))
		if err != nil {
			return false
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			matched = s
		}
	}
	if matched < 0 {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if last, seen := c.last[subject]; seen && matched <= last {
		return false
	}
	c.last[subject] = matched
	return true
}
