// Command linkdbench is `make bench-linkd`: it measures linkd's hot paths against
// references in the same run and prints three tables of medians and ratios (issue 13):
//
//   - polls: device-token polls/s of linkd against a bare Go HTTPS handler that answers
//     authorization_pending without looking at anything (the limit) and zitadel/oidc's
//     example OpenID provider (in memory), each holding the same number of pending
//     device codes (10,000 by default), polled round-robin;
//   - device authorizations: POST /device_authorization of linkd (the public kiosk
//     client, its per-address caps lifted through linkd.Config.DeviceAuthCaps) against
//     zitadel's example (its confidential "device" client, HTTP Basic), with the polls'
//     pending codes still waiting;
//   - approvals: POST /api/v1/link-requests/{code}/approve through linkd's management
//     API against GET /api/v1/me with the same access tokens and connections; each
//     pending user code is approved once, the requests go round-robin over many
//     accounts (200 by default, signed in through linkd's real sign-in) and, through
//     X-Forwarded-For from a trusted proxy (127.0.0.1), from one address per account,
//     as phones would, so the per-account and per-address lookup limits hold only the
//     reservations of requests in flight.
//
// The load comes from wrk (Debian's wrk, a separate C process, so the load generator
// does not share the Go scheduler with the servers) in rounds that alternate between
// the servers of a table, so a noisy machine disturbs them alike. All servers run in
// this process; only one is loaded at a time. linkd runs with its real SQLite store in
// a temporary directory and logs to a file there, as it would to a journal.
//
// With -postgres (the default when PostgreSQL is installed) every table also measures a
// second linkd on PostgreSQL (a private cluster started for the run, with fsync and
// synchronous_commit on, as in production) next to the SQLite one (issue 14).
//
// It is a measuring tool, not a test: read ratios from the same run, never absolute
// numbers. Goals (issue 13): polls ≥ 0.5× the bare handler and ≥ 1.2× zitadel's example
// with p99 ≤ 20 ms at 64 connections; approvals ≥ 0.5× GET /me; device authorizations
// ≥ 0.5× zitadel's example.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/linkd"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest"
	"github.com/linkdesk/linkdesk/server/store"
	"github.com/linkdesk/linkdesk/server/store/postgres"
	"github.com/linkdesk/linkdesk/server/store/postgres/pgtest"
	"github.com/linkdesk/linkdesk/server/store/sqlite"
)

// options are the command line.
type options struct {
	rounds      int
	duration    time.Duration
	conns       int
	threads     int
	codes       int // pending device codes per server for the polls table
	accounts    int
	approveRate int // pending user codes made per second of an approval round
	tables      string
	cpuProfile  string
	trace       string
	postgres    bool
	wrk, work   string
	logger      *slog.Logger
	logFile     *os.File // the servers' log (servers.log in work)
	// exampleChild: this process serves zitadel's example (startExample), writing
	// its pending codes to this file.
	exampleChild string
}

