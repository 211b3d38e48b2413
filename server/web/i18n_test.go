package web

import (
	"go/ast"
	"go/parser"
	"go/token"
	"html/template"
	"io/fs"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"golang.org/x/net/html"
)

// Translation completeness for the pages: every key used in Go (translate, tr,
// the strings page titles return) and in templates (T, TH) is in every
// catalogue, non-empty, with the same placeholders; and no page text is left
// outside T. docs/i18n.md says how to add a string.

// notYetTranslatedWeb are files another helper is changing while this was
// written; the guard skips them until their work is merged and translated.
// Empty: every page is translated.
var notYetTranslatedWeb = []string{}

// allowedText is page text the guard lets through although it has a letter,
// because it is not a word to translate.
var allowedText = map[string]string{
	"Linkdesk": "the product's name",
	"English":  "the language switch names each language in itself",
	"Deutsch":  "the language switch names each language in itself",
	"Español":  "the language switch names each language in itself",
}

// pluralForms are the CLDR forms pluralForm picks in each language.
var pluralForms = map[string][]string{"en": {"one", "other"}, "de": {"one", "other"}, "es": {"one", "many", "other"}}

type usedKey struct {
	key    string
	plural bool // looked up with a "Count"
	at     string
}

// strLit is the text of a string literal or of a concatenation of them (a long
// key split over lines).
func strLit(e ast.Expr) (string, bool) {
	switch e := e.(type) {
	case *ast.BasicLit:
		if e.Kind == token.STRING {
			s, err := strconv.Unquote(e.Value)
			return s, err == nil
		}
	case *ast.BinaryExpr:
		if e.Op == token.ADD {
			x, ok1 := strLit(e.X)
			y, ok2 := strLit(e.Y)
			return x + y, ok1 && ok2
		}
	}
	return "", false
}

// accountsWords are the string constants of server/accounts, which pages show
// (translate(r, accounts.WrongPasswordMessage)) with their English text as key.
func accountsWords(t *testing.T) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	names, _ := filepath.Glob("../accounts/*.go")
	out := map[string]string{}
	for _, n := range names {
		if strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, n, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.CONST {
				for _, sp := range g.Specs {
					vs := sp.(*ast.ValueSpec)
					for i, name := range vs.Names {
						if i < len(vs.Values) {
							if s, ok := strLit(vs.Values[i]); ok {
								out[name.Name] = s
							}
						}
					}
				}
			}
		}
	}
	return out
}

// goKeys finds the keys the Go side looks up: translate(r, key, …), tr(l, key,
// …), and the literals page types' title methods return (render translates them).
func goKeys(t *testing.T) []usedKey {
	t.Helper()
	consts := accountsWords(t)
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var keys []usedKey
	for _, n := range names {
		if strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, n, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(node ast.Node) bool {
			switch node := node.(type) {
			case *ast.FuncDecl:
				if node.Recv != nil && node.Name.Name == "title" {
					ast.Inspect(node.Body, func(m ast.Node) bool {
						if ret, ok := m.(*ast.ReturnStmt); ok {
							for _, e := range ret.Results {
								if s, ok := strLit(e); ok {
									keys = append(keys, usedKey{key: s, at: fset.Position(e.Pos()).String()})
								}
							}
						}
						return true
					})
				}
			case *ast.CallExpr:
				id, ok := node.Fun.(*ast.Ident)
				if !ok || (id.Name != "translate" && id.Name != "tr") || len(node.Args) < 2 {
					return true
				}
				at := fset.Position(node.Pos()).String()
				key, ok := strLit(node.Args[1])
				if sel, isSel := node.Args[1].(*ast.SelectorExpr); isSel && !ok {
					if x, _ := sel.X.(*ast.Ident); x != nil && x.Name == "accounts" {
						key, ok = consts[sel.Sel.Name]
					}
				}
				if !ok {
					if n == "i18n.go" || n == "render.go" { // tr's own plumbing passes keys through
						return true
					}
					t.Errorf("%s: %s with a key that is not a string literal", at, id.Name)
					return true
				}
				u := usedKey{key: key, at: at}
				for _, a := range node.Args[2:] {
					if s, ok := strLit(a); ok && s == "Count" {
						u.plural = true
					}
				}
				keys = append(keys, u)
			}
			return true
		})
	}
	return keys
}

