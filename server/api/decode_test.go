package api

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// checkName asserts what every accepted name must satisfy.
func checkName(t *testing.T, name string) {
	t.Helper()
	if name != strings.TrimSpace(name) || name == "" || utf8.RuneCountInString(name) > MaxDeviceNameLen || !utf8.ValidString(name) {
		t.Fatalf("accepted bad name %q", name)
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			t.Fatalf("accepted control character in %q", name)
		}
	}
}

func FuzzDecodeApprove(f *testing.F) {
	for _, s := range []string{"", " ", "{}", `{"device_name":"TV"}`, `{"device_name":""}`, `{"device_name":"a\u0000b"}`,
		`{"device_name":"  x  "}`, `{"device_name":5}`, `null`, `{} {}`, `{"device_name":"\u202e"}`, "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		req, err := decodeApprove(strings.NewReader(body))
		if err != nil {
			if req.DeviceName != "" {
				t.Fatalf("error %v with a name %q", err, req.DeviceName)
			}
			return
		}
		if req.DeviceName != "" {
			checkName(t, req.DeviceName)
		}
	})
}

func FuzzDecodeRename(f *testing.F) {
	for _, s := range []string{`{"name":"Den TV"}`, `{"name":""}`, `{"name":"\t"}`, `{"name":"` + strings.Repeat("é", 65) + `"}`,
		`{"name":"x"}junk`, `[]`, ``, `{"name":"\ud800"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		req, err := decodeRename(strings.NewReader(body))
		if err != nil {
			return
		}
		checkName(t, req.Name)
	})
}

func TestValidateDeviceName(t *testing.T) {
	for in, want := range map[string]string{
		"  Den TV ":                    "Den TV",
		strings.Repeat("x", 64):        strings.Repeat("x", 64),
		"Télé du salon":                "Télé du salon",
		"\u00a0Kitchen\u00a0":          "Kitchen",
		strings.Repeat("界", 64) + "  ": strings.Repeat("界", 64),
	} {
		if got, err := ValidateDeviceName(in); err != nil || got != want {
			t.Errorf("ValidateDeviceName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "   ", strings.Repeat("x", 65), "a\nb", "a\x00b", "a\u202eb", "a\u200bb", "\xff"} {
		if got, err := ValidateDeviceName(bad); err == nil {
			t.Errorf("ValidateDeviceName(%q) = %q, want an error", bad, got)
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
