// Package kioskapp runs `linkdesk kiosk`: it parses the kiosk's flags, builds its device
// flow (auth/device) and shows ui.KioskScreen in a window. The desktop app's main only
// dispatches to Run.
package kioskapp

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/app"

	"github.com/linkdesk/linkdesk/auth"
	"github.com/linkdesk/linkdesk/auth/device"
	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/ui"
)

// scopeFlag collects --scope values; each may hold several space- or comma-separated scopes.
type scopeFlag []string

func (s *scopeFlag) String() string { return strings.Join(*s, " ") }

func (s *scopeFlag) Set(v string) error {
	*s = append(*s, strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' })...)
	return nil
}

// Run runs `linkdesk kiosk` with args (the words after "kiosk"): a (full-screen) window
// that shows a code and a QR code until a person links this display to their account
// (RFC 8628, device side), then stays linked across restarts until unlinked. appID is the
// desktop app's Fyne id; the kiosk uses its own id beside it. It returns the exit code.
func Run(args []string, appID string) int {
	fs := flag.NewFlagSet("linkdesk kiosk", flag.ContinueOnError)
	issuer := fs.String("issuer", "", "issuer URL of linkd or any RFC 8628 provider (required)")
	clientID := fs.String("client-id", devices.KioskClientID, "OAuth client id of the kiosk")
	secret := fs.String("client-secret", "", "client secret, for confidential clients (sent with HTTP Basic)")
	var scopes scopeFlag
	fs.Var(&scopes, "scope", "scope to ask for (repeatable; default \"openid profile offline_access\")")
	name := fs.String("device-name", defaultDeviceName(), "name this display gives itself")
	fullscreen := fs.Bool("fullscreen", false, "fill the screen")
	highContrast := fs.Bool("high-contrast", false, "black on white with a larger code and a wider QR margin, for bright rooms")
	caFile := fs.String("ca-file", "", "PEM file of an extra CA to trust (the one `linkd serve` prints)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *issuer == "" {
		fmt.Fprintln(os.Stderr, "linkdesk kiosk: --issuer is required")
		fs.Usage()
		return 2
	}
	hc, err := auth.HTTPClient(*caFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "linkdesk kiosk:", err)
		return 1
	}
	flow, err := device.NewFlow(device.Config{
		Issuer:       *issuer,
		ClientID:     *clientID,
		ClientSecret: *secret,
		Scopes:       scopes,
		DeviceName:   *name,
		DeviceKind:   string(devices.KindKiosk),
		HTTPClient:   hc,
		Store:        auth.NewTokenStore(auth.OSKeyring(), auth.DefaultKeyringTimeout),
		Logger:       slog.Default(),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "linkdesk kiosk:", err)
		return 2
	}

	sigCtx, stopSig := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stopSig()
	ctx, cancel := context.WithCancel(sigCtx)
	defer cancel()

	// Its own app id, so a kiosk and the companion app on one machine never write the
	// same preferences file at once.
	a := app.NewWithID(appID + ".kiosk")
	if *highContrast {
		a.Settings().SetTheme(ui.HighContrastTheme())
	}
	w := a.NewWindow("Linkdesk kiosk")
	screen := ui.NewKioskScreen(func() {
		uctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := flow.Unlink(uctx); err != nil {
			slog.Warn("kiosk: unlink could not revoke every token", "err", err)
		}
	})
	defer screen.Stop()
	screen.SetHighContrast(*highContrast)
	w.SetContent(screen.Content())
	if *fullscreen {
		w.SetFullScreen(true)
	} else {
		w.Resize(fyne.NewSize(1280, 720))
	}

	runErr := make(chan error, 1)
	go func() { runErr <- flow.Run(ctx, screen.Show) }()
	closed := make(chan struct{})
	go func() {
		select {
		case <-sigCtx.Done():
			fyne.Do(a.Quit) // Ctrl-C in the terminal closes the window too
		case <-closed:
		}
	}()
	w.ShowAndRun()
	close(closed)
	cancel()
	if err := <-runErr; err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "linkdesk kiosk:", err)
		return 1
	}
	return 0
}

// defaultDeviceName is the name the display asks to be linked under: its host name.
func defaultDeviceName() string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "Kiosk display"
}
