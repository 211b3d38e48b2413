package mail

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"

	"fmt"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/links"
)

// Subject is the subject line of a new-link notice.
const Subject = "A device was linked to your account"

// compose reads the account and words the notice as a plain-text message with its
// headers: the recipient and the message ready for DATA. Every value a device or an
// operator chose goes through links.Label (no control, bidi or zero-width characters)
// and nothing it carries reaches a header, so a name can neither hide text nor add
// headers.
func (n *Notifier) compose(ctx context.Context, notice links.LinkNotice) (*mail.Address, []byte, error) {
	u, err := n.cfg.Store.UserBySubject(ctx, notice.Subject)
	if err != nil {
		return nil, nil, fmt.Errorf("mail: read the account: %w", err)
	}
	if u.Email == "" || strings.ContainsAny(u.Email, "\r\n") {
		return nil, nil, errNoAddress
	}
	to, err := mail.ParseAddress(u.Email)
	if err != nil {
		return nil, nil, errNoAddress
	}
	to.Name = links.Label(u.DisplayName)
	if to.Name == "" {
		to.Name = links.Label(u.Username)
	}
	now := n.cfg.Now()

	var h bytes.Buffer
	header := func(k, v string) {
		// No value here comes from a device, but none may ever break a line either.
		v = strings.NewReplacer("\r", "", "\n", "").Replace(v)
		fmt.Fprintf(&h, "%s: %s\r\n", k, v)
	}
	header("From", n.from.String()) // net/mail Q-encodes a non-ASCII name (mime.QEncoding)
	header("To", to.String())
	header("Subject", mime.QEncoding.Encode("utf-8", Subject))
	header("Date", now.Format(time.RFC1123Z))
	header("Message-ID", n.messageID())
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	h.WriteString("\r\n")

	var body bytes.Buffer
	qp := quotedprintable.NewWriter(&body)
	text := strings.ReplaceAll(n.body(to.Name, notice), "\n", "\r\n")
	if _, err := qp.Write([]byte(text)); err != nil {
		return nil, nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, nil, err
	}
	return to, append(h.Bytes(), body.Bytes()...), nil
}

// body words the notice for the account's owner.
func (n *Notifier) body(name string, notice links.LinkNotice) string {
	d := notice.Link.Device
	device := links.Label(notice.Link.Name())
	if what := kindAndModel(d); what != "" {
		device += " (" + what + ")"
	}
	app := links.Label(d.Client.Name)
	if app == "" {
		app = links.Label(devices.ClientName(d.Client.ID))
	}
	// Where the device asked from: "Lisbon, Portugal (203.0.113.7)", the address alone
	// without a location database.
	place := "unknown"
	if ip, err := netip.ParseAddr(d.RequestIP); err == nil {
		place = ip.String()
		if where := links.Label(d.RequestPlace.String()); where != "" {
			place = where + " (" + place + ")"
		}
	}
	at := d.LinkedAt
	if at.IsZero() {
		at = n.cfg.Now()
	}
	greeting := "Hello,"
	if name != "" {
		greeting = "Hello " + name + ","
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n", greeting)
	b.WriteString("A device was linked to your account.\n\n")
	fmt.Fprintf(&b, "Device: %s\n", device)
	fmt.Fprintf(&b, "App:    %s\n", app)
	fmt.Fprintf(&b, "Place:  %s\n", place)
	fmt.Fprintf(&b, "Time:   %s\n\n", at.UTC().Format("Monday 2 January 2006, 15:04 MST"))
	b.WriteString("If this was you, there is nothing to do.\n\n")
	b.WriteString("If it was not you, unlink the device at once and change your password:\n")
	fmt.Fprintf(&b, "%s/devices\n\n", n.cfg.Issuer)
	b.WriteString("-- \nLinkdesk\n")
	return b.String()
}

// kindAndModel words a device's kind and model: "TV · Bravia XR".
func kindAndModel(d devices.Device) string {
	kind := map[devices.DeviceKind]string{devices.KindTV: "TV", devices.KindConsole: "Game console",
		devices.KindKiosk: "Kiosk", devices.KindComputer: "Computer", devices.KindPhone: "Phone"}[d.Kind]
	model := links.Label(d.Model)
	switch {
	case kind != "" && model != "":
		return kind + " · " + model
	case kind != "":
		return kind
	}
	return model
}

// messageID is a fresh Message-ID under the issuer's host.
func (n *Notifier) messageID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	host := issuerHost(n.cfg.Issuer)
	if host == "" || strings.ContainsAny(host, "[]:") {
		host = "linkd.invalid"
	}
	return "<" + hex.EncodeToString(b[:]) + "@" + host + ">"
}

// issuerHost is the host of the issuer URL, without its port ("" when unreadable).
func issuerHost(issuer string) string {
	u, err := url.Parse(issuer)
	if err != nil {
		return ""
	}
	return u.Hostname()
}
