package devices

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"
)

func TestProblemFromResponse(t *testing.T) {
	resp := &http.Response{StatusCode: 429, Header: http.Header{"Retry-After": {"42"}}}
	e := problemFromResponse(resp, []byte(`{"type":"about:blank","title":"Too many tries","status":429,"code":"rate_limited","detail":"slow down"}`))
	if e.Status != 429 || e.Code != CodeRateLimited || e.Title != "Too many tries" || e.Detail != "slow down" || e.RetryAfter != 42*time.Second {
		t.Fatalf("problem = %+v", e)
	}
	// A proxy's HTML error page: the code comes from the status.
	for status, code := range map[int]string{401: CodeUnauthorized, 403: CodeForbidden, 404: CodeNotFound, 429: CodeRateLimited, 502: CodeInternal, 418: CodeBadRequest} {
		e := problemFromResponse(&http.Response{StatusCode: status, Header: http.Header{}}, []byte("<html>Bad Gateway</html>"))
		if e.Code != code || e.Status != status {
			t.Errorf("status %d: %+v", status, e)
		}
	}
	// linkd's storage fault: the code and the wait both reach the caller.
	e = problemFromResponse(&http.Response{StatusCode: 503, Header: http.Header{"Retry-After": {"5"}}},
		[]byte(`{"type":"about:blank","title":"Service unavailable","status":503,"code":"unavailable","detail":"nothing was changed"}`))
	if e.Code != CodeUnavailable || e.RetryAfter != 5*time.Second || !e.ServerFault() {
		t.Errorf("503 unavailable: %+v", e)
	}
	// A proxy's 503 without a problem body reads the same way.
	e = problemFromResponse(&http.Response{StatusCode: 503, Header: http.Header{"Retry-After": {"30"}}}, []byte("<html>Service Unavailable</html>"))
	if e.Code != CodeUnavailable || e.RetryAfter != 30*time.Second {
		t.Errorf("bare 503: %+v", e)
	}
	if !(&APIError{Status: 503}).ServerFault() || (&APIError{Status: 404}).ServerFault() {
		t.Error("ServerFault wrong")
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if d := parseRetryAfter("120", now); d != 2*time.Minute {
		t.Errorf("seconds: %v", d)
	}
	if d := parseRetryAfter(now.Add(30*time.Second).Format(http.TimeFormat), now); d != 30*time.Second {
		t.Errorf("date: %v", d)
	}
	if d := parseRetryAfter("soon", now); d != 0 {
		t.Errorf("junk: %v", d)
	}
	if d := parseRetryAfter("-5", now); d != 0 {
		t.Errorf("negative: %v", d)
	}
}

func TestClientOfflineAndCancelled(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: connection refused, like being offline
	c := NewClient("https://"+addr, nil)
	_, err = c.Devices(t.Context())
	var ne *NetworkError
	if !errors.As(err, &ne) || !IsOffline(err) {
		t.Fatalf("err = %v, want NetworkError", err)
	}
	var op *net.OpError
	if !errors.As(err, &op) {
		t.Fatalf("net cause not reachable: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := c.Me(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

func TestClientValidatesCodeBeforeRequest(t *testing.T) {
	c := NewClient("https://link.example.com", &http.Client{Transport: failTransport{t}})
	var ic *InvalidCharError
	if _, err := c.LinkRequest(t.Context(), "BCDF-GHJ1"); !errors.As(err, &ic) {
		t.Errorf("LinkRequest: %v", err)
	}
	if _, err := c.Approve(t.Context(), "BCD", "TV"); !errors.Is(err, ErrCodeLength) {
		t.Errorf("Approve: %v", err)
	}
	if err := c.Deny(t.Context(), "AEIOUAEI"); !errors.As(err, &ic) {
		t.Errorf("Deny: %v", err)
	}
}

type failTransport struct{ t *testing.T }

func (f failTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	f.t.Errorf("request sent for bad code: %s", r.URL)
	return nil, errors.New("no")
}
