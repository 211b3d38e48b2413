package sqlite

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/linkdesk/linkdesk/server/store"
)

// syncBuffer is a log sink tests read while the store writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines(level, substr string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, l := range strings.Split(s.b.String(), "\n") {
		if strings.Contains(l, "level="+level) && strings.Contains(l, substr) {
			n++
		}
	}
	return n
}

func openLogged(t *testing.T) (*DB, string, *syncBuffer) {
	t.Helper()
	var buf syncBuffer
	path := filepath.Join(t.TempDir(), "linkd.db")
	db, err := Open(context.Background(), path, WithLogger(slog.New(slog.NewTextHandler(&buf, nil))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path, &buf
}

// writeFailure is one small write transaction.
func writeFailure(db *DB, key string) error {
	_, err := db.AddFailure(context.Background(), key, t0, t0.Add(-time.Hour))
	return err
}

// wantUnavailable checks that err wraps store.ErrUnavailable and still carries the
// SQLite error with the primary code want.
func wantUnavailable(t *testing.T, err error, want int) {
	t.Helper()
	var se *sqlite.Error
	if !errors.Is(err, store.ErrUnavailable) || !errors.As(err, &se) || se.Code()&0xff != want {
		t.Fatalf("err = %v, want store.ErrUnavailable around SQLite code %d", err, want)
	}
}

// TestDiskFullLoggedOnce fills the database to its page limit (SQLite answers
// SQLITE_FULL exactly as for a full disk): every failed write wraps
// store.ErrUnavailable, the ERROR line saying what to do appears once however many
// writes fail, and once space is back one INFO line says writes work again.
func TestDiskFullLoggedOnce(t *testing.T) {
	ctx := context.Background()
	db, path, log := openLogged(t)
	var pages int
	if err := db.write.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if _, err := db.write.ExecContext(ctx, `PRAGMA max_page_count = `+strconv.Itoa(pages)); err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 8000) // needs new pages
	fails := 0
	for i := range 5 {
		err := writeFailure(db, big+strconv.Itoa(i))
		if err == nil {
			continue
		}
		wantUnavailable(t, err, sqlite3.SQLITE_FULL)
		fails++
	}
	if fails < 3 {
		t.Fatalf("only %d of 5 writes failed on a full database", fails)
	}
	if n := log.lines("ERROR", "the disk holding "+path+" is full: free space"); n != 1 {
		t.Fatalf("disk-full ERROR lines = %d after %d failed writes, want 1:\n%s", n, fails, log.b.String())
	}
	if n := log.lines("INFO", "work again"); n != 0 {
		t.Fatalf("recovery logged while still full:\n%s", log.b.String())
	}

	if _, err := db.write.ExecContext(ctx, `PRAGMA max_page_count = 1000000`); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := writeFailure(db, big+strconv.Itoa(i)); err != nil {
			t.Fatalf("write after space came back: %v", err)
		}
	}
	if n := log.lines("INFO", "writes to "+path+" work again"); n != 1 {
		t.Fatalf("recovery INFO lines = %d, want 1:\n%s", n, log.b.String())
	}
	if n := log.lines("ERROR", "is full"); n != 1 {
		t.Fatalf("disk-full ERROR lines = %d, want still 1", n)
	}

	// Space trickling back: full and working by turns. One WARN and one more INFO,
	// then silence, however often it flaps.
	for flap := range 3 {
		if err := db.write.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages); err != nil {
			t.Fatal(err)
		}
		if _, err := db.write.ExecContext(ctx, `PRAGMA max_page_count = `+strconv.Itoa(pages)); err != nil {
			t.Fatal(err)
		}
		wantUnavailable(t, writeFailure(db, big+"flap"+strconv.Itoa(flap)), sqlite3.SQLITE_FULL)
		if _, err := db.write.ExecContext(ctx, `PRAGMA max_page_count = 1000000`); err != nil {
			t.Fatal(err)
		}
		if err := writeFailure(db, big+"flap"+strconv.Itoa(flap)); err != nil {
			t.Fatal(err)
		}
	}
	if e, w, i := log.lines("ERROR", "is full"), log.lines("WARN", "is full"), log.lines("INFO", "work again"); e != 1 || w != 1 || i != 2 {
		t.Fatalf("after 3 flaps: %d ERROR, %d WARN, %d INFO lines; want 1, 1 and 2:\n%s", e, w, i, log.b.String())
	}
}

// TestReadOnlyLoggedOnce makes the writer read-only: writes wrap store.ErrUnavailable
// and one ERROR line says the file cannot be written.
func TestReadOnlyLoggedOnce(t *testing.T) {
	ctx := context.Background()
	db, path, log := openLogged(t)
	if _, err := db.write.ExecContext(ctx, `PRAGMA query_only = 1`); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		wantUnavailable(t, writeFailure(db, "k"+strconv.Itoa(i)), sqlite3.SQLITE_READONLY)
	}
	if n := log.lines("ERROR", path+" cannot be written"); n != 1 {
		t.Fatalf("read-only ERROR lines = %d, want 1:\n%s", n, log.b.String())
	}
	if _, err := db.write.ExecContext(ctx, `PRAGMA query_only = 0`); err != nil {
		t.Fatal(err)
	}
	if err := writeFailure(db, "ok"); err != nil {
		t.Fatal(err)
	}
	if n := log.lines("INFO", "work again"); n != 1 {
		t.Fatalf("recovery INFO lines = %d, want 1:\n%s", n, log.b.String())
	}
}

// TestRefusalsStayFinal checks that what is wrong with a request, not with the
// storage, is not made retryable: a duplicate stays ErrDuplicate, a missing row
// ErrNotFound.
func TestRefusalsStayFinal(t *testing.T) {
	ctx := context.Background()
	db, _ := openTemp(t)
	k := store.SigningKey{ID: "k1", Algorithm: "RS256", PrivateKeyPEM: []byte("pem"), CreatedAt: t0}
	if err := db.AddSigningKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	err := db.AddSigningKey(ctx, k)
	if !errors.Is(err, store.ErrDuplicate) || errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("duplicate key: %v", err)
	}
	_, err = db.UserBySubject(ctx, "nobody")
	if !errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("missing user: %v", err)
	}
	if unavailable(nil) != nil {
		t.Fatal("unavailable(nil) != nil")
	}
}
