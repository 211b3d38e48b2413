// Package clocale keeps Fyne from logging "Error parsing user locale C" when the
// locale is C or POSIX with an encoding (C.UTF-8, the default of many
// containers and minimal installs): Fyne's lang package, in its init, looks the
// locale up with go-locale, which passes the "C" on as a language tag. Such a
// locale means "no translation", which is English, so this package's init sets
// LANGUAGE=en (which that lookup reads first) in exactly that case. Any other
// locale, or a LANGUAGE already set, is left alone.
//
// Import it for its side effect from package main. Its init runs before Fyne's
// lang init: Go initialises ready packages in import-path order, and lang
// depends on golang.org/x/text, which sorts after this package.
package clocale

import (
	"os"
	"strings"
)

func init() { Apply() }

// Apply sets LANGUAGE=en when the locale in force (LC_ALL, LC_MESSAGES, then
// LANG) is C or POSIX with an encoding or modifier, and LANGUAGE is unset.
func Apply() {
	if os.Getenv("LANGUAGE") != "" {
		return
	}
	for _, k := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} { // their order of precedence
		v := os.Getenv(k)
		if v == "" {
			continue
		}
		lang, _, _ := strings.Cut(v, ".")
		lang, _, _ = strings.Cut(lang, "@")
		if lang != v && (lang == "C" || lang == "POSIX") {
			_ = os.Setenv("LANGUAGE", "en")
		}
		return
	}
}
