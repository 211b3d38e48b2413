package auth

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
)

// startExampleOP runs zitadel/oidc's example OpenID provider (a real provider
// that is not ours) on an httptest server; tls picks https or plain http.
func startExampleOP(t *testing.T, tls bool) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	if tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	issuer := srv.URL
	srv.Config.Handler = exampleop.SetupServer(issuer, storage.NewStorage(storage.NewUserStore(issuer)), nil, false)
	return srv
}

func TestCheckIssuerExampleProviderTLS(t *testing.T) {
	srv := startExampleOP(t, true)
	p, err := CheckIssuer(t.Context(), srv.Client(), srv.URL+"/")
	if err != nil {
		t.Fatal(err)
	}
	if p.Issuer != srv.URL || p.TokenEndpoint == "" || p.AuthorizationEndpoint == "" || p.RevocationEndpoint == "" ||
		p.UserinfoEndpoint == "" || p.DeviceAuthorizationEndpoint == "" {
		t.Fatalf("provider = %+v", p)
	}
}

func TestCheckIssuerAllowsHTTPLoopback(t *testing.T) {
	srv := startExampleOP(t, false)
	if _, err := CheckIssuer(t.Context(), srv.Client(), srv.URL); err != nil {
		t.Fatal(err)
	}
}

func TestParseIssuerRules(t *testing.T) {
	for in, kind := range map[string]error{
		"http://link.example.com":           ErrNotHTTPS,
		"http://10.0.0.5:8443":              ErrNotHTTPS,
		"ftp://link.example.com":            ErrInvalidIssuer,
		"link.example.com":                  ErrInvalidIssuer,
		"https://link.example.com/?x=1":     ErrInvalidIssuer,
		"https://link.example.com/#frag":    ErrInvalidIssuer,
		"https://user:pw@link.example.com":  ErrInvalidIssuer,
		"https://link.example.com/tenant/":  nil,
		"http://127.0.0.1:8443":             nil,
		"http://[::1]:8443":                 nil,
		"http://localhost:8443":             nil,
		"  https://link.example.com  ":      nil,
		"https://link.example.com:8443":     nil,
		"http://127.0.0.1.example.com:8443": ErrNotHTTPS,
	} {
		u, err := ParseIssuer(in)
		if kind == nil {
			if err != nil {
				t.Errorf("ParseIssuer(%q) = %v", in, err)
			} else if strings.HasSuffix(u.String(), "/") {
				t.Errorf("ParseIssuer(%q) kept trailing slash: %s", in, u)
			}
			continue
		}
		if !errors.Is(err, kind) {
			t.Errorf("ParseIssuer(%q) = %v, want %v", in, err, kind)
		}
	}
}

func TestCheckIssuerRefusesHTTPBeforeAnyRequest(t *testing.T) {
	hc := &http.Client{Transport: discoveryRoundTrip(func(*http.Request) (*http.Response, error) {
		t.Fatal("a request was sent for an http issuer")
		return nil, nil
	})}
	_, err := CheckIssuer(t.Context(), hc, "http://link.example.com")
	var de *DiscoveryError
	if !errors.As(err, &de) || de.Kind != ErrNotHTTPS {
		t.Fatalf("err = %v", err)
	}
}

// discoveryRoundTrip adapts a function to http.RoundTripper.
type discoveryRoundTrip func(*http.Request) (*http.Response, error)

func (f discoveryRoundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestCheckIssuerUntrustedCertificate(t *testing.T) {
	srv := startExampleOP(t, true)
	hc, err := HTTPClient("") // system roots only: httptest's CA is not among them
	if err != nil {
		t.Fatal(err)
	}
	_, err = CheckIssuer(t.Context(), hc, srv.URL)
	if !errors.Is(err, ErrBadCertificate) {
		t.Fatalf("err = %v, want ErrBadCertificate", err)
	}
	var unknown x509.UnknownAuthorityError
	var verify interface{ Error() string }
	if !errors.As(err, &unknown) && !errors.As(err, &verify) {
		t.Fatalf("x509 cause not reachable: %v", err)
	}
}

func TestCheckIssuerWrongHostName(t *testing.T) {
	srv := startExampleOP(t, true)
	// httptest's certificate names 127.0.0.1, ::1 and example.com, not localhost.
	u := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	_, err := CheckIssuer(t.Context(), srv.Client(), u)
	var hn x509.HostnameError
	if !errors.Is(err, ErrBadCertificate) || !errors.As(err, &hn) {
		t.Fatalf("err = %v, want ErrBadCertificate with HostnameError", err)
	}
}

func TestHTTPClientTrustsCAFile(t *testing.T) {
	srv := startExampleOP(t, true)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	cert := srv.Certificate() // self-signed: it is its own CA
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	hc, err := HTTPClient(caFile)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CheckIssuer(t.Context(), hc, srv.URL); err != nil {
		t.Fatal(err)
	}
	if _, err := HTTPClient(filepath.Join(t.TempDir(), "missing.pem")); err == nil {
		t.Fatal("missing CA file accepted")
	}
	bad := filepath.Join(t.TempDir(), "bad.pem")
	_ = os.WriteFile(bad, []byte("not a certificate"), 0o600)
	if _, err := HTTPClient(bad); err == nil {
		t.Fatal("CA file without PEM accepted")
	}
}

func TestCheckIssuerUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: connection refused
	_, err = CheckIssuer(t.Context(), http.DefaultClient, "https://"+addr)
	var op *net.OpError
	if !errors.Is(err, ErrUnreachable) || !errors.As(err, &op) {
		t.Fatalf("err = %v, want ErrUnreachable", err)
	}
}

func TestCheckIssuerCancelled(t *testing.T) {
	srv := startExampleOP(t, true)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := CheckIssuer(ctx, srv.Client(), srv.URL); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

// Services that are not OpenID providers at all: a web site, a 404, a JSON
// API that isn't discovery, a provider for another issuer, plain HTTP on an https URL.
func TestCheckIssuerNotOpenID(t *testing.T) {
	cases := map[string]struct {
		h    http.HandlerFunc
		kind error
	}{
		"404": {func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }, ErrNotOpenID},
		"html": {func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte("<html>welcome</html>"))
		}, ErrNotOpenID},
		"bad json": {func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"issuer":`))
		}, ErrNotOpenID},
		"other json": {func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"status":"ok"}`))
		}, ErrNotOpenID},
		"mismatch": {func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"issuer":"https://evil.example","authorization_endpoint":"https://evil.example/a","token_endpoint":"https://evil.example/t"}`))
		}, ErrIssuerMismatch},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewTLSServer(c.h)
			defer srv.Close()
			_, err := CheckIssuer(t.Context(), srv.Client(), srv.URL)
			if !errors.Is(err, c.kind) {
				t.Fatalf("err = %v, want %v", err, c.kind)
			}
		})
	}
	t.Run("plain http on https url", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		defer srv.Close()
		_, err := CheckIssuer(t.Context(), srv.Client(), strings.Replace(srv.URL, "http:", "https:", 1))
		if !errors.Is(err, ErrNotOpenID) {
			t.Fatalf("err = %v", err)
		}
	})
}
