package desktop

import "fmt"

// schemeKey is where the current user's linkdesk:// handler lives on Windows, under
// HKEY_CURRENT_USER: per-user, so registering needs no administrator.
const schemeKey = `Software\Classes\linkdesk`

// registryKeys writes string values into the current user's registry hive
// (HKEY_CURRENT_USER); path is a key below it, created when missing, and name ""
// is the key's default value. It is the one thing register-scheme needs from the
// Windows registry, so a test can check what is written without Windows.
type registryKeys interface {
	SetString(path, name, value string) error
}

// writeURLScheme writes the keys that make Windows open linkdesk:// links with exe:
// the scheme's key marked as a URL protocol, its icon (the program's own), and the
// open command, which passes the link as the one argument.
func writeURLScheme(keys registryKeys, exe string) error {
	quoted := `"` + exe + `"`
	for _, v := range []struct{ path, name, value string }{
		{schemeKey, "", "URL:Linkdesk"},
		{schemeKey, "URL Protocol", ""},
		{schemeKey + `\DefaultIcon`, "", quoted + ",0"},
		{schemeKey + `\shell\open\command`, "", quoted + ` "%1"`},
	} {
		if err := keys.SetString(v.path, v.name, v.value); err != nil {
			return fmt.Errorf(`HKEY_CURRENT_USER\%s: %w`, v.path, err)
		}
	}
	return nil
}
