// Package assets bundles Linkdesk's icons, translations and other resources into
// the binary, so the app needs no files beside it at run time.
package assets

import (
	"embed"

	"fyne.io/fyne/v2"
)

//go:embed icon.png
var iconPNG []byte

// Icon is the Linkdesk app icon (512×512 PNG), used for the window, the about box
// and desktop notifications.
var Icon fyne.Resource = fyne.NewStaticResource("icon.png", iconPNG)

// Translations holds the app's message catalogues, translations/<lang>.json (en,
// de, es), in the JSON form Fyne's lang package reads: the English text is the
// key; a value is the text, or its plural forms ("one", "other", …).
//
//go:embed translations/*.json
var Translations embed.FS

// TranslationsDir is the directory of Translations holding the catalogues, as
// lang.AddTranslationsFS wants it.
const TranslationsDir = "translations"
