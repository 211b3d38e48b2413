package ui

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/linkdesk/linkdesk/auth"
	"github.com/linkdesk/linkdesk/devices"
)

func TestExplain(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{&devices.APIError{Status: 404, Code: devices.CodeInvalidCode}, "Check the code on your TV and try again"},
		{fmt.Errorf("lookup: %w", &devices.APIError{Status: 410, Code: devices.CodeExpiredCode}), "Get a new code on your device"},
		{&devices.APIError{Status: 429, Code: devices.CodeRateLimited, RetryAfter: time.Second}, "Wait 1 second"},
		{&devices.APIError{Status: 502, Code: devices.CodeInternal}, "has a problem right now"},
		{&devices.NetworkError{Op: "GET /api/v1/devices", Err: &net.OpError{Op: "dial", Err: errors.New("refused")}}, "Can't reach"},
		{&auth.DiscoveryError{Issuer: "http://x", Kind: auth.ErrNotHTTPS}, "must start with https://"},
		{&auth.DiscoveryError{Issuer: "https://x", Kind: auth.ErrBadCertificate, Err: x509.UnknownAuthorityError{}}, "certificate isn't trusted"},
		{&auth.DiscoveryError{Issuer: "https://x", Kind: auth.ErrUnreachable}, "Can't reach the service"},
		{&auth.DiscoveryError{Issuer: "https://x", Kind: auth.ErrNotOpenID}, "isn't a Linkdesk"},
		{&auth.AuthorizationError{Code: "access_denied"}, "cancelled in the browser"},
		{auth.ErrSessionEnded, "signed out"},
		{auth.ErrKeyringTimeout, "keyring"},
		{context.DeadlineExceeded, "took too long"},
		{errors.New("boom"), "Something went wrong"},
	}
	for _, c := range cases {
		if got := Explain(c.err); !contains(got, c.want) {
			t.Errorf("Explain(%v) = %q, want it to contain %q", c.err, got, c.want)
		}
	}
	if Explain(nil) != "" {
		t.Error("Explain(nil) not empty")
	}
}
