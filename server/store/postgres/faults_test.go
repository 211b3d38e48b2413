package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linkdesk/linkdesk/server/store"
)

// A server that cannot be reached is a fault that may pass: store.ErrUnavailable.
func TestUnreachableIsUnavailable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = Open(ctx, "postgres://postgres@"+addr+"/x?sslmode=disable&connect_timeout=5")
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Open on a closed port: %v, want store.ErrUnavailable", err)
	}
}

// A read-only database (a standby, or default_transaction_read_only) refuses writes
// with a fault that may pass, and still answers reads.
func TestReadOnlyIsUnavailable(t *testing.T) {
	db, u := openTemp(t)
	ctx := context.Background()
	if err := db.CreateUser(ctx, store.User{Subject: "s1", Username: "one"}); err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(mustParse(t, u).Path, "/")
	if _, err := db.db.ExecContext(ctx, `ALTER DATABASE `+name+` SET default_transaction_read_only = on`); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	ro, err := openExisting(t, u, WithLogger(slog.New(slog.NewTextHandler(&logs, nil)))) // new connections take the setting
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		err = ro.CreateUser(ctx, store.User{Subject: fmt.Sprint("s", i+2), Username: fmt.Sprint("u", i)})
		if !errors.Is(err, store.ErrUnavailable) || pgCode(err) != "25006" {
			t.Fatalf("write to a read-only database: %v, want store.ErrUnavailable (25006)", err)
		}
	}
	if n := logs.count("level=ERROR", "read-only"); n != 1 {
		t.Errorf("%d ERROR lines for 5 writes refused by a read-only database, want 1:\n%s", n, logs.String())
	}
	if _, err := ro.UserByUsername(ctx, "one"); err != nil {
		t.Fatalf("read from a read-only database: %v", err)
	}
}

// Connections the server drops (an administrator's pg_terminate_backend, a restart)
// fail at most the requests that were using them, as store.ErrUnavailable, and the
// store reconnects by itself.
func TestTerminatedConnectionsReconnect(t *testing.T) {
	db, _ := openTemp(t)
	ctx := context.Background()
	if err := db.CreateUser(ctx, store.User{Subject: "s1", Username: "one"}); err != nil {
		t.Fatal(err)
	}
	// Terminate every other connection to this database (the store's idle ones).
	if _, err := db.db.ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND pid != pg_backend_pid()`); err != nil {
		t.Fatal(err)
	}
	ok := 0
	for range 40 { // more than the pool's idle connections, each possibly dead
		_, err := db.UserByUsername(ctx, "one")
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, store.ErrUnavailable):
			t.Fatalf("read after the server dropped connections: %v, want success or store.ErrUnavailable", err)
		}
	}
	if ok == 0 {
		t.Fatal("the store never reconnected")
	}
	if err := db.CreateUser(ctx, store.User{Subject: "s2", Username: "two"}); err != nil {
		t.Fatalf("write after reconnecting: %v", err)
	}
}

func mustParse(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

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

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// count is how many lines hold every one of subs.
func (s *syncBuffer) count(subs ...string) int {
	n := 0
	for _, l := range strings.Split(s.String(), "\n") {
		all := true
		for _, sub := range subs {
			all = all && strings.Contains(l, sub)
		}
		if all && l != "" {
			n++
		}
	}
	return n
}

// openExisting opens another store on the database at u.
func openExisting(t *testing.T, u string, opt ...Option) (*DB, error) {
	t.Helper()
	db, err := Open(context.Background(), u, opt...)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { db.Close() })
	return db, nil
}
