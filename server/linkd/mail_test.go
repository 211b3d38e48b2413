package linkd_test

import (
	"bytes"
	"context"
	"github.com/linkdesk/linkdesk/server/geoip/geoiptest"
	"log/slog"
	"net"
	"net/http"
	"net/mail"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/linkd"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest"
	mailer "github.com/linkdesk/linkdesk/server/mail"
	"github.com/linkdesk/linkdesk/server/mail/mailtest"
)

// A device links through real linkd with email notices on: the account's owner gets
// one message, over STARTTLS and AUTH, from the configured sender, naming the device,
// its app, the address it asked from, the time and the /devices page. The To header of
// a non-ASCII name is encoded.
func TestMailNoticeOfNewLink(t *testing.T) {
	smtpd := mailtest.Start(t, mailtest.Options{StartTLS: true, User: "linkd", Pass: "s3cret pass"})
	in := linkdtest.Start(t, linkdtest.Options{Dev: true, Mail: mailer.Settings{
		URL: smtpd.URL, From: "Linkdesk <linkd@example.test>", TLS: smtpd.Client}})
	u, err := linkd.AddUser(context.Background(), in.Store, linkd.NewUser{Username: "zoe", Password: "pw",
		DisplayName: "Zoë Ünal", Email: "zoe@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	app := in.AppToken(t, "zoe", "pw")
	ctx := in.Context(context.Background())
	conf := deviceConfig(in, linkd.DemoClientID)
	da, err := conf.DeviceAuth(ctx,
		oauth2.SetAuthURLParam(devices.ParamDeviceName, "Living room TV"),
		oauth2.SetAuthURLParam(devices.ParamDeviceModel, "Bravia X90"),
		oauth2.SetAuthURLParam(devices.ParamDeviceKind, "tv"))
	if err != nil {
		t.Fatal(err)
	}
	var ar devices.ApproveResponse
	if code := call(t, in, "POST", "/api/v1/link-requests/"+url.PathEscape(da.UserCode)+"/approve", app.AccessToken, "{}", &ar); code != http.StatusOK && code != http.StatusCreated {
		t.Fatalf("approve: %d", code)
	}
	if ar.Device.RequestIP != "127.0.0.1" {
		t.Errorf("approve answer's request_ip = %q, want 127.0.0.1", ar.Device.RequestIP)
	}
	if _, err := conf.DeviceAccessToken(ctx, da); err != nil {
		t.Fatalf("the device did not get its tokens: %v", err)
	}

	m := smtpd.Next(t)
	if len(m.To) != 1 || m.To[0] != u.Email {
		t.Errorf("RCPT TO %v, want %s", m.To, u.Email)
	}
	if m.From != "linkd@example.test" {
		t.Errorf("MAIL FROM %q", m.From)
	}
	if !m.TLS || m.Authed != "linkd" {
		t.Errorf("sent with TLS %v, authenticated as %q; want STARTTLS and AUTH as linkd", m.TLS, m.Authed)
	}
	if m.Subject != "A device was linked to your account" {
		t.Errorf("Subject %q", m.Subject)
	}
	raw := string(m.Data)
	if !strings.Contains(raw, "To: =?utf-8?q?") {
		t.Errorf("the To header's non-ASCII name is not Q-encoded:\n%s", raw)
	}
	to, err := m.Header.AddressList("To")
	if err != nil || len(to) != 1 || to[0].Name != "Zoë Ünal" || to[0].Address != u.Email {
		t.Errorf("To header reads %v (%v)", to, err)
	}
	from, err := m.Header.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Address != "linkd@example.test" || from[0].Name != "Linkdesk" {
		t.Errorf("From header reads %v (%v)", from, err)
	}
	if _, err := mail.ParseDate(m.Header.Get("Date")); err != nil {
		t.Errorf("Date header %q: %v", m.Header.Get("Date"), err)
	}
	if id := m.Header.Get("Message-ID"); !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, ">") || !strings.Contains(id, "@") {
		t.Errorf("Message-ID %q", id)
	}
	for _, want := range []string{
		"Hello Zoë Ünal,",
		"Device: Living room TV (TV · Bravia X90)",
		"App:    Demo TV",
		"Place:  127.0.0.1",
		"Time:   " + ar.Device.LinkedAt.UTC().Format("Monday 2 January 2006, 15:04 MST"),
		in.Issuer + "/devices",
	} {
		if !strings.Contains(m.Body, want) {
			t.Errorf("the message does not say %q:\n%s", want, m.Body)
		}
	}
	if strings.Contains(raw, "s3cret") || strings.Contains(raw, da.UserCode) {
		t.Errorf("the message carries a secret:\n%s", raw)
	}
}

// logWatch is a slog handler that keeps every line and signals each message's first
// appearance, so a test waits for a log line instead of sleeping.
type logWatch struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	seen  map[string]chan struct{}
	inner slog.Handler
}

func newLogWatch() *logWatch {
	w := &logWatch{seen: map[string]chan struct{}{}}
	w.inner = slog.NewTextHandler(&w.buf, &slog.HandlerOptions{Level: slog.LevelDebug})
	return w
}

