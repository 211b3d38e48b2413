//go:build linux || freebsd || openbsd || netbsd

package desktop

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// RegisterScheme makes exe the current user's handler of linkdesk:// links: it
// writes a desktop entry named after appID (the Fyne app id) into the user's
// applications folder, installs icon (PNG) under that id, and makes the entry
// the default handler with xdg-mime. It returns the entry's path. `fyne package` writes a similar entry but
// its template has no MimeType line, so the scheme needs this step.
func RegisterScheme(appID, exe string, icon []byte) (string, error) {
	data := os.Getenv("XDG_DATA_HOME")
	if data == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		data = filepath.Join(home, ".local", "share")
	}
	apps := filepath.Join(data, "applications")
	icons := filepath.Join(data, "icons", "hicolor", "256x256", "apps")
	for _, d := range []string{apps, icons} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", err
		}
	}
	if err := os.WriteFile(filepath.Join(icons, appID+".png"), icon, 0o644); err != nil {
		return "", err
	}
	desktopFile := desktopFileName(appID)
	entry := filepath.Join(apps, desktopFile)
	if err := os.WriteFile(entry, desktopEntry(appID, exe), 0o644); err != nil {
		return "", err
	}
	if out, err := exec.Command("xdg-mime", "default", desktopFile, SchemeMime).CombinedOutput(); err != nil {
		return entry, fmt.Errorf("wrote %s, but xdg-mime could not make it the linkdesk:// handler: %v %s", entry, err, bytes.TrimSpace(out))
	}
	// Refresh the desktop's cache of handlers where the tool exists; xdg-mime already chose ours.
	_ = exec.Command("update-desktop-database", apps).Run()
	return entry, nil
}

// desktopFileName is the freedesktop.org desktop entry of the app; it matches
// the app id, as `fyne package` names it.
func desktopFileName(appID string) string { return appID + ".desktop" }

// desktopEntry is the desktop entry for exe, with %u so the opened link is
// passed as the argument. The path is quoted only when the desktop entry spec
// requires it, since simple launchers (xdg-open 1.1) split Exec on spaces.
func desktopEntry(appID, exe string) []byte {
	quoted := exe
	if strings.ContainsAny(exe, " \t\n\"'\\><~|&;$*?#()`") {
		quoted = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "`", "\\`", "$", `\$`).Replace(exe) + `"`
	}
	return []byte(`[Desktop Entry]
Type=Application
Name=Linkdesk
GenericName=Device linking
Comment=Link TVs, consoles and kiosks to your account with a short code
Exec=` + quoted + ` %u
Icon=` + appID + `
Terminal=false
Categories=Utility;Network;
Keywords=link;device;tv;code;login;
MimeType=` + SchemeMime + `;
StartupWMClass=Linkdesk
`)
}
