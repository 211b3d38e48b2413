package mail

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/links"
	"github.com/linkdesk/linkdesk/server/mail/mailtest"
	"github.com/linkdesk/linkdesk/server/store"
)

// users is a Store of fixed accounts.
type users map[string]store.User

func (u users) UserBySubject(_ context.Context, subject string) (store.User, error) {
	if x, ok := u[subject]; ok {
		return x, nil
	}
	return store.User{}, store.ErrNotFound
}

// syncBuffer is a log sink safe for the sender's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func notice(subject, name string) links.LinkNotice {
	return links.LinkNotice{Subject: subject, Link: links.Link{
		Grant: store.Grant{ID: "g1", Name: name},
		Device: devices.Device{ID: "g1", Name: name, Kind: devices.KindTV, Client: devices.ClientInfo{ID: "tv", Name: "Cinema Plus"},
			LinkedAt: time.Date(2026, 12, 1, 20, 30, 0, 0, time.UTC), RequestIP: "203.0.113.7"}}}
}

// The URL's forms: schemes, default ports, user and password; errors never quote
// the password.
func TestParseURL(t *testing.T) {
	for _, c := range []struct {
		url, addr, user, pass string
		tls                   bool
	}{
		{"smtp://mail.example.com", "mail.example.com:587", "", "", false},
		{"smtps://u%40x:p%3Aw@mail.example.com", "mail.example.com:465", "u@x", "p:w", true},
		{"smtp://u:pw@[2001:db8::1]:2525", "[2001:db8::1]:2525", "u", "pw", false},
	} {
		s, err := parseURL(c.url)
		if err != nil || s.addr != c.addr || s.user != c.user || s.pass != c.pass || s.implicitTLS != c.tls {
			t.Errorf("%s: %+v, %v", c.url, s, err)
		}
	}
	for _, bad := range []string{"http://u:hunter2@x", "smtp://u:hunter2@", "smtp://u:hunter2@x/path", "smtp://u:hunter2@x:bad port", "::hunter2"} {
		_, err := parseURL(bad)
		if err == nil {
			t.Errorf("%s accepted", bad)
		} else if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: the error quotes the password: %v", bad, err)
		}
	}
}

// Nothing a device or an account says can add a header: CR and LF in a display name
// or device name never reach the headers, and an address with them is not mailed.
func TestComposeGuardsHeaders(t *testing.T) {
	n, err := New(Config{Settings: Settings{URL: "smtp://127.0.0.1:1", From: "Linkdesk <linkd@example.test>"},
		Issuer: "https://linkd.example.test/", Store: users{
			"u1": {Username: "ada", DisplayName: "Ada\r\nBcc: evil@example.test", Email: "ada@example.test"},
			"u2": {Username: "bob", Email: "bob@example.test\r\nBcc: evil@example.test"},
		}})
	if err != nil {
		t.Fatal(err)
	}
	to, msg, err := n.compose(context.Background(), notice("u1", "Den TV\r\nBcc: evil@example.test"))
	if err != nil {
		t.Fatal(err)
	}
	head, body, _ := strings.Cut(string(msg), "\r\n\r\n")
	for _, line := range strings.Split(head, "\r\n") {
		if strings.HasPrefix(strings.ToLower(line), "bcc") {
			t.Errorf("a header line was injected: %q", line)
		}
		if strings.ContainsAny(line, "\r\n") {
			t.Errorf("a header carries a line break: %q", line)
		}
	}
	if to.Address != "ada@example.test" {
		t.Errorf("to %v", to)
	}
	if !strings.Contains(body, "https://linkd.example.test/devices") {
		t.Errorf("the body has no /devices link:\n%s", body)
	}
	if _, _, err := n.compose(context.Background(), notice("u2", "TV")); err != errNoAddress {
		t.Errorf("an address with a line break: %v, want errNoAddress", err)
	}
}

// A full queue drops the notice at once, with an ERROR log, instead of holding up
// the approval that queued it.
func TestQueueFullDrops(t *testing.T) {
	var logs syncBuffer
	n, err := New(Config{Settings: Settings{URL: "smtp://127.0.0.1:1", From: "linkd@example.test", QueueSize: 1},
		Issuer: "https://linkd.example.test", Store: users{}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	n.Linked(notice("u1", "TV")) // no Run: it stays queued
	n.Linked(notice("u1", "TV 2"))
	if out := logs.String(); !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "mail queue full") {
		t.Errorf("a dropped notice is not logged as an ERROR:\n%s", out)
	}
}

// Over smtps (TLS from the first byte) with AUTH, the notice arrives with its facts.
func TestSendImplicitTLS(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{ImplicitTLS: true, User: "linkd", Pass: "pw"})
	n, err := New(Config{Settings: Settings{URL: srv.URL, From: "linkd@example.test", TLS: srv.Client},
		Issuer: "https://linkd.example.test", Store: users{"u1": {Username: "ada", Email: "ada@example.test"}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go n.Run(ctx)
	n.Linked(notice("u1", "Den TV"))
	m := srv.Next(t)
	if !m.TLS || m.Authed != "linkd" || m.To[0] != "ada@example.test" {
		t.Errorf("TLS %v, authed %q, to %v", m.TLS, m.Authed, m.To)
	}
	for _, want := range []string{"Hello ada,", "Device: Den TV (TV)", "App:    Cinema Plus", "Place:  203.0.113.7",
		"Time:   Tuesday 1 December 2026, 20:30 UTC", "https://linkd.example.test/devices"} {
		if !strings.Contains(m.Body, want) {
			t.Errorf("the message does not say %q:\n%s", want, m.Body)
		}
	}
}

// A server that is not trusted (no TLS configuration given for its own CA) is
// refused: the notice is given up, never sent in the clear.
func TestSendRefusesUntrustedTLS(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{StartTLS: true, User: "linkd", Pass: "pw"})
	done := make(chan error, 1)
	n, err := New(Config{Settings: Settings{URL: srv.URL, From: "linkd@example.test", Attempts: 1},
		Issuer: "https://linkd.example.test", Store: users{"u1": {Username: "ada", Email: "ada@example.test"}},
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	n.sent = func(_ links.LinkNotice, err error) { done <- err }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go n.Run(ctx)
	n.Linked(notice("u1", "Den TV"))
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "STARTTLS") {
			t.Errorf("sent to an untrusted server: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("no outcome within a minute")
	}
	select {
	case m := <-srv.Messages:
		t.Errorf("the server got a message: %+v", m)
	default:
	}
}
