package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// walSize is the size of path's WAL file, 0 when there is none.
func walSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path + "-wal")
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestWALBounded lets a long reader hold the WAL back while many writes grow it well
// past the limit, as a slow reader or a burst would in service. Once the reader is
// gone, further writes checkpoint and cut the WAL back under the limit
// (journal_size_limit), and Purge's checkpoint empties it.
func TestWALBounded(t *testing.T) {
	ctx := context.Background()
	const limit = 256 << 10
	path := filepath.Join(t.TempDir(), "linkd.db")
	db, err := Open(ctx, path, WithWALLimit(limit))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	payload := strings.Repeat("w", 2000)
	write := func(i int) {
		t.Helper()
		if _, err := db.write.ExecContext(ctx, `INSERT INTO failures (key, at) VALUES (?, ?)`,
			payload+time.Duration(i).String(), ts(t0)); err != nil {
			t.Fatal(err)
		}
	}

	// A reader's snapshot keeps every frame in the WAL.
	rtx, err := db.read.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := rtx.QueryRowContext(ctx, `SELECT COUNT(*) FROM failures`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	i := 0
	for ; walSize(t, path) < 3*limit; i++ {
		write(i)
	}
	grown := walSize(t, path)
	rtx.Rollback()

	// Without the reader, automatic checkpoints reset the WAL and the restart cuts
	// the file back.
	var most int64
	for range 200 {
		write(i)
		i++
		most = walSize(t, path)
	}
	if most > limit {
		t.Fatalf("WAL is %d bytes after the reader left and 200 more writes, want at most %d (it had grown to %d)", most, limit, grown)
	}

	if err := db.Purge(ctx, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if s := walSize(t, path); s != 0 {
		t.Fatalf("WAL is %d bytes after Purge, want 0 (truncated by its checkpoint)", s)
	}
	t.Logf("WAL grew to %d bytes behind a reader, then stayed at or below %d; %d writes", grown, limit, i)
}

// TestPurgeBatches purges several batches' worth of expired rows from each table it
// cleans, in a data set where live rows are mixed in: every expired row goes, every
// live one stays.
func TestPurgeBatches(t *testing.T) {
	ctx := context.Background()
	db, _ := openTemp(t)
	const expired, live = 2*purgeBatch + 123, 40
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range expired + live {
		at := t0
		if i%29 == 0 && i < 29*live { // live rows spread among the expired ones
			at = t0.Add(2 * time.Hour)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO failures (key, at) VALUES (?, ?)`, "k", ts(at)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	for i := range expired {
		a := deviceAuth(i)
		a.ExpiresAt = t0.Add(-time.Minute)
		if err := db.CreateDeviceAuth(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	for i := range live {
		a := deviceAuth(expired + i)
		a.ExpiresAt = t0.Add(2 * time.Hour)
		if err := db.CreateDeviceAuth(ctx, a); err != nil {
			t.Fatal(err)
		}
	}

	if err := db.Purge(ctx, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"failures", "device_auths"} {
		var n int
		if err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != live {
			t.Errorf("%s: %d rows left after purging %d expired of %d, want the %d live ones", table, n, expired, expired+live, live)
		}
	}
}
