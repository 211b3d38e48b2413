package ui

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"fyne.io/fyne/v2/lang"

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

// fault words the typed failures of auth, auth/device and the app itself: the first
// kind errors.Is finds in the chain wins, so specific kinds come before general ones.
// Refusals of what people type or scan are in explainInput; answers of the management
// API in explainProblem.
func fault(err error) (string, bool) {
	switch {
	case errors.Is(err, auth.ErrInvalidIssuer):
		return lang.L("That isn't a valid service address. It should look like {{.Example}}.", map[string]any{"Example": "https://link.example.com"}), true
	case errors.Is(err, auth.ErrNotHTTPS):
		return lang.L("The service address must start with https:// so your sign-in can't be read or changed on the way."), true
	case errors.Is(err, auth.ErrBadCertificate):
		return lang.L(certificateText), true
	case errors.Is(err, auth.ErrUnreachable):
		return lang.L("Can't reach the service at that address. Check the address and your internet connection."), true
	case errors.Is(err, auth.ErrNotOpenID):
		return lang.L("Something answered at that address, but it isn't a Linkdesk (OpenID) service."), true
	case errors.Is(err, auth.ErrIssuerMismatch):
		return lang.L("The service at that address says it is a different service. Check the address."), true
	case errors.Is(err, auth.ErrCAFile):
		return lang.L("Linkdesk can't use that CA file. Choose the PEM certificate file your service's operator gave you."), true
	case errors.Is(err, device.ErrNoDeviceGrant):
		return lang.L("That service doesn't offer linking devices with a code."), true
	case errors.Is(err, auth.ErrIssuerMixUp):
		return lang.L("The sign-in answer came from a different service, so Linkdesk ignored it. Try signing in again."), true
	case errors.Is(err, auth.ErrKeyringTimeout):
		return lang.L("Your computer's keyring (password store) didn't answer. Unlock it, then try again."), true
	case errors.Is(err, auth.ErrKeyringUnavailable):
		return lang.L("Linkdesk couldn't use your computer's keyring (password store), where it keeps " +
			"your sign-in. Make sure it is installed and unlocked, then try again."), true
	case errors.Is(err, ErrNoService):
		return lang.L("Linkdesk isn't connected to a service yet. Set one up in Settings."), true
	case errors.Is(err, ErrSignedOut), errors.Is(err, auth.ErrSessionEnded), errors.Is(err, auth.ErrNoToken):
		return lang.L(signedOutText), true
	case errors.Is(err, context.Canceled):
		return lang.L("Cancelled."), true
	case errors.Is(err, context.DeadlineExceeded):
		return lang.L("The Linkdesk service took too long to answer. Check your connection and try again."), true
	}
	return "", false
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
			return lang.L("Sign-in was cancelled in the browser. Try again when you're ready.")
		}
		return lang.L("The service refused the sign-in. Try again, and if it keeps happening, contact whoever runs your Linkdesk service.")
	}
	var signOut *auth.SignOutError
	if errors.As(err, &signOut) && signOut.DeleteErr == nil {
		return lang.L("You are signed out on this computer, but the service could not be told. " +
			"If you are worried, sign in again and sign out once more.")
	}
	if msg, ok := fault(err); ok {
		return msg
	}
	if auth.IsCertificateError(err) {
		return lang.L(certificateText)
	}
	if msg, ok := explainNetwork(err); ok {
		return msg
	}
	return lang.L("Something went wrong. Try again, and if it keeps happening, contact whoever runs your Linkdesk service.")
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
	var urlErr *url.Error
	u, perr := url.Parse(urlOf(err, &urlErr))
	if perr != nil || u.Host == "" {
		return explainNetworkNoHost(err), true
	}
	host := map[string]any{"Host": u.Host}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return lang.L("The Linkdesk service at {{.Host}} isn't answering: it may be down or restarting. "+
			"Your internet connection looks fine.", host), true
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.ENETDOWN):
		return lang.L("This computer isn't connected to a network. Check your internet connection."), true
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return lang.L("Can't find {{.Host}}. Check the service address in Settings.", host), true
	case errors.As(err, &dnsErr):
		return lang.L("Can't look up {{.Host}}. Check your internet connection.", host), true
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &netErr) && netErr.Timeout():
		return lang.L("{{.Host}} didn't answer in time. The service or your network may be down.", host), true
	}
	return lang.L("Can't reach {{.Host}}.", host), true
}

