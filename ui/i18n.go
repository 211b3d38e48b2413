package ui

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/lang"

	"github.com/linkdesk/linkdesk/assets"
)

// The app's words live in assets/translations (en, de, es); every string shown
// to people goes through lang.L, lang.N or lang.X with its English text as the
// key. Registering them here, when the package loads, makes Fyne pick the
// catalogue closest to the system locale before any screen is built.
func init() { loadTranslations() }

// loadTranslations registers the catalogues with Fyne, which (re)chooses the
// language from the system locale (LANGUAGE, LC_ALL, LC_MESSAGES, LANG) as it does.
func loadTranslations() {
	if err := lang.AddTranslationsFS(assets.Translations, assets.TranslationsDir); err != nil {
		fyne.LogError("Loading Linkdesk's translations", err)
	}
}
