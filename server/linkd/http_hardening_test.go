package linkd_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest"
)

func noRedirects(in *linkdtest.Instance) *http.Client {
	return &http.Client{Transport: in.Client.Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// Issue 12 item 10: the linkdesk app's redirect_uri is exactly
// http://127.0.0.1:{port}/callback (RFC 8252 §7.3); nothing else is sent a code.
func TestAttackAppRedirectURIs(t *testing.T) {
	in := linkdtest.Start(t, linkdtest.Options{})
	c := noRedirects(in)
	cases := []struct {
		uri  string
		want bool
	}{
		{"http://127.0.0.1:49999/callback", true},
		{"http://127.0.0.1:1/callback", true},
		{"http://127.0.0.1:65535/callback", true},
		{"http://localhost:49999/callback", false},
		{"http://[::1]:49999/callback", false},
		{"http://127.0.0.2:49999/callback", false},
		{"https://127.0.0.1:49999/callback", false},
		{"http://user@127.0.0.1:49999/callback", false},
		{"http://127.0.0.1:49999/callback#frag", false},
		{"http://127.0.0.1:49999/callback?x=1", false},
		{"http://127.0.0.1:99999/callback", false},
		{"http://127.0.0.1:0/callback", false},
		{"http://127.0.0.1/callback", false},
		{"http://127.0.0.1:49999/callback/", false},
		{"http://127.0.0.1:49999/other", false},
		{"http://127.0.0.1:049999/callback", false},
		{"HTTP://127.0.0.1:49999/callback", false},
	}
	wrong := 0
	for _, tc := range cases {
		conf := in.AppConfig(tc.uri)
		resp, err := c.Get(conf.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		accepted := resp.StatusCode == http.StatusFound && strings.Contains(loc, "authRequestID=")
		if accepted != tc.want {
			wrong++
			t.Errorf("%s: accepted %v, want %v (%d %s)", tc.uri, accepted, tc.want, resp.StatusCode, loc)
		}
		if !tc.want && loc != "" && !strings.HasPrefix(loc, "/") && !strings.HasPrefix(loc, in.URL) {
			t.Errorf("%s: refused request redirected to %s", tc.uri, loc)
		}
	}
	t.Logf("%d of %d redirect URIs judged wrongly", wrong, len(cases))
}

// Issue 12 item 13: provider endpoints (and every other) refuse a 9 MB body.
func TestAttackBigBodies(t *testing.T) {
	in := linkdtest.Start(t, linkdtest.Options{})
	pad := strings.Repeat("a", 9<<20) // under ParseForm's own 10 MB limit
	for _, path := range []string{"/device_authorization", "/oauth/token", "/revoke", "/signin", "/device/wait"} {
		form := url.Values{"client_id": {devices.KioskClientID}, "scope": {"openid"}, "pad": {pad}}.Encode()
		resp, err := in.Client.Post(in.URL+path, "application/x-www-form-urlencoded", strings.NewReader(form))
		if err != nil {
			t.Logf("%s: %v (connection cut)", path, err)
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		t.Logf("%s: 9 MB form answered %d", path, resp.StatusCode)
		if resp.StatusCode != http.StatusRequestEntityTooLarge && resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: 9 MB form answered %d, want 413 or 400", path, resp.StatusCode)
		}
	}
	// Without a declared length (chunked), the body is cut at the cap while it is read.
	form := url.Values{"client_id": {devices.KioskClientID}, "scope": {"openid"}, "pad": {pad}}.Encode()
	resp, err := in.Client.Post(in.URL+"/device_authorization", "application/x-www-form-urlencoded",
		io.MultiReader(strings.NewReader(form))) // no length known: sent chunked
	if err != nil {
		t.Logf("chunked: %v (connection cut)", err)
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	t.Logf("chunked 9 MB form answered %d", resp.StatusCode)
	if resp.StatusCode != http.StatusRequestEntityTooLarge && resp.StatusCode != http.StatusBadRequest {
		t.Errorf("chunked 9 MB form answered %d, want 413 or 400", resp.StatusCode)
	}
}

// Issue 12 item 14: every answer carries Strict-Transport-Security.
func TestAttackHSTS(t *testing.T) {
	in := linkdtest.Start(t, linkdtest.Options{})
	c := noRedirects(in)
	missing := 0
	paths := []string{"/", "/.well-known/openid-configuration", "/keys", "/signin", "/link", "/static/style.css",
		devices.APIPrefix + "/me", "/nope", "/authorize"}
	for _, p := range paths {
		resp, err := c.Get(in.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Strict-Transport-Security"); !strings.HasPrefix(got, "max-age=31536000") {
			missing++
			t.Errorf("%s (%d): Strict-Transport-Security = %q", p, resp.StatusCode, got)
		}
	}
	t.Logf("%d of %d answers without Strict-Transport-Security", missing, len(paths))
}

// Issue 12 item 14: no endpoint echoes a foreign Origin with credentials allowed.
func TestAttackCORS(t *testing.T) {
	in := linkdtest.Start(t, linkdtest.Options{})
	const evil = "https://evil.example"
	echoed := 0
	for _, p := range []string{"/.well-known/openid-configuration", "/keys", "/oauth/token", "/userinfo", "/oauth/introspect", "/authorize"} {
		for _, method := range []string{http.MethodGet, http.MethodOptions} {
			req, _ := http.NewRequest(method, in.URL+p, nil)
			req.Header.Set("Origin", evil)
			if method == http.MethodOptions {
				req.Header.Set("Access-Control-Request-Method", http.MethodPost)
				req.Header.Set("Access-Control-Request-Headers", "authorization")
			}
			resp, err := noRedirects(in).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			origin, creds := resp.Header.Get("Access-Control-Allow-Origin"), resp.Header.Get("Access-Control-Allow-Credentials")
			if origin == evil || creds == "true" {
				echoed++
				t.Errorf("%s %s: Allow-Origin %q, Allow-Credentials %q", method, p, origin, creds)
			}
		}
	}
	t.Logf("%d of 12 answers echoed a foreign origin or allowed credentials", echoed)
	// Public metadata stays readable from any page.
	req, _ := http.NewRequest(http.MethodGet, in.URL+"/.well-known/openid-configuration", nil)
	req.Header.Set("Origin", evil)
	resp, err := in.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
		t.Errorf("discovery: Access-Control-Allow-Origin = %q, want *", got)
	}
}

// Issue 12 item 14: /static/ lists no directory.
func TestAttackStaticListing(t *testing.T) {
	in := linkdtest.Start(t, linkdtest.Options{})
	for _, p := range []string{"/static/", "/static", "/static/./"} {
		resp, err := in.Client.Get(in.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Logf("%s answered %d", p, resp.StatusCode)
		if resp.StatusCode != http.StatusNotFound || strings.Contains(string(body), "style.css") {
			t.Errorf("%s: %d, lists files: %v", p, resp.StatusCode, strings.Contains(string(body), "style.css"))
		}
	}
	resp, err := in.Client.Get(in.URL + "/static/style.css")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/static/style.css: %d", resp.StatusCode)
	}
}

// Issue 12 item 4: a body trickled one byte a second is cut off; the test waits for
// the server to close the connection (or a generous deadline).
func TestAttackSlowBody(t *testing.T) {
	in := linkdtest.Start(t, linkdtest.Options{})
	host := strings.TrimPrefix(in.URL, "https://")
	tlsCfg := in.Client.Transport.(*http.Transport).TLSClientConfig.Clone()
	tlsCfg.NextProtos = []string{"http/1.1"}
	const limit = 30 * time.Second
	var wg sync.WaitGroup
	for _, path := range []string{"/device_authorization", "/oauth/token", "/signin"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := tls.Dial("tcp", host, tlsCfg)
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			start := time.Now()
			fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n", path, host)
			closed := make(chan error, 1)
			go func() {
				conn.SetReadDeadline(time.Now().Add(limit))
				r := bufio.NewReader(conn)
				_, err := io.Copy(io.Discard, r) // until the server closes the connection
				closed <- err
			}()
			tick := time.NewTicker(time.Second) // the attacker's pace
			defer tick.Stop()
			for {
				select {
				case err := <-closed:
					held := time.Since(start).Round(time.Second)
					if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
						t.Errorf("%s: slow body held until the test's own %v deadline: linkd never cut it", path, limit)
						return
					}
					t.Logf("%s: slow body cut after %v", path, held)
					return
				case <-tick.C:
					conn.Write([]byte("a"))
				}
			}
		}()
	}
	wg.Wait()
}

// Issue 12 item 4: linkd holds a bounded number of connections; the rest wait in the
// backlog until one closes.
func TestAttackConnectionLimit(t *testing.T) {
	const limit, tries = 20, 30
	in := linkdtest.Start(t, linkdtest.Options{MaxConnections: limit})
	host := strings.TrimPrefix(in.URL, "https://")
	tlsCfg := in.Client.Transport.(*http.Transport).TLSClientConfig.Clone()
	tlsCfg.NextProtos = []string{"http/1.1"}
	tlsCfg.ServerName = "127.0.0.1"
	dial := func(wait time.Duration) (*tls.Conn, error) {
		raw, err := net.Dial("tcp", host)
		if err != nil {
			return nil, err
		}
		c := tls.Client(raw, tlsCfg)
		c.SetDeadline(time.Now().Add(wait))
		if err := c.Handshake(); err != nil {
			raw.Close()
			return nil, err
		}
		c.SetDeadline(time.Time{})
		return c, nil
	}
	var mu sync.Mutex
	var held []*tls.Conn
	var wg sync.WaitGroup
	for range tries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The limit's worth is served at once; the deadline ends the others' wait.
			if c, err := dial(5 * time.Second); err == nil {
				mu.Lock()
				held = append(held, c)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Logf("%d of %d connections served at once (limit %d)", len(held), tries, limit)
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	if len(held) > limit || len(held) == 0 {
		t.Fatalf("%d of %d connections served at once, want at most %d", len(held), tries, limit)
	}
	// Closing one lets the next caller in.
	held[0].Close()
	held = held[1:]
	c, err := dial(30 * time.Second)
	if err != nil {
		t.Fatalf("no connection after one closed: %v", err)
	}
	c.Close()
}
