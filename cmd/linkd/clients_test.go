package main

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/linkdesk/linkdesk/server/store"
	"github.com/linkdesk/linkdesk/server/store/sqlite"
)

// TestClientsPolicyFlags: clients add stores every policy flag, clients update changes
// only the flags it is given, and clients list shows them all.
func TestClientsPolicyFlags(t *testing.T) {
	dir := t.TempDir()
	read := func() store.Client {
		t.Helper()
		db, err := sqlite.Open(context.Background(), filepath.Join(dir, "linkd.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		c, err := db.ClientByID(context.Background(), "kiosk")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	code, out, errOut := runCmd(t, "", "clients", "add", "--data", dir, "--id", "kiosk", "--name", "Shop Kiosk",
		"--device-flow=false", "--allow-network", "192.0.2.7/24", "--allow-network", "2001:db8::/32,198.51.100.9",
		"--approve-same-network", "--max-devices", "3", "--unlink-after", "720h")
	if code != 0 || !strings.Contains(out, "added client kiosk") || !strings.Contains(out, "at most 3 devices") {
		t.Fatalf("clients add: %d %q %q", code, out, errOut)
	}
	c := read()
	want := store.ClientPolicy{DeviceFlowOff: true, AllowedNetworks: []string{"192.0.2.0/24", "2001:db8::/32", "198.51.100.9/32"},
		ApproveSameNetwork: true, MaxDevices: 3, UnlinkAfter: 720 * time.Hour}
	if c.Policy.DeviceFlowOff != want.DeviceFlowOff || !slices.Equal(c.Policy.AllowedNetworks, want.AllowedNetworks) ||
		c.Policy.ApproveSameNetwork != want.ApproveSameNetwork || c.Policy.MaxDevices != want.MaxDevices ||
		c.Policy.UnlinkAfter != want.UnlinkAfter {
		t.Fatalf("stored policy = %+v, want %+v", c.Policy, want)
	}

	code, out, _ = runCmd(t, "", "clients", "list", "--data", dir)
	for _, w := range []string{"kiosk", "Shop Kiosk", "off", "192.0.2.0/24,2001:db8::/32,198.51.100.9/32", "same network", "3", "720h0m0s"} {
		if code != 0 || !strings.Contains(out, w) {
			t.Fatalf("clients list lacks %q: %d\n%s", w, code, out)
		}
	}

	// Only the flags given change.
	if code, out, errOut := runCmd(t, "", "clients", "update", "--data", dir, "--id", "kiosk", "--device-flow",
		"--max-devices", "0", "--allow-network", ""); code != 0 || !strings.Contains(out, "updated client kiosk") {
		t.Fatalf("clients update: %d %q %q", code, out, errOut)
	}
	c = read()
	if c.Policy.DeviceFlowOff || len(c.Policy.AllowedNetworks) != 0 || c.Policy.MaxDevices != 0 ||
		!c.Policy.ApproveSameNetwork || c.Policy.UnlinkAfter != 720*time.Hour || c.Name != "Shop Kiosk" ||
		!slices.Equal(c.Scopes, []string{"openid", "profile", "offline_access"}) {
		t.Fatalf("after update: %+v", c)
	}
	code, out, _ = runCmd(t, "", "clients", "list", "--data", dir)
	if code != 0 || !strings.Contains(out, "anywhere") || !strings.Contains(out, "no limit") || strings.Contains(out, "  off  ") {
		t.Fatalf("clients list after update:\n%s", out)
	}

	for _, bad := range [][]string{
		{"--allow-network", "not-a-net"},
		{"--max-devices", "-1"},
		{"--unlink-after", "5m"},
	} {
		args := append([]string{"clients", "update", "--data", dir, "--id", "kiosk"}, bad...)
		if code, _, errOut := runCmd(t, "", args...); code != exitUsage {
			t.Errorf("%q: exit %d (%s), want usage error", bad, code, errOut)
		}
	}
	if code, _, errOut := runCmd(t, "", "clients", "update", "--data", dir, "--id", "nope", "--max-devices", "1"); code != exitFail ||
		!strings.Contains(errOut, "no client") {
		t.Errorf("update of an unknown client: %d %q", code, errOut)
	}
}
