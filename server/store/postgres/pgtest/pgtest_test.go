package pgtest

import (
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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

// A cluster whose test binary died without stopping it (killed by go test -timeout)
// is stopped and removed by the next binary that starts one; the clusters of running
// binaries, such as this one's, are left alone.
func TestOrphanReaped(t *testing.T) {
	ctx := context.Background()
	live := Shared(t)
	orphan, err := Start(live.bin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := os.Stat(orphan.dir); err == nil {
			orphan.Stop()
		}
	})
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(orphan.dir, ownerFile), []byte(strconv.Itoa(gone.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", orphan.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxIdleConns(0)
	if err := db.PingContext(ctx); err != nil {
		t.Fatalf("the orphan is not up before reaping: %v", err)
	}

	reapOrphans(live.bin, live.user)

	if _, err := os.Stat(orphan.dir); !os.IsNotExist(err) {
		t.Errorf("the orphan's directory %s is still there (%v)", orphan.dir, err)
	}
	if err := db.PingContext(ctx); err == nil {
		t.Error("the orphan still accepts connections after reaping")
	}
	if _, err := os.Stat(live.dir); err != nil {
		t.Fatalf("this binary's own cluster was removed: %v", err)
	}
	mine, err := sql.Open("pgx", DB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer mine.Close()
	if err := mine.PingContext(ctx); err != nil {
		t.Errorf("this binary's own cluster stopped answering: %v", err)
	}
}
