//go:build !(linux || freebsd || openbsd || netbsd || windows)

package desktop

import "errors"

// RegisterScheme is not done by the program on macOS: the app
// bundle declares the scheme (see docs/packaging.md).
func RegisterScheme(appID, exe string, icon []byte) (string, error) {
	return "", errors.New("registering linkdesk:// from the program is supported on Linux, BSD and Windows; " +
		"on macOS the app bundle declares the scheme (Info.plist CFBundleURLTypes)")
}
