package links

import (
	"strings"
	"testing"
)

func TestCleanName(t *testing.T) {
	for in, want := range map[string]string{
		"  Den TV ":                    "Den TV",
		strings.Repeat("x", 64):        strings.Repeat("x", 64),
		"Télé du salon":                "Télé du salon",
		"\u00a0Kitchen\u00a0":          "Kitchen",
		strings.Repeat("界", 64) + "  ": strings.Repeat("界", 64),
	} {
		if got, err := CleanName(in); err != nil || got != want {
			t.Errorf("CleanName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "   ", strings.Repeat("x", 65), "a\nb", "a\x00b", "a\u202eb", "a\u200bb", "\xff"} {
		if got, err := CleanName(bad); err == nil {
			t.Errorf("CleanName(%q) = %q, want an error", bad, got)
		}
	}
}

func TestSameNetwork(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"192.0.2.10", "192.0.2.10", true},
		{"192.0.2.10", "192.0.2.200", true},
		{"192.0.2.10:5555", "192.0.2.11", true},
		{"192.0.2.10", "192.0.3.10", false},
		{"127.0.0.1", "::1", true},
		{"::ffff:192.0.2.1", "192.0.2.9", true},
		{"2001:db8:1:2::1", "2001:db8:1:2:abcd::9", true},
		{"[2001:db8:1:2::1]:443", "2001:db8:1:2::2", true},
		{"2001:db8:1:3::1", "2001:db8:1:2::1", false},
		{"192.0.2.1", "2001:db8::1", false},
		{"", "192.0.2.1", false},
		{"garbage", "garbage", false},
	} {
		if got := SameNetwork(tc.a, tc.b); got != tc.want {
			t.Errorf("SameNetwork(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestAddressKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1":          "ip:192.0.2.1",
		"::ffff:192.0.2.1":   "ip:192.0.2.1",
		"2001:db8:1:2::1":    "ip:2001:db8:1:2::/64",
		"2001:db8:1:2:ff::9": "ip:2001:db8:1:2::/64",
		"fe80::1%eth0":       "ip:fe80::/64",
	} {
		if got := AddressKey(in); got != want {
			t.Errorf("AddressKey(%q) = %q, want %q", in, got, want)
		}
	}
	if RetryAfterSeconds(1500*1e6) != "2" || RetryAfterSeconds(0) != "1" {
		t.Error("RetryAfterSeconds rounds up to whole seconds, at least 1")
	}
}
