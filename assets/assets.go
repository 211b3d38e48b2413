// Package assets bundles Linkdesk's icons and other resources into the binary, so the
// app needs no files beside it at run time.
package assets

import (
	_ "embed"

	"fyne.io/fyne/v2"
)

//go:embed icon.png
var iconPNG []byte

// Icon is the Linkdesk app icon (512×512 PNG), used for the window, the about box
// and desktop notifications.
var Icon fyne.Resource = fyne.NewStaticResource("icon.png", iconPNG)
