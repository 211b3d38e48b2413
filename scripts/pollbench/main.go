// Command pollbench is `make bench-polls`: it measures how fast linkd answers device
// token polls against two references in the same run — a bare Go HTTPS handler that
// answers authorization_pending without looking at anything (the limit), and
// zitadel/oidc's example OpenID provider (in memory) — and prints the medians and their
// ratios.
//
// Each server holds the same number of pending device codes (10,000 by default) and is
// polled round-robin over HTTPS by wrk (Debian's wrk, a separate C process, so the load
// generator does not share the Go scheduler with the servers) in rounds that alternate
// between the three, so a noisy machine disturbs them alike. All three servers run in
// this process; only one is polled at a time. linkd runs with its real SQLite store in
// a temporary directory and logs to a file there, as it would to a journal.
//
// It is a measuring tool, not a test: read ratios from the same run, never absolute
// numbers. Goals (issue 13): linkd ≥ 0.5× the bare handler and ≥ 1.2× zitadel's example
// in polls/s, p99 ≤ 20 ms at 64 connections.
package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/linkd"
	"github.com/linkdesk/linkdesk/server/store"
	"github.com/linkdesk/linkdesk/server/store/sqlite"
)

func main() {
	rounds := flag.Int("rounds", 3, "alternating rounds (each polls every server once)")
	duration := flag.Duration("duration", 10*time.Second, "length of one wrk run")
	conns := flag.Int("connections", 64, "concurrent connections")
	threads := flag.Int("threads", 2, "wrk threads")
	codes := flag.Int("codes", 10000, "pending device codes per server")
	flag.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of linkd's rounds to this file")
	flag.Parse()
	if err := run(*rounds, *duration, *conns, *threads, *codes); err != nil {
		fmt.Fprintln(os.Stderr, "pollbench:", err)
		os.Exit(1)
	}
}

// cpuProfile, when set, is where linkd's rounds are profiled (go tool pprof).
var cpuProfile string

// target is one server under test: where to poll and how to authenticate.
type target struct {
	name     string
	url      string
	clientID string
	basic    string // Authorization header value, "" for a public client
	codes    string // file with one device code per line
}

func run(rounds int, duration time.Duration, conns, threads, nCodes int) error {
	wrk, err := ensureWrk()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "pollbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	script := filepath.Join(work, "poll.lua")
	if err := os.WriteFile(script, []byte(pollScript), 0o644); err != nil {
		return err
	}
	logFile, err := os.Create(filepath.Join(work, "servers.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	logger := slog.New(slog.NewTextHandler(logFile, nil))
	slog.SetDefault(logger) // zitadel logs request errors to the default logger

	ctx := context.Background()
	bare, err := startBare(work, nCodes)
	if err != nil {
		return err
	}
	example, err := startExample(ctx, work, nCodes, logger)
	if err != nil {
		return err
	}
	ld, closeLinkd, err := startLinkd(ctx, work, nCodes, logger)
	if err != nil {
		return err
	}
	defer closeLinkd()
	targets := []target{bare, example, ld}
	for _, tg := range targets {
		if err := checkAnswer(tg); err != nil {
			return fmt.Errorf("%s: %w", tg.name, err)
		}
	}

	fmt.Printf("pollbench: %d pending codes each, wrk -t%d -c%d -d%s, %d alternating rounds\n",
		nCodes, threads, conns, duration, rounds)
	results := map[string][]wrkResult{}
	for r := range rounds {
		for _, tg := range targets {
			stop := profile(tg.name == ld.name)
			res, err := poll(wrk, script, tg, duration, conns, threads)
			stop()
			if err != nil {
				return fmt.Errorf("%s: %w", tg.name, err)
			}
			results[tg.name] = append(results[tg.name], res)
			fmt.Printf("  round %d %-16s %9.0f polls/s  p50 %7.2f ms  p99 %7.2f ms  answers %s\n",
				r+1, tg.name, res.rps, ms(res.p50), ms(res.p99), res.answers)
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
	rps := func(r wrkResult) float64 { return r.rps }
	p99 := func(r wrkResult) float64 { return ms(r.p99) }
	fmt.Println("medians:")
	for _, tg := range targets {
		fmt.Printf("  %-16s %9.0f polls/s  p99 %7.2f ms\n", tg.name, med(tg.name, rps), med(tg.name, p99))
	}
	fmt.Printf("ratios: linkd/bare %.2f× (goal ≥ 0.5), linkd/zitadel-example %.2f× (goal ≥ 1.2), linkd p99 %.1f ms (goal ≤ 20)\n",
		med(ld.name, rps)/med(bare.name, rps), med(ld.name, rps)/med(example.name, rps), med(ld.name, p99))
	return nil
}

// profile starts a CPU profile when on and cpuProfile is set (appending rounds is not
// possible, so the last linkd round wins) and returns the function that stops it.
func profile(on bool) func() {
	if !on || cpuProfile == "" {
		return func() {}
	}
	f, err := os.Create(cpuProfile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pollbench: profile:", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		fmt.Fprintln(os.Stderr, "pollbench: profile:", err)
		return func() {}
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
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
	fmt.Println("pollbench: installing wrk (apt-get)")
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

// writeCodes writes codes one per line to a file in dir and returns its path.
func writeCodes(dir, name string, codes []string) (string, error) {
	p := filepath.Join(dir, name+".codes")
	return p, os.WriteFile(p, []byte(strings.Join(codes, "\n")+"\n"), 0o600)
}

// startBare serves the limit: a handler that reads the form and answers
// authorization_pending, as fast as Go's HTTPS server can.
func startBare(work string, n int) (target, error) {
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
	codes := make([]string, n)
	for i := range codes {
		codes[i] = randomCode()
	}
	f, err := writeCodes(work, "bare", codes)
	return target{name: "bare handler", url: srv.URL, clientID: "device", codes: f}, err
}

// startExample runs zitadel/oidc's example OpenID provider with its in-memory storage
// and a confidential device client, as its own example does.
func startExample(ctx context.Context, work string, n int, logger *slog.Logger) (target, error) {
	storage.RegisterClients(storage.DeviceClient("device", "secret"))
	var h http.Handler
	var mu sync.RWMutex
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.RLock()
		hh := h
		mu.RUnlock()
		hh.ServeHTTP(w, r)
	}))
	srv.StartTLS()
	st := storage.NewStorage(storage.NewUserStore(srv.URL))
	router := exampleop.SetupServer(srv.URL, st, logger, false)
	mu.Lock()
	h = router
	mu.Unlock()
	codes := make([]string, n)
	exp := time.Now().Add(time.Hour)
	for i := range codes {
		codes[i] = randomCode()
		uc, err := devices.NewUserCode()
		if err != nil {
			return target{}, err
		}
		if err := st.StoreDeviceAuthorization(ctx, "device", codes[i], uc, exp, []string{"openid"}); err != nil {
			return target{}, fmt.Errorf("zitadel example: store code: %w", err)
		}
	}
	f, err := writeCodes(work, "example", codes)
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("device:secret"))
	return target{name: "zitadel example", url: srv.URL, clientID: "device", basic: basic, codes: f}, err
}

// startLinkd runs linkd as `linkd serve` would, on SQLite in work, with n pending
// codes of the kiosk client (a public client, as a TV's would be).
func startLinkd(ctx context.Context, work string, n int, logger *slog.Logger) (target, func(), error) {
	db, err := sqlite.Open(ctx, filepath.Join(work, "linkd.db"), sqlite.WithLogger(logger))
	if err != nil {
		return target{}, nil, err
	}
	var h http.Handler
	var mu sync.RWMutex
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.RLock()
		hh := h
		mu.RUnlock()
		hh.ServeHTTP(w, r)
	}))
	srv.StartTLS()
	s, err := linkd.New(ctx, linkd.Config{Issuer: srv.URL, Store: db, Logger: logger})
	if err != nil {
		srv.Close()
		db.Close()
		return target{}, nil, err
	}
	mu.Lock()
	h = s.Handler()
	mu.Unlock()
	closeAll := func() { srv.Close(); db.Close() }
	codes := make([]string, n)
	now := time.Now()
	for i := range codes {
		codes[i] = randomCode()
		for {
			uc, err := devices.NewUserCode()
			if err != nil {
				closeAll()
				return target{}, nil, err
			}
			err = db.CreateDeviceAuth(ctx, store.DeviceAuth{DeviceCode: codes[i], UserCode: uc,
				ClientID: devices.KioskClientID, Scopes: []string{"openid", "offline_access"},
				Device: devices.DeviceInfo{Kind: devices.KindKiosk}, RequestIP: "127.0.0.1",
				CreatedAt: now, ExpiresAt: now.Add(time.Hour), Interval: 5 * time.Second, State: store.DeviceAuthPending})
			if err == nil {
				break
			}
			if !strings.Contains(err.Error(), store.ErrDuplicateUserCode.Error()) {
				closeAll()
				return target{}, nil, err
			}
		}
	}
	f, err := writeCodes(work, "linkd", codes)
	return target{name: "linkd", url: srv.URL, clientID: devices.KioskClientID, codes: f}, closeAll, err
}

