// Package tlsca makes linkd's local certificate authority: when the operator gives no
// certificate, linkd creates (once) a CA and a server certificate for its listen host
// in the data directory, so it can always speak TLS, and clients trust the CA file.
package tlsca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// File names inside the data directory.
const (
	CAFile   = "ca.pem"
	caKey    = "ca-key.pem"
	certFile = "server.pem"
	keyFile  = "server-key.pem"
)

// Ensure returns a server certificate for host (an IP or DNS name, plus 127.0.0.1,
// ::1 and localhost) signed by the data directory's local CA, creating the CA and
// certificate on first use and reusing them afterwards. It also returns the CA file's
// path for clients (--ca-file). A stored certificate that does not cover host or is
// near expiry is replaced; the CA is kept.
func Ensure(dir, host string) (tls.Certificate, string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return tls.Certificate{}, "", err
	}
	caPath := filepath.Join(dir, CAFile)
	ca, caPriv, err := loadOrCreateCA(dir)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	certPath, keyPath := filepath.Join(dir, certFile), filepath.Join(dir, keyFile)
	if c, err := tls.LoadX509KeyPair(certPath, keyPath); err == nil && covers(c, ca, host) {
		return c, caPath, nil
	}
	if err := issue(ca, caPriv, host, certPath, keyPath); err != nil {
		return tls.Certificate{}, "", err
	}
	c, err := tls.LoadX509KeyPair(certPath, keyPath)
	return c, caPath, err
}

func loadOrCreateCA(dir string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certPath, keyPath := filepath.Join(dir, CAFile), filepath.Join(dir, caKey)
	if pair, err := tls.LoadX509KeyPair(certPath, keyPath); err == nil {
		ca, err := x509.ParseCertificate(pair.Certificate[0])
		if err != nil {
			return nil, nil, err
		}
		priv, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
		if !ok {
			return nil, nil, errors.New("tlsca: CA key is not ECDSA")
		}
		return ca, priv, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("tlsca: load CA: %w", err)
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "linkd local CA", Organization: []string{"Linkdesk"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return nil, nil, err
	}
	if err := writePair(certPath, keyPath, der, priv); err != nil {
		return nil, nil, err
	}
	ca, err := x509.ParseCertificate(der)
	return ca, priv, err
}

func hosts(host string) (ips []net.IP, names []string) {
	ips = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	names = []string{"localhost"}
	if host == "" {
		return
	}
	if ip := net.ParseIP(host); ip != nil {
		if !slices.ContainsFunc(ips, ip.Equal) {
			ips = append(ips, ip)
		}
	} else if host != "localhost" {
		names = append(names, host)
	}
	return
}

func covers(c tls.Certificate, ca *x509.Certificate, host string) bool {
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil || time.Until(leaf.NotAfter) < 30*24*time.Hour {
		return false
	}
	if leaf.CheckSignatureFrom(ca) != nil {
		return false
	}
	ips, names := hosts(host)
	for _, ip := range ips {
		if leaf.VerifyHostname(ip.String()) != nil {
			return false
		}
	}
	for _, n := range names {
		if leaf.VerifyHostname(n) != nil {
			return false
		}
	}
	return true
}

func issue(ca *x509.Certificate, caPriv *ecdsa.PrivateKey, host, certPath, keyPath string) error {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	ips, names := hosts(host)
	cn := host
	if cn == "" {
		cn = "localhost"
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  ips,
		DNSNames:     names,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &priv.PublicKey, caPriv)
	if err != nil {
		return err
	}
	return writePair(certPath, keyPath, der, priv)
}

func writePair(certPath, keyPath string, der []byte, priv *ecdsa.PrivateKey) error {
	kb, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return err
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return err
	}
	if err := os.Chmod(keyPath, 0o600); err != nil {
		return err
	}
	return os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}