func (w *logWatch) ch(msg string) chan struct{} {
	if w.seen[msg] == nil {
		w.seen[msg] = make(chan struct{})
	}
	return w.seen[msg]
}

func (w *logWatch) Enabled(context.Context, slog.Level) bool { return true }
func (w *logWatch) Handle(ctx context.Context, r slog.Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := w.ch(r.Message)
	select {
	case <-c:
	default:
		close(c)
	}
	return w.inner.Handle(ctx, r)
}
func (w *logWatch) WithAttrs(as []slog.Attr) slog.Handler { return &attrsWatch{w, as} }
func (w *logWatch) WithGroup(string) slog.Handler         { return w }

// wait waits up to a minute for a line with message msg.
func (w *logWatch) wait(t *testing.T, msg string) {
	t.Helper()
	w.mu.Lock()
	c := w.ch(msg)
	w.mu.Unlock()
	select {
	case <-c:
	case <-time.After(time.Minute):
		t.Fatalf("no log line %q within a minute; the log:\n%s", msg, w.String())
	}
}

func (w *logWatch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

type attrsWatch struct {
	*logWatch
	attrs []slog.Attr
}

func (a *attrsWatch) Handle(ctx context.Context, r slog.Record) error {
	r.AddAttrs(a.attrs...)
	return a.logWatch.Handle(ctx, r)
}

// With the SMTP server down, approving still links at once and the device gets its
// tokens; the notice is tried a few times and given up with an ERROR log that names
// neither the SMTP password nor the code.
func TestMailDownDoesNotBreakApproval(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	logs := newLogWatch()
	in := linkdtest.Start(t, linkdtest.Options{Dev: true, Logger: slog.New(logs), Mail: mailer.Settings{
		URL: "smtp://linkd:s3cret@" + addr, From: "linkd@example.test", Attempts: 2, Backoff: time.Millisecond}})
	alice := in.CreateUser(t, "alice", "pw")
	ctx := in.Context(context.Background())
	conf := deviceConfig(in, linkd.DemoClientID)
	da, err := conf.DeviceAuth(ctx, oauth2.SetAuthURLParam(devices.ParamDeviceName, "Kitchen TV"))
	if err != nil {
		t.Fatal(err)
	}
	approve(t, in, da.UserCode, alice.Subject)
	if _, err := conf.DeviceAccessToken(ctx, da); err != nil {
		t.Fatalf("the device did not get its tokens: %v", err)
	}
	logs.wait(t, "new-link notice not sent; giving up")
	out := logs.String()
	if !strings.Contains(out, "level=ERROR") {
		t.Errorf("giving up is not logged as an ERROR:\n%s", out)
	}
	if strings.Contains(out, "s3cret") || strings.Contains(out, da.UserCode) || strings.Contains(out, strings.ReplaceAll(da.UserCode, "-", "")) {
		t.Errorf("the log carries a secret:\n%s", out)
	}
}

// With a location database the notice names the place the device asked from, before
// its address, as the approve answer does.
func TestMailNoticeNamesThePlace(t *testing.T) {
	smtpd := mailtest.Start(t, mailtest.Options{})
	trusted, err := linkd.ParseTrustedProxies([]string{"127.0.0.1/32"})
	if err != nil {
		t.Fatal(err)
	}
	in := linkdtest.Start(t, linkdtest.Options{Dev: true, TrustedProxies: trusted, GeoIPDB: geoiptest.Write(t),
		Mail: mailer.Settings{URL: smtpd.URL, From: "linkd@example.test"}})
	if _, err := linkd.AddUser(context.Background(), in.Store, linkd.NewUser{Username: "zoe", Password: "pw",
		Email: "zoe@example.com"}); err != nil {
		t.Fatal(err)
	}
	app := in.AppToken(t, "zoe", "pw")
	tv := &http.Client{Transport: viaProxy{in.Client.Transport, http.Header{"X-Forwarded-For": {"203.0.113.7"}}}}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, tv)
	da, err := deviceConfig(in, linkd.DemoClientID).DeviceAuth(ctx, oauth2.SetAuthURLParam(devices.ParamDeviceName, "Hall TV"))
	if err != nil {
		t.Fatal(err)
	}
	var ar devices.ApproveResponse
	body := `{"confirmed_in_front": true}`
	if code := call(t, in, "POST", "/api/v1/link-requests/"+url.PathEscape(da.UserCode)+"/approve", app.AccessToken, body, &ar); code != http.StatusOK {
		t.Fatalf("approve: %d", code)
	}
	if ar.Device.RequestIP != "203.0.113.7" || ar.Device.RequestPlace.String() != "Lisbon, Portugal" {
		t.Errorf("approve answer: request_ip %q, request_place %+v", ar.Device.RequestIP, ar.Device.RequestPlace)
	}
	if m := smtpd.Next(t); !strings.Contains(m.Body, "Place:  Lisbon, Portugal (203.0.113.7)") {
		t.Errorf("the message does not name the place:\n%s", m.Body)
	}
}
