package linkd_test

import (
	"context"
	"database/sql"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest"
)

// TestPendingPollsDoNotWrite: a thousand polls of a pending code leave the database
// untouched — SQLite's data_version, seen from a connection of our own, changes only
// when another connection commits — and an approval right after does change it, so the
// check can fail.
func TestPendingPollsDoNotWrite(t *testing.T) {
	var logs syncBuffer
	in := linkdtest.Start(t, linkdtest.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	jan := in.CreateUser(t, "jan", "pw")
	da, err := deviceConfig(in, devices.KioskClientID).DeviceAuth(in.Context(context.Background()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	raw, err := sql.Open("sqlite", "file:"+filepath.Join(in.Dir, "linkd.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	conn, err := raw.Conn(ctx) // data_version is per connection: keep one
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	version := func() int64 {
		t.Helper()
		var v int64
		if err := conn.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	before := version()
	answers := map[string]int{}
	for range 1000 {
		answers[tokenRequest(t, in, devices.KioskClientID, da.DeviceCode)]++
	}
	if answers["authorization_pending"]+answers["slow_down"] != 1000 {
		t.Fatalf("answers %v, want only authorization_pending and slow_down", answers)
	}
	if after := version(); after != before {
		t.Fatalf("1,000 pending polls wrote to the database (data_version %d → %d)", before, after)
	}
	// Counted, not logged.
	got := in.Server.Provider().PollAnswers()
	if got.Pending != int64(answers["authorization_pending"]) || got.SlowDown != int64(answers["slow_down"]) {
		t.Fatalf("PollAnswers = %+v, answers seen %v", got, answers)
	}
	if strings.Contains(logs.String(), "authorization_pending") || strings.Contains(logs.String(), "slow_down") {
		t.Fatalf("routine answers were logged:\n%s", logs.String())
	}
	approve(t, in, da.UserCode, jan.Subject)
	if version() == before {
		t.Fatal("an approval did not change data_version: the check cannot see writes")
	}
	t.Logf("1,000 polls: %v, no write", answers)
}
