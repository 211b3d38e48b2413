// Package auth is the client side of OAuth for the Linkdesk desktop app: issuer
// discovery, one OAuth client core (client authentication, userinfo, refresh,
// revocation), sign-in with authorization code + PKCE over a loopback redirect, and
// the token store in the OS keyring. The device flow for kiosk mode is built on it in
// auth/device. It returns typed errors, never sentences for people, and never imports
// Fyne.
package auth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Sentinel kinds of issuer problems. A *DiscoveryError matches exactly one of
// them with errors.Is, so the UI can say plainly what is wrong.
var (
	// ErrInvalidIssuer means the text is not an absolute URL usable as an issuer.
	ErrInvalidIssuer = errors.New("not a valid service address")
	// ErrNotHTTPS means a non-loopback issuer was given with http (DESIGN.md: https only).
	ErrNotHTTPS = errors.New("service address must start with https://")
	// ErrUnreachable means DNS, connection or timeout failure: the service could not be reached.
	ErrUnreachable = errors.New("service unreachable")
	// ErrBadCertificate means the TLS certificate was not trusted (unknown CA, wrong name, expired).
	ErrBadCertificate = errors.New("service certificate not trusted")
	// ErrNotOpenID means something answered, but not with an OpenID discovery document.
	ErrNotOpenID = errors.New("not an OpenID / Linkdesk service")
	// ErrIssuerMismatch means the discovery document names a different issuer (RFC 8414 §3.3).
	ErrIssuerMismatch = errors.New("service names a different issuer")
)

// ErrCAFile means the extra CA file given for the service could not be read or holds no
// PEM certificate.
var ErrCAFile = errors.New("CA file unusable")

// DiscoveryError reports why an issuer could not be used. Kind is one of the
// Err* sentinels above; Err is the underlying cause (an *x509 error, a
// *net.OpError, ...), both reachable through errors.Is / errors.As.
type DiscoveryError struct {
	Issuer string
	Kind   error
	Err    error
}

func (e *DiscoveryError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("%s: %v", e.Issuer, e.Kind)
	}
	return fmt.Sprintf("%s: %v: %v", e.Issuer, e.Kind, e.Err)
}

// Unwrap returns both the kind and the cause, so errors.Is(err, ErrBadCertificate)
// and errors.As(err, &x509.UnknownAuthorityError{}) both work.
func (e *DiscoveryError) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// Provider is what the app needs from an issuer's discovery document.
type Provider struct {
	Issuer                      string `json:"issuer"`
	AuthorizationEndpoint       string `json:"authorization_endpoint"`
	TokenEndpoint               string `json:"token_endpoint"`
	DeviceAuthorizationEndpoint string `json:"device_authorization_endpoint,omitempty"`
	RevocationEndpoint          string `json:"revocation_endpoint,omitempty"`
	UserinfoEndpoint            string `json:"userinfo_endpoint,omitempty"`
	JWKSURI                     string `json:"jwks_uri,omitempty"`
}