// checkAnswer makes one poll the way wrk will and requires authorization_pending, so
// the run measures real answers and not, say, a client-authentication error.
func checkAnswer(tg target) error {
	f, err := os.ReadFile(tg.codes)
	if err != nil {
		return err
	}
	code, _, _ := strings.Cut(string(f), "\n")
	body := "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&client_id=" + tg.clientID + "&device_code=" + code
	req, _ := http.NewRequest(http.MethodPost, tg.url+"/oauth/token", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if tg.basic != "" {
		req.Header.Set("Authorization", tg.basic)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(b), `"authorization_pending"`) {
		return fmt.Errorf("a poll answered %d %s, want authorization_pending", resp.StatusCode, b)
	}
	return nil
}

// wrkResult is what one wrk run measured.
type wrkResult struct {
	rps      float64
	p50, p99 time.Duration
	answers  string // "non-2xx N, socket errors …"
}

var (
	rpsRe     = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	latencyRe = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
	non2xxRe  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	socketRe  = regexp.MustCompile(`Socket errors: ([^\n]+)`)
)

// poll runs wrk against tg's token endpoint with the poll script.
func poll(wrk, script string, tg target, d time.Duration, conns, threads int) (wrkResult, error) {
	cmd := exec.Command(wrk, "-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns),
		"-d", fmt.Sprintf("%ds", int(d.Seconds())), "--latency", "-s", script, tg.url)
	cmd.Env = append(os.Environ(), "CODES="+tg.codes, "CLIENT_ID="+tg.clientID, "AUTHORIZATION="+tg.basic)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk: %v\n%s", err, out)
	}
	var res wrkResult
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
	var parts []string
	if m := non2xxRe.FindSubmatch(out); m != nil {
		parts = append(parts, "non-2xx "+string(m[1]))
	}
	if m := socketRe.FindSubmatch(out); m != nil {
		parts = append(parts, "socket errors "+string(m[1]))
	}
	res.answers = strings.Join(parts, ", ")
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
  prefix = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&client_id=" ..
    os.getenv("CLIENT_ID") .. "&device_code="
end

function request()
  i = i + 1
  return wrk.format("POST", "/oauth/token", headers, prefix .. codes[(i % #codes) + 1])
end
`
