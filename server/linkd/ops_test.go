package linkd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/linkd"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest"
)

// scrape fetches url (a /metrics endpoint) through client and parses the text format.
func scrape(t *testing.T, client *http.Client, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	return fams
}

// value is the value of the counter, gauge or histogram (its count) name whose labels
// include labels; -1 when there is none.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.Metric {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.Label {
				found = found || (lp.GetName() == labels[i] && lp.GetValue() == labels[i+1])
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

// TestMetricsAfterDeviceFlow runs a whole device flow (x/oauth2's device client asks
// for a code, polls once too early, the app approves through the management API, the
// device polls again and gets its tokens) and finds each step in /metrics, which only
// the operators' handler serves.
func TestMetricsAfterDeviceFlow(t *testing.T) {
	in := linkdtest.Start(t, linkdtest.Options{})
	ops := httptest.NewServer(in.Server.OpsHandler())
	defer ops.Close()
	before := scrape(t, ops.Client(), ops.URL+"/metrics")
	if v := value(before, "linkd_token_polls_total", "answer", "success"); v != 0 {
		t.Fatalf("success polls before any flow: %v (want 0, registered)", v)
	}

	in.CreateUser(t, "mira", "pw")
	app := in.AppToken(t, "mira", "pw")
	ctx := in.Context(context.Background())
	tv := deviceConfig(in, devices.KioskClientID)
	da, err := tv.DeviceAuth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := tokenRequest(t, in, devices.KioskClientID, da.DeviceCode); got != "authorization_pending" {
		t.Fatalf("first poll: %q, want authorization_pending", got)
	}
	if code := call(t, in, "POST", "/api/v1/link-requests/"+da.UserCode+"/approve", app.AccessToken, `{}`, nil); code != 200 {
		t.Fatalf("approve: %d", code)
	}
	if _, err := tv.DeviceAccessToken(ctx, da); err != nil {
		t.Fatal(err)
	}

	m := scrape(t, ops.Client(), ops.URL+"/metrics")
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"linkd_device_authorizations_total", []string{"event", "started"}, 1},
		{"linkd_device_authorizations_total", []string{"event", "approved"}, 1},
		{"linkd_device_authorizations_total", []string{"event", "denied"}, 0},
		{"linkd_token_polls_total", []string{"answer", "authorization_pending"}, 1},
		{"linkd_token_polls_total", []string{"answer", "success"}, 1},
		{"linkd_token_polls_total", []string{"answer", "access_denied"}, 0},
		{"linkd_sign_ins_total", []string{"result", "success"}, 1},
		{"linkd_sign_ins_total", []string{"result", "failure"}, 0},
		{"linkd_http_requests_total", []string{"route", "POST /device_authorization", "code", "200"}, 1},
		{"linkd_http_requests_total", []string{"route", "POST /oauth/token", "code", "400"}, 1},
		{"linkd_http_requests_total", []string{"route", "POST " + devices.APIPrefix + "/link-requests/{code}/approve", "code", "200"}, 1},
		{"linkd_http_request_duration_seconds", []string{"route", "POST /device_authorization"}, 1},
		{"linkd_store_operation_duration_seconds", []string{"op", "collect_device_tokens"}, 1},
		{"linkd_store_operation_duration_seconds", []string{"op", "approve_user_code"}, 1},
		{"linkd_store_operation_errors_total", []string{"op", "collect_device_tokens"}, 0},
		{"linkd_device_waits_open", nil, 0},
		{"linkd_event_streams_open", nil, 0},
		{"linkd_limiter_trips_total", []string{"kind", "code_lookups"}, 0},
	} {
		if got := value(m, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// The token endpoint answered the successful poll (and the sign-in's exchange) 200.
	if got := value(m, "linkd_http_requests_total", "route", "POST /oauth/token", "code", "200"); got < 1 {
		t.Errorf("token endpoint 200s: %v", got)
	}

	// The public listener never serves the metrics.
	resp, err := in.Client.Get(in.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /metrics on the main handler: %d, want 404", resp.StatusCode)
	}
}

// TestHealthAndReadiness: /healthz and /readyz answer on the main handler and the
// operators' one; /readyz says so in plain words when the store cannot answer.
func TestHealthAndReadiness(t *testing.T) {
	in := linkdtest.Start(t, linkdtest.Options{})
	ops := httptest.NewServer(in.Server.OpsHandler())
	defer ops.Close()
	get := func(client *http.Client, url string) (int, string) {
		t.Helper()
		resp, err := client.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, base := range []struct {
		c   *http.Client
		url string
	}{{in.Client, in.URL}, {ops.Client(), ops.URL}} {
		if code, body := get(base.c, base.url+"/healthz"); code != 200 || body != "ok\n" {
			t.Fatalf("%s/healthz: %d %q", base.url, code, body)
		}
		if code, body := get(base.c, base.url+"/readyz"); code != 200 || body != "ready\n" {
			t.Fatalf("%s/readyz: %d %q", base.url, code, body)
		}
	}
	in.Store.Close() // the database is gone
	if code, body := get(in.Client, in.URL+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "store is unreachable") {
		t.Fatalf("/readyz with the store closed: %d %q", code, body)
	}
	if code, _ := get(in.Client, in.URL+"/healthz"); code != 200 {
		t.Fatalf("/healthz with the store closed: %d", code)
	}
}

// logBuffer collects JSON log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) lines(t *testing.T) []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// TestRequestIDs: every answer carries an X-Request-ID, a caller's own is taken only
// from a trusted proxy, the access log has one line per request with it, and a line a
// handler logs for the request (a failed sign-in) carries the same id.
func TestRequestIDs(t *testing.T) {
	var logs logBuffer
	in := linkdtest.Start(t, linkdtest.Options{AccessLog: true,
		Logger:         slog.New(slog.NewJSONHandler(&logs, nil)),
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}})
	get := func(id string) string {
		t.Helper()
		req, _ := http.NewRequest("GET", in.URL+"/.well-known/openid-configuration", nil)
		if id != "" {
			req.Header.Set(linkd.RequestIDHeader, id)
		}
		resp, err := in.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.Header.Get(linkd.RequestIDHeader)
	}
	first, second := get(""), get("")
	if first == "" || second == "" || first == second {
		t.Fatalf("request ids %q and %q: want two different ones", first, second)
	}
	// 127.0.0.1 is no trusted proxy here: its id is replaced.
	if got := get("from-the-caller"); got == "from-the-caller" || got == "" {
		t.Fatalf("id from an untrusted caller: %q", got)
	}
	if _, err := in.SignIn(context.Background(), "nobody", "wrong", ""); err == nil {
		t.Fatal("sign-in of an unknown account worked")
	}

	var access, failed []map[string]any
	for _, l := range logs.lines(t) {
		switch l["msg"] {
		case "request":
			access = append(access, l)
		case "sign-in failed: wrong username or password":
			failed = append(failed, l)
		}
	}
	found := false
	for _, l := range access {
		if l["request_id"] == first {
			found = true
			if l["method"] != "GET" || l["route"] != "GET /.well-known/openid-configuration" || l["status"] != float64(200) ||
				l["client_ip"] != "127.0.0.1" || l["bytes"].(float64) <= 0 {
				t.Errorf("access log line %v", l)
			}
		}
	}
	if !found {
		t.Fatalf("no access log line with request id %q in %v", first, access)
	}
	if len(failed) != 1 {
		t.Fatalf("sign-in failure lines: %v", failed)
	}
	id, _ := failed[0]["request_id"].(string)
	matched := false
	for _, l := range access {
		matched = matched || (id != "" && l["request_id"] == id && l["status"] == float64(http.StatusUnauthorized))
	}
	if !matched {
		t.Fatalf("the failed sign-in's line has request id %q, which no 401 access log line has", id)
	}
}

// TestRequestIDFromTrustedProxy: a trusted proxy's sane X-Request-ID is kept; a
// garbled one is replaced.
func TestRequestIDFromTrustedProxy(t *testing.T) {
	in := linkdtest.Start(t, linkdtest.Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	for id, keep := range map[string]bool{"lb-7f3a:0001": true, "bad id level=ERROR": false, strings.Repeat("a", 65): false} {
		req, _ := http.NewRequest("GET", in.URL+"/healthz", nil)
		req.Header.Set(linkd.RequestIDHeader, id)
		resp, err := in.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get(linkd.RequestIDHeader); (got == id) != keep || got == "" {
			t.Errorf("proxy's id %q answered with %q (keep: %v)", id, got, keep)
		}
	}
}
