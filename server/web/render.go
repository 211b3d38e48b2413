package web

import (
	"bytes"
	"context"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/linkdesk/linkdesk/server/store"
)

// maxForm bounds a form body: every form here is a few short fields.
const maxForm = 16 << 10

type handler func(w http.ResponseWriter, r *http.Request, st *state)

// withSession loads the session cookie (or starts one) and hands it to h.
func (s *server) withSession(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		h(w, r, s.sessions.load(r))
	}
}

// csrf parses the form and refuses it unless it carries the session's CSRF token.
func (s *server) csrf(h handler) handler {
	return func(w http.ResponseWriter, r *http.Request, st *state) {
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		if err := r.ParseForm(); err != nil {
			s.render(w, r, st, http.StatusBadRequest, "message", messagePage{
				Title: translate(r, "Something went wrong"), Heading: translate(r, "That form could not be read"),
				Body: translate(r, "Go back, reload the page and try again."),
				Link: "/link", LinkText: translate(r, "Start again"),
			})
			return
		}
		if !checkCSRF(st, r.PostForm.Get("csrf_token")) {
			s.log.InfoContext(r.Context(), "form refused: bad or missing CSRF token", "path", r.URL.Path)
			reload := r.URL.Path
			if id := r.PostForm.Get("authRequestID"); id != "" && reload == "/login" {
				reload = flow{Action: "/login", AuthRequestID: id}.start()
			}
			s.render(w, r, st, http.StatusForbidden, "message", messagePage{
				Title: translate(r, "Form expired"), Heading: translate(r, "This form has expired"),
				Body: translate(r, "For your safety the form could not be sent. It may have been open too long, or you signed in or out in another tab. Reload the page and try again."),
				Link: reload, LinkText: translate(r, "Reload the page"),
			})
			return
		}
		h(w, r, st)
	}
}

// account is the signed-in person as pages show them.
type account struct {
	Subject     string
	Username    string
	DisplayName string
}

// Name is how pages address the account.
func (a *account) Name() string {
	if a.DisplayName != "" {
		return a.DisplayName
	}
	return a.Username
}

// view is what every template gets: the page's own data plus the shared frame.
type view struct {
	Title   string
	Langs   []langChoice // the language switch
	CSRF    string
	Account *account
	Flash   string
	// FlashErr marks Flash as a problem (shown as an alert, not a status).
	FlashErr bool
	Page     any
}

// titled is implemented by every page struct so the frame can show its title:
// title returns the title's catalogue key (English), which render translates; a
// text not in the catalogues (a messagePage's title, translated already) is shown
// as it is.
type titled interface{ title() string }

func (s *server) currentAccount(ctx context.Context, st *state) *account {
	if !st.signedIn() {
		return nil
	}
	u, err := s.cfg.Store.UserBySubject(ctx, st.sess.Subject)
	if err != nil {
		return nil
	}
	return &account{Subject: u.Subject, Username: u.Username, DisplayName: u.DisplayName}
}

