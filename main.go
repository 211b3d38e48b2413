// Command linkdesk is the Linkdesk desktop app: sign in, enter or paste the
// code a TV or console shows, approve or deny it, and manage linked devices.
// `linkdesk kiosk …` instead runs this computer as a kiosk display waiting to
// be linked.
package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/app"
	"github.com/cli/browser"

	"github.com/linkdesk/linkdesk/assets"
	"github.com/linkdesk/linkdesk/auth"
	"github.com/linkdesk/linkdesk/ui"
	_ "github.com/linkdesk/linkdesk/ui/clocale" // before Fyne's lang init: no "Error parsing user locale C"
	"github.com/linkdesk/linkdesk/ui/desktop"
	"github.com/linkdesk/linkdesk/ui/kioskapp"
)

// appID is the Fyne application id; it must match ID in FyneApp.toml.
const appID = "com.linkdesk.app"

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))
	if len(args) > 0 {
		switch args[0] {
		case "kiosk":
			return kioskapp.Run(args[1:], appID)
		case "register-scheme":
			return runRegisterScheme(args[1:])
		}
	}

	fs := flag.NewFlagSet("linkdesk", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: linkdesk [--issuer URL] [--ca-file PEM] [LINK]\n"+
			"       linkdesk kiosk --issuer URL [options]\n"+
			"       linkdesk register-scheme   (open linkdesk:// links with this program)\n\n"+
			"LINK is a linkdesk://link?… or verification link; when Linkdesk is already\n"+
			"running, its window comes forward with the code filled in.\n\n")
		fs.PrintDefaults()
	}
	issuer := fs.String("issuer", "", "Linkdesk service address, e.g. https://link.example.com (remembered)")
	caFile := fs.String("ca-file", "", "PEM file of an extra CA to trust, such as the one `linkd serve` prints (remembered)")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 1 {
		fmt.Fprintf(os.Stderr, "linkdesk: unexpected argument %q\n", fs.Arg(1))
		fs.Usage()
		return 2
	}
	link := fs.Arg(0) // checked against the issuer by the code screen, like a paste

	// One window per person: a running Linkdesk takes the link and comes forward.
	sock, err := desktop.SocketPath()
	if err != nil {
		slog.Warn("instance: no socket directory; running without single-instance handoff", "err", err)
	} else if err := desktop.HandOff(sock, link); err == nil {
		slog.Info("instance: handed over to the running Linkdesk")
		return 0
	} else if !errors.Is(err, desktop.ErrNoInstance) {
		fmt.Fprintf(os.Stderr, "linkdesk: %v\n", err)
		return 1
	}

	a := app.NewWithID(appID)
	a.SetIcon(assets.Icon)
	prefs := a.Preferences()
	opts := ui.Options{Issuer: prefs.String(ui.PrefIssuer), CAFile: prefs.String(ui.PrefCAFile), Icon: assets.Icon}
	if *issuer != "" {
		opts.Issuer = *issuer
		opts.CAFile = *caFile
	} else if *caFile != "" {
		opts.CAFile = *caFile
	}

	store := auth.NewTokenStore(auth.OSKeyring(), auth.DefaultKeyringTimeout)
	be := newBackend(store, prefs, browser.OpenURL)
	desk := ui.NewApp(a, be.services(), opts)
	w := desk.Window()
	w.SetMaster()
	w.SetOnClosed(desk.Stop)
	if sock != "" {
		ln, err := desktop.ListenForLinks(sock, func(l string) {
			fyne.Do(func() { desk.OpenLink(l) })
		})
		switch {
		case errors.Is(err, desktop.ErrAlreadyRunning):
			// Another launch won the race to the socket: hand over to it instead.
			if err := desktop.HandOff(sock, link); err == nil {
				return 0
			}
		case err != nil:
			slog.Warn("instance: can't listen for links from later launches", "err", err)
		default:
			defer ln.Close()
		}
	}
	desk.Start()
	if link != "" {
		desk.OpenLink(link)
	}
	w.ShowAndRun()
	return 0
}

// runRegisterScheme is `linkdesk register-scheme`: it makes this program the
// handler of linkdesk:// links for the current user, where the OS allows it.
func runRegisterScheme(args []string) int {
	if len(args) > 0 {
		fmt.Fprintln(os.Stderr, "Usage: linkdesk register-scheme")
		return 2
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "linkdesk: can't find this program's path: %v\n", err)
		return 1
	}
	where, err := desktop.RegisterScheme(appID, exe, assets.Icon.Content())
	if err != nil {
		fmt.Fprintf(os.Stderr, "linkdesk: %v\n", err)
		return 1
	}
	fmt.Printf("linkdesk:// links now open %s (%s)\n", exe, where)
	return 0
}
