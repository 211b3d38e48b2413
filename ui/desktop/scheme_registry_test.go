package desktop

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// fakeRegistry records what register-scheme writes, in order.
type fakeRegistry struct {
	writes []string // `path|name|value`
	failOn string   // a path whose write fails
}

func (f *fakeRegistry) SetString(path, name, value string) error {
	if path == f.failOn {
		return errors.New("access denied")
	}
	f.writes = append(f.writes, path+"|"+name+"|"+value)
	return nil
}

// TestWriteURLSchemeKeys checks the exact per-user keys and values Windows needs to
// open linkdesk:// links with the program, for a path with spaces.
func TestWriteURLSchemeKeys(t *testing.T) {
	var f fakeRegistry
	exe := `C:\Program Files\Linkdesk\linkdesk.exe`
	if err := writeURLScheme(&f, exe); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`Software\Classes\linkdesk||URL:Linkdesk`,
		`Software\Classes\linkdesk|URL Protocol|`,
		`Software\Classes\linkdesk\DefaultIcon||"C:\Program Files\Linkdesk\linkdesk.exe",0`,
		`Software\Classes\linkdesk\shell\open\command||"C:\Program Files\Linkdesk\linkdesk.exe" "%1"`,
	}
	if !slices.Equal(f.writes, want) {
		t.Errorf("wrote\n  %s\nwant\n  %s", strings.Join(f.writes, "\n  "), strings.Join(want, "\n  "))
	}
}

func TestWriteURLSchemeReportsTheKeyThatFailed(t *testing.T) {
	f := fakeRegistry{failOn: `Software\Classes\linkdesk\shell\open\command`}
	err := writeURLScheme(&f, `C:\linkdesk.exe`)
	if err == nil || !strings.Contains(err.Error(), `HKEY_CURRENT_USER\Software\Classes\linkdesk\shell\open\command`) {
		t.Errorf("error %v does not name the key", err)
	}
}