// render writes the session cookie if needed and then the named page.
func (s *server) render(w http.ResponseWriter, r *http.Request, st *state, status int, name string, page titled) {
	l := requestLang(r)
	v := view{Title: tr(l, page.title()), Langs: langChoices(l, pagePath(r)), CSRF: st.sess.CSRF, Page: page}
	v.Account = s.currentAccount(r.Context(), st)
	if st.sess.Flash != "" {
		v.Flash, v.FlashErr = st.sess.Flash, st.sess.FlashErr
		st.sess.Flash, st.sess.FlashErr = "", false
		st.dirty = true
	}
	t := s.pages[l][name]
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		s.log.ErrorContext(r.Context(), "render page", "page", name, "err", err)
		http.Error(w, tr(l, "Something went wrong on our side. Please try again."), http.StatusInternalServerError)
		return
	}
	if err := s.sessions.save(w, st); err != nil {
		s.log.ErrorContext(r.Context(), "save session", "err", err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// redirect writes the session cookie if needed and sends the browser to a local path
// with 303 See Other (so a POST is never repeated).
func (s *server) redirect(w http.ResponseWriter, r *http.Request, st *state, to string) {
	if err := s.sessions.save(w, st); err != nil {
		s.log.ErrorContext(r.Context(), "save session", "err", err)
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// internal shows a plain apology and logs what failed; a storage fault that may pass
// (store.ErrUnavailable) gets the "try again in a moment" page instead.
func (s *server) internal(w http.ResponseWriter, r *http.Request, st *state, what string, err error) {
	if errors.Is(err, store.ErrUnavailable) {
		s.unavailable(w, r, st, what, err)
		return
	}
	s.log.ErrorContext(r.Context(), what, "err", err, "path", r.URL.Path)
	s.render(w, r, st, http.StatusInternalServerError, "message", messagePage{
		Title: translate(r, "Something went wrong"), Heading: translate(r, "Something went wrong on our side"),
		Body: translate(r, "Nothing was changed. Wait a moment and try again."),
		Link: r.URL.RequestURI(), LinkText: translate(r, "Try again"),
	})
}

// unavailableRetryAfter is the Retry-After of the storage-fault page, as the
// management API sends it.
const unavailableRetryAfter = "5"

// unavailable answers 503 with Retry-After and a page saying, in plain words, that
// nothing was saved and to try again in a moment; logged at WARN once for this
// request (the store logs a full disk itself, once). The code in the session is kept,
// so "Try again" returns to the same step.
func (s *server) unavailable(w http.ResponseWriter, r *http.Request, st *state, what string, err error) {
	s.log.WarnContext(r.Context(), what+": storage unavailable, asked the person to try again", "err", err, "path", r.URL.Path)
	w.Header().Set("Retry-After", unavailableRetryAfter)
	link := r.URL.RequestURI()
	switch {
	case r.Method == http.MethodGet:
	case strings.HasPrefix(r.URL.Path, "/devices/"):
		link = "/devices" // where the rename and unlink forms are
	default:
		link = r.URL.Path // a GET of the form's action shows the form again
	}
	s.render(w, r, st, http.StatusServiceUnavailable, "message", messagePage{
		Title: translate(r, "Try again in a moment"), Heading: translate(r, "Linkdesk couldn’t save that just now"), Kind: "warning",
		Body: translate(r, "Nothing was changed. The service can’t save anything for a moment; wait a few seconds and try again."),
		Link: link, LinkText: translate(r, "Try again"),
	})
}

// requireSignIn sends an anonymous visitor to /signin, to come back to next.
func (s *server) requireSignIn(w http.ResponseWriter, r *http.Request, st *state, next string) bool {
	if st.signedIn() {
		return true
	}
	st.sess.Next = next
	st.dirty = true
	s.redirect(w, r, st, "/signin")
	return false
}

// localPath accepts only a path on this site, never "//host" or a scheme.
func localPath(p string) string {
	if p == "" || p[0] != '/' || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") {
		return ""
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" {
		return ""
	}
	return p
}

// messagePage is a page with one message and one way forward; its texts are
// translated already (translate).
type messagePage struct {
	Title, Heading, Body string
	Kind                 string // "", "error", "success", "warning"
	Link, LinkText       string
	Link2, Link2Text     string
	// Items, when set, are listed under Body (the linked devices to pick one to unlink).
	Items []messageItem
}

// messageItem is one line of a message page's list, with an optional link.
type messageItem struct {
	Text, Href, HrefText string
}

func (p messagePage) title() string { return p.Title }

// funcs are the template helpers every language shares (langFuncs has the rest).
var funcs = template.FuncMap{
	"iso": func(v any) string { return asTime(v).UTC().Format(time.RFC3339) },
}

// spell spaces out a code's letters so screen readers read letters, not a word.
func spell(l, code string) string {
	var b strings.Builder
	for i, r := range code {
		if i > 0 {
			b.WriteByte(' ')
		}
		if r == '-' {
			b.WriteString(tr(l, "dash"))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// kindName words a device kind in language l.
func kindName(l, k string) string {
	switch k {
	case "tv":
		return tr(l, "TV")
	case "console":
		return tr(l, "Game console")
	case "kiosk":
		return tr(l, "Kiosk")
	case "computer":
		return tr(l, "Computer")
	case "phone":
		return tr(l, "Phone")
	}
	return tr(l, "Device")
}

// pagePath is where the language switch returns to: the page itself for a GET; a
// form's answer (POST) is left for the form, whose GET shows it again.
func pagePath(r *http.Request) string {
	if r.Method == http.MethodGet {
		return r.URL.RequestURI()
	}
	if id := r.PostForm.Get("authRequestID"); id != "" && r.URL.Path == "/login" {
		return flow{Action: "/login", AuthRequestID: id}.start()
	}
	return r.URL.Path
}

// pageNames are the templates under templates/, each defining "content" for layout.
var pageNames = []string{"message", "link", "check", "confirm", "result", "signin", "otp", "signout", "devices", "unlink", "pick"}

// parsePages parses every page once per language, with that language's T.
func parsePages() map[string]map[string]*template.Template {
	out := make(map[string]map[string]*template.Template, len(langs))
	for _, l := range langs {
		base := template.Must(template.New("layout.html").Funcs(funcs).Funcs(langFuncs(l)).ParseFS(templateFS, "templates/layout.html"))
		pages := make(map[string]*template.Template, len(pageNames))
		for _, n := range pageNames {
			t := template.Must(base.Clone())
			pages[n] = template.Must(t.ParseFS(templateFS, "templates/"+n+".html"))
		}
		out[l] = pages
	}
	return out
}

func asTime(v any) time.Time {
	switch t := v.(type) {
	case time.Time:
		return t
	case *time.Time:
		if t != nil {
			return *t
		}
	}
	return time.Time{}
}
