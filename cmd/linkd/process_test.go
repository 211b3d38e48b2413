package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linkdesk/linkdesk/server/store/postgres/pgtest"
)

// runMainEnv makes the test binary run linkd's main instead of the tests, so a test
// can start the real linkd as a child process and kill it.
const runMainEnv = "LINKD_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main() // exits
	}
	os.Exit(pgtest.Main(m)) // runs the tests; stops the PostgreSQL cluster if one was started
}

// linkdProcess is `linkd serve` running as a child process (this test binary re-executed
// with runMainEnv), on a fixed data directory and port so it can be killed with SIGKILL
// and restarted on the same data.
type linkdProcess struct {
	t      *testing.T
	dir    string
	addr   string
	args   []string     // extra serve flags (e.g. --issuer)
	URL    string       // the issuer, set by the first start
	Client *http.Client // trusts the CA linkd printed; set by the first start
	logs   syncBuffer   // standard error of every run

	mu     sync.Mutex
	up     chan struct{} // closed while a run is serving
	cmd    *exec.Cmd
	exited chan struct{}
}

// startLinkd starts linkd on dir (whose store the caller may have filled) with the
// extra serve flags args and waits until it serves; the process is killed when the
// test ends.
func startLinkd(t *testing.T, dir string, args ...string) *linkdProcess {
	return startLinkds(t, []string{dir}, args...)[0]
}

// startLinkds starts one linkd per data directory at the same moment, each with the
// serve flags args, and waits until all serve: replicas on one database.
func startLinkds(t *testing.T, dirs []string, args ...string) []*linkdProcess {
	t.Helper()
	ps := make([]*linkdProcess, len(dirs))
	runs := make([]*linkdRun, len(dirs))
	for i, dir := range dirs {
		p := &linkdProcess{t: t, dir: dir, addr: freePort(t), args: args, up: make(chan struct{})}
		t.Cleanup(func() {
			p.Kill()
			if t.Failed() {
				p.logWarnings()
			}
		})
		ps[i], runs[i] = p, p.launch()
	}
	for i, p := range ps {
		p.serving(runs[i])
	}
	return ps
}

// start runs linkd and returns once it printed its issuer line (it listens by then).
func (p *linkdProcess) start() {
	p.t.Helper()
	p.serving(p.launch())
}

// linkdRun is one run of the linkd process, launched but maybe not serving yet.
type linkdRun struct {
	cmd    *exec.Cmd
	out    *syncBuffer // its standard output
	exited chan struct{}
}

// launch starts the linkd process without waiting for it.
func (p *linkdProcess) launch() *linkdRun {
	t := p.t
	t.Helper()
	out := &syncBuffer{}
	cmd := exec.Command(os.Args[0], append([]string{"serve", "--data", p.dir, "--addr", p.addr,
		"--poll-interval", "1s", "--lost-answer-window", "10m"}, p.args...)...)
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	cmd.Stdout = out
	cmd.Stderr = &p.logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start linkd: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	// A run that never became the current one (a sibling failed to start) ends too.
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	return &linkdRun{cmd: cmd, out: out, exited: exited}
}

// serving waits until run printed its issuer line and makes it the process's current run.
func (p *linkdProcess) serving(run *linkdRun) {
	t := p.t
	t.Helper()
	cmd, out, exited := run.cmd, run.out, run.exited
	deadline := time.After(60 * time.Second)
	for !strings.Contains(out.String(), "issuer:") {
		select {
		case <-exited:
			t.Fatalf("linkd exited before serving: %s\n%s", out.String(), p.logs.String())
		case <-out.Wrote():
		case <-deadline:
			cmd.Process.Kill()
			t.Fatalf("linkd did not start within 60 s: %q", out.String())
		}
	}
	var caFile, issuer string
	for _, line := range strings.Split(out.String(), "\n") {
		if v, ok := strings.CutPrefix(line, "CA certificate: "); ok {
			caFile = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "issuer: "); ok {
			issuer = strings.TrimSpace(v)
		}
	}
	if p.Client == nil {
		pemBytes, err := os.ReadFile(caFile)
		if err != nil {
			cmd.Process.Kill()
			t.Fatalf("linkd's CA certificate %q: %v", caFile, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemBytes) {
			cmd.Process.Kill()
			t.Fatalf("no certificate in %s", caFile)
		}
		// Every connection goes to this process, whatever host the URL names: replicas
		// share one issuer (a load balancer's address) and a test picks the replica.
		var dialer net.Dialer
		p.Client = &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool}, MaxIdleConnsPerHost: 64,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return dialer.DialContext(ctx, network, p.addr)
			}}}
		p.URL = issuer
	} else {
		p.Client.CloseIdleConnections() // they led to the killed run
	}
	if issuer != p.URL {
		cmd.Process.Kill()
		t.Fatalf("issuer changed across restarts: %q, then %q", p.URL, issuer)
	}
	p.mu.Lock()
	p.cmd, p.exited = cmd, exited
	close(p.up)
	p.mu.Unlock()
}

