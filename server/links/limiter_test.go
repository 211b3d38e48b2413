package links_test

import (
	"testing"

	"github.com/linkdesk/linkdesk/server/links"
)

// Sign-in counters: IPv6 per /64 (IPv4-mapped as IPv4), usernames without case, the
// one-time-code step sharing the address bound of the password step.
func TestSignInLimitKeys(t *testing.T) {
	a := links.SignInLimits("Alice", "2001:db8:1:2::10")
	b := links.SignInLimits(" alice", "2001:db8:1:2:ffff::1")
	for i := range a {
		if a[i].Key != b[i].Key {
			t.Errorf("limit %d: %q and %q differ within one /64", i, a[i].Key, b[i].Key)
		}
	}
	c := links.SignInLimits("alice", "2001:db8:1:3::10")
	if c[0].Key == a[0].Key || c[2].Key == a[2].Key {
		t.Errorf("another /64 shares keys: %q %q", c[0].Key, c[2].Key)
	}
	if c[1].Key != a[1].Key {
		t.Errorf("the account key depends on the address: %q %q", c[1].Key, a[1].Key)
	}
	if m, v := links.SignInLimits("x", "::ffff:192.0.2.1"), links.SignInLimits("x", "192.0.2.1"); m[2].Key != v[2].Key {
		t.Errorf("IPv4-mapped %q, IPv4 %q", m[2].Key, v[2].Key)
	}
	otp := links.OneTimeCodeLimits("sub1", "2001:db8:1:2::99")
	if otp[1].Key != a[2].Key {
		t.Errorf("one-time codes count on %q, passwords on %q", otp[1].Key, a[2].Key)
	}
}
