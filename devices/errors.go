package devices

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"syscall"
	"time"
)

// APIError is a failed management-API call: the RFC 9457 problem the service
// answered (or one made up from the status when the body was not a problem,
// say an HTML page from a proxy). Code is one of the Code* constants; the UI
// switches on it.
type APIError struct {
	Status     int
	Code       string
	Title      string
	Detail     string
	RetryAfter time.Duration // from Retry-After: rate_limited (429) and unavailable (503)
	// LinkedDevices, for too_many_devices, are the account's devices of that app (the
	// problem's linked_devices member): one must be unlinked before another links.
	LinkedDevices []Device
}

// Problem codes of an app operator's rules (linkd clients add/update), answered when
// approving a link request; the request stays pending.
const (
	// CodeOtherNetwork: the app's operator lets only someone on the device's own
	// network approve it, and the approver is elsewhere.
	CodeOtherNetwork = "approve_from_device_network"
	// CodeTooManyDevices: the account already has as many devices of this app linked as
	// its operator allows; the problem's linked_devices member names them.
	CodeTooManyDevices = "too_many_devices"
)

func (e *APIError) Error() string {
	msg := fmt.Sprintf("linkdesk API: %d %s", e.Status, e.Code)
	if e.Title != "" {
		msg += ": " + e.Title
	}
	if e.Detail != "" {
		msg += " (" + e.Detail + ")"
	}
	return msg
}

// ServerFault reports whether the service itself failed (5xx), as opposed to
// refusing the request.
func (e *APIError) ServerFault() bool { return e.Status >= 500 }

// NetworkError means the request never got an answer: no network, DNS failure,
// connection refused or reset, or a timeout. The UI words it as "offline",
// distinct from an *APIError, which is the service's own answer.
type NetworkError struct {
	Op  string // what was being done, e.g. "GET /api/v1/devices"
	Err error
}

func (e *NetworkError) Error() string { return "linkdesk API: " + e.Op + ": network: " + e.Err.Error() }

// Unwrap returns the transport error (a *url.Error around a *net.OpError, ...).
func (e *NetworkError) Unwrap() error { return e.Err }

// IsOffline reports whether err is (or wraps) a *NetworkError.
func IsOffline(err error) bool {
	var ne *NetworkError
	return errors.As(err, &ne)
}

// isNetworkFailure tells transport failures (offline, refused, reset,
// timeout) from other client errors such as an untrusted certificate or a
// sign-in that can no longer be refreshed.
func isNetworkFailure(err error) bool {
	var (
		opErr  *net.OpError
		dnsErr *net.DNSError
	)
	return errors.As(err, &dnsErr) || errors.As(err, &opErr) ||
		errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED)
}

// problemFromResponse builds the *APIError for a non-2xx answer with body.
func problemFromResponse(resp *http.Response, body []byte) *APIError {
	e := &APIError{Status: resp.StatusCode}
	var p struct {
		Problem
		LinkedDevices []Device `json:"linked_devices"`
	}
	if err := jsonUnmarshal(body, &p); err == nil && p.Code != "" {
		e.Code, e.Title, e.Detail, e.LinkedDevices = p.Code, p.Title, p.Detail, p.LinkedDevices
	} else {
		e.Code = codeForStatus(resp.StatusCode)
		e.Title = http.StatusText(resp.StatusCode)
	}
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		e.RetryAfter = parseRetryAfter(ra, time.Now())
	}
	return e
}

// codeForStatus is the problem code for an answer that carried no problem body.
func codeForStatus(status int) string {
	switch {
	case status == http.StatusUnauthorized:
		return CodeUnauthorized
	case status == http.StatusForbidden:
		return CodeForbidden
	case status == http.StatusNotFound:
		return CodeNotFound
	case status == http.StatusTooManyRequests:
		return CodeRateLimited
	case status == http.StatusServiceUnavailable:
		return CodeUnavailable
	case status >= 500:
		return CodeInternal
	}
	return CodeBadRequest
}

// parseRetryAfter reads delay-seconds or an HTTP date (RFC 9110 §10.2.3).
func parseRetryAfter(v string, now time.Time) time.Duration {
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