func main() {
	var o options
	flag.IntVar(&o.rounds, "rounds", 3, "alternating rounds per table (each loads every server once)")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "length of one wrk run (whole seconds)")
	flag.IntVar(&o.conns, "connections", 64, "concurrent connections")
	flag.IntVar(&o.threads, "threads", 2, "wrk threads")
	flag.IntVar(&o.codes, "codes", 10000, "pending device codes per server (polls table)")
	flag.IntVar(&o.accounts, "accounts", 200, "accounts whose tokens approve (approvals table)")
	flag.IntVar(&o.approveRate, "approve-codes-per-second", 7000, "pending user codes made per second of each approval round; a round that runs out says so")
	flag.StringVar(&o.tables, "tables", "polls,authorizations,approvals", "tables to print, comma-separated")
	flag.StringVar(&o.trace, "trace", "", "write an execution trace of the first 2 s of linkd's last round of each table and bench to FILE.TABLE.BENCH (go tool trace)")
	flag.BoolVar(&o.postgres, "postgres", true, "also measure linkd on PostgreSQL (a private cluster, commits synced), when PostgreSQL is installed")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of linkd's last round of each table and bench to FILE.TABLE.BENCH, and its allocations to FILE.TABLE.BENCH.allocs (go tool pprof -base FILE.TABLE.BENCH.allocs-before)")
	flag.StringVar(&o.exampleChild, "example-child", "", "internal: serve zitadel's example in this process with -codes pending codes written to FILE, print its URL, and stop when stdin closes")
	flag.Parse()
	if o.exampleChild != "" {
		if err := serveExampleChild(&o); err != nil {
			fmt.Fprintln(os.Stderr, "linkdbench: zitadel example:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(&o); err != nil {
		fmt.Fprintln(os.Stderr, "linkdbench:", err)
		os.Exit(1)
	}
}

// server is one server under test and how to reach it.
type server struct {
	name string
	url  string
}

// bench is one column of a table: a named load against one server.
type bench struct {
	name string
	// round runs round r's wrk and reports what it measured.
	round func(r int) (wrkResult, error)
	// check makes one request the way wrk will and fails unless the answer is right.
	check func() error
	linkd bool // a linkd (on SQLite or PostgreSQL): profiled with -cpuprofile
}

// table is a set of benches measured in alternating rounds, and its ratios.
type table struct {
	name, unit string
	benches    []bench
	// ratios prints the ratio lines from the medians of requests/s and p99 (ms).
	ratios func(rps, p99 func(name string) float64)
}

func run(o *options) error {
	var err error
	if o.wrk, err = ensureWrk(); err != nil {
		return err
	}
	if o.work, err = os.MkdirTemp("", "linkdbench"); err != nil {
		return err
	}
	defer os.RemoveAll(o.work)
	for name, s := range map[string]string{"poll.lua": pollScript, "approve.lua": approveScript,
		"me.lua": meScript, "authorize.lua": authorizeScript} {
		if err := os.WriteFile(filepath.Join(o.work, name), []byte(s), 0o644); err != nil {
			return err
		}
	}
	logFile, err := os.Create(filepath.Join(o.work, "servers.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	o.logger = slog.New(slog.NewTextHandler(logFile, nil))
	o.logFile = logFile
	slog.SetDefault(o.logger) // anything logging to the default logger goes there too

	fmt.Printf("linkdbench at commit %s: wrk -t%d -c%d -d%s, %d alternating rounds per table\n",
		commit(), o.threads, o.conns, o.duration, o.rounds)
	ctx := context.Background()
	bare := startBare()
	example, exampleCodes, stopExample, err := startExample(o)
	if err != nil {
		return fmt.Errorf("zitadel example: %w", err)
	}
	defer stopExample()
	ld, err := startLinkd(ctx, o)
	if err != nil {
		return err
	}
	defer ld.close()
	var pg *linkdServer
	if o.postgres {
		if pg, err = startLinkdPostgres(ctx, o); err != nil {
			return err
		}
		if pg != nil {
			defer pg.close()
		}
	}

	for _, name := range strings.Split(o.tables, ",") {
		var t table
		start := time.Now()
		switch strings.TrimSpace(name) {
		case "polls":
			t, err = pollsTable(ctx, o, bare, example, exampleCodes, ld, pg)
		case "approvals":
			t, err = approvalsTable(ctx, o, ld, pg)
		case "authorizations":
			t, err = authorizationsTable(o, example, ld, pg)
		default:
			err = fmt.Errorf("unknown table %q", name)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		fmt.Printf("\n%s (set up in %s)\n", t.name, time.Since(start).Round(100*time.Millisecond))
		if err := measure(o, t); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

// commit names the checked-out commit, "+dirty" when tracked files differ from it.
func commit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	if exec.Command("git", "diff", "--quiet", "HEAD").Run() != nil {
		c += "+dirty"
	}
	return c
}

// measure checks every bench's answer, runs t's alternating rounds and prints each
// round, the medians and the ratios.
func measure(o *options, t table) error {
	for _, b := range t.benches {
		if err := b.check(); err != nil {
			return fmt.Errorf("%s: check: %w", b.name, err)
		}
	}
	results := map[string][]wrkResult{}
	for r := range o.rounds {
		for _, b := range t.benches {
			stop := profile(o, t.name, b.name, b.linkd && r == o.rounds-1)
			res, err := b.round(r)
			stop()
			if err != nil {
				return fmt.Errorf("%s: %w", b.name, err)
			}
			results[b.name] = append(results[b.name], res)
			fmt.Printf("  round %d %-22s %9.0f %s  p50 %7.2f ms  p99 %7.2f ms  non-2xx %d  socket errors %s%s\n",
				r+1, b.name, res.rps, t.unit, ms(res.p50), ms(res.p99), res.non2xx, res.socket, res.note)
		}
	}
	med := func(name string, f func(wrkResult) float64) float64 {
		var xs []float64
		for _, r := range results[name] {
			xs = append(xs, f(r))
		}
		slices.Sort(xs)
		return xs[len(xs)/2]
	}
	rps := func(name string) float64 { return med(name, func(r wrkResult) float64 { return r.rps }) }
	p99 := func(name string) float64 { return med(name, func(r wrkResult) float64 { return ms(r.p99) }) }
	fmt.Println("  medians:")
	for _, b := range t.benches {
		fmt.Printf("    %-22s %9.0f %s  p99 %7.2f ms\n", b.name, rps(b.name), t.unit, p99(b.name))
	}
	t.ratios(rps, p99)
	return nil
}

// profile starts a CPU profile of table when on and -cpuprofile is set, and an
// execution trace when -trace is, and returns the function that stops them.
func profile(o *options, table, bench string, on bool) func() {
	name := strings.TrimSuffix(strings.Fields(table)[0], ":") + "." + strings.NewReplacer(" ", "-", "/", "").Replace(bench)
	stopTrace := func() {}
	if on && o.trace != "" {
		stopTrace = startTrace(o.trace+"."+name, 2*time.Second)
	}
	stopCPU := profileCPU(o, name, on)
	return func() { stopTrace(); stopCPU() }
}

// startTrace writes an execution trace to path for at most d (a trace of a busy
// server grows by megabytes a second), and returns the function that stops it sooner.
func startTrace(path string, d time.Duration) func() {
	f, err := os.Create(path)
	if err == nil {
		if err = trace.Start(f); err != nil {
			f.Close()
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "linkdbench: trace:", err)
		return func() {}
	}
	stop := sync.OnceFunc(func() {
		trace.Stop()
		f.Close()
	})
	time.AfterFunc(d, stop)
	return stop
}

// profileCPU starts a CPU profile of the bench name when on and -cpuprofile is set,
// and returns the function that stops it.
func profileCPU(o *options, name string, on bool) func() {
	if !on || o.cpuProfile == "" {
		return func() {}
	}
	f, err := os.Create(o.cpuProfile + "." + name)
	if err != nil {
		fmt.Fprintln(os.Stderr, "linkdbench: profile:", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		fmt.Fprintln(os.Stderr, "linkdbench: profile:", err)
		return func() {}
	}
	// The allocations of the round: the heap profile's totals before it, to subtract
	// with go tool pprof -base FILE.TABLE.BENCH.allocs-before.
	writeAllocs(o.cpuProfile + "." + name + ".allocs-before")
	return func() {
		pprof.StopCPUProfile()
		f.Close()
		writeAllocs(o.cpuProfile + "." + name + ".allocs")
	}
}

// writeAllocs writes the process's allocation profile so far to path.
func writeAllocs(path string) {
	runtime.GC() // the profile is as of the last collection
	f, err := os.Create(path)
	if err == nil {
		err = errors.Join(pprof.Lookup("allocs").WriteTo(f, 0), f.Close())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "linkdbench: allocation profile:", err)
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// ensureWrk finds wrk, installing Debian's package when running as root.
func ensureWrk() (string, error) {
	if p, err := exec.LookPath("wrk"); err == nil {
		return p, nil
	}
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("wrk is not installed: run `sudo apt-get install wrk` (or this as root)")
	}
	fmt.Println("linkdbench: installing wrk (apt-get)")
	for _, args := range [][]string{{"update", "-qq"}, {"install", "-y", "-qq", "wrk"}} {
		cmd := exec.Command("apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("apt-get %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return exec.LookPath("wrk")
}

func randomCode() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// writeLines writes lines one per line to a file in dir and returns its path.
func writeLines(dir, name string, lines []string) (string, error) {
	p := filepath.Join(dir, name)
	return p, os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600)
}

// tlsServer serves the handler that set will install, over HTTPS, so the handler can
// be built with the server's URL.
func tlsServer() (srv *httptest.Server, set func(http.Handler)) {
	var h atomic.Pointer[http.Handler]
	srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(*h.Load()).ServeHTTP(w, r)
	}))
	srv.StartTLS()
	return srv, func(hh http.Handler) { h.Store(&hh) }
}

// startBare serves the limit: a handler that reads the form and answers
// authorization_pending, as fast as Go's HTTPS server can.
func startBare() server {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.PostForm.Get("device_code") == "" {
			http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":"authorization_pending"}`)
	}))
	srv.StartTLS()
	return server{name: "bare handler", url: srv.URL}
}

// exampleClient is the confidential device client of zitadel's example.
const exampleClient, exampleSecret = "device", "secret"

// startExample runs zitadel/oidc's example OpenID provider with its in-memory storage
// and a confidential device client, as its own example does, in a process of its own
// (this program again, with -example-child): in linkd's process its heap, which grows
// with every device request it keeps, would be scanned by the collections linkd's
// rounds pay for, and linkd's by its own. It returns the server, its o.codes pending
// device codes for the polls, and how to stop it.
func startExample(o *options) (server, []string, func(), error) {
	exe, err := os.Executable()
	if err != nil {
		return server{}, nil, nil, err
	}
	codesFile := filepath.Join(o.work, "zitadel-example.poll-codes")
	cmd := exec.Command(exe, "-example-child", codesFile, "-codes", strconv.Itoa(o.codes))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return server{}, nil, nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return server{}, nil, nil, err
	}
	cmd.Stderr = o.logFile
	if err := cmd.Start(); err != nil {
		return server{}, nil, nil, err
	}
	stop := func() { stdin.Close(); cmd.Wait() }
	url, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		stop()
		return server{}, nil, nil, fmt.Errorf("no address from its process (see %s): %w", o.logFile.Name(), err)
	}
	raw, err := os.ReadFile(codesFile)
	if err != nil {
		stop()
		return server{}, nil, nil, err
	}
	return server{name: "zitadel example", url: strings.TrimSpace(url)}, strings.Fields(string(raw)), stop, nil
}

