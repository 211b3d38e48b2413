// Package mail sends linkd's email notices: "A device was linked to your account",
// to the account's address, on every new link. Sending is asynchronous and bounded:
// a Notifier queues each notice (dropping it, with an ERROR log, when the queue is
// full), and one worker sends them over SMTP with a few retries and backoff, so mail
// never holds up or breaks an approval. Nothing secret (the SMTP password, codes,
// tokens) is ever logged.
package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"net/url"
	"strings"
	"time"

	"github.com/linkdesk/linkdesk/server/links"
	"github.com/linkdesk/linkdesk/server/store"
)

// Defaults of the sending bounds.
const (
	DefaultQueueSize = 256
	DefaultAttempts  = 4
	DefaultBackoff   = 5 * time.Second
	DefaultTimeout   = 30 * time.Second
)

// Settings say where and how linkd sends mail (linkd serve --smtp-url, --mail-from).
type Settings struct {
	// URL is the SMTP server: smtp://user:pass@host:port (STARTTLS when the server
	// offers it; port 587 when left out) or smtps://user:pass@host:port (TLS from the
	// start; port 465 when left out). The user and password are optional.
	URL string
	// From is the sender's address, e.g. linkd@example.com or "Linkdesk <linkd@example.com>".
	From string
	// TLS, when set, is the TLS configuration for smtps and STARTTLS (its ServerName
	// is set to the server's host); nil trusts the system's roots.
	TLS *tls.Config
	// QueueSize bounds the notices waiting to be sent (default DefaultQueueSize).
	QueueSize int
	// Attempts is how often a notice is tried before it is dropped (default DefaultAttempts).
	Attempts int
	// Backoff is the wait before the first retry, doubled before each next one
	// (default DefaultBackoff).
	Backoff time.Duration
	// Timeout bounds one attempt: connecting, greeting and sending (default DefaultTimeout).
	Timeout time.Duration
}

// Enabled reports whether mail is configured (an SMTP URL was given).
func (s Settings) Enabled() bool { return s.URL != "" }

// Store is what the Notifier reads: the account's email address and name.
type Store interface {
	UserBySubject(ctx context.Context, subject string) (store.User, error)
}

// Config is what a Notifier needs; Settings.URL, Settings.From, Issuer and Store are
// required.
type Config struct {
	Settings
	Issuer string // linkd's public URL; the message links to Issuer/devices
	Store  Store
	Logger *slog.Logger     // nil: slog.Default()
	Now    func() time.Time // nil: time.Now
}

// server is a parsed SMTP URL.
type server struct {
	implicitTLS bool   // smtps
	addr        string // host:port
	host        string
	user, pass  string
}

// parseURL reads an SMTP URL. Its errors never quote the URL, which may hold a password.
func parseURL(raw string) (server, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return server{}, errors.New("mail: the SMTP URL is not a URL")
	}
	var srv server
	port := ""
	switch u.Scheme {
	case "smtp":
		port = "587"
	case "smtps":
		srv.implicitTLS, port = true, "465"
	default:
		return server{}, errors.New("mail: the SMTP URL must start with smtp:// or smtps://")
	}
	srv.host = u.Hostname()
	if srv.host == "" {
		return server{}, errors.New("mail: the SMTP URL names no host")
	}
	if p := u.Port(); p != "" {
		port = p
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return server{}, errors.New("mail: the SMTP URL must be only smtp[s]://[user:password@]host[:port]")
	}
	srv.addr = net.JoinHostPort(srv.host, port)
	if u.User != nil {
		srv.user = u.User.Username()
		srv.pass, _ = u.User.Password()
	}
	return srv, nil
}

// Notifier sends a notice for every new link; it is a links.Notifier. Start its worker
// with Run.
type Notifier struct {
	cfg   Config
	srv   server
	from  *mail.Address
	log   *slog.Logger
	queue chan links.LinkNotice
	// sent, when set (tests), hears of each notice sent or given up (err != nil).
	sent func(n links.LinkNotice, err error)
}

var _ links.Notifier = (*Notifier)(nil)

// New checks cfg and returns a Notifier; its errors never quote the SMTP password.
func New(cfg Config) (*Notifier, error) {
	if cfg.Store == nil || cfg.Issuer == "" {
		return nil, errors.New("mail: Config.Store and Config.Issuer are required")
	}
	srv, err := parseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if cfg.From == "" {
		return nil, errors.New("mail: a sender address (--mail-from) is required to send mail")
	}
	from, err := mail.ParseAddress(cfg.From)
	if err != nil || strings.ContainsAny(cfg.From, "\r\n") {
		return nil, fmt.Errorf("mail: the sender address %q is not an email address", cfg.From)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = DefaultAttempts
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	cfg.Issuer = strings.TrimRight(cfg.Issuer, "/")
	return &Notifier{cfg: cfg, srv: srv, from: from, log: cfg.Logger.With("component", "mail"),
		queue: make(chan links.LinkNotice, cfg.QueueSize)}, nil
}

// Linked queues a notice of a new link and returns at once; when the queue is full the
// notice is dropped with an ERROR log.
func (n *Notifier) Linked(notice links.LinkNotice) {
	select {
	case n.queue <- notice:
	default:
		n.log.Error("mail queue full; new-link notice dropped",
			"subject", notice.Subject, "device", notice.Link.Grant.ID, "queue", cap(n.queue))
	}
}

// Run sends the queued notices, one at a time, until ctx ends.
func (n *Notifier) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case notice := <-n.queue:
			err := n.deliver(ctx, notice)
			if n.sent != nil {
				n.sent(notice, err)
			}
		}
	}
}

// deliver sends one notice, trying up to Attempts times with doubling waits between.
func (n *Notifier) deliver(ctx context.Context, notice links.LinkNotice) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("mail: panic: %v", p)
			n.log.Error("new-link notice not sent", "subject", notice.Subject, "device", notice.Link.Grant.ID, "err", err)
		}
	}()
	wait := n.cfg.Backoff
	for attempt := 1; ; attempt++ {
		var to *mail.Address
		var msg []byte
		to, msg, err = n.compose(ctx, notice)
		if errors.Is(err, errNoAddress) {
			n.log.Info("new-link notice not sent: the account has no email address", "subject", notice.Subject)
			return err
		}
		if err == nil {
			err = n.send(ctx, to.Address, msg)
		}
		if err == nil {
			n.log.Info("new-link notice sent", "subject", notice.Subject, "device", notice.Link.Grant.ID)
			return nil
		}
		if attempt >= n.cfg.Attempts || ctx.Err() != nil {
			n.log.Error("new-link notice not sent; giving up", "subject", notice.Subject,
				"device", notice.Link.Grant.ID, "server", n.srv.addr, "attempts", attempt, "err", err)
			return err
		}
		n.log.Warn("new-link notice not sent; will retry", "subject", notice.Subject,
			"device", notice.Link.Grant.ID, "server", n.srv.addr, "attempt", attempt, "retry_in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait *= 2
	}
}

// errNoAddress: the account has no usable email address; nothing to send.
var errNoAddress = errors.New("mail: the account has no email address")
