package accounts

import (
	"encoding/base32"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestPasswordHashRoundTrip(t *testing.T) {
	h, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=65536,t=3,p=2$") {
		t.Fatalf("hash %q is not PHC argon2id", h)
	}
	if !CheckPassword(h, "correct horse") {
		t.Fatal("right password rejected")
	}
	if CheckPassword(h, "correct horsE") {
		t.Fatal("wrong password accepted")
	}
	h2, _ := HashPassword("correct horse")
	if h == h2 {
		t.Fatal("two hashes share a salt")
	}
	for _, bad := range []string{"", "$argon2id$", "$2a$10$abc", strings.Replace(h, "v=19", "v=1", 1)} {
		if CheckPassword(bad, "correct horse") {
			t.Fatalf("malformed hash %q matched", bad)
		}
	}
	if CheckNoUser("x") {
		t.Fatal("CheckNoUser returned true")
	}
}

// TestTOTPRFC6238Vectors checks the SHA-1 test vectors of RFC 6238 Appendix B
// (8-digit codes of the ASCII secret "12345678901234567890").
func TestTOTPRFC6238Vectors(t *testing.T) {
	key := []byte("12345678901234567890")
	vectors := []struct {
		unix int64
		want string
	}{
		{59, "94287082"},
		{1111111109, "07081804"},
		{1111111111, "14050471"},
		{1234567890, "89005924"},
		{2000000000, "69279037"},
		{20000000000, "65353130"},
	}
	for _, v := range vectors {
		if got := HOTP(key, uint64(v.unix/30), 8); got != v.want {
			t.Errorf("T=%d: got %s, want %s", v.unix, got, v.want)
		}
		// The 6-digit code apps show is the last six digits.
		secret := base32.StdEncoding.EncodeToString(key)
		code, err := TOTPCode(secret, time.Unix(v.unix, 0))
		if err != nil || code != v.want[2:] {
			t.Errorf("T=%d: TOTPCode = %q, %v; want %s", v.unix, code, err, v.want[2:])
		}
	}
}

func TestCheckTOTPWindow(t *testing.T) {
	secret, err := NewTOTPSecret()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1700000000, 0)
	for _, d := range []time.Duration{-30 * time.Second, 0, 30 * time.Second} {
		code, _ := TOTPCode(secret, now.Add(d))
		if !CheckTOTP(secret, code, now) {
			t.Errorf("code at %v rejected", d)
		}
	}
	for _, d := range []time.Duration{-90 * time.Second, 90 * time.Second} {
		code, _ := TOTPCode(secret, now.Add(d))
		if CheckTOTP(secret, code, now) && code != mustCode(t, secret, now) {
			t.Errorf("code at %v accepted", d)
		}
	}
	if CheckTOTP(secret, "", now) || CheckTOTP(secret, "12345", now) || CheckTOTP("!!", "123456", now) {
		t.Error("malformed input accepted")
	}
}

func mustCode(t *testing.T, secret string, at time.Time) string {
	c, err := TOTPCode(secret, at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTOTPURI(t *testing.T) {
	u, err := url.Parse(TOTPURI("linkd", "alice", "JBSWY3DPEHPK3PXP"))
	if err != nil {
		t.Fatal(err)
	}
	if u.Scheme != "otpauth" || u.Host != "totp" || u.Path != "/linkd:alice" {
		t.Fatalf("uri %v", u)
	}
	q := u.Query()
	if q.Get("secret") != "JBSWY3DPEHPK3PXP" || q.Get("digits") != "6" || q.Get("period") != "30" || q.Get("issuer") != "linkd" {
		t.Fatalf("query %v", q)
	}
}
