package links

import (
	"strings"
	"testing"
)

func TestCleanName(t *testing.T) {
	for in, want := range map[string]string{
		"  Den TV ":                           "Den TV",
		strings.Repeat("x", 64):               strings.Repeat("x", 64),
		"Télé du salon":                       "Télé du salon",
		"\u00a0Kitchen\u00a0":                 "Kitchen",
		strings.Repeat("界", 64) + "  ":        strings.Repeat("界", 64),
		"Den \u00a0  TV":                      "Den TV",
		strings.Repeat("x ", 40)[:64] + "   ": strings.Repeat("x ", 32)[:63],
	} {
		if got, err := CleanName(in); err != nil || got != want {
			t.Errorf("CleanName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "   ", strings.Repeat("x", 65), "a\nb", "a\x00b", "a\u202eb", "a\u200bb", "\xff",
		"a\u2028b", "a\u2029b", "a\u0085b", "\u2066a\u2069", "a\ufeff", "\x1b[31ma", "a\tb", "a\ufffdb"} {
		if got, err := CleanName(bad); err == nil {
			t.Errorf("CleanName(%q) = %q, want an error", bad, got)
		}
	}
}

func TestLabel(t *testing.T) {
	for in, want := range map[string]string{
		"  Den TV ":                            "Den TV",
		"Den TV \u202e(krowten ruoy)":          "Den TV (krowten ruoy)",
		"Den\u200bTV":                          "DenTV",
		"Den TV\u2028Approved":                 "Den TV Approved",
		"Den TV\u2029\u0085 Approved":          "Den TV Approved",
		"\u2066Den\u2069 \u2067TV\u2069\ufeff": "Den TV",
		"\x1b[31mRed\x1b[0m":                   "[31mRed[0m",
		"a\tb\r\nc\x00d":                       "a b cd",
		"Bad\xffUTF-8":                         "BadUTF-8",
		"Télé du salon":                        "Télé du salon",
		"\u200b\u202e \u2028":                  "",
		strings.Repeat("W", 500):               strings.Repeat("W", MaxNameLen),
		strings.Repeat("界", 70):                strings.Repeat("界", MaxNameLen),
		strings.Repeat("x", 63) + " y":         strings.Repeat("x", 63),
	} {
		got := Label(in)
		if got != want {
			t.Errorf("Label(%q) = %q, want %q", in, got, want)
		}
		// A label that passes the rule is a name a person could have typed.
		if got != "" {
			if typed, err := CleanName(got); err != nil || typed != got {
				t.Errorf("CleanName(Label(%q)) = %q, %v", in, typed, err)
			}
		}
	}
}

func FuzzLabel(f *testing.F) {
	for _, s := range []string{"", "Den TV", "a\u202eb", "a\u2028\u0085b", "\xff\xfe", strings.Repeat("界 ", 40)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Label(s)
		if got == "" {
			return
		}
		if typed, err := CleanName(got); err != nil || typed != got {
			t.Fatalf("Label(%q) = %q, which CleanName answers %q, %v", s, got, typed, err)
		}
		if Label(got) != got {
			t.Fatalf("Label is not idempotent on %q", s)
		}
	})
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