// explainNetworkNoHost is explainNetwork when the error does not say which host
// failed: the sentences then speak of "the Linkdesk service".
func explainNetworkNoHost(err error) string {
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return lang.L("The Linkdesk service isn't answering: it may be down or restarting. " +
			"Your internet connection looks fine.")
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.ENETDOWN):
		return lang.L("This computer isn't connected to a network. Check your internet connection.")
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return lang.L("Can't find the Linkdesk service. Check the service address in Settings.")
	case errors.As(err, &dnsErr):
		return lang.L("Can't look up the Linkdesk service. Check your internet connection.")
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &netErr) && netErr.Timeout():
		return lang.L("The Linkdesk service didn't answer in time. The service or your network may be down.")
	}
	return lang.L("Can't reach the Linkdesk service.")
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
		return lang.L("This link is not from your Linkdesk service (it points at {{.Host}}). "+
			"Someone may be trying to get you to link their device to your account. "+
			"Only enter codes shown on a device in front of you.", map[string]any{"Host": foreign.Host}), true
	case errors.Is(err, devices.ErrForeignLink):
		return lang.L("This link is not from your Linkdesk service. Someone may be trying to " +
			"get you to link their device to your account. Only enter codes shown on a device in front of you."), true
	case errors.Is(err, devices.ErrNotALink):
		return lang.L("This link doesn't hold a Linkdesk code. Type the code shown on your device instead."), true
	case errors.Is(err, devices.ErrCodeLength):
		return lang.L("That code doesn't have 8 letters. Check the code on your device."), true
	case errors.As(err, &invalid):
		return lang.L("“{{.Char}}” is never part of a code. Codes use only the letters {{.Letters}}.", map[string]any{
			"Char": string(invalid.Char), "Letters": strings.Join(strings.Split(devices.CodeAlphabet, ""), " ")}), true
	case errors.Is(err, scan.ErrNotLinkdeskCode):
		return lang.L("This QR code doesn't hold a Linkdesk code. Scan the code your device shows."), true
	case errors.Is(err, scan.ErrNoQRCode):
		return lang.L("No QR code could be read in that picture. Try a sharper, closer picture of the code, or type the code instead."), true
	case errors.Is(err, scan.ErrNotAnImage):
		return lang.L("That file isn't a picture Linkdesk can read. Use a PNG or JPEG picture of the QR code."), true
	case errors.Is(err, scan.ErrImageTooLarge):
		return lang.L("That picture is too large to read. Use a smaller picture of the QR code."), true
	case errors.Is(err, scan.ErrNoClipboardImage):
		return lang.L("The clipboard holds no picture. Copy a picture of the QR code first, or paste its link."), true
	case errors.Is(err, scan.ErrClipboardUnavailable):
		return lang.L("Linkdesk can't read the clipboard here. Open the picture as a file instead."), true
	case errors.Is(err, scan.ErrCameraBusy):
		return lang.L("The camera is in use by another app. Close that app, then try again."), true
	case errors.Is(err, scan.ErrCameraStopped):
		return lang.L("The camera stopped working (was it unplugged?)."), true
	case errors.Is(err, scan.ErrNoCamera):
		return lang.L("No camera was found on this computer."), true
	case errors.Is(err, scan.ErrCameraDenied):
		return lang.L("Linkdesk isn't allowed to use the camera. Allow camera access in your system settings " +
			"(on Linux, add yourself to the “video” group), then try again."), true
	}
	return "", false
}