// serveExampleChild is the example's process: it serves, stores o.codes pending device
// codes and writes them to o.exampleChild, prints its URL, and returns when stdin
// closes (the benchmark ended or died).
func serveExampleChild(o *options) error {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	slog.SetDefault(logger) // zitadel logs request errors to the default logger
	storage.RegisterClients(storage.DeviceClient(exampleClient, exampleSecret))
	srv, set := tlsServer()
	defer srv.Close()
	st := storage.NewStorage(storage.NewUserStore(srv.URL))
	set(exampleop.SetupServer(srv.URL, st, logger, false))
	codes := make([]string, o.codes)
	exp := time.Now().Add(time.Hour)
	for i := range codes {
		codes[i] = randomCode()
		uc, err := devices.NewUserCode()
		if err != nil {
			return err
		}
		if err := st.StoreDeviceAuthorization(context.Background(), exampleClient, codes[i], uc, exp, []string{"openid"}); err != nil {
			return fmt.Errorf("store code: %w", err)
		}
	}
	if _, err := writeLines(filepath.Dir(o.exampleChild), filepath.Base(o.exampleChild), codes); err != nil {
		return err
	}
	fmt.Println(srv.URL)
	io.Copy(io.Discard, os.Stdin)
	return nil
}

var exampleBasic = "Basic " + base64.StdEncoding.EncodeToString([]byte(exampleClient+":"+exampleSecret))

