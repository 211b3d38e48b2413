package accounts

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// TOTP parameters (RFC 6238 defaults, as authenticator apps expect): HMAC-SHA1,
// 6 digits, 30-second steps; one step either side is accepted for clock drift.
const (
	TOTPDigits = 6
	TOTPPeriod = 30 * time.Second
	totpSkew   = 1
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewTOTPSecret returns a fresh 160-bit secret, base32 without padding.
func NewTOTPSecret() (string, error) {
	k := make([]byte, 20)
	if _, err := rand.Read(k); err != nil {
		return "", err
	}
	return b32.EncodeToString(k), nil
}

// decodeSecret accepts base32 with or without padding, any case, spaces ignored.
func decodeSecret(secret string) ([]byte, error) {
	s := strings.ToUpper(strings.ReplaceAll(secret, " ", ""))
	s = strings.TrimRight(s, "=")
	return b32.DecodeString(s)
}

// HOTP computes the RFC 4226 one-time password of key at counter with digits digits.
func HOTP(key []byte, counter uint64, digits int) string {
	mac := hmac.New(sha1.New, key)
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	mac.Write(msg[:])
	sum := mac.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	code := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	mod := uint32(1)
	for range digits {
		mod *= 10
	}
	return fmt.Sprintf("%0*d", digits, code%mod)
}

// TOTPCode returns the code for the base32 secret at t.
func TOTPCode(secret string, t time.Time) (string, error) {
	key, err := decodeSecret(secret)
	if err != nil {
		return "", err
	}
	return HOTP(key, uint64(t.Unix())/uint64(TOTPPeriod/time.Second), TOTPDigits), nil
}

// CheckTOTP reports whether code is valid for the base32 secret at now, allowing one
// step of clock drift either way. Spaces in code are ignored.
func CheckTOTP(secret, code string, now time.Time) bool {
	_, ok := MatchTOTP(secret, code, now)
	return ok
}

// MatchTOTP is CheckTOTP that also returns the time step whose code matched, for the
// replay guard (store.UseTOTPStep): a step once used signs in no more.
func MatchTOTP(secret, code string, now time.Time) (int64, bool) {
	key, err := decodeSecret(secret)
	if err != nil || len(key) == 0 {
		return 0, false
	}
	code = strings.ReplaceAll(code, " ", "")
	if len(code) != TOTPDigits {
		return 0, false
	}
	step := TOTPStep(now)
	var matched int64
	ok := 0
	for d := -totpSkew; d <= totpSkew; d++ {
		want := HOTP(key, uint64(step+int64(d)), TOTPDigits)
		eq := subtle.ConstantTimeCompare([]byte(want), []byte(code))
		matched = int64(subtle.ConstantTimeSelect(eq, int(step+int64(d)), int(matched)))
		ok |= eq
	}
	return matched, ok == 1
}

// TOTPStep is the RFC 6238 time step of t.
func TOTPStep(t time.Time) int64 { return t.Unix() / int64(TOTPPeriod/time.Second) }

// TOTPURI returns the otpauth:// URI an authenticator app scans to add the account.
func TOTPURI(issuer, account, secret string) string {
	label := url.PathEscape(issuer + ":" + account)
	q := url.Values{}
	q.Set("secret", secret)
	q.Set("issuer", issuer)
	q.Set("algorithm", "SHA1")
	q.Set("digits", fmt.Sprint(TOTPDigits))
	q.Set("period", fmt.Sprint(int(TOTPPeriod/time.Second)))
	return "otpauth://totp/" + label + "?" + q.Encode()
}
