package ui

import (
	"image/color"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/theme"
)

// HighContrastTheme is the kiosk's theme for bright rooms (`linkdesk kiosk
// --high-contrast`): pure black on white whatever the system's light or dark choice,
// black for the code and the countdown too (no colour or grey that glare washes out),
// and a dark red that still reads for warnings and the unlink button. Sizes and
// fonts are the default theme's; the kiosk's text sizes follow its window.
func HighContrastTheme() fyne.Theme { return highContrast{} }

type highContrast struct{}

var (
	hcBlack = color.NRGBA{A: 0xff}
	hcWhite = color.NRGBA{R: 0xff, G: 0xff, B: 0xff, A: 0xff}
	hcRed   = color.NRGBA{R: 0xa0, A: 0xff} // 8.6:1 on white
)

func (highContrast) Color(n fyne.ThemeColorName, _ fyne.ThemeVariant) color.Color {
	switch n {
	case theme.ColorNameBackground, theme.ColorNameInputBackground, theme.ColorNameMenuBackground,
		theme.ColorNameOverlayBackground, theme.ColorNameHeaderBackground,
		theme.ColorNameForegroundOnPrimary, theme.ColorNameForegroundOnError,
		theme.ColorNameForegroundOnWarning, theme.ColorNameForegroundOnSuccess:
		return hcWhite
	case theme.ColorNameForeground, theme.ColorNamePrimary, theme.ColorNamePlaceHolder,
		theme.ColorNameInputBorder, theme.ColorNameSeparator, theme.ColorNameFocus, theme.ColorNameHyperlink:
		return hcBlack
	case theme.ColorNameError, theme.ColorNameWarning:
		return hcRed
	}
	return theme.DefaultTheme().Color(n, theme.VariantLight)
}

func (highContrast) Font(s fyne.TextStyle) fyne.Resource { return theme.DefaultTheme().Font(s) }

func (highContrast) Icon(n fyne.ThemeIconName) fyne.Resource { return theme.DefaultTheme().Icon(n) }

func (highContrast) Size(n fyne.ThemeSizeName) float32 { return theme.DefaultTheme().Size(n) }
