package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/smtp"
	"time"
)

// send delivers one message to rcpt over SMTP within the attempt's Timeout: TLS from
// the start for smtps, STARTTLS when the server offers it for smtp, then AUTH PLAIN
// when the URL has a user (net/smtp refuses it over an unencrypted connection to
// anything but localhost).
func (n *Notifier) send(ctx context.Context, rcpt string, msg []byte) error {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	var tcfg *tls.Config
	if n.cfg.TLS != nil {
		tcfg = n.cfg.TLS.Clone()
	} else {
		tcfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	tcfg.ServerName = n.srv.host

	var conn net.Conn
	var err error
	if n.srv.implicitTLS {
		conn, err = (&tls.Dialer{Config: tcfg}).DialContext(ctx, "tcp", n.srv.addr)
	} else {
		conn, err = (&net.Dialer{}).DialContext(ctx, "tcp", n.srv.addr)
	}
	if err != nil {
		return fmt.Errorf("mail: connect: %w", err)
	}
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	c, err := smtp.NewClient(conn, n.srv.host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("mail: greeting: %w", err)
	}
	defer c.Close()
	if err := c.Hello(n.helloName()); err != nil {
		return fmt.Errorf("mail: HELLO: %w", err)
	}
	if !n.srv.implicitTLS {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(tcfg); err != nil {
				return fmt.Errorf("mail: STARTTLS: %w", err)
			}
		}
	}
	if n.srv.user != "" {
		if ok, _ := c.Extension("AUTH"); !ok {
			return errors.New("mail: the server offers no AUTH but the SMTP URL has a user")
		}
		if err := c.Auth(smtp.PlainAuth("", n.srv.user, n.srv.pass, n.srv.host)); err != nil {
			return fmt.Errorf("mail: AUTH: %w", err)
		}
	}
	if err := c.Mail(n.from.Address); err != nil {
		return fmt.Errorf("mail: MAIL FROM: %w", err)
	}
	if err := c.Rcpt(rcpt); err != nil {
		return fmt.Errorf("mail: RCPT TO: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("mail: DATA: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		w.Close()
		return fmt.Errorf("mail: DATA: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("mail: DATA: %w", err)
	}
	if err := c.Quit(); err != nil {
		// The message was accepted; a failed goodbye does not unsend it.
		n.log.Debug("SMTP QUIT failed after the message was accepted", "err", err)
	}
	return nil
}

// helloName is the name linkd greets the SMTP server with: its issuer's host (an
// address in brackets, as RFC 5321 §4.1.3 writes it).
func (n *Notifier) helloName() string {
	h := issuerHost(n.cfg.Issuer)
	if ip, err := netip.ParseAddr(h); err == nil {
		if ip.Is4() {
			return "[" + ip.String() + "]"
		}
		return "[IPv6:" + ip.String() + "]"
	}
	if h != "" {
		return h
	}
	return "localhost"
}
