// Package browsertest is the one scripted browser of Linkdesk's tests: a cookie-keeping
// HTTP client that follows redirects, reads pages as HTML, submits their forms with the
// hidden fields (such as CSRF tokens) a real browser sends, and signs in through a
// sign-in form (password, then a one-time code if asked). Launcher stands in for the
// system browser the app opens for its loopback sign-in.
//
// It imports nothing of linkd, so server/web's own tests can use it as well as
// linkdtest (which builds one per instance with Instance.Browser).
package browsertest

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/html"
)

// maxPage bounds how much of a page the browser reads.
const maxPage = 4 << 20

// Browser is a scripted browser with its own cookies.
type Browser struct {
	// Client keeps the cookies and follows redirects (up to 10), except those StopAt
	// refuses.
	Client *http.Client
	// Base resolves relative addresses given to Get and Post; nil: they must be absolute.
	Base *url.URL
	// StopAt, if set, is asked before each redirect: when it says true, the browser
	// stops and the page is the redirect answer itself (see Page.Location). Use it to
	// capture a redirect to an address nothing listens on, or to see every redirect.
	StopAt func(*url.URL) bool
}

// New returns a browser with an empty cookie jar that speaks through transport (nil:
// http.DefaultTransport; give a test server's transport to trust its certificate) and
// resolves relative addresses against base ("" for none).
func New(base string, transport http.RoundTripper) *Browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		panic(err) // cookiejar.New fails only for a bad public-suffix list, and we give none
	}
	b := &Browser{}
	if base != "" {
		u, err := url.Parse(base)
		if err != nil {
			panic(fmt.Sprintf("browsertest: bad base %q: %v", base, err))
		}
		b.Base = u
	}
	b.Client = &http.Client{Transport: transport, Jar: jar, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return errors.New("browsertest: stopped after 10 redirects")
		}
		if b.StopAt != nil && b.StopAt(req.URL) {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	return b
}

// Page is one answer as the browser shows it.
type Page struct {
	Status int
	URL    *url.URL // where the page came from, after redirects
	Header http.Header
	Body   string
	Doc    *html.Node // the parsed Body
}

func (b *Browser) resolve(target string) (string, error) {
	u, err := url.Parse(target)
	if err != nil {
		return "", err
	}
	if b.Base != nil {
		u = b.Base.ResolveReference(u)
	}
	if !u.IsAbs() {
		return "", fmt.Errorf("browsertest: %q is not absolute and the browser has no base", target)
	}
	return u.String(), nil
}

// Do sends req (for requests a page cannot make, such as one with forged headers) and
// reads the answer.
func (b *Browser) Do(req *http.Request) (*Page, error) {
	resp, err := b.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxPage))
	if err != nil {
		return nil, err
	}
	doc, err := html.Parse(strings.NewReader(string(raw)))
	if err != nil {
		return nil, err
	}
	return &Page{Status: resp.StatusCode, URL: resp.Request.URL, Header: resp.Header, Body: string(raw), Doc: doc}, nil
}

// Get opens target, an absolute address or one relative to Base.
func (b *Browser) Get(target string) (*Page, error) {
	u, err := b.resolve(target)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	return b.Do(req)
}

// Post sends form to target as a form post, exactly as given (Submit adds a page's
// hidden fields).
func (b *Browser) Post(target string, form url.Values) (*Page, error) {
	u, err := b.resolve(target)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.Do(req)
}

// Submit posts p's form whose action is action (the first such form), as a person
// pressing its button would: with the form's hidden fields, plus fields (which win).
func (b *Browser) Submit(p *Page, action string, fields url.Values) (*Page, error) {
	form := p.Form(action)
	if form == nil {
		return nil, fmt.Errorf("browsertest: no form with action %q on %s: %s", action, p.URL, p.ErrorText())
	}
	return b.submit(p, form, fields)
}

func (b *Browser) submit(p *Page, form *html.Node, fields url.Values) (*Page, error) {
	vals := hidden(form)
	for k, v := range fields {
		vals[k] = v
	}
	target, err := p.URL.Parse(Attr(form, "action"))
	if err != nil {
		return nil, err
	}
	return b.Post(target.String(), vals)
}

// SignIn opens start and fills in the sign-in forms it meets as a person would: a form
// with a password field gets username (in a field named "username", if it has one) and
// password; a form with a field named "otp" gets a code from otp (nil: the account has
// no second factor, and being asked for one is an error). It returns the first page
// without such a form, which is a redirect answer if StopAt stopped there. A form shown
// again after it was filled in (a refused password or code) is an error carrying what
// the page said.
func (b *Browser) SignIn(start, username, password string, otp func() (string, error)) (*Page, error) {
	p, err := b.Get(start)
	filled := map[string]bool{}
	for err == nil {
		form, kind := signInForm(p.Doc)
		if form == nil {
			return p, nil
		}
		if filled[kind] {
			return p, fmt.Errorf("browsertest: the %s form came back (HTTP %d): %s", kind, p.Status, p.ErrorText())
		}
		filled[kind] = true
		fields := url.Values{}
		switch kind {
		case "password":
			walk(form, func(n *html.Node) {
				if n.Type == html.ElementNode && n.Data == "input" {
					switch {
					case Attr(n, "type") == "password":
						fields.Set(Attr(n, "name"), password)
					case Attr(n, "name") == "username":
						fields.Set("username", username)
					}
				}
			})
		case "one-time code":
			if otp == nil {
				return p, fmt.Errorf("browsertest: asked for a one-time code, and the browser has none")
			}
			code, err := otp()
			if err != nil {
				return p, err
			}
			fields.Set("otp", code)
		}
		p, err = b.submit(p, form, fields)
	}
	return nil, err
}

