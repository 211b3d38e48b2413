package web

import (
	"time"

	"github.com/linkdesk/linkdesk/server/accounts"
)

// checkTOTP is the default TOTPVerifier: RFC 6238 through server/accounts, one 30-second
// step of drift either way.
func checkTOTP(_, secret, code string, now time.Time) bool {
	return accounts.CheckTOTP(secret, code, now)
}
