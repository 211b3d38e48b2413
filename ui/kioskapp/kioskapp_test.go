package kioskapp

import (
	"testing"
)

// TestRunRefusesBadArguments checks that the kiosk stops with exit code 2, before any
// window opens, when its arguments can't make a device flow.
func TestRunRefusesBadArguments(t *testing.T) {
	for _, args := range [][]string{
		{},                                  // --issuer missing
		{"--no-such-flag"},                  // unknown flag
		{"--issuer", "http://link.example"}, // not https and not loopback
		{"--issuer", "https://x", "--client-id", ""}, // no client id
	} {
		if got := Run(args, "com.linkdesk.test"); got != 2 {
			t.Errorf("Run(%q) = %d, want 2", args, got)
		}
	}
}

func TestScopeFlagSplitsSpacesAndCommas(t *testing.T) {
	var s scopeFlag
	_ = s.Set("openid profile")
	_ = s.Set("offline_access,email")
	if got := s.String(); got != "openid profile offline_access email" {
		t.Fatalf("scopes %q", got)
	}
}
