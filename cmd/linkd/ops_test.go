package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/linkdesk/linkdesk/server/store/postgres/pgtest"
)

// TestOperatorsEndpoints runs linkd serve on PostgreSQL configured through the
// environment (LINKD_METRICS_ADDR, LINKD_ACCESS_LOG): the metrics listener serves
// /metrics, the main one does not; every answer carries a request id that the access
// log line has too; /readyz turns 503 while PostgreSQL is down and 200 once it is
// back, while /healthz stays 200.
func TestOperatorsEndpoints(t *testing.T) {
	cluster := pgtest.Shared(t)
	db := pgtest.DB(t)
	metricsAddr := freePort(t)
	t.Setenv("LINKD_METRICS_ADDR", metricsAddr)
	t.Setenv("LINKD_ACCESS_LOG", "true")
	p := startLinkd(t, t.TempDir(), "--db", db)
	plain := &http.Client{Timeout: 30 * time.Second}
	get := func(c *http.Client, url string) (int, string, http.Header) {
		t.Helper()
		resp, err := c.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}

	code, _, h := get(p.Client, p.URL+"/readyz")
	id := h.Get("X-Request-ID")
	if code != 200 || id == "" {
		t.Fatalf("main /readyz: %d, request id %q", code, id)
	}
	if code, _, _ := get(p.Client, p.URL+"/metrics"); code != http.StatusNotFound {
		t.Fatalf("main /metrics: %d, want 404", code)
	}
	code, body, _ := get(plain, "http://"+metricsAddr+"/metrics")
	if code != 200 || !strings.Contains(body, `linkd_http_requests_total{code="200",route="GET /readyz"} 1`) {
		t.Fatalf("metrics listener /metrics: %d\n%s", code, body)
	}
	// The access log line of the first request, with its id (the logs are written
	// before the answer is complete, so it is there by now).
	deadline := time.After(30 * time.Second)
	for !strings.Contains(p.logs.String(), "request_id="+id) {
		select {
		case <-p.logs.Wrote():
		case <-deadline:
			t.Fatalf("no log line with request_id=%s:\n%s", id, p.logs.String())
		}
	}
	for _, l := range strings.Split(p.logs.String(), "\n") {
		if strings.Contains(l, "request_id="+id) && !(strings.Contains(l, "msg=request") && strings.Contains(l, `route="GET /readyz"`) && strings.Contains(l, "status=200")) {
			t.Errorf("log line of request %s: %s", id, l)
		}
	}

	if err := cluster.Halt(); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			cluster.Resume() // leave the shared cluster running for the next test
		}
	}()
	for _, base := range []struct {
		c   *http.Client
		url string
	}{{p.Client, p.URL}, {plain, "http://" + metricsAddr}} {
		if code, body, _ := get(base.c, base.url+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "store is unreachable") {
			t.Errorf("%s/readyz with PostgreSQL down: %d %q", base.url, code, body)
		}
		if code, _, _ := get(base.c, base.url+"/healthz"); code != 200 {
			t.Errorf("%s/healthz with PostgreSQL down: %d", base.url, code)
		}
	}
	if err := cluster.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed = true
	// linkd reconnects by itself; ready again within a minute.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		code, body, _ := get(p.Client, p.URL+"/readyz")
		if code == 200 {
			break
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("/readyz after PostgreSQL came back: still %d %q", code, body)
		}
	}
	// The line is logged before the answer, but reaches this test through a pipe.
	for !strings.Contains(p.logs.String(), "ready again") {
		select {
		case <-p.logs.Wrote():
		case <-ctx.Done():
			t.Fatalf("no log line saying linkd is ready again")
		}
	}
}

// TestServeEnvironment: every flag of linkd serve names its environment variable in
// --help, a variable sets its flag, and a flag on the command line wins over it.
func TestServeEnvironment(t *testing.T) {
	code, out, _ := runCmd(t, "", "serve", "--help")
	if code != 0 {
		t.Fatalf("serve --help: %d", code)
	}
	lines := strings.Split(out, "\n")
	flags := 0
	for i, l := range lines {
		name, ok := strings.CutPrefix(l, "  -")
		if !ok || i+1 >= len(lines) {
			continue
		}
		name, _, _ = strings.Cut(name, " ")
		flags++
		if want := "(env " + envName(name) + ")"; !strings.Contains(lines[i+1], want) {
			t.Errorf("--help of --%s does not say %s: %q", name, want, lines[i+1])
		}
	}
	if flags < 12 || envName("trusted-proxy") != "LINKD_TRUSTED_PROXY" {
		t.Fatalf("%d flags in serve --help:\n%s", flags, out)
	}

	dir := t.TempDir()
	t.Setenv("LINKD_POLL_INTERVAL", "soon")
	code, _, errOut := runCmd(t, "", "serve", "--data", dir)
	if code != exitUsage || !strings.Contains(errOut, "$LINKD_POLL_INTERVAL: invalid value") {
		t.Fatalf("serve with LINKD_POLL_INTERVAL=soon: %d %q", code, errOut)
	}
	// The flag wins: the environment's value is not even read.
	code, _, errOut = runCmd(t, "", "serve", "--data", dir, "--poll-interval", "90s")
	if code != exitUsage || !strings.Contains(errOut, "--poll-interval must be") || strings.Contains(strings.SplitN(errOut, "\n", 2)[0], "LINKD_POLL_INTERVAL") {
		t.Fatalf("serve --poll-interval 90s with LINKD_POLL_INTERVAL=soon: %d %q", code, errOut)
	}
	t.Setenv("LINKD_POLL_INTERVAL", "90s")
	code, _, errOut = runCmd(t, "", "serve", "--data", dir)
	if code != exitUsage || !strings.Contains(errOut, "--poll-interval must be") {
		t.Fatalf("serve with LINKD_POLL_INTERVAL=90s: %d %q", code, errOut)
	}
}
