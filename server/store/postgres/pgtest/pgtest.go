// Package pgtest gives tests a real PostgreSQL: one private cluster per test binary,
// made with initdb in a temporary directory and started with pg_ctl on a free port of
// 127.0.0.1, and a fresh database per test, so tests stay independent and nothing
// outside the test binary is touched. The cluster runs as an unprivileged user when
// the tests run as root (PostgreSQL refuses root).
//
// A package using it calls Main from its TestMain (so the cluster is stopped when the
// tests end) and DB in each test:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
//	func TestX(t *testing.T) { url := pgtest.DB(t); ... }
//
// A cluster left running by a test binary that was killed (go test's -timeout runs no
// clean-up) is stopped and removed by the next binary that starts one (reapOrphans).
//
// When PostgreSQL is not installed the tests skip, saying so, unless CI=true in the
// environment: then they fail, so CI never passes without running them.
package pgtest

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

// BinEnv names an environment variable that may hold the directory of initdb and
// pg_ctl, when they are neither under /usr/lib/postgresql/*/bin nor on PATH.
const BinEnv = "LINKD_PG_BIN"

// Cluster is a running private PostgreSQL server.
type Cluster struct {
	dir  string // temporary directory: data, socket, log
	bin  string // directory of initdb, pg_ctl
	port int
	opts string // the server's options (pg_ctl -o), kept for Resume
	log  string // the server's log file
	user []string
	n    atomic.Int64 // databases made so far
}

var (
	mainRunning atomic.Bool
	once        sync.Once
	shared      *Cluster
	sharedErr   error
	missing     string // why PostgreSQL cannot be used here ("" when it can)
)

// Main runs the tests of m and stops the cluster, if one was started, afterwards. Call
// it from TestMain.
func Main(m *testing.M) int {
	mainRunning.Store(true)
	code := m.Run()
	if shared != nil {
		if err := shared.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: stop: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}

// DB makes a fresh, empty database on the test binary's cluster (starting the cluster
// on first use) and returns its connection URL; the database is dropped when the test
// ends, and the server's log lines written during the test are added to its output when
// it fails. It skips the test when PostgreSQL is not installed and CI is not "true".
func DB(t testing.TB) string {
	t.Helper()
	c := Shared(t)
	name := fmt.Sprintf("t%d_%d", os.Getpid(), c.n.Add(1))
	from := c.logSize()
	admin, err := c.admin()
	if err != nil {
		t.Fatalf("pgtest: %v%s", err, c.logTail(0))
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := admin.ExecContext(ctx, `CREATE DATABASE `+name); err != nil {
		t.Fatalf("pgtest: create database: %v%s", err, c.logTail(from))
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pgtest: server log during the test:%s", c.logTail(from))
		}
		admin, err := c.admin()
		if err != nil {
			t.Errorf("pgtest: drop database: %v", err)
			return
		}
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := admin.ExecContext(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			t.Errorf("pgtest: drop database: %v", err)
		}
	})
	return c.URL(name)
}

// Shared returns the test binary's cluster, starting it on first use; it skips or
// fails t as DB does when there is none.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	if !mainRunning.Load() {
		t.Fatal("pgtest: call pgtest.Main from the package's TestMain, so the cluster is stopped after the tests")
	}
	once.Do(func() {
		bin, why := findBin()
		if bin == "" {
			missing = why
			return
		}
		shared, sharedErr = Start(bin)
	})
	if missing != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("pgtest: PostgreSQL is required in CI (CI=true): %s", missing)
		}
		t.Skipf("pgtest: skipped, PostgreSQL is not installed (%s); run scripts/deps.sh or set %s", missing, BinEnv)
	}
	if sharedErr != nil {
		t.Fatalf("pgtest: start PostgreSQL: %v", sharedErr)
	}
	return shared
}

// findBin returns the directory holding initdb and pg_ctl, or "" and why not.
func findBin() (string, string) {
	has := func(dir string) bool {
		for _, p := range []string{"initdb", "pg_ctl", "postgres"} {
			if fi, err := os.Stat(filepath.Join(dir, p)); err != nil || fi.IsDir() {
				return false
			}
		}
		return true
	}
	if d := os.Getenv(BinEnv); d != "" {
		if has(d) {
			return d, ""
		}
		return "", BinEnv + "=" + d + " holds no initdb, pg_ctl and postgres"
	}
	// Debian's layout: /usr/lib/postgresql/VERSION/bin; the newest version wins.
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return versionOf(b) - versionOf(a) })
	for _, d := range dirs {
		if has(d) {
			return d, ""
		}
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil && has(filepath.Dir(real)) {
			return filepath.Dir(real), ""
		}
		if has(filepath.Dir(p)) {
			return filepath.Dir(p), ""
		}
	}
	return "", "no initdb and pg_ctl under /usr/lib/postgresql/*/bin or on PATH"
}

