package desktop

import (
	"golang.org/x/sys/windows/registry"
)

// RegisterScheme makes exe the current user's handler of linkdesk:// links by
// writing the URL-scheme keys under HKEY_CURRENT_USER\Software\Classes\linkdesk
// (no administrator needed). appID and icon are not used: the registry names the
// program, and Windows takes the icon from it. It returns the key's path.
func RegisterScheme(appID, exe string, icon []byte) (string, error) {
	if err := writeURLScheme(currentUser{}, exe); err != nil {
		return "", err
	}
	return `HKEY_CURRENT_USER\` + schemeKey, nil
}

// currentUser is registryKeys on the real HKEY_CURRENT_USER.
type currentUser struct{}

func (currentUser) SetString(path, name, value string) error {
	k, _, err := registry.CreateKey(registry.CURRENT_USER, path, registry.SET_VALUE)
	if err != nil {
		return err
	}
	defer k.Close()
	return k.SetStringValue(name, value)
}
