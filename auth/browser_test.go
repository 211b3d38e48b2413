package auth

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"

	"golang.org/x/net/html"
)

// testBrowser stands in for the system browser in sign-in tests: it follows
// redirects, keeps cookies, and fills in the provider's login form (fields
// username and password, hidden fields kept as they are) until it lands on the
// app's loopback callback. It speaks to the real provider; nothing is faked.
type testBrowser struct {
	hc                 *http.Client
	username, password string

	// Filled in when the flow ends, before done is closed.
	status int
	page   string
	err    error
	done   chan struct{}
}

func newTestBrowser(transport http.RoundTripper, username, password string) *testBrowser {
	jar, _ := cookiejar.New(nil)
	return &testBrowser{hc: &http.Client{Transport: transport, Jar: jar}, username: username, password: password, done: make(chan struct{})}
}

// maxForms is how many forms the test browser fills in before giving up (a
// login page shown again means the password was refused).
const maxForms = 2

// open is the openBrowser function given to SignIn. Like a real launcher it
// returns at once; the "browser" goes on on its own goroutine.
func (b *testBrowser) open(start string) error {
	go func() {
		defer close(b.done)
		b.err = b.visit(start)
	}()
	return nil
}

// wait blocks until the browser has shown its last page and returns its error.
func (b *testBrowser) wait() error {
	<-b.done
	return b.err
}

func (b *testBrowser) visit(start string) error {
	resp, err := b.hc.Get(start)
	for range maxForms + 1 {
		if err != nil {
			return err
		}
		body, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		if rerr != nil {
			return rerr
		}
		if resp.Request.URL.Path == CallbackPath && strings.HasPrefix(resp.Request.URL.Host, "127.0.0.1:") {
			b.status, b.page = resp.StatusCode, string(body)
			return nil
		}
		action, form, ok := loginForm(string(body))
		b.page = string(body)
		if !ok {
			return fmt.Errorf("test browser: no login form at %s (HTTP %d): %.300s", resp.Request.URL, resp.StatusCode, body)
		}
		form.Set("username", b.username)
		form.Set("password", b.password)
		target, perr := resp.Request.URL.Parse(action)
		if perr != nil {
			return perr
		}
		resp, err = b.hc.PostForm(target.String(), form)
	}
	return fmt.Errorf("test browser: still on a form after %d tries", maxForms)
}

// loginForm finds the first form with a password field and returns its action
// and its fields' current values (a submit button named action is pressed
// with value approve, as DESIGN.md names it).
func loginForm(page string) (string, url.Values, bool) {
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		return "", nil, false
	}
	var found bool
	var action string
	var vals url.Values
	var walkForm func(*html.Node)
	walkForm = func(n *html.Node) {
		if n.Type == html.ElementNode && (n.Data == "input" || n.Data == "button") {
			name, value, typ := attr(n, "name"), attr(n, "value"), attr(n, "type")
			switch {
			case name == "":
			case typ == "password":
				found = true
				vals.Set(name, "")
			case typ == "submit" || n.Data == "button":
				if name == "action" && value == "approve" {
					vals.Set(name, value)
				}
			case typ == "checkbox" || typ == "radio":
			default:
				vals.Set(name, value)
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walkForm(c)
		}
	}
	var walk func(*html.Node) bool
	walk = func(n *html.Node) bool {
		if n.Type == html.ElementNode && n.Data == "form" {
			found, action, vals = false, attr(n, "action"), url.Values{}
			walkForm(n)
			if found {
				return true
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if walk(c) {
				return true
			}
		}
		return false
	}
	if !walk(doc) {
		return "", nil, false
	}
	return action, vals, true
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}
