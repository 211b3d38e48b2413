package ui

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/linkdesk/linkdesk/auth"
	"github.com/linkdesk/linkdesk/auth/device"
	"github.com/linkdesk/linkdesk/devices"
)

func TestExplain(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{&devices.APIError{Status: 404, Code: devices.CodeInvalidCode}, "Check the code on your device and try again"},
		{fmt.Errorf("lookup: %w", &devices.APIError{Status: 410, Code: devices.CodeExpiredCode}), "Get a new code on your device"},
		{&devices.APIError{Status: 429, Code: devices.CodeRateLimited, RetryAfter: time.Second}, "Wait 1 second"},
		{&devices.APIError{Status: 502, Code: devices.CodeInternal}, "has a problem right now"},
		// linkd's disk is full or its database busy: nothing was saved, and it passes.
		{fmt.Errorf("approve: %w", &devices.APIError{Status: 503, Code: devices.CodeUnavailable, RetryAfter: 5 * time.Second}),
			"Linkdesk's service couldn't save that just now. Nothing changed — try again in a moment."},
		// The app's operator allows approval only from the device's network, or caps its devices.
		{&devices.APIError{Status: 403, Code: devices.CodeOtherNetwork}, "same network as the device"},
		{&devices.APIError{Status: 409, Code: devices.CodeTooManyDevices, LinkedDevices: []devices.Device{{ID: "g1", Name: "Kitchen TV"}}},
			"Unlink one first, then try again. Linked now:\n• Kitchen TV (never used)"},
		{&devices.APIError{Status: 409, Code: devices.CodeTooManyDevices}, "Unlink one first in Linked devices"},
		{&devices.NetworkError{Op: "GET /api/v1/devices", Err: &net.OpError{Op: "dial", Err: errors.New("refused")}}, "Can't reach the Linkdesk service."},
		// Which side is down is said when the typed error tells.
		{&devices.NetworkError{Op: "GET /api/v1/devices", Err: &url.Error{Op: "Get", URL: "https://link.example.com/api/v1/devices",
			Err: &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}}, "service at link.example.com isn't answering"},
		{&devices.NetworkError{Op: "GET /api/v1/devices", Err: &url.Error{Op: "Get", URL: "https://link.example.com/api/v1/devices",
			Err: &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ENETUNREACH)}}}, "isn't connected to a network"},
		{&devices.NetworkError{Op: "GET /api/v1/devices", Err: &url.Error{Op: "Get", URL: "https://link.example.com/x",
			Err: &net.DNSError{Name: "link.example.com", IsNotFound: true}}}, "Can't find link.example.com"},
		{&devices.NetworkError{Op: "GET /api/v1/devices", Err: &url.Error{Op: "Get", URL: "https://link.example.com/x",
			Err: &net.OpError{Op: "dial", Err: errors.New("mystery")}}}, "Can't reach link.example.com."},
		{&auth.DiscoveryError{Issuer: "http://x", Kind: auth.ErrNotHTTPS}, "must start with https://"},
		{&auth.DiscoveryError{Issuer: "https://x", Kind: auth.ErrBadCertificate, Err: x509.UnknownAuthorityError{}}, "certificate isn't trusted"},
		{&auth.DiscoveryError{Issuer: "https://x", Kind: auth.ErrUnreachable}, "Can't reach the service"},
		{&auth.DiscoveryError{Issuer: "https://x", Kind: auth.ErrNotOpenID}, "isn't a Linkdesk"},
		{&auth.AuthorizationError{Code: "access_denied"}, "cancelled in the browser"},
		{auth.ErrSessionEnded, "signed out"},
		{auth.ErrKeyringTimeout, "keyring"},
		{fmt.Errorf("%w: %w", auth.ErrKeyringUnavailable, errors.New("org.freedesktop.secrets was not provided")), "couldn't use your computer's keyring"},
		{fmt.Errorf("%w: %w", auth.ErrCAFile, errors.New("no such file")), "can't use that CA file"},
		{ErrNoService, "Set one up in Settings"},
		{device.ErrNoDeviceGrant, "doesn't offer linking devices"},
		{&auth.SignOutError{RevokeErr: &auth.HTTPError{Status: 503}}, "the service could not be told"},
		{&auth.SignOutError{RevokeErr: errors.New("revoked"), DeleteErr: fmt.Errorf("%w: %w", auth.ErrKeyringUnavailable, errors.New("locked"))}, "couldn't use your computer's keyring"},
		// A certificate problem reads the same from discovery and from the management API.
		{&devices.NetworkError{Op: "GET /api/v1/devices", Err: &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}}, "choose its CA file in Settings"},
		{&auth.DiscoveryError{Issuer: "https://x", Kind: auth.ErrBadCertificate}, "choose its CA file in Settings"},
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