func explainProblem(p *devices.APIError) string {
	switch p.Code {
	case devices.CodeInvalidCode:
		return lang.L("That code wasn't found. Check the code on your device and try again.")
	case devices.CodeExpiredCode:
		return lang.L("That code has expired. Get a new code on your device, then enter it here.")
	case devices.CodeAlreadyUsed:
		return lang.L("That code has already been used. Get a new code on your device.")
	case devices.CodeRateLimited:
		return tooManyTries(p.RetryAfter)
	case devices.CodeUnauthorized:
		return lang.L(signedOutText)
	case devices.CodeForbidden:
		return lang.L("Your account isn't allowed to do that.")
	case devices.CodeNotFound:
		return lang.L("That device is no longer linked.")
	case devices.CodeWrongPick:
		return lang.L("That is not the code your device shows. For your safety its request was ended: " +
			"start linking again on the device, then enter or pick its new code.")
	case devices.CodeNotWaiting:
		return lang.L("That device is no longer waiting. It may have been linked, refused or timed out.")
	case devices.CodeNearbyOff:
		return lang.L("This service doesn't list devices waiting nearby. Type the code your device shows.")
	case devices.CodeConfirmationRequired:
		return lang.L("This request came from another network. Tick “{{.Tick}}” to link it, or decline it.",
			map[string]any{"Tick": lang.L(inFrontText)})
	case devices.CodeUnavailable:
		return lang.L("Linkdesk's service couldn't save that just now. Nothing changed — try again in a moment.")
	case devices.CodeOtherNetwork:
		return lang.L("This app can only be linked by someone on the same network as the device. " +
			"Connect this computer to the device's network (for example its Wi-Fi), then try again.")
	case devices.CodeTooManyDevices:
		return tooManyDevices(p.LinkedDevices)
	case devices.CodeBadRequest:
		if p.Detail != "" {
			return p.Detail
		}
		return lang.L("The service didn't accept that. Check what you entered and try again.")
	}
	if p.Status >= 500 || p.Code == devices.CodeInternal {
		return lang.L("The Linkdesk service has a problem right now. Try again in a moment.")
	}
	if p.Title != "" {
		return p.Title + "."
	}
	return lang.L("The Linkdesk service refused the request (error {{.Status}}).", map[string]any{"Status": p.Status})
}

// tooManyTries asks to wait retryAfter (rounded up to whole seconds or minutes)
// before trying again.
func tooManyTries(retryAfter time.Duration) string {
	switch {
	case retryAfter <= 0:
		return lang.L("Too many tries. Wait a minute, then try again.")
	case retryAfter < time.Second:
		return lang.L("Too many tries. Wait a moment, then try again.")
	case retryAfter < time.Minute:
		n := int((retryAfter + time.Second - 1) / time.Second)
		return lang.N("Too many tries. Wait {{.Count}} seconds, then try again.", n, map[string]any{"Count": n})
	default:
		n := int((retryAfter + time.Minute - 1) / time.Minute)
		return lang.N("Too many tries. Wait {{.Count}} minutes, then try again.", n, map[string]any{"Count": n})
	}
}

// tooManyDevices says the account has reached the app's limit of devices and,
// when linkd listed them, which they are, one a line.
func tooManyDevices(linked []devices.Device) string {
	if len(linked) == 0 {
		return lang.L("Your account already has as many devices of this app linked as allowed. " +
			"Unlink one first in Linked devices, then try again.")
	}
	lines := []string{lang.L("Your account already has as many devices of this app linked as allowed. " +
		"Unlink one first, then try again. Linked now:")}
	for _, d := range linked {
		name := d.Name
		if name == "" {
			name = lang.L("Unnamed device")
		}
		if d.LastSeenAt != nil {
			lines = append(lines, lang.L("• {{.Device}} (last used {{.Date}})", map[string]any{
				"Device": name, "Date": d.LastSeenAt.Local().Format(lang.X("layout.date", "2 Jan 2006"))}))
		} else {
			lines = append(lines, lang.L("• {{.Device}} (never used)", map[string]any{"Device": name}))
		}
	}
	return strings.Join(lines, "\n")
}
