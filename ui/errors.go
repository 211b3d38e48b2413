package ui

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/linkdesk/linkdesk/auth"
	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/devices/scan"
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
	if _, refusal := explainInput(err); !refusal && !errors.Is(err, context.Canceled) {
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
	if msg, ok := explainInput(err); ok {
		return msg
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

// explainCodeInput words what is wrong with a typed, pasted or scanned code.
func explainCodeInput(err error) string {
	if msg, ok := explainInput(err); ok {
		return msg
	}
	return Explain(err)
}

// explainInput words the refusals of codes, links and pictures (not faults:
// they are not logged).
func explainInput(err error) (string, bool) {
	var foreign *devices.ForeignLinkError
	var invalid *devices.InvalidCharError
	switch {
	case errors.As(err, &foreign):
		return "This link is not from your Linkdesk service (it points at " + foreign.Host + "). " +
			"Someone may be trying to get you to link their device to your account. " +
			"Only enter codes shown on a device in front of you.", true
	case errors.Is(err, devices.ErrForeignLink):
		return "This link is not from your Linkdesk service. Someone may be trying to " +
			"get you to link their device to your account. Only enter codes shown on a device in front of you.", true
	case errors.Is(err, devices.ErrNotALink):
		return "This link doesn't hold a Linkdesk code. Type the code shown on your device instead.", true
	case errors.Is(err, devices.ErrCodeLength):
		return "That code doesn't have 8 letters. Check the code on your device.", true
	case errors.As(err, &invalid):
		return "“" + string(invalid.Char) + "” is never part of a code. Codes use only the letters " +
			strings.Join(strings.Split(devices.CodeAlphabet, ""), " ") + ".", true
	case errors.Is(err, scan.ErrNotLinkdeskCode):
		return "This QR code doesn't hold a Linkdesk code. Scan the code your device shows.", true
	case errors.Is(err, scan.ErrNoQRCode):
		return "No QR code could be read in that picture. Try a sharper, closer picture of the code, or type the code instead.", true
	case errors.Is(err, scan.ErrNotAnImage):
		return "That file isn't a picture Linkdesk can read. Use a PNG or JPEG picture of the QR code.", true
	case errors.Is(err, scan.ErrImageTooLarge):
		return "That picture is too large to read. Use a smaller picture of the QR code.", true
	case errors.Is(err, scan.ErrNoClipboardImage):
		return "The clipboard holds no picture. Copy a picture of the QR code first, or paste its link.", true
	case errors.Is(err, scan.ErrClipboardUnavailable):
		return "Linkdesk can't read the clipboard here. Open the picture as a file instead.", true
	case errors.Is(err, scan.ErrCameraBusy):
		return "The camera is in use by another app. Close that app, then try again.", true
	case errors.Is(err, scan.ErrCameraStopped):
		return "The camera stopped working (was it unplugged?).", true
	case errors.Is(err, scan.ErrNoCamera):
		return "No camera was found on this computer.", true
	case errors.Is(err, scan.ErrCameraDenied):
		return "Linkdesk isn't allowed to use the camera. Allow camera access in your system settings " +
			"(on Linux, add yourself to the “video” group), then try again.", true
	}
	return "", false
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
