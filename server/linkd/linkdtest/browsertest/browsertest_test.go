package browsertest_test

import (
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/linkdesk/linkdesk/server/linkd/linkdtest/browsertest"
)

// site is a small sign-in site: a password form with a CSRF token bound to a cookie,
// then a one-time-code form, then a redirect to /done (or to done, if set).
func site(t *testing.T, done string) *httptest.Server {
	t.Helper()
	form := func(w http.ResponseWriter, field, fieldType, errMsg string) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if errMsg != "" {
			w.WriteHeader(http.StatusUnauthorized)
		}
		fmt.Fprintf(w, `<html><body><p class="error">%s</p><form method="post" action="/signin">
<input type="hidden" name="csrf" value="tok&amp;1"><input name="username"><input name="%s" type="%s">
</form><form method="post" action="/other"><input type="hidden" name="csrf" value="other"></form></body></html>`,
			html.EscapeString(errMsg), field, fieldType)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /signin", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "s", Value: "anon"})
		form(w, "password", "password", "")
	})
	mux.HandleFunc("POST /signin", func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie("s")
		if err != nil || r.PostFormValue("csrf") != "tok&1" {
			http.Error(w, "forged", http.StatusForbidden)
			return
		}
		switch {
		case c.Value == "anon" && r.PostFormValue("username") == "ada" && r.PostFormValue("password") == "pw":
			http.SetCookie(w, &http.Cookie{Name: "s", Value: "half"})
			form(w, "otp", "text", "")
		case c.Value == "anon":
			form(w, "password", "password", "That password is not right")
		case c.Value == "half" && r.PostFormValue("otp") == "123456":
			target := "/done"
			if done != "" {
				target = done
			}
			http.Redirect(w, r, target, http.StatusSeeOther)
		default:
			form(w, "otp", "text", "That code is not right")
		}
	})
	mux.HandleFunc("GET /done", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "<p>Signed in</p>") })
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func code(c string) func() (string, error) { return func() (string, error) { return c, nil } }

func TestSignIn(t *testing.T) {
	srv := site(t, "")
	cases := []struct {
		name, password string
		otp            func() (string, error)
		wantErr        string // "" for success
	}{
		{"password and code", "pw", code("123456"), ""},
		{"wrong password", "nope", code("123456"), "That password is not right"},
		{"wrong code", "pw", code("000000"), "That code is not right"},
		{"no code to give", "pw", nil, "one-time code"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := browsertest.New(srv.URL, srv.Client().Transport)
			p, err := b.SignIn("/signin", "ada", c.password, c.otp)
			if c.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				p.MustSay(t, "Signed in")
				if p.URL.Path != "/done" {
					t.Fatalf("ended at %s", p.URL)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("err %v, want one saying %q", err, c.wantErr)
			}
		})
	}
}

func TestStopAtCapturesRedirect(t *testing.T) {
	srv := site(t, "http://127.0.0.1:1/callback?code=c1")
	b := browsertest.New(srv.URL, srv.Client().Transport)
	b.StopAt = func(u *url.URL) bool { return u.Host == "127.0.0.1:1" }
	p, err := b.SignIn("/signin", "ada", "pw", code("123456"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != http.StatusSeeOther || p.Location() == nil || p.Location().Query().Get("code") != "c1" {
		t.Fatalf("page %d at %v, want the redirect to the loopback address", p.Status, p.Location())
	}
}

func TestPageForms(t *testing.T) {
	srv := site(t, "")
	b := browsertest.New(srv.URL, srv.Client().Transport)
	p, err := b.Get("/signin")
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Hidden("/signin").Get("csrf"); got != "tok&1" {
		t.Errorf("hidden csrf %q", got)
	}
	if got := p.Hidden("/other").Get("csrf"); got != "other" {
		t.Errorf("other form's csrf %q", got)
	}
	if p.Hidden("/missing") != nil {
		t.Error("hidden fields of a form that is not there")
	}
	// Submit sends the hidden fields, and the cookie: a wrong password is refused, not forged.
	p, err = b.Submit(p, "/signin", url.Values{"username": {"ada"}, "password": {"x"}})
	if err != nil {
		t.Fatal(err)
	}
	p.WantStatus(t, http.StatusUnauthorized)
	if got := p.ErrorText(); got != "That password is not right" {
		t.Errorf("ErrorText %q", got)
	}
}

func TestLauncher(t *testing.T) {
	srv := site(t, "")
	l := browsertest.New("", srv.Client().Transport).Launcher("ada", "pw", code("123456"))
	if _, err := l.Wait(); err == nil {
		t.Fatal("Wait before Open succeeded")
	}
	if err := l.Open(srv.URL + "/signin"); err != nil {
		t.Fatal(err)
	}
	if err := l.Open(srv.URL + "/signin"); err == nil {
		t.Error("a second Open succeeded")
	}
	p, err := l.Wait()
	if err != nil {
		t.Fatal(err)
	}
	p.MustSay(t, "Signed in")
}