// linkdServer is linkd under test, with its store.
type linkdServer struct {
	server
	db    store.Store
	close func()
}

// startLinkd runs linkd as `linkd serve` would, on SQLite in work, behind a trusted
// proxy at 127.0.0.1 (so the approvals can come from one address per account).
func startLinkd(ctx context.Context, o *options) (*linkdServer, error) {
	db, err := sqlite.Open(ctx, filepath.Join(o.work, "linkd.db"), sqlite.WithLogger(o.logger))
	if err != nil {
		return nil, err
	}
	return serveLinkd(ctx, o, "linkd", db)
}

// startLinkdPostgres runs a second linkd like startLinkd, on a private PostgreSQL
// cluster that syncs its commits as a production server does; nil when PostgreSQL is
// not installed (a note says so).
func startLinkdPostgres(ctx context.Context, o *options) (*linkdServer, error) {
	cluster, err := pgtest.StartDurable()
	if err != nil {
		fmt.Printf("linkd on PostgreSQL left out: %v (scripts/deps.sh installs it)\n", err)
		return nil, nil
	}
	url, err := cluster.CreateDatabase(ctx, "linkdbench")
	if err == nil {
		var db *postgres.DB
		if db, err = postgres.Open(ctx, url, postgres.WithLogger(o.logger)); err == nil {
			var ld *linkdServer
			if ld, err = serveLinkd(ctx, o, "linkd on PostgreSQL", db); err == nil {
				closeLinkd := ld.close
				ld.close = func() { closeLinkd(); cluster.Stop() }
				return ld, nil
			}
		}
	}
	cluster.Stop()
	return nil, err
}

// serveLinkd serves linkd on db over HTTPS as `linkd serve` would.
func serveLinkd(ctx context.Context, o *options, name string, db interface {
	store.Store
	Close() error
}) (*linkdServer, error) {
	srv, set := tlsServer()
	s, err := linkd.New(ctx, linkd.Config{Issuer: srv.URL, Store: db, Logger: o.logger,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, DeviceAuthCaps: linkdtest.LiftedCaps})
	if err != nil {
		srv.Close()
		db.Close()
		return nil, err
	}
	set(s.Handler())
	return &linkdServer{server: server{name: name, url: srv.URL}, db: db,
		close: func() { srv.Close(); db.Close() }}, nil
}