// ParseIssuer checks that issuer is an absolute http(s) URL without query,
// fragment or credentials, and that it is https unless its host is loopback
// (127.0.0.1, ::1, localhost; allowed for tests against third-party providers).
// It returns the issuer with its host lower-cased and without a trailing slash.
func ParseIssuer(issuer string) (*url.URL, error) {
	raw := strings.TrimSpace(issuer)
	u, err := url.Parse(raw)
	if err != nil {
		return nil, &DiscoveryError{Issuer: issuer, Kind: ErrInvalidIssuer, Err: err}
	}
	if u.Host == "" || u.Opaque != "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return nil, &DiscoveryError{Issuer: issuer, Kind: ErrInvalidIssuer}
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopbackHost(u.Hostname()) {
			return nil, &DiscoveryError{Issuer: issuer, Kind: ErrNotHTTPS}
		}
	default:
		return nil, &DiscoveryError{Issuer: issuer, Kind: ErrInvalidIssuer}
	}
	u.Host = strings.ToLower(u.Host)
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// isLoopbackHost reports whether host (without port) is localhost or a loopback IP.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// CheckIssuer validates issuer, fetches {issuer}/.well-known/openid-configuration
// with httpClient (nil means HTTPClient("")) and checks the document names the
// same issuer. Every failure is a *DiscoveryError, except cancellation of ctx,
// which is returned as ctx.Err().
func CheckIssuer(ctx context.Context, httpClient *http.Client, issuer string) (*Provider, error) {
	u, err := ParseIssuer(issuer)
	if err != nil {
		return nil, err
	}
	if httpClient == nil {
		if httpClient, err = HTTPClient(""); err != nil {
			return nil, err
		}
	}
	want := u.String()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, want+"/.well-known/openid-configuration", nil)
	if err != nil {
		return nil, &DiscoveryError{Issuer: want, Kind: ErrInvalidIssuer, Err: err}
	}
	req.Header.Set("Accept", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &DiscoveryError{Issuer: want, Kind: classifyTransportError(err), Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBody))
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &DiscoveryError{Issuer: want, Kind: ErrUnreachable, Err: err}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &DiscoveryError{Issuer: want, Kind: ErrNotOpenID, Err: fmt.Errorf("discovery answered HTTP %d", resp.StatusCode)}
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "" && mt != "application/json" && !strings.HasSuffix(mt, "+json") {
		return nil, &DiscoveryError{Issuer: want, Kind: ErrNotOpenID, Err: fmt.Errorf("discovery answered %s, not JSON", mt)}
	}
	var p Provider
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, &DiscoveryError{Issuer: want, Kind: ErrNotOpenID, Err: fmt.Errorf("discovery document: %w", err)}
	}
	if p.Issuer == "" || p.TokenEndpoint == "" || p.AuthorizationEndpoint == "" {
		return nil, &DiscoveryError{Issuer: want, Kind: ErrNotOpenID, Err: errors.New("discovery document lacks issuer, authorization or token endpoint")}
	}
	if strings.TrimRight(p.Issuer, "/") != want {
		return nil, &DiscoveryError{Issuer: want, Kind: ErrIssuerMismatch, Err: fmt.Errorf("document names issuer %q", p.Issuer)}
	}
	for _, e := range []*string{&p.AuthorizationEndpoint, &p.TokenEndpoint, &p.DeviceAuthorizationEndpoint, &p.RevocationEndpoint, &p.UserinfoEndpoint, &p.JWKSURI} {
		if *e == "" {
			continue
		}
		eu, err := url.Parse(*e)
		if err != nil || !(eu.Scheme == "https" || (eu.Scheme == "http" && isLoopbackHost(eu.Hostname()))) || eu.Host == "" {
			return nil, &DiscoveryError{Issuer: want, Kind: ErrNotOpenID, Err: fmt.Errorf("endpoint %q is not an https URL", *e)}
		}
	}
	return &p, nil
}

// IsCertificateError reports whether err (from any HTTPS request) is a TLS certificate
// that was not trusted: unknown CA, wrong name, expired. It is the one place that tells.
func IsCertificateError(err error) bool {
	var (
		unknownCA *x509.UnknownAuthorityError
		invalid   x509.CertificateInvalidError
		hostname  x509.HostnameError
		verify    *tls.CertificateVerificationError
	)
	return errors.Is(err, ErrBadCertificate) || errors.As(err, &unknownCA) || errors.As(err, &invalid) ||
		errors.As(err, &hostname) || errors.As(err, &verify)
}

// classifyTransportError tells a certificate problem from an unreachable host.
func classifyTransportError(err error) error {
	if IsCertificateError(err) {
		return ErrBadCertificate
	}
	var recordErr tls.RecordHeaderError
	// net/http reports plain HTTP on an https port only as text.
	if errors.As(err, &recordErr) || strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
		// Spoke TLS to something that is not TLS (for example plain HTTP on that port).
		return ErrNotOpenID
	}
	return ErrUnreachable
}

// HTTPClient returns an HTTP client for talking to the issuer: TLS 1.2+, trusting
// the system roots plus the CA certificates in the optional PEM file caFile (the
// one `linkd serve` prints in development), with connect, TLS and overall timeouts.
func HTTPClient(caFile string) (*http.Client, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrCAFile, err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: %s holds no PEM certificate", ErrCAFile, caFile)
		}
	}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSClientConfig:       &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 30 * time.Second,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConnsPerHost:   4,
			ForceAttemptHTTP2:     true,
		},
		// No overall Timeout: the events stream is long-lived. Callers bound
		// ordinary requests with their context; ResponseHeaderTimeout catches a
		// server that accepts but never answers.
	}, nil
}
