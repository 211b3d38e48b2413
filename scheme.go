package main

import (
	"fmt"
	"os"
)

// desktopFileName is the freedesktop.org desktop entry of the app; it matches
// the app id in FyneApp.toml, as `fyne package` names it.
const desktopFileName = appID + ".desktop"

// schemeMime is the MIME type under which freedesktop.org systems look up the
// handler of linkdesk:// links.
const schemeMime = "x-scheme-handler/linkdesk"

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
	where, err := registerScheme(exe)
	if err != nil {
		fmt.Fprintf(os.Stderr, "linkdesk: %v\n", err)
		return 1
	}
	fmt.Printf("linkdesk:// links now open %s (%s)\n", exe, where)
	return 0
}
