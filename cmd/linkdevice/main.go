// Command linkdevice is the terminal version of kiosk mode for headless boxes: it asks an
// RFC 8628 provider for a code, prints the code, the address and a QR code drawn with
// characters, waits until the code is approved, declined or expires, and prints the result.
// It needs no cgo and no Fyne.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/linkdesk/linkdesk/auth"
	"github.com/linkdesk/linkdesk/auth/device"
	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/devices/termqr"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("linkdevice", flag.ContinueOnError)
	fs.SetOutput(stderr)
	issuer := fs.String("issuer", "", "issuer URL of the provider (required)")
	clientID := fs.String("client-id", devices.KioskClientID, "OAuth client id")
	secret := fs.String("client-secret", "", "client secret, for confidential clients (HTTP Basic)")
	scope := fs.String("scope", "openid profile offline_access", "space-separated scopes")
	name := fs.String("device-name", hostname(), "name the device gives itself")
	kind := fs.String("device-kind", string(devices.KindComputer), "device kind: tv, console, kiosk, computer, phone, other")
	caFile := fs.String("ca-file", "", "PEM file of a CA to trust (linkd's local CA)")
	once := fs.Bool("once", false, "exit after the first result instead of staying linked")
	verbose := fs.Bool("v", false, "log protocol details to stderr")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *issuer == "" {
		fmt.Fprintln(stderr, "linkdevice: --issuer is required")
		fs.Usage()
		return 2
	}
	level := slog.LevelError
	if *verbose {
		level = slog.LevelInfo
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	client, err := auth.HTTPClient(*caFile)
	if err != nil {
		fmt.Fprintln(stderr, "linkdevice:", err)
		return 1
	}
	flow, err := device.NewFlow(device.Config{
		Issuer: *issuer, ClientID: *clientID, ClientSecret: *secret,
		Scopes: strings.Fields(*scope), DeviceName: *name, DeviceKind: *kind,
		HTTPClient: client, Logger: logger,
	})
	if err != nil {
		fmt.Fprintln(stderr, "linkdevice:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	linked := false
	err = flow.Run(ctx, func(s device.State) {
		printState(stdout, s)
		if _, ok := s.(device.Linked); ok {
			linked = true
			if *once {
				cancel()
			}
		}
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(stderr, "linkdevice:", err)
		return 1
	}
	if !linked {
		return 1
	}
	return 0
}

// printState writes one state of the flow for a person reading the terminal.
func printState(w io.Writer, s device.State) {
	switch s := s.(type) {
	case device.Connecting:
		fmt.Fprintln(w, "Connecting…")
	case device.ShowingCode:
		target := s.VerificationURIComplete
		if target == "" {
			target = s.VerificationURI
		}
		if q, err := termqr.String(target); err == nil {
			fmt.Fprintln(w, q)
		}
		fmt.Fprintf(w, "On your phone or computer, go to:\n\n    %s\n\nand enter the code:\n\n    %s\n\n", s.VerificationURI, s.UserCode)
		fmt.Fprintf(w, "The code expires at %s.\n", s.ExpiresAt.Local().Format(time.Kitchen))
	case device.Offline:
		fmt.Fprintf(w, "Offline — retrying at %s\n", s.RetryAt.Local().Format(time.TimeOnly))
	case device.Declined:
		fmt.Fprintln(w, "The link was declined. Here is a new code.")
	case device.Linked:
		name := s.DisplayName
		if name == "" {
			name = "your account"
		}
		fmt.Fprintf(w, "Linked to %s.\n", name)
	case device.Unlinked:
		fmt.Fprintln(w, "This device was unlinked.")
	case device.Error:
		fmt.Fprintf(w, "Error: %v — retrying at %s\n", s.Err, s.RetryAt.Local().Format(time.TimeOnly))
	}
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "Terminal"
	}
	return h
}