// createPending stores n pending kiosk requests directly in linkd's store, four at a
// time, from addresses of the benchmarking range, and returns their device and user
// codes.
func createPending(ctx context.Context, db store.Store, n int) (deviceCodes, userCodes []string, err error) {
	deviceCodes, userCodes = make([]string, n), make([]string, n)
	now := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for w := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				deviceCodes[i] = randomCode()
				for {
					uc, err := devices.NewUserCode()
					if err != nil {
						errs[w] = err
						return
					}
					err = db.CreateDeviceAuth(ctx, store.DeviceAuth{DeviceCode: deviceCodes[i], UserCode: uc,
						ClientID: devices.KioskClientID, Scopes: []string{"openid", "offline_access"},
						Device: devices.DeviceInfo{Kind: devices.KindKiosk}, RequestIP: deviceAddr(i),
						CreatedAt: now, ExpiresAt: now.Add(time.Hour), Interval: 5 * time.Second, State: store.DeviceAuthPending})
					if err == nil {
						userCodes[i] = uc
						break
					}
					if !errors.Is(err, store.ErrDuplicateUserCode) && !strings.Contains(err.Error(), store.ErrDuplicateUserCode.Error()) {
						errs[w] = err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	return deviceCodes, userCodes, errors.Join(errs...)
}

// deviceAddr is the address pending request i came from: 198.18.0.0/15, the
// benchmarking range, 100 requests each.
func deviceAddr(i int) string {
	return fmt.Sprintf("198.%d.%d.%d", 18+i/100>>16&1, i/100>>8&255, i/100&255)
}

// insecureClient trusts the servers' test certificates.
var insecureClient = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}

// expect makes one request and fails unless it answers status with a body holding want.
func expect(method, url string, header map[string]string, body string, status int, want string) error {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return err
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := insecureClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status || !strings.Contains(string(b), want) {
		return fmt.Errorf("%s %s answered %d %s, want %d with %s", method, url, resp.StatusCode, b, status, want)
	}
	return nil
}

// --- polls ---

const pollBody = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&client_id="

func pollsTable(ctx context.Context, o *options, bare, example server, exampleCodes []string, ld, pg *linkdServer) (table, error) {
	bareCodes := make([]string, o.codes)
	for i := range bareCodes {
		bareCodes[i] = randomCode()
	}
	linkdCodes, _, err := createPending(ctx, ld.db, o.codes)
	if err != nil {
		return table{}, err
	}
	var pgCodes []string
	if pg != nil {
		if pgCodes, _, err = createPending(ctx, pg.db, o.codes); err != nil {
			return table{}, err
		}
	}
	poller := func(s server, clientID, basic string, codes []string) (bench, error) {
		f, err := writeLines(o.work, s.name+".poll-codes", codes)
		if err != nil {
			return bench{}, err
		}
		header := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
		if basic != "" {
			header["Authorization"] = basic
		}
		return bench{name: s.name, linkd: s.name == ld.name || (pg != nil && s.name == pg.name),
			round: func(int) (wrkResult, error) {
				return runWrk(o, "poll.lua", s.url, "CODES="+f, "CLIENT_ID="+clientID, "AUTHORIZATION="+basic)
			},
			check: func() error {
				return expect(http.MethodPost, s.url+"/oauth/token", header, pollBody+clientID+"&device_code="+codes[0],
					http.StatusBadRequest, `"authorization_pending"`)
			}}, nil
	}
	t := table{name: fmt.Sprintf("polls: POST /oauth/token with %d pending device codes per server, round-robin (authorization_pending is a 400: every answer is non-2xx)", o.codes), unit: "polls/s"}
	for _, p := range []struct {
		s        server
		clientID string
		basic    string
		codes    []string
	}{{bare, exampleClient, "", bareCodes}, {example, exampleClient, exampleBasic, exampleCodes}, {ld.server, devices.KioskClientID, "", linkdCodes},
		{pgServer(pg), devices.KioskClientID, "", pgCodes}} {
		if p.codes == nil {
			continue
		}
		b, err := poller(p.s, p.clientID, p.basic, p.codes)
		if err != nil {
			return table{}, err
		}
		t.benches = append(t.benches, b)
	}
	t.ratios = func(rps, p99 func(string) float64) {
		fmt.Printf("  ratios: linkd/bare %.2f× (goal ≥ 0.5), linkd/zitadel example %.2f× (goal ≥ 1.2), linkd p99 %.1f ms (goal ≤ 20)\n",
			rps(ld.name)/rps(bare.name), rps(ld.name)/rps(example.name), p99(ld.name))
		if pg != nil {
			fmt.Printf("  linkd on PostgreSQL: %.2f× linkd on SQLite, %.2f× bare, %.2f× zitadel example, p99 %.1f ms\n",
				rps(pg.name)/rps(ld.name), rps(pg.name)/rps(bare.name), rps(pg.name)/rps(example.name), p99(pg.name))
		}
	}
	return t, nil
}

// pgServer is pg's server, or a zero one when linkd on PostgreSQL is not measured.
func pgServer(pg *linkdServer) server {
	if pg == nil {
		return server{}
	}
	return pg.server
}

// --- approvals ---

// signIn creates o.accounts accounts with linkd.AddUser and signs each one in to the
// app through linkd's real sign-in (two at a time, each from its own address behind
// the trusted proxy), returning lines "access-token address".
func signIn(ctx context.Context, o *options, ld *linkdServer) ([]string, error) {
	lines := make([]string, o.accounts)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for w := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= o.accounts {
					return
				}
				user, pass := fmt.Sprintf("bench%d", i), "bench-password-"+strconv.Itoa(i)
				if _, err := linkd.AddUser(ctx, ld.db, linkd.NewUser{Username: user, Password: pass}); err != nil {
					errs[w] = fmt.Errorf("add user %s: %w", user, err)
					return
				}
				addr := accountAddr(i)
				client := &http.Client{Transport: forwardedFor{addr, insecureClient.Transport}}
				tok, err := linkdtest.SignInAt(ctx, ld.url, client, nil, user, pass, "")
				if err != nil {
					errs[w] = fmt.Errorf("sign in %s: %w", user, err)
					return
				}
				lines[i] = tok.AccessToken + " " + addr
			}
		}()
	}
	wg.Wait()
	return lines, errors.Join(errs...)
}

