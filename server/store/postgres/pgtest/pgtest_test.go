package pgtest

import (
	"context"
	"database/sql"
	"os"
	"strings"
	"testing"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// Each test gets its own empty database on the one cluster: a table made in one is
// not seen in the other.
func TestFreshDatabases(t *testing.T) {
	ctx := context.Background()
	a, b := DB(t), DB(t)
	if a == b {
		t.Fatalf("two calls gave the same database %s", a)
	}
	da, err := sql.Open("pgx", a)
	if err != nil {
		t.Fatal(err)
	}
	defer da.Close()
	db, err := sql.Open("pgx", b)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := da.ExecContext(ctx, `CREATE TABLE only_in_a (x int)`); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM pg_tables WHERE tablename = 'only_in_a'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatal("a table made in one test database shows in another")
	}
	var user string
	if err := da.QueryRowContext(ctx, `SELECT current_setting('fsync')`).Scan(&user); err != nil || user != "off" {
		t.Fatalf("fsync = %q, %v; want off", user, err)
	}
}

// Without binaries where LINKD_PG_BIN points, findBin says so (DB then skips, or fails
// under CI=true) instead of searching elsewhere.
func TestMissingBinariesNamed(t *testing.T) {
	t.Setenv(BinEnv, t.TempDir())
	bin, why := findBin()
	if bin != "" || !strings.Contains(why, BinEnv) {
		t.Fatalf("findBin with an empty %s = %q, %q", BinEnv, bin, why)
	}
}

// Halt takes the server down (a query fails) and Resume brings it back on the same
// port with the data kept (the table made before is still there).
func TestHaltResume(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("pgx", DB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE TABLE kept (x int)`); err != nil {
		t.Fatal(err)
	}
	c := Shared(t)
	if err := c.Halt(); err != nil {
		t.Fatal(err)
	}
	_, downErr := db.ExecContext(ctx, `SELECT 1`)
	if err := c.Resume(); err != nil {
		t.Fatal(err)
	}
	if downErr == nil {
		t.Error("a query succeeded while the server was halted")
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM kept`).Scan(&n); err != nil {
		t.Fatalf("after Resume: %v", err)
	}
}