// actionRE finds a T or TH call with its literal key and the rest of the action.
var actionRE = regexp.MustCompile(`\b(T|TH)\s+("(?:[^"\\]|\\.)*")([^}]*(?:\}[^}][^}]*)*)`)

// splitTemplate cuts a template's text into its actions ({{…}}, quoted strings
// inside them kept whole) and the text around them, in which every action is
// replaced by "{{}}" so an HTML tokenizer sees no quotes of the template's own.
func splitTemplate(src string) (text string, actions []string) {
	var b strings.Builder
	for {
		i := strings.Index(src, "{{")
		if i < 0 {
			b.WriteString(src)
			return b.String(), actions
		}
		b.WriteString(src[:i])
		j, quote := i+2, byte(0)
		for ; j < len(src); j++ {
			c := src[j]
			switch {
			case quote != 0:
				if c == '\\' && quote == '"' {
					j++
				} else if c == quote {
					quote = 0
				}
			case c == '"' || c == '`':
				quote = c
			case strings.HasPrefix(src[j:], "}}"):
				actions = append(actions, src[i+2:j])
				b.WriteString("{{}}")
				src = src[j+2:]
				goto next
			}
		}
		return b.String(), actions // unterminated: the template parser reports it
	next:
	}
}

// templateKeys finds the keys the templates look up with T and TH.
func templateKeys(t *testing.T) []usedKey {
	t.Helper()
	var keys []usedKey
	err := fs.WalkDir(templateFS, "templates", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(templateFS, p)
		if err != nil {
			return err
		}
		_, actions := splitTemplate(string(b))
		for _, a := range actions {
			for _, m := range actionRE.FindAllStringSubmatch(a, -1) {
				key, err := strconv.Unquote(m[2])
				if err != nil {
					t.Errorf("%s: bad key %s", p, m[2])
					continue
				}
				keys = append(keys, usedKey{key: key, plural: strings.Contains(m[3], `"Count"`), at: p})
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

var placeholderRE = regexp.MustCompile(`\{\{\s*\.(\w+)\s*\}\}`)

func placeholders(s string) []string {
	var out []string
	for _, m := range placeholderRE.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Every key the pages look up is translated in every catalogue, with the
// placeholders of its English text, and no catalogue holds unused keys.
func TestPageTranslationsComplete(t *testing.T) {
	keys := append(goKeys(t), templateKeys(t)...)
	if len(keys) < 20 {
		t.Fatalf("found only %d keys: the scan is broken", len(keys))
	}
	used := map[string]bool{"layout.datetime": true, "dash": true} // looked up by the date and spell funcs
	for _, u := range keys {
		used[u.key] = true
	}
	for _, key := range []string{"layout.datetime", "dash"} {
		keys = append(keys, usedKey{key: key, at: "i18n.go"})
	}
	for _, l := range langs {
		cat := catalogues[l]
		for _, u := range keys {
			m, ok := cat[u.key]
			if !ok {
				t.Errorf("%s: %q is missing from translations/%s.json", u.at, u.key, l)
				continue
			}
			want := placeholders(u.key)
			texts := map[string]string{"": m.text}
			if u.plural {
				if m.forms == nil {
					t.Errorf("%s: %q in %s.json needs plural forms %v", u.at, u.key, l, pluralForms[l])
					continue
				}
				texts = m.forms
				for _, f := range pluralForms[l] {
					if _, ok := m.forms[f]; !ok {
						t.Errorf("%s: %q in %s.json lacks the plural form %s", u.at, u.key, l, f)
					}
				}
			} else if m.forms != nil {
				t.Errorf("%s: %q in %s.json has plural forms but is looked up without a Count", u.at, u.key, l)
			}
			for form, text := range texts {
				if strings.TrimSpace(text) == "" {
					t.Errorf("%s: %q in %s.json is empty", u.at, u.key, l)
					continue
				}
				got, w := placeholders(text), want
				if form == "one" { // a singular may say "1" or "one" in words
					got = slices.DeleteFunc(got, func(p string) bool { return p == "Count" })
					w = slices.DeleteFunc(slices.Clone(want), func(p string) bool { return p == "Count" })
				}
				if !slices.Equal(got, w) {
					t.Errorf("%s: %q in %s.json (%s) has placeholders %v, want %v", u.at, u.key, l, form, got, w)
				}
			}
		}
		for k := range cat {
			if !used[k] {
				t.Errorf("translations/%s.json: %q is not used by the pages; remove it", l, k)
			}
		}
	}
}

// shownAttrs are attributes whose values people read or hear.
var shownAttrs = map[string]bool{"alt": true, "title": true, "placeholder": true, "aria-label": true}

// untranslatedText finds page text with words outside template actions: text
// nodes and shown attributes (outside <script> and <style>).
func untranslatedText(src string) []string {
	text, _ := splitTemplate(src)
	z := html.NewTokenizer(strings.NewReader(text))
	var found []string
	check := func(s string) {
		s = strings.TrimSpace(strings.ReplaceAll(s, "{{}}", " "))
		for _, word := range strings.Fields(s) {
			if _, ok := allowedText[word]; ok {
				continue
			}
			if strings.IndexFunc(word, unicode.IsLetter) >= 0 {
				found = append(found, s)
				return
			}
		}
	}
	skip := 0
	for {
		switch z.Next() {
		case html.ErrorToken:
			return found
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			if string(name) == "script" || string(name) == "style" {
				skip++
			}
			for hasAttr {
				var k, v []byte
				k, v, hasAttr = z.TagAttr()
				if shownAttrs[string(k)] {
					check(string(v))
				}
			}
		case html.EndTagToken:
			if name, _ := z.TagName(); string(name) == "script" || string(name) == "style" {
				skip--
			}
		case html.TextToken:
			if skip == 0 {
				check(string(z.Text()))
			}
		}
	}
}

// No page text is left outside T/TH (except in the files on notYetTranslatedWeb).
func TestNoHardCodedPageText(t *testing.T) {
	err := fs.WalkDir(templateFS, "templates", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || slices.Contains(notYetTranslatedWeb, p) {
			return err
		}
		b, err := fs.ReadFile(templateFS, p)
		if err != nil {
			return err
		}
		for _, s := range untranslatedText(string(b)) {
			t.Errorf("%s: %q is shown but not wrapped in T (or allowed in allowedText)", p, s)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// shownFields are the fields of the page types (messagePage, messageItem, and
// the pages' Error, Notice and names) that are shown as they are, so they must
// hold translated text.
var shownFields = map[string]bool{"Title": true, "Heading": true, "Body": true, "LinkText": true, "Link2Text": true,
	"Text": true, "HrefText": true, "Error": true, "Notice": true, "DeviceName": true, "Name": true, "Flash": true}

// formatVerbRE matches fmt's verbs (%d, %02d, …), which are not words.
var formatVerbRE = regexp.MustCompile(`%[-+# 0-9.*]*[a-zA-Z%]`)

// untranslatedGo finds string literals with words put into shownFields in a Go
// source: in a composite literal (Title: "…") or by assignment (p.Error = "…"),
// and the words of fmt.Sprintf formats and concatenations there.
func untranslatedGo(fset *token.FileSet, f *ast.File) []string {
	var found []string
	var flag func(e ast.Expr)
	flag = func(e ast.Expr) {
		switch e := e.(type) {
		case *ast.BasicLit:
			if s, ok := strLit(e); ok && strings.IndexFunc(formatVerbRE.ReplaceAllString(s, ""), unicode.IsLetter) >= 0 {
				found = append(found, fset.Position(e.Pos()).String()+": "+e.Value)
			}
		case *ast.BinaryExpr:
			flag(e.X)
			flag(e.Y)
		case *ast.CallExpr:
			if sel, ok := e.Fun.(*ast.SelectorExpr); ok && strings.HasPrefix(sel.Sel.Name, "Sprint") {
				for _, a := range e.Args {
					flag(a)
				}
			}
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.KeyValueExpr:
			if k, ok := n.Key.(*ast.Ident); ok && shownFields[k.Name] {
				flag(n.Value)
			}
		case *ast.AssignStmt:
			for i, lhs := range n.Lhs {
				if sel, ok := lhs.(*ast.SelectorExpr); ok && shownFields[sel.Sel.Name] && i < len(n.Rhs) {
					flag(n.Rhs[i])
				}
			}
		}
		return true
	})
	return found
}

// No Go code puts untranslated words into what a page shows.
func TestNoHardCodedGoText(t *testing.T) {
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, n := range names {
		if strings.HasSuffix(n, "_test.go") || slices.Contains(notYetTranslatedWeb, n) {
			continue
		}
		f, err := parser.ParseFile(fset, n, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, at := range untranslatedGo(fset, f) {
			t.Errorf("%s is shown on a page but not looked up with translate", at)
		}
	}
}

// The guards find what they are meant to find, so a pass means something.
func TestNoHardCodedPageTextGuard(t *testing.T) {
	goSrc := `package web
func f() {
	p := messagePage{Title: "Oops", Heading: translate(r, "Fine"), Body: fmt.Sprintf("Wait %d minutes", n), Link: "/link"}
	p.Error = "Bad " + x
	p.LinkText = translate(r, "Fine")
}`
	fset := token.NewFileSet()
	gf, err := parser.ParseFile(fset, "x.go", goSrc, 0)
	if err != nil {
		t.Fatal(err)
	}
	var gotGo []string
	for _, at := range untranslatedGo(fset, gf) {
		gotGo = append(gotGo, at[strings.Index(at, ": ")+2:])
	}
	if want := []string{`"Oops"`, `"Wait %d minutes"`, `"Bad "`}; !slices.Equal(gotGo, want) {
		t.Errorf("Go guard found %q, want %q", gotGo, want)
	}

	src := `<h1>{{T "Fine"}}</h1><p>Hello {{.Name}}</p><a href="/x" aria-label="Go {{T "there"}}">{{.X}}</a>` +
		`<nav aria-label="{{T "Account"}}"><span>Linkdesk</span> · <b>{{T "Say \"hi\" }}"}}</b></nav><script>var a = "b";</script>`
	got := untranslatedText(src)
	want := []string{"Hello", "Go"}
	if !slices.Equal(got, want) {
		t.Errorf("guard found %q, want %q", got, want)
	}
	_, actions := splitTemplate(src)
	var found []string
	for _, a := range actions {
		for _, m := range actionRE.FindAllStringSubmatch(a, -1) {
			found = append(found, m[2])
		}
	}
	if want := []string{`"Fine"`, `"there"`, `"Account"`, `"Say \"hi\" }}"`}; !slices.Equal(found, want) {
		t.Errorf("keys found %q, want %q", found, want)
	}
}

// TH keeps the catalogue's markup but escapes the values put into it, and a
// value is never filled in twice (a device may be named "{{.App}}").
func TestTranslateWithMarkupEscapesValues(t *testing.T) {
	th := langFuncs("de")["TH"].(func(string, ...any) template.HTML)
	got := th("<strong>{{.Device}}</strong> is now linked to your account through {{.App}}.", "Device", `<img src=x onerror=alert(1)>{{.App}}`, "App", "Example & Co")
	want := template.HTML("<strong>&lt;img src=x onerror=alert(1)&gt;{{.App}}</strong> ist jetzt über Example &amp; Co mit Ihrem Konto verknüpft.")
	if got != want {
		t.Errorf("TH gave %q, want %q", got, want)
	}
	if got := tr("es", "For your safety, signing in to this account is paused. Wait {{.Count}} minutes, then try again.", "Count", 1); !strings.Contains(got, "Espera 1 minuto ") {
		t.Errorf("one minute in Spanish: %q", got)
	}
	if got := tr("de", "not a key {{.X}}", "X", "y"); got != "not a key y" {
		t.Errorf("an unknown key gave %q", got)
	}
}
