package ui

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/linkdesk/linkdesk/auth"
	"github.com/linkdesk/linkdesk/devices"
)

// UserError is an error whose message is already written for people; Explain
// shows its message as is. Adapters use it for failures only they can word, such
// as "this is not a Linkdesk service".
type UserError struct {
	Message string // plain words shown to the person
	Err     error  // the underlying cause, logged but not shown
}

// Error gives the message and, for logs, the cause.
func (e *UserError) Error() string {
	if e.Err == nil {
		return e.Message
	}
	return e.Message + ": " + e.Err.Error()
}

// Unwrap returns the cause, so errors.Is and errors.As see through a UserError.
func (e *UserError) Unwrap() error { return e.Err }

// ErrSignedOut means the saved sign-in is gone or no longer accepted; the app
// shows the sign-in screen.
var ErrSignedOut = errors.New("signed out")

// Explain turns err into one or two plain sentences for people and logs the full
// error with slog, so every screen words failures the same way.
func Explain(err error) string {
	if err == nil {
		return ""
	}
	msg := explain(err)
	if !errors.Is(err, context.Canceled) {
		slog.Warn("ui: operation failed", "err", err, "shown", msg)
	}
	return msg
}

func explain(err error) string {
	var ue *UserError
	if errors.As(err, &ue) {
		return ue.Message
	}
	var worded interface{ UserMessage() string }
	if errors.As(err, &worded) {
		return worded.UserMessage()
	}
	if p, ok := problemOf(err); ok {
		return explainProblem(p)
	}
	var authz *auth.AuthorizationError
	if errors.As(err, &authz) {
		if authz.Code == "access_denied" {
			return "Sign-in was cancelled in the browser. Try again when you're ready."
		}
		return "The service refused the sign-in. Try again, and if it keeps happening, contact whoever runs your Linkdesk service."
	}
	if errors.Is(err, auth.ErrIssuerMixUp) {
		return "The sign-in answer came from a different service, so Linkdesk ignored it. Try signing in again."
	}
	if errors.Is(err, auth.ErrKeyringTimeout) {
		return "Your computer's keyring (password store) didn't answer. Unlock it, then try again."
	}
	var signOut *auth.SignOutError
	if errors.As(err, &signOut) && signOut.DeleteErr == nil {
		return "You are signed out on this computer, but the service could not be told. " +
			"If you are worried, sign in again and sign out once more."
	}
	if errors.Is(err, ErrSignedOut) || errors.Is(err, auth.ErrSessionEnded) || errors.Is(err, auth.ErrNoToken) {
		return "You are signed out. Sign in again to continue."
	}
	if errors.Is(err, context.Canceled) {
		return "Cancelled."
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "The Linkdesk service took too long to answer. Check your connection and try again."
	}
	if isCertificateError(err) {
		return "The service's security certificate isn't trusted, so Linkdesk did not connect. " +
			"If your organisation uses its own certificate authority, choose its CA file in Settings."
	}
	if devices.IsOffline(err) {
		return "Can't reach the Linkdesk service. Check your internet connection, then try again."
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return "Can't find the Linkdesk service. Check the address and your internet connection."
	}
	var netErr net.Error
	var opErr *net.OpError
	if errors.As(err, &opErr) || errors.As(err, &netErr) {
		return "Can't reach the Linkdesk service. Check your internet connection, then try again."
	}
	return "Something went wrong. Try again, and if it keeps happening, contact whoever runs your Linkdesk service."
}

func isCertificateError(err error) bool {
	var (
		unknownCA *x509.UnknownAuthorityError
		invalid   x509.CertificateInvalidError
		hostname  x509.HostnameError
		verify    *tls.CertificateVerificationError
	)
	return errors.As(err, &unknownCA) || errors.As(err, &invalid) ||
		errors.As(err, &hostname) || errors.As(err, &verify)
}

func explainProblem(p *devices.APIError) string {
	switch p.Code {
	case devices.CodeInvalidCode:
		return "That code wasn't found. Check the code on your TV and try again."
	case devices.CodeExpiredCode:
		return "That code has expired. Get a new code on your device, then enter it here."
	case devices.CodeAlreadyUsed:
		return "That code has already been used. Get a new code on your device."
	case devices.CodeRateLimited:
		if p.RetryAfter > 0 {
			return "Too many tries. Wait " + humanDuration(p.RetryAfter) + ", then try again."
		}
		return "Too many tries. Wait a minute, then try again."
	case devices.CodeUnauthorized:
		return "You are signed out. Sign in again to continue."
	case devices.CodeForbidden:
		return "Your account isn't allowed to do that."
	case devices.CodeNotFound:
		return "That device is no longer linked."
	case devices.CodeBadRequest:
		if p.Detail != "" {
			return p.Detail
		}
		return "The service didn't accept that. Check what you entered and try again."
	}
	if p.Status >= 500 || p.Code == devices.CodeInternal {
		return "The Linkdesk service has a problem right now. Try again in a moment."
	}
	if p.Title != "" {
		return p.Title + "."
	}
	return fmt.Sprintf("The Linkdesk service refused the request (error %d).", p.Status)
}

// humanDuration words a wait like "45 seconds" or "2 minutes".
func humanDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return "a moment"
	case d < time.Minute:
		s := int((d + time.Second - 1) / time.Second)
		return plural(s, "second")
	default:
		m := int((d + time.Minute - 1) / time.Minute)
		return plural(m, "minute")
	}
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}