// Kill ends linkd with SIGKILL (no shutdown of any kind) and waits until it is gone.
// Until the next Restart, WaitUp blocks.
func (p *linkdProcess) Kill() {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	if cmd == nil {
		p.mu.Unlock()
		return
	}
	p.cmd = nil
	p.up = make(chan struct{})
	p.mu.Unlock()
	cmd.Process.Kill()
	<-exited
}

// Restart starts linkd again on the same data directory and port.
func (p *linkdProcess) Restart() {
	p.t.Helper()
	p.start()
}

// WaitUp returns once linkd serves (at once if it does now): a client that lost its
// connection to a killed linkd waits here before it asks again.
func (p *linkdProcess) WaitUp(ctx context.Context) error {
	p.mu.Lock()
	up := p.up
	p.mu.Unlock()
	select {
	case <-up:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// requestIDAttr is the request_id a log line of a request carries.
var requestIDAttr = regexp.MustCompile(` request_id=\S+`)

// logWarnings logs linkd's distinct warnings and errors, with how often each came
// (timestamps left out), for a failed test.
func (p *linkdProcess) logWarnings() {
	var order []string
	seen := map[string]int{}
	for _, line := range strings.Split(p.logs.String(), "\n") {
		if !strings.Contains(line, "level=WARN") && !strings.Contains(line, "level=ERROR") {
			continue
		}
		if i := strings.Index(line, "level="); i > 0 {
			line = line[i:]
		}
		line = requestIDAttr.ReplaceAllString(line, "") // one kind of warning, whichever request
		if seen[line]++; seen[line] == 1 {
			order = append(order, line)
		}
	}
	for i, line := range order {
		if i == 40 {
			p.t.Logf("linkd: … %d more kinds of warning left out", len(order)-i)
			break
		}
		p.t.Logf("linkd (%d×): %s", seen[line], line)
	}
}

func TestServeTimingFlags(t *testing.T) {
	_, help, _ := runCmd(t, "", "serve", "--help")
	for _, w := range []string{"-poll-interval", "whole seconds", "-lost-answer-window", "never received"} {
		if !strings.Contains(help, w) {
			t.Errorf("serve help lacks %q:\n%s", w, help)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--poll-interval", "0s"}, "--poll-interval must be a whole number of seconds between 1s and 60s"},
		{[]string{"--poll-interval", "1500ms"}, "--poll-interval must be a whole number of seconds"},
		{[]string{"--poll-interval", "61s"}, "--poll-interval must be"},
		{[]string{"--lost-answer-window", "0s"}, "--lost-answer-window must be more than 0 and at most 10m"},
		{[]string{"--lost-answer-window", "11m"}, "--lost-answer-window must be"},
	} {
		args := append([]string{"serve", "--data", t.TempDir(), "--addr", "127.0.0.1:0"}, tc.args...)
		code, _, errOut := runCmd(t, "", args...)
		if code != exitUsage || !strings.Contains(errOut, tc.want) || !strings.Contains(errOut, "usage: linkd serve") {
			t.Errorf("%v: exit %d, stderr %q; want a usage error saying %q", tc.args, code, errOut, tc.want)
		}
	}
}