// accountAddr is the address account i's requests come from.
func accountAddr(i int) string { return fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255) }

// forwardedFor sends requests as the trusted proxy would for addr.
type forwardedFor struct {
	addr string
	next http.RoundTripper
}

func (f forwardedFor) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", f.addr)
	return f.next.RoundTrip(r)
}

func approvalsTable(ctx context.Context, o *options, ld, pg *linkdServer) (table, error) {
	t := table{name: fmt.Sprintf("approvals: POST %s/link-requests/{code}/approve vs GET %s/me, %d accounts round-robin, %d fresh codes a round",
		devices.APIPrefix, devices.APIPrefix, o.accounts, o.approveRate*int(o.duration.Seconds())), unit: "req/s"}
	approve, me, err := approvalBenches(ctx, o, ld)
	if err != nil {
		return table{}, err
	}
	t.benches = append(t.benches, approve, me)
	var pgApprove, pgMe bench
	if pg != nil {
		if pgApprove, pgMe, err = approvalBenches(ctx, o, pg); err != nil {
			return table{}, err
		}
		t.benches = append(t.benches, pgApprove, pgMe)
	}
	t.ratios = func(rps, p99 func(string) float64) {
		fmt.Printf("  ratios: approvals/me %.2f× (goal ≥ 0.5), approve p99 %.1f ms\n",
			rps(approve.name)/rps(me.name), p99(approve.name))
		if pg != nil {
			fmt.Printf("  linkd on PostgreSQL: approvals/me %.2f×, approvals %.2f× linkd on SQLite, approve p99 %.1f ms\n",
				rps(pgApprove.name)/rps(pgMe.name), rps(pgApprove.name)/rps(approve.name), p99(pgApprove.name))
		}
	}
	return t, nil
}

