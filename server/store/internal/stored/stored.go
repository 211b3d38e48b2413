// Package stored is the stored form of linkd's values that every store.Store backend
// shares, so the SQLite and PostgreSQL stores keep the same things hashed, encrypted
// and rounded the same way: times as UTC unix nanoseconds, secrets the store must find
// but never show as SHA-256, and TOTP secrets and signing keys sealed with the secrets
// key (see Sealer).
package stored

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// Unix nanoseconds in an int64 cover 1678 to 2262; times outside are clamped to these
// bounds (a "never expires" far-future time stays far in the future).
var (
	minTime = time.Unix(0, math.MinInt64+1).UTC()
	maxTime = time.Unix(0, math.MaxInt64).UTC()
)

// Nanos is the stored form of a time: UTC unix nanoseconds, 0 for the zero time.
func Nanos(t time.Time) int64 {
	switch {
	case t.IsZero():
		return 0
	case t.After(maxTime):
		return math.MaxInt64
	case t.Before(minTime):
		return math.MinInt64 + 1
	}
	return t.UnixNano()
}

// Time is the inverse of Nanos; times come back in UTC.
func Time(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// Hash is the stored form of a secret the store looks up but never shows (device
// codes, refresh tokens, auth codes, session ids): lowercase hex SHA-256.
func Hash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// AccessID is the stored form of an access-token id: its Hash, and "" for "".
func AccessID(id string) string {
	if id == "" {
		return ""
	}
	return Hash(id)
}

// NewID returns a new link's identifier: 32 hex digits, the first 12 the time in
// milliseconds and the other 20 random (80 bits). Ids made one after another sort
// one after another, so a new link joins the end of the primary key's index instead
// of dirtying a random page of it, in either store; the time it tells is the link's
// linked_at, which its owner sees anyway, and 80 random bits a millisecond keep ids
// unique and unguessable.
func NewID() string {
	var b [16]byte
	ms := uint64(time.Now().UnixMilli())
	for i := range 6 {
		b[i] = byte(ms >> (8 * (5 - i)))
	}
	rand.Read(b[6:]) // never fails (crypto/rand documents it panics on failure instead)
	return hex.EncodeToString(b[:])
}

// List is the stored form of a string list: a JSON array, never null.
func List(s []string) string {
	if len(s) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(s) // marshalling []string cannot fail
	return string(b)
}

// Unlist is the inverse of List; an empty list comes back as nil.
func Unlist(s string) ([]string, error) {
	var out []string
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, fmt.Errorf("store: decode list: %w", err)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}