// versionOf is the major version in a /usr/lib/postgresql/VERSION/bin path (0 if none).
func versionOf(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// Start makes and starts a new cluster with the binaries in bin. The caller stops it.
// It trades durability for speed (fsync off), as tests may.
func Start(bin string) (*Cluster, error) { return start(bin, true) }

// StartDurable finds PostgreSQL's binaries and starts a new cluster that syncs its
// commits like a production server (fsync and synchronous_commit on), for measuring
// linkd on PostgreSQL next to SQLite (scripts/linkdbench). The caller stops it.
func StartDurable() (*Cluster, error) {
	bin, why := findBin()
	if bin == "" {
		return nil, errors.New("pgtest: " + why)
	}
	return start(bin, false)
}

// CreateDatabase makes an empty database called name and returns its URL.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) (string, error) {
	admin, err := c.admin()
	if err != nil {
		return "", err
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, `CREATE DATABASE `+name); err != nil {
		return "", fmt.Errorf("pgtest: create database %s: %w", name, err)
	}
	return c.URL(name), nil
}

func start(bin string, fast bool) (*Cluster, error) {
	var runAs []string
	uid, gid := -1, -1
	if os.Geteuid() == 0 {
		u, err := user.Lookup("nobody")
		if err != nil {
			return nil, fmt.Errorf("running as root and no user nobody to run PostgreSQL as: %w", err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		runAs = []string{"runuser", "-u", "nobody", "--"}
	}
	reapOnce.Do(func() { reapOrphans(bin, runAs) })
	dir, err := tempDir(runAs)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if uid >= 0 {
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("chown %s: %w", dir, err)
		}
	}
	c := &Cluster{dir: dir, bin: bin, log: filepath.Join(dir, "server.log"), user: runAs}
	data := filepath.Join(dir, "data")
	if out, err := c.run("initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
		"--locale=C", "--no-sync", "--no-instructions"); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	sock := filepath.Join(dir, "sock")
	if err := os.Mkdir(sock, 0o700); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if uid >= 0 {
		os.Chown(sock, uid, gid)
	}
	// A free port can be taken by someone else between our check and the server's
	// bind; try a few.
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		c.port = port
		settings := []string{
			"-c listen_addresses=127.0.0.1", "-p " + strconv.Itoa(port), "-k " + sock,
			"-c max_connections=300",
		}
		if fast {
			settings = append(settings, "-c shared_buffers=32MB", "-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off")
		}
		c.opts = strings.Join(settings, " ")
		// -w: pg_ctl returns once the server accepts connections (or has failed).
		out, err := c.run("pg_ctl", "-D", data, "-l", c.log, "-w", "-t", "120", "-o", c.opts, "start")
		if err == nil {
			return c, nil
		}
		lastErr = fmt.Errorf("pg_ctl start: %w\n%s%s", err, out, c.logTail(0))
		if !strings.Contains(lastErr.Error(), "could not bind") && !strings.Contains(lastErr.Error(), "in use") {
			break
		}
	}
	os.RemoveAll(dir)
	return nil, lastErr
}

// ownerFile, in a cluster's directory, holds the process id of the test binary that
// started it, so a later one can tell a cluster whose owner died without stopping it
// (a test binary killed by go test's -timeout runs no cleanup) from one in use.
const ownerFile = "owner"

// reapOnce makes each process look for orphaned clusters once, when it starts its
// first.
var reapOnce sync.Once

// clusterParents are the directories tempDir makes clusters under.
var clusterParents = []string{os.TempDir(), "/tmp", "/var/tmp", "/dev/shm"}

// reapOrphans stops the clusters whose owner (ownerFile) is no longer running, with
// the binaries in bin as the user runAs, and removes their directories, so a test
// binary that was killed does not leave a server running for good. A directory without
// an owner file is left alone: another test binary may be making it right now.
func reapOrphans(bin string, runAs []string) {
	seen := map[string]bool{}
	for _, parent := range clusterParents {
		dirs, _ := filepath.Glob(filepath.Join(parent, "pgtest-*"))
		for _, dir := range dirs {
			if seen[dir] {
				continue
			}
			seen[dir] = true
			b, err := os.ReadFile(filepath.Join(dir, ownerFile))
			if err != nil {
				continue
			}
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil || running(pid) {
				continue
			}
			orphan := &Cluster{dir: dir, bin: bin, user: runAs}
			if _, err := os.Stat(filepath.Join(dir, "data", "postmaster.pid")); err == nil {
				out, err := orphan.run("pg_ctl", "-D", filepath.Join(dir, "data"), "-w", "-m", "immediate", "stop")
				if _, still := os.Stat(filepath.Join(dir, "data", "postmaster.pid")); err != nil && still == nil {
					fmt.Fprintf(os.Stderr, "pgtest: stop the orphaned cluster in %s: %v\n%s", dir, err, out)
					continue
				}
			}
			os.RemoveAll(dir)
		}
	}
}

