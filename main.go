// Command linkdesk is the Linkdesk desktop app: sign in, enter or paste the
// code a TV or console shows, approve or deny it, and manage linked devices.
// `linkdesk kiosk …` instead runs this computer as a kiosk display waiting to
// be linked.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"fyne.io/fyne/v2/app"
	"github.com/cli/browser"

	"github.com/linkdesk/linkdesk/assets"
	"github.com/linkdesk/linkdesk/auth"
	"github.com/linkdesk/linkdesk/ui"
)

// appID is the Fyne application id; it must match ID in FyneApp.toml.
const appID = "com.linkdesk.app"

// keyringTimeout bounds each OS keyring call, so a locked or hung keyring
// can't freeze sign-in.
const keyringTimeout = 10 * time.Second

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))
	if len(args) > 0 && args[0] == "kiosk" {
		return runKiosk(args[1:])
	}

	fs := flag.NewFlagSet("linkdesk", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: linkdesk [--issuer URL] [--ca-file PEM]\n       linkdesk kiosk --issuer URL [options]\n\n")
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
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "linkdesk: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
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

	store := auth.NewTokenStore(auth.OSKeyring(), keyringTimeout)
	be := newBackend(store, prefs, browser.OpenURL)
	desk := ui.NewApp(a, be.services(), opts)
	w := desk.Window()
	w.SetMaster()
	w.SetOnClosed(desk.Stop)
	desk.Start()
	w.ShowAndRun()
	return 0
}