// signInForm finds the first form asking for a password, or else for a one-time code.
func signInForm(doc *html.Node) (form *html.Node, kind string) {
	walk(doc, func(n *html.Node) {
		if form != nil || n.Type != html.ElementNode || n.Data != "form" {
			return
		}
		walk(n, func(in *html.Node) {
			if in.Type != html.ElementNode || in.Data != "input" {
				return
			}
			switch {
			case Attr(in, "type") == "password":
				form, kind = n, "password"
			case Attr(in, "name") == "otp" && kind == "":
				form, kind = n, "one-time code"
			}
		})
	})
	return form, kind
}

// Launcher stands in for the system browser the app opens for its loopback sign-in: Open
// (an OpenBrowser function) returns at once, as a real launcher does, and the browser
// signs in on its own goroutine and follows the redirect to the app.
type Launcher struct {
	b                  *Browser
	username, password string
	otp                func() (string, error)

	mu     sync.Mutex
	opened bool
	done   chan struct{}
	page   *Page
	err    error
}

// Launcher returns a launcher that signs in with b (see SignIn for the arguments).
func (b *Browser) Launcher(username, password string, otp func() (string, error)) *Launcher {
	return &Launcher{b: b, username: username, password: password, otp: otp, done: make(chan struct{})}
}

// Open starts the sign-in at authURL on a goroutine. A launcher opens one address;
// later calls fail.
func (l *Launcher) Open(authURL string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.opened {
		return errors.New("browsertest: the launcher was already opened")
	}
	l.opened = true
	go func() {
		defer close(l.done)
		l.page, l.err = l.b.SignIn(authURL, l.username, l.password, l.otp)
	}()
	return nil
}

// Wait waits for the opened sign-in to end and returns its last page (the app's answer
// on its loopback address when all went well). Without an Open, it returns an error at
// once.
func (l *Launcher) Wait() (*Page, error) {
	l.mu.Lock()
	opened := l.opened
	l.mu.Unlock()
	if !opened {
		return nil, errors.New("browsertest: the launcher was never opened")
	}
	<-l.done
	return l.page, l.err
}

// Location is where a redirect answer points, resolved against the page's URL; nil when
// the page is not a redirect.
func (p *Page) Location() *url.URL {
	loc := p.Header.Get("Location")
	if loc == "" {
		return nil
	}
	u, err := p.URL.Parse(loc)
	if err != nil {
		return nil
	}
	return u
}

// Form is the page's first form whose action attribute is action, or nil.
func (p *Page) Form(action string) *html.Node {
	var found *html.Node
	walk(p.Doc, func(n *html.Node) {
		if found == nil && n.Type == html.ElementNode && n.Data == "form" && Attr(n, "action") == action {
			found = n
		}
	})
	return found
}

// Hidden is the hidden fields of the page's form whose action is action (such as its
// CSRF token); nil when there is no such form.
func (p *Page) Hidden(action string) url.Values {
	form := p.Form(action)
	if form == nil {
		return nil
	}
	return hidden(form)
}

func hidden(form *html.Node) url.Values {
	vals := url.Values{}
	walk(form, func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "input" && Attr(n, "type") == "hidden" {
			vals.Set(Attr(n, "name"), Attr(n, "value"))
		}
	})
	return vals
}

// Text is the page's visible text with whitespace collapsed.
func (p *Page) Text() string { return text(p.Doc) }

func text(root *html.Node) string {
	var b strings.Builder
	walk(root, func(n *html.Node) {
		if n.Type == html.TextNode && (n.Parent == nil || (n.Parent.Data != "script" && n.Parent.Data != "style" && n.Parent.Data != "title")) {
			b.WriteString(n.Data)
			b.WriteByte(' ')
		}
	})
	return strings.Join(strings.Fields(b.String()), " ")
}

// ErrorText is what the page's first element of class "error" says, or else the start
// of its text: for error messages about a page that went wrong.
func (p *Page) ErrorText() string {
	var msg *html.Node
	walk(p.Doc, func(n *html.Node) {
		if msg == nil && n.Type == html.ElementNode && strings.Contains(" "+Attr(n, "class")+" ", " error ") {
			msg = n
		}
	})
	if msg != nil {
		return text(msg)
	}
	t := p.Text()
	if len(t) > 300 {
		t = t[:300] + "…"
	}
	return t
}

// MustSay fails the test unless the page's visible text contains each of wants.
func (p *Page) MustSay(t testing.TB, wants ...string) {
	t.Helper()
	txt := p.Text()
	for _, w := range wants {
		if !strings.Contains(txt, w) {
			t.Errorf("page %s (status %d) does not say %q; it says:\n%s", p.URL.Path, p.Status, w, txt)
		}
	}
}

// WantStatus stops the test unless the page's status is status.
func (p *Page) WantStatus(t testing.TB, status int) {
	t.Helper()
	if p.Status != status {
		t.Fatalf("%s: status %d, want %d; page says:\n%s", p.URL, p.Status, status, p.Text())
	}
}

// Walk calls f for n and every node below it, in document order.
func Walk(n *html.Node, f func(*html.Node)) { walk(n, f) }

func walk(n *html.Node, f func(*html.Node)) {
	if n == nil {
		return
	}
	f(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, f)
	}
}

// Attr is n's attribute name, or "".
func Attr(n *html.Node, name string) string {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
}
