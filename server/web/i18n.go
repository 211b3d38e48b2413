package web

import (
	"embed"
	"encoding/json"
	"fmt"
	"html"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/text/language"
)

// The pages speak English, German and Spanish. The language is the lang cookie's
// when it names one of them (set by the switch on every page, GET /lang), else the
// best match of the browser's Accept-Language, else English. Catalogues are
// translations/<lang>.json, in the same form as the app's (assets/translations):
// the English text is the key, placeholders are {{.Name}}, and a value is the
// text or its plural forms ("one", "other", …). Every word on the pages goes
// through translate (Go) or the T template func; i18n_test.go checks that each key
// is in every catalogue and that no page text is left out.

//go:embed translations/*.json
var translationFS embed.FS

// langs are the page languages, the first the default.
var langs = []string{"en", "de", "es"}

// langNames are the languages as the switch offers them, each in its own words.
var langNames = map[string]string{"en": "English", "de": "Deutsch", "es": "Español"}

var langMatcher = language.NewMatcher([]language.Tag{language.English, language.German, language.Spanish})

// langCookie holds the language chosen with the switch; it overrides Accept-Language.
const langCookie = "lang"

// message is one catalogue entry: a text, or plural forms by CLDR category.
type message struct {
	text  string
	forms map[string]string
}

func (m *message) UnmarshalJSON(b []byte) error {
	if err := json.Unmarshal(b, &m.text); err == nil {
		return nil
	}
	return json.Unmarshal(b, &m.forms)
}

// catalogues are the loaded translations by language.
var catalogues = loadCatalogues()

func loadCatalogues() map[string]map[string]message {
	out := make(map[string]map[string]message, len(langs))
	for _, l := range langs {
		b, err := translationFS.ReadFile("translations/" + l + ".json")
		if err != nil {
			panic("web: " + err.Error())
		}
		var c map[string]message
		if err := json.Unmarshal(b, &c); err != nil {
			panic("web: translations/" + l + ".json: " + err.Error())
		}
		out[l] = c
	}
	return out
}

// supportedLang returns l when pages can be shown in it, else "".
func supportedLang(l string) string {
	if _, ok := langNames[l]; ok {
		return l
	}
	return ""
}

// requestLang is the language to answer r in: the lang cookie's, else the best
// match of Accept-Language, else English.
func requestLang(r *http.Request) string {
	if c, err := r.Cookie(langCookie); err == nil && supportedLang(c.Value) != "" {
		return c.Value
	}
	if tags, _, err := language.ParseAcceptLanguage(r.Header.Get("Accept-Language")); err == nil && len(tags) > 0 {
		_, i, conf := langMatcher.Match(tags...)
		if conf != language.No {
			return langs[i]
		}
	}
	return langs[0]
}

// translate is key in r's language, with args as placeholder values in pairs
// ("Name", value, …); a "Count" value picks the plural form.
func translate(r *http.Request, key string, args ...any) string {
	return tr(requestLang(r), key, args...)
}

// tr is key in language l (see translate). A key missing from l's catalogue falls
// back to English, then to the key itself; the tests keep that from happening.
func tr(l, key string, args ...any) string {
	m, ok := catalogues[l][key]
	if !ok {
		if m, ok = catalogues["en"][key]; !ok {
			m = message{text: key}
		}
	}
	text := m.text
	var pairs []string
	count, hasCount := 0, false
	for i := 0; i+1 < len(args); i += 2 {
		name := fmt.Sprint(args[i])
		if name == "Count" {
			count, hasCount = args[i+1].(int)
		}
		pairs = append(pairs, "{{."+name+"}}", fmt.Sprint(args[i+1]))
	}
	if m.forms != nil {
		text = m.forms["other"]
		if hasCount {
			if f, ok := m.forms[pluralForm(l, count)]; ok {
				text = f
			}
		}
	}
	if len(pairs) == 0 {
		return text
	}
	// One pass: a value that itself contains "{{.X}}" is not filled in again.
	return strings.NewReplacer(pairs...).Replace(text)
}

// pluralForm is the CLDR plural category of n in l, for the whole numbers the
// pages count: "one" for 1 in en, de and es, "many" for Spanish millions.
func pluralForm(l string, n int) string {
	switch {
	case n == 1:
		return "one"
	case l == "es" && n != 0 && n%1000000 == 0:
		return "many"
	}
	return "other"
}

// langFuncs are the template funcs of pages in language l: T is translate; TH
// is translate for a text with markup (<strong>) in the catalogue, its
// placeholder values escaped; lang is the language's code (for <html lang>);
// date a time in the language's form.
func langFuncs(l string) map[string]any {
	return map[string]any{
		"T": func(key string, args ...any) string { return tr(l, key, args...) },
		"TH": func(key string, args ...any) template.HTML {
			esc := slices.Clone(args)
			for i := 1; i < len(esc); i += 2 {
				esc[i] = html.EscapeString(fmt.Sprint(esc[i]))
			}
			return template.HTML(tr(l, key, esc...)) // the catalogue's own markup, trusted: it is embedded
		},
		"lang": func() string { return l },
		"date": func(v any) string {
			t := asTime(v)
			if t.IsZero() {
				return ""
			}
			// The Go layout is itself translated, with month names only where Go
			// knows them (English): "2 Jan 2006, 15:04 UTC", "2.1.2006, 15:04 UTC".
			return t.UTC().Format(tr(l, "layout.datetime"))
		},
		"kindName": func(k string) string { return kindName(l, k) },
		"spell":    func(code string) string { return spell(l, code) },
	}
}

// langChoice is one entry of the language switch.
type langChoice struct {
	Code, Name, Href string
	Current          bool
}

// langChoices is the switch for a page at here shown in current.
func langChoices(current, here string) []langChoice {
	out := make([]langChoice, 0, len(langs))
	for _, l := range langs {
		out = append(out, langChoice{Code: l, Name: langNames[l], Current: l == current,
			Href: "/lang?set=" + l + "&next=" + url.QueryEscape(here)})
	}
	return out
}

// langSwitch is GET /lang?set=de&next=/link: it remembers the language in the
// lang cookie (a year) and goes back to the page (a local path only).
func (s *server) langSwitch(w http.ResponseWriter, r *http.Request) {
	l := supportedLang(r.URL.Query().Get("set"))
	if l != "" {
		http.SetCookie(w, &http.Cookie{
			Name: langCookie, Value: l, Path: "/", MaxAge: int(365 * 24 * time.Hour / time.Second),
			Secure: s.cfg.SecureCookies, HttpOnly: true, SameSite: http.SameSiteLaxMode,
		})
	}
	next := localPath(r.URL.Query().Get("next"))
	if next == "" {
		next = "/link"
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, next, http.StatusSeeOther)
}
