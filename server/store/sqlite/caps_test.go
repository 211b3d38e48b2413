package sqlite

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/linkdesk/linkdesk/server/store"
)

// TestDeviceAuthCountsExact runs a mixed history of device authorizations (capped and
// uncapped creates at times in any order and with different windows, approvals,
// denials, purges) and checks that after a capped create device_auth_counts holds
// exactly what counting the rows for that create's time and window gives, and nothing
// else.
func TestDeviceAuthCountsExact(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "linkd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	r := rand.New(rand.NewPCG(1, 2))
	ips := []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"}
	clients := []string{"tv-app", "linkdesk-kiosk"}
	windows := []time.Duration{0, time.Minute, 10 * time.Minute}
	lifted := store.RequestCaps{PerIPRate: 1 << 20, PerClientRate: 1 << 20, PerIP: 1 << 20, PerClient: 1 << 20,
		Total: 1 << 20, Keep: 5 * time.Minute}
	n := 0
	create := func(at time.Time, window time.Duration, capped bool) {
		n++
		d := store.DeviceAuth{DeviceCode: fmt.Sprintf("device-code-%d", n), UserCode: fmt.Sprintf("CODE%04d", n),
			ClientID: clients[r.IntN(len(clients))], RequestIP: ips[r.IntN(len(ips))], CreatedAt: at,
			ExpiresAt: at.Add(time.Duration(1+r.IntN(10)) * time.Minute), Interval: 5 * time.Second}
		caps := lifted
		caps.Window = window
		if capped {
			err = db.CreateDeviceAuthCapped(ctx, d, caps)
		} else {
			err = db.CreateDeviceAuth(ctx, d)
		}
		if err != nil {
			t.Fatalf("create %d: %v", n, err)
		}
	}
	for range 200 {
		at := base.Add(time.Duration(r.IntN(30*60)) * time.Second)
		switch op := r.IntN(100); {
		case op < 70:
			create(at, windows[r.IntN(len(windows))], true)
		case op < 75:
			create(at, 0, false)
		case op < 85 && n > 0:
			_, err := db.ApproveDeviceAuth(ctx, fmt.Sprintf("CODE%04d", 1+r.IntN(n)), "sub-1", "", at)
			if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrExpired) && !errors.Is(err, store.ErrAlreadyUsed) {
				t.Fatalf("approve: %v", err)
			}
		case op < 95 && n > 0:
			err := db.DenyDeviceAuth(ctx, fmt.Sprintf("CODE%04d", 1+r.IntN(n)), "sub-1", at)
			if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrExpired) && !errors.Is(err, store.ErrAlreadyUsed) {
				t.Fatalf("deny: %v", err)
			}
		case op >= 97:
			if err := db.Purge(ctx, at.Add(-10*time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
		if r.IntN(20) > 0 {
			continue
		}
		// Now and then, check the counts for a capped create's time and window.
		window := windows[r.IntN(len(windows))]
		create(at, window, true)
		checkDeviceAuthCounts(t, db, at, window)
	}
}

// checkDeviceAuthCounts compares device_auth_counts with the rows' own counts at now
// and window.
func checkDeviceAuthCounts(t *testing.T, db *DB, now time.Time, window time.Duration) {
	t.Helper()
	ctx := context.Background()
	want := map[string]int{}
	rows, err := db.read.QueryContext(ctx, `
		SELECT 'waiting ip', request_ip, COUNT(*) FROM device_auths WHERE state = 'pending' AND expires_at > ?1 GROUP BY request_ip
		UNION ALL SELECT 'waiting client', client_id, COUNT(*) FROM device_auths WHERE state = 'pending' AND expires_at > ?1 GROUP BY client_id
		UNION ALL SELECT 'waiting', '', COUNT(*) FROM device_auths WHERE state = 'pending' AND expires_at > ?1 HAVING COUNT(*) > 0
		UNION ALL SELECT 'rate ip', request_ip, COUNT(*) FROM device_auths WHERE created_at > ?2 GROUP BY request_ip
		UNION ALL SELECT 'rate client', client_id, COUNT(*) FROM device_auths WHERE created_at > ?2 GROUP BY client_id`,
		ts(now), ts(now.Add(-window)))
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var kind, key string
		var n int
		if err := rows.Scan(&kind, &key, &n); err != nil {
			t.Fatal(err)
		}
		want[kind+" "+key] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	got := map[string]int{}
	rows, err = db.read.QueryContext(ctx, `SELECT kind, key, n FROM device_auth_counts`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var kind, key string
		var n int
		if err := rows.Scan(&kind, &key, &n); err != nil {
			t.Fatal(err)
		}
		got[kind+" "+key] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	for k, n := range want {
		if got[k] != n {
			t.Errorf("at %v, window %v: count %q = %d, want %d", now, window, k, got[k], n)
		}
	}
	for k, n := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("at %v, window %v: count %q = %d, want none", now, window, k, n)
		}
	}
}
