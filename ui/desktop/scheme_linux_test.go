//go:build linux || freebsd || openbsd || netbsd

package desktop

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRegisterSchemeMakesLinkdeskTheHandler registers with the real xdg-mime
// in a private data and config home, and asks xdg-mime back.
func TestRegisterSchemeMakesLinkdeskTheHandler(t *testing.T) {
	if _, err := exec.LookPath("xdg-mime"); err != nil {
		t.Skip("xdg-mime is not installed (Debian package xdg-utils)")
	}
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_DATA_HOME", filepath.Join(home, "data"))
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, "config"))
	t.Setenv("XDG_CURRENT_DESKTOP", "")
	exe := "/opt/Link desk/linkdesk"
	const appID = "com.linkdesk.app"
	entry, err := RegisterScheme(appID, exe, []byte("png"))
	if err != nil {
		t.Fatalf("registerScheme: %v", err)
	}
	body, err := os.ReadFile(entry)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"MimeType=x-scheme-handler/linkdesk;", `Exec="/opt/Link desk/linkdesk" %u`, "Icon=" + appID} {
		if !strings.Contains(string(body), want) {
			t.Errorf("desktop entry lacks %q:\n%s", want, body)
		}
	}
	if plain := string(desktopEntry(appID, "/usr/bin/linkdesk")); !strings.Contains(plain, "Exec=/usr/bin/linkdesk %u\n") {
		t.Errorf("a plain path should not be quoted:\n%s", plain)
	}
	out, err := exec.Command("xdg-mime", "query", "default", SchemeMime).Output()
	if err != nil {
		t.Fatalf("xdg-mime query: %v", err)
	}
	if got := strings.TrimSpace(string(out)); got != desktopFileName(appID) {
		t.Fatalf("xdg-mime says linkdesk:// opens %q, want %q", got, desktopFileName(appID))
	}
}
