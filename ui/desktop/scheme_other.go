//go:build !(linux || freebsd || openbsd || netbsd)

package desktop

import "errors"

// RegisterScheme is not done by the program on this OS: the installer or app
// bundle declares the scheme (see docs/decisions.md).
func RegisterScheme(appID, exe string, icon []byte) (string, error) {
	return "", errors.New("registering linkdesk:// from the program is supported on Linux and BSD only; " +
		"on macOS and Windows the scheme comes with the installed app")
}
