// Package mailtest runs a real SMTP server in-process for tests (github.com/emersion/go-smtp
// on 127.0.0.1), with optional STARTTLS, implicit TLS and AUTH PLAIN, and hands every
// message it accepts to the test, decoded for reading.
package mailtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Options choose what the server offers.
type Options struct {
	StartTLS    bool   // offer STARTTLS
	ImplicitTLS bool   // smtps: TLS from the first byte
	User, Pass  string // when set, AUTH PLAIN with these is required before MAIL
}

// Message is one message the server accepted.
type Message struct {
	From    string   // MAIL FROM
	To      []string // RCPT TO
	Data    []byte   // as received
	TLS     bool     // it came over TLS (STARTTLS or implicit)
	Authed  string   // the user that authenticated, if any
	Header  mail.Header
	Subject string // decoded
	Body    string // decoded (quoted-printable undone), CRLF made LF
}

// Server is a running SMTP server.
type Server struct {
	URL      string      // smtp://[user:pass@]127.0.0.1:PORT or smtps://…
	Addr     string      // 127.0.0.1:PORT
	Client   *tls.Config // trusts the server's certificate, for mail.Settings.TLS
	Messages chan Message
}

// Start runs a server until the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	cert, pool := selfSigned(t)
	srv := &Server{Messages: make(chan Message, 64), Client: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	be := smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{srv: srv, opts: opts, conn: c}, nil
	})
	s := smtp.NewServer(be)
	s.Domain = "mail.test"
	s.AllowInsecureAuth = true
	s.ReadTimeout, s.WriteTimeout = time.Minute, time.Minute
	s.ErrorLog = nopLog{}
	tcfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if opts.StartTLS {
		s.TLSConfig = tcfg
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mailtest: listen: %v", err)
	}
	if opts.ImplicitTLS {
		ln = tls.NewListener(ln, tcfg)
	}
	srv.Addr = ln.Addr().String()
	u := url.URL{Scheme: "smtp", Host: srv.Addr}
	if opts.ImplicitTLS {
		u.Scheme = "smtps"
	}
	if opts.User != "" {
		u.User = url.UserPassword(opts.User, opts.Pass)
	}
	srv.URL = u.String()
	go s.Serve(ln) //nolint:errcheck // ends with Close
	t.Cleanup(func() { s.Close() })
	return srv
}

// Next waits up to a minute for the next message; the test fails without one.
func (s *Server) Next(t testing.TB) Message {
	t.Helper()
	select {
	case m := <-s.Messages:
		return m
	case <-time.After(time.Minute):
		t.Fatal("mailtest: no message arrived within a minute")
		return Message{}
	}
}

type session struct {
	srv    *Server
	opts   Options
	conn   *smtp.Conn
	authed string
	msg    Message
}

func (s *session) AuthMechanisms() []string {
	if s.opts.User == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != s.opts.User || pass != s.opts.Pass {
			return errors.New("invalid credentials")
		}
		s.authed = user
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.opts.User != "" && s.authed == "" {
		return smtp.ErrAuthRequired
	}
	s.msg = Message{From: from}
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.msg.To = append(s.msg.To, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := s.msg
	m.Data = b
	_, m.TLS = s.conn.TLSConnectionState()
	m.Authed = s.authed
	if pm, err := mail.ReadMessage(strings.NewReader(string(b))); err == nil {
		m.Header = pm.Header
		m.Subject, _ = new(mime.WordDecoder).DecodeHeader(pm.Header.Get("Subject"))
		var body io.Reader = pm.Body
		if strings.EqualFold(pm.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
			body = quotedprintable.NewReader(pm.Body)
		}
		text, _ := io.ReadAll(body)
		m.Body = strings.ReplaceAll(string(text), "\r\n", "\n")
	}
	s.srv.Messages <- m
	return nil
}

func (s *session) Reset()        { s.msg = Message{} }
func (s *session) Logout() error { return nil }

type nopLog struct{}

func (nopLog) Printf(string, ...any) {}
func (nopLog) Println(...any)        {}

// selfSigned makes a certificate for 127.0.0.1 and a pool trusting it.
func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mailtest"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: c}, pool
}
