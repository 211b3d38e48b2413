package clocale

import (
	"os"
	"testing"

	"fyne.io/fyne/v2/lang"
)

// Under C.UTF-8 Fyne finds no language to parse once Apply ran; real
// locales and an explicit LANGUAGE are left as they were.
func TestPlainLocale(t *testing.T) {
	for _, c := range []struct {
		lcAll, lang, language, want string
	}{
		{lang: "C.UTF-8", want: "en"},
		{lang: "POSIX.utf8", want: "en"},
		{lcAll: "C.UTF-8", lang: "de_DE.UTF-8", want: "en"},
		{lang: "C", want: ""}, // Fyne already treats a bare C as English
		{lang: "de_DE.UTF-8", want: ""},
		{lcAll: "fr_FR.UTF-8", lang: "C.UTF-8", want: ""},
		{lang: "C.UTF-8", language: "nl", want: "nl"},
	} {
		t.Setenv("LC_ALL", c.lcAll)
		t.Setenv("LC_MESSAGES", "")
		t.Setenv("LANG", c.lang)
		t.Setenv("LANGUAGE", c.language)
		Apply()
		if got := os.Getenv("LANGUAGE"); got != c.want {
			t.Errorf("LC_ALL=%q LANG=%q LANGUAGE=%q: LANGUAGE became %q, want %q", c.lcAll, c.lang, c.language, got, c.want)
		}
		if c.want == "en" {
			if loc := lang.SystemLocale(); loc.LanguageString() != "en" {
				t.Errorf("LANG=%q: Fyne's locale is %q, want en", c.lang, loc)
			}
		}
	}
}