// approvalBenches signs o.accounts accounts in to ld and makes fresh pending codes for
// every round, and returns the approve bench and the GET /me bench it is compared with.
func approvalBenches(ctx context.Context, o *options, ld *linkdServer) (approve, me bench, err error) {
	start := time.Now()
	tokens, err := signIn(ctx, o, ld)
	if err != nil {
		return bench{}, bench{}, err
	}
	fmt.Printf("  (%s: %d accounts signed in in %s)\n", ld.name, o.accounts, time.Since(start).Round(100*time.Millisecond))
	tokenFile, err := writeLines(o.work, ld.name+".tokens", tokens)
	if err != nil {
		return bench{}, bench{}, err
	}
	perRound := o.approveRate * int(o.duration.Seconds())
	_, userCodes, err := createPending(ctx, ld.db, perRound*o.rounds+1)
	if err != nil {
		return bench{}, bench{}, err
	}
	codeFiles := make([]string, o.rounds)
	for r := range codeFiles {
		if codeFiles[r], err = writeLines(o.work, fmt.Sprintf("%s.approve-%d.codes", ld.name, r), userCodes[1+r*perRound:1+(r+1)*perRound]); err != nil {
			return bench{}, bench{}, err
		}
	}
	token, addr, _ := strings.Cut(tokens[0], " ")
	header := map[string]string{"Authorization": "Bearer " + token, "X-Forwarded-For": addr, "Content-Type": "application/json"}
	api := ld.url + devices.APIPrefix
	approve = bench{name: ld.name + " approve", linkd: true,
		round: func(r int) (wrkResult, error) {
			res, err := runWrk(o, "approve.lua", ld.url, "CODES="+codeFiles[r], "TOKENS="+tokenFile,
				"THREADS="+strconv.Itoa(o.threads), "API="+devices.APIPrefix)
			if err == nil && strings.Contains(res.out, "ran out") {
				res.note = fmt.Sprintf("  RAN OUT of its %d codes: a lower bound (raise -approve-codes-per-second)", perRound)
			}
			return res, err
		},
		check: func() error {
			return expect(http.MethodPost, api+"/link-requests/"+userCodes[0]+"/approve", header, `{"confirmed_in_front":true}`, http.StatusOK, `"device"`)
		}}
	me = bench{name: ld.name + " GET /me", linkd: true,
		round: func(int) (wrkResult, error) {
			return runWrk(o, "me.lua", ld.url, "TOKENS="+tokenFile, "API="+devices.APIPrefix)
		},
		check: func() error {
			return expect(http.MethodGet, api+"/me", header, "", http.StatusOK, `"bench0"`)
		}}
	return approve, me, nil
}

// --- device authorizations ---

const authorizeScope = "&scope=openid%20offline_access"

func authorizationsTable(o *options, example server, ld, pg *linkdServer) (table, error) {
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	basic := map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Authorization": exampleBasic}
	authorizer := func(s server, clientID, auth string, header map[string]string) bench {
		return bench{name: s.name, linkd: s.name != example.name,
			round: func(int) (wrkResult, error) {
				return runWrk(o, "authorize.lua", s.url, "CLIENT_ID="+clientID, "AUTHORIZATION="+auth)
			},
			check: func() error {
				return expect(http.MethodPost, s.url+"/device_authorization", header, "client_id="+clientID+authorizeScope,
					http.StatusOK, `"device_code"`)
			}}
	}
	ex := authorizer(example, exampleClient, exampleBasic, basic)
	l := authorizer(ld.server, devices.KioskClientID, "", form)
	t := table{name: "device authorizations: POST /device_authorization (linkd: public kiosk client, caps lifted; zitadel example: confidential client, Basic)",
		unit: "auths/s", benches: []bench{ex, l}}
	var lp bench
	if pg != nil {
		lp = authorizer(pg.server, devices.KioskClientID, "", form)
		t.benches = append(t.benches, lp)
	}
	t.ratios = func(rps, p99 func(string) float64) {
		fmt.Printf("  ratios: linkd/zitadel example %.2f× (goal ≥ 0.5), linkd p99 %.1f ms\n",
			rps(l.name)/rps(ex.name), p99(l.name))
		if pg != nil {
			fmt.Printf("  linkd on PostgreSQL: %.2f× zitadel example, %.2f× linkd on SQLite, p99 %.1f ms\n",
				rps(lp.name)/rps(ex.name), rps(lp.name)/rps(l.name), p99(lp.name))
		}
	}
	return t, nil
}

// --- wrk ---

// wrkResult is what one wrk run measured.
type wrkResult struct {
	rps      float64
	p50, p99 time.Duration
	non2xx   int
	socket   string // wrk's "Socket errors" line, "none" without one
	note     string // what the bench adds to the round's line
	out      string // wrk's output
}

var (
	rpsRe     = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	latencyRe = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
	non2xxRe  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	socketRe  = regexp.MustCompile(`Socket errors: ([^\n]+)`)
)

