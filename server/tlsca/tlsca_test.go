package tlsca

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

func TestEnsureCreatesReusesAndServes(t *testing.T) {
	dir := t.TempDir()
	cert, caPath, err := Ensure(dir, "10.1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{caKey, keyFile} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", f, st.Mode(), err)
		}
	}
	again, caPath2, err := Ensure(dir, "10.1.2.3")
	if err != nil || caPath2 != caPath || string(again.Certificate[0]) != string(cert.Certificate[0]) {
		t.Fatalf("second Ensure made a new certificate (%v)", err)
	}
	// A new host reissues the server certificate under the same CA.
	named, _, err := Ensure(dir, "link.example.test")
	if err != nil || string(named.Certificate[0]) == string(cert.Certificate[0]) {
		t.Fatalf("host change kept the certificate (%v)", err)
	}
	leaf, _ := x509.ParseCertificate(named.Certificate[0])
	for _, h := range []string{"link.example.test", "localhost", "127.0.0.1"} {
		if err := leaf.VerifyHostname(h); err != nil {
			t.Errorf("%s: %v", h, err)
		}
	}

	// A real TLS handshake with a client trusting only the CA file.
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{named}}
	srv.StartTLS()
	defer srv.Close()
	pemBytes, err := os.ReadFile(caPath)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemBytes)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get("https://localhost:" + port + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}
