package ui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/linkdesk/linkdesk/auth"
	"github.com/linkdesk/linkdesk/auth/device"
	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/devices/scan"
)

// ErrSignedOut means the saved sign-in is gone or no longer accepted; the app
// shows the sign-in screen.
var ErrSignedOut = errors.New("signed out")

// ErrNoService means no Linkdesk service has been set up yet, so there is nothing to
// sign in to or ask.
var ErrNoService = errors.New("no service configured")

// faults is the one table of sentences for typed failures of auth, auth/device and the
// app itself: the first entry whose kind errors.Is finds in the chain wins, so specific
// kinds come before general ones. Refusals of what people type or scan are in
// explainInput; answers of the management API in explainProblem.
var faults = []struct {
	kind error
	text string
}{
	{auth.ErrInvalidIssuer, "That isn't a valid service address. It should look like https://link.example.com."},
	{auth.ErrNotHTTPS, "The service address must start with https:// so your sign-in can't be read or changed on the way."},
	{auth.ErrBadCertificate, certificateText},
	{auth.ErrUnreachable, "Can't reach the service at that address. Check the address and your internet connection."},
	{auth.ErrNotOpenID, "Something answered at that address, but it isn't a Linkdesk (OpenID) service."},
	{auth.ErrIssuerMismatch, "The service at that address says it is a different service. Check the address."},
	{auth.ErrCAFile, "Linkdesk can't use that CA file. Choose the PEM certificate file your service's operator gave you."},
	{device.ErrNoDeviceGrant, "That service doesn't offer linking devices with a code."},
	{auth.ErrIssuerMixUp, "The sign-in answer came from a different service, so Linkdesk ignored it. Try signing in again."},
	{auth.ErrKeyringTimeout, "Your computer's keyring (password store) didn't answer. Unlock it, then try again."},
	{auth.ErrKeyringUnavailable, "Linkdesk couldn't use your computer's keyring (password store), where it keeps " +
		"your sign-in. Make sure it is installed and unlocked, then try again."},
	{ErrNoService, "Linkdesk isn't connected to a service yet. Set one up in Settings."},
	{ErrSignedOut, signedOutText},
	{auth.ErrSessionEnded, signedOutText},
	{auth.ErrNoToken, signedOutText},
	{context.Canceled, "Cancelled."},
	{context.DeadlineExceeded, "The Linkdesk service took too long to answer. Check your connection and try again."},
}

const (
	signedOutText   = "You are signed out. Sign in again to continue."
	certificateText = "The service's security certificate isn't trusted, so Linkdesk did not connect. " +
		"If your organisation uses its own certificate authority, choose its CA file in Settings."
)

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
	var signOut *auth.SignOutError
	if errors.As(err, &signOut) && signOut.DeleteErr == nil {
		return "You are signed out on this computer, but the service could not be told. " +
			"If you are worried, sign in again and sign out once more."
	}
	for _, f := range faults {
		if errors.Is(err, f.kind) {
			return f.text
		}
	}
	if auth.IsCertificateError(err) {
		return certificateText
	}
	if msg, ok := explainNetwork(err); ok {
		return msg
	}
	return "Something went wrong. Try again, and if it keeps happening, contact whoever runs your Linkdesk service."
}

// explainNetwork words a request that got no answer, saying whose fault it
// looks like from the typed error: the service refusing or dropping the
// connection (it is down or restarting), this computer having no network, the
// name not resolving, or, when the error can't tell, only that the service's
// host can't be reached.
func explainNetwork(err error) (string, bool) {
	var dnsErr *net.DNSError
	var opErr *net.OpError
	var netErr net.Error
	if !devices.IsOffline(err) && !errors.As(err, &dnsErr) && !errors.As(err, &opErr) && !errors.As(err, &netErr) {
		return "", false
	}
	host := "the Linkdesk service"
	var urlErr *url.Error
	if u, perr := url.Parse(urlOf(err, &urlErr)); perr == nil && u.Host != "" {
		host = u.Host
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "The Linkdesk service at " + host + " isn't answering: it may be down or restarting. " +
			"Your internet connection looks fine.", true
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.ENETDOWN):
		return "This computer isn't connected to a network. Check your internet connection.", true
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return "Can't find " + host + ". Check the service address in Settings.", true
	case errors.As(err, &dnsErr):
		return "Can't look up " + host + ". Check your internet connection.", true
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &netErr) && netErr.Timeout():
		return host + " didn't answer in time. The service or your network may be down.", true
	}
	return "Can't reach " + host + ".", true
}

// urlOf is the address of the request that failed with err, or "".
func urlOf(err error, urlErr **url.Error) string {
	if errors.As(err, urlErr) {
		return (*urlErr).URL
	}
	return ""
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

func explainProblem(p *devices.APIError) string {
	switch p.Code {
	case devices.CodeInvalidCode:
		return "That code wasn't found. Check the code on your device and try again."
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
	case devices.CodeWrongPick:
		return "That is not the code your device shows. For your safety its request was ended: " +
			"start linking again on the device, then enter or pick its new code."
	case devices.CodeNotWaiting:
		return "That device is no longer waiting. It may have been linked, refused or timed out."
	case devices.CodeNearbyOff:
		return "This service doesn't list devices waiting nearby. Type the code your device shows."
	case devices.CodeConfirmationRequired:
		return "This request came from another network. Tick “" + inFrontText + "” to link it, or decline it."
	case devices.CodeUnavailable:
		return "Linkdesk's service couldn't save that just now. Nothing changed — try again in a moment."
	case devices.CodeOtherNetwork:
		return "This app can only be linked by someone on the same network as the device. " +
			"Connect this computer to the device's network (for example its Wi-Fi), then try again."
	case devices.CodeTooManyDevices:
		msg := "Your account already has as many devices of this app linked as allowed. Unlink one first"
		if len(p.LinkedDevices) == 0 {
			return msg + " in Linked devices, then try again."
		}
		msg += ", then try again. Linked now:"
		for _, d := range p.LinkedDevices {
			seen := "never used"
			if d.LastSeenAt != nil {
				seen = "last used " + d.LastSeenAt.Local().Format("2 Jan 2006")
			}
			name := d.Name
			if name == "" {
				name = "Unnamed device"
			}
			msg += "\n• " + name + " (" + seen + ")"
		}
		return msg
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