// runWrk runs wrk with script against url, with env added to the script's environment.
func runWrk(o *options, script, url string, env ...string) (wrkResult, error) {
	cmd := exec.Command(o.wrk, "-t", strconv.Itoa(o.threads), "-c", strconv.Itoa(o.conns),
		"-d", fmt.Sprintf("%ds", int(o.duration.Seconds())), "--latency", "-s", filepath.Join(o.work, script), url)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk: %v\n%s", err, out)
	}
	res := wrkResult{socket: "none", out: string(out)}
	m := rpsRe.FindSubmatch(out)
	if m == nil {
		return wrkResult{}, fmt.Errorf("wrk printed no Requests/sec:\n%s", out)
	}
	res.rps, _ = strconv.ParseFloat(string(m[1]), 64)
	for _, lm := range latencyRe.FindAllSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(string(lm[2]), 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[string(lm[3])]
		if string(lm[1]) == "50" {
			res.p50 = time.Duration(v * float64(unit))
		} else {
			res.p99 = time.Duration(v * float64(unit))
		}
	}
	if m := non2xxRe.FindSubmatch(out); m != nil {
		res.non2xx, _ = strconv.Atoi(string(m[1]))
	}
	if m := socketRe.FindSubmatch(out); m != nil {
		res.socket = string(m[1])
	}
	return res, nil
}

// pollScript makes wrk post device-code token requests, each thread walking the code
// list from its own offset, so every code is polled in turn.
const pollScript = `
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

function init(args)
  codes = {}
  for line in io.lines(os.getenv("CODES")) do
    if line ~= "" then codes[#codes + 1] = line end
  end
  i = (tid or 0) * 7919
  headers = {["Content-Type"] = "application/x-www-form-urlencoded"}
  local auth = os.getenv("AUTHORIZATION")
  if auth ~= nil and auth ~= "" then headers["Authorization"] = auth end
  prefix = "` + pollBody + `" .. os.getenv("CLIENT_ID") .. "&device_code="
end

function request()
  i = i + 1
  return wrk.format("POST", "/oauth/token", headers, prefix .. codes[(i % #codes) + 1])
end
`

// tokensLua reads the TOKENS file ("access-token address" lines) into per-account
// request headers.
const tokensLua = `
function readTokens()
  accounts = {}
  for line in io.lines(os.getenv("TOKENS")) do
    local tok, addr = line:match("^(%S+) (%S+)$")
    if tok ~= nil then
      accounts[#accounts + 1] = {["Authorization"] = "Bearer " .. tok, ["X-Forwarded-For"] = addr,
        ["Content-Type"] = "application/json"}
    end
  end
end
`

// approveScript approves each user code of CODES once: thread tid of THREADS takes
// codes tid+1, tid+1+THREADS, …, and request n goes out as account n mod accounts.
// A thread that runs out of codes stops (its last request reads /me, so no code is
// tried twice) and done() says so.
const approveScript = tokensLua + `
local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  threads[#threads + 1] = thread
end

function init(args)
  readTokens()
  codes = {}
  for line in io.lines(os.getenv("CODES")) do
    if line ~= "" then codes[#codes + 1] = line end
  end
  nthreads = tonumber(os.getenv("THREADS"))
  api = os.getenv("API")
  k = 0
  out = 0
end

function request()
  local n = tid + k * nthreads
  local h = accounts[(n % #accounts) + 1]
  if n + 1 > #codes then
    out = 1
    wrk.thread:stop()
    return wrk.format("GET", api .. "/me", h)
  end
  k = k + 1
  return wrk.format("POST", api .. "/link-requests/" .. codes[n + 1] .. "/approve", h, [[{"confirmed_in_front":true}]])
end

function done(summary, latency, requests)
  for _, t in ipairs(threads) do
    if t:get("out") == 1 then
      print("thread " .. t:get("tid") .. " ran out of codes after " .. t:get("k"))
    end
  end
end
`

// meScript reads GET /me as the accounts of TOKENS in turn.
const meScript = tokensLua + `
function init(args)
  readTokens()
  api = os.getenv("API")
  n = 0
end

function request()
  n = n + 1
  return wrk.format("GET", api .. "/me", accounts[(n % #accounts) + 1])
end
`

// authorizeScript asks for device authorizations as CLIENT_ID (with AUTHORIZATION when
// set).
const authorizeScript = `
function init(args)
  headers = {["Content-Type"] = "application/x-www-form-urlencoded"}
  local auth = os.getenv("AUTHORIZATION")
  if auth ~= nil and auth ~= "" then headers["Authorization"] = auth end
  body = "client_id=" .. os.getenv("CLIENT_ID") .. "` + authorizeScope + `"
end

function request()
  return wrk.format("POST", "/device_authorization", headers, body)
end
`
