package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A --geoip-db (or $LINKD_GEOIP_DB) that is not a location database stops linkd at
// start with a message naming the flag, rather than serving without places.
func TestGeoIPFlagRefusesOtherFiles(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "city.mmdb")
	if err := os.WriteFile(bad, []byte("not a database"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCmd(t, "", "serve", "--data", t.TempDir(), "--addr", "127.0.0.1:0", "--geoip-db", bad)
	if code != exitFail || !strings.Contains(errOut, "--geoip-db") {
		t.Fatalf("bad --geoip-db: %d %q", code, errOut)
	}
	t.Setenv("LINKD_GEOIP_DB", filepath.Join(t.TempDir(), "missing.mmdb"))
	code, _, errOut = runCmd(t, "", "serve", "--data", t.TempDir(), "--addr", "127.0.0.1:0")
	if code != exitFail || !strings.Contains(errOut, "--geoip-db") {
		t.Fatalf("missing $LINKD_GEOIP_DB: %d %q", code, errOut)
	}
}