// running reports whether a process with id pid exists (signal 0 checks without
// sending anything). An id the system has given to another process counts as running:
// that cluster waits for a later reaping, which is the safe way to be wrong.
func running(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	return !errors.Is(p.Signal(syscall.Signal(0)), os.ErrProcessDone)
}

// tempDir makes the cluster's directory where the user the server runs as (runAs) can
// reach it: under the temporary directory, or, when that is closed to them (a 0700
// /tmp), under /var/tmp or /dev/shm.
func tempDir(runAs []string) (string, error) {
	for _, parent := range clusterParents {
		dir, err := os.MkdirTemp(parent, "pgtest-")
		if err != nil {
			continue
		}
		if len(runAs) == 0 {
			return dir, nil
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			os.RemoveAll(dir)
			return "", err
		}
		if exec.Command(runAs[0], append(runAs[1:], "test", "-x", dir)...).Run() == nil {
			return dir, nil
		}
		os.RemoveAll(dir)
	}
	return "", errors.New("no temporary directory the PostgreSQL user can reach")
}

// Ports handed out by freePort in this process, never handed out twice.
var (
	portsMu  sync.Mutex
	portsOut = map[int]bool{}
)

// freePort returns a free port on 127.0.0.1 for a cluster, which Halt and Resume stop
// and start again on it. It comes from below the kernel's ephemeral range (32768 and
// up on Linux), which every outgoing connection and every listener on port 0 draws
// from: a port picked there could be taken while the cluster is down. (cmd/linkd's
// tests pick linkd's ports from 20000–32000 the same way; this range is apart.)
func freePort() (int, error) {
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 100 {
		port := 15000 + rand.IntN(5000)
		if portsOut[port] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue // in use
		}
		l.Close()
		portsOut[port] = true
		return port, nil
	}
	return 0, errors.New("no free port between 15000 and 20000 on 127.0.0.1")
}

// run runs one of the cluster's programs as the server's user and returns its output.
func (c *Cluster) run(prog string, args ...string) ([]byte, error) {
	argv := append(append(slices.Clone(c.user), filepath.Join(c.bin, prog)), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = c.dir
	// pg_ctl start leaves the server running with our stdout unless it gets its own.
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}

// URL is the connection URL of database name on the cluster.
func (c *Cluster) URL(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, name)
}

// Port is the TCP port the server listens on (127.0.0.1).
func (c *Cluster) Port() int { return c.port }

func (c *Cluster) admin() (*sql.DB, error) {
	db, err := sql.Open("pgx", c.URL("postgres"))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// Halt stops the server as an operator would for maintenance (pg_ctl stop -m fast:
// sessions are ended, nothing is lost) and returns once it is down; Resume starts it
// again. Fault tests use the pair for a database outage.
func (c *Cluster) Halt() error {
	out, err := c.run("pg_ctl", "-D", filepath.Join(c.dir, "data"), "-w", "-t", "120", "-m", "fast", "stop")
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %w\n%s", err, out)
	}
	return nil
}

// Resume starts a halted server again on the same data and port and returns once it
// accepts connections.
func (c *Cluster) Resume() error {
	out, err := c.run("pg_ctl", "-D", filepath.Join(c.dir, "data"), "-l", c.log, "-w", "-t", "120", "-o", c.opts, "start")
	if err != nil {
		return fmt.Errorf("pg_ctl start: %w\n%s%s", err, out, c.logTail(0))
	}
	return nil
}

// Stop stops the server at once (pg_ctl stop -m immediate: it is a throwaway) and
// removes its directory.
func (c *Cluster) Stop() error {
	out, err := c.run("pg_ctl", "-D", filepath.Join(c.dir, "data"), "-w", "-m", "immediate", "stop")
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %w\n%s", err, out)
	}
	return os.RemoveAll(c.dir)
}

func (c *Cluster) logSize() int64 {
	fi, err := os.Stat(c.log)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// logTail is the server log from offset from on, prefixed with a newline ("" when empty).
func (c *Cluster) logTail(from int64) string {
	b, err := os.ReadFile(c.log)
	if err != nil || int64(len(b)) <= from {
		return ""
	}
	b = b[from:]
	const most = 16 << 10
	if len(b) > most {
		b = append([]byte("…"), b[len(b)-most:]...)
	}
	return "\n" + string(b)
}
