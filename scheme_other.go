//go:build !(linux || freebsd || openbsd || netbsd)

package main

import "errors"

// registerScheme is not done by the program on this OS: the installer or app
// bundle declares the scheme (see docs/decisions.md).
func registerScheme(string) (string, error) {
	return "", errors.New("registering linkdesk:// from the program is supported on Linux and BSD only; " +
		"on macOS and Windows the scheme comes with the installed app")
}
