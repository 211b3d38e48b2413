package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/linkdesk/linkdesk/devices"
)

// AppScopes are the scopes the desktop app asks for when signing in.
var AppScopes = []string{"openid", "profile", "email", "offline_access"}

// CallbackPath is the path of the loopback redirect URI (DESIGN.md: linkd
// accepts http://127.0.0.1:{any port}/callback for the linkdesk client).
const CallbackPath = "/callback"

// AuthorizationError is the error answer of the authorization endpoint
// (RFC 6749 §4.1.2.1), such as access_denied when the person declined.
type AuthorizationError struct {
	Code        string // error, e.g. "access_denied"
	Description string // error_description, possibly empty
}

func (e *AuthorizationError) Error() string {
	if e.Description != "" {
		return "sign-in refused: " + e.Code + ": " + e.Description
	}
	return "sign-in refused: " + e.Code
}

// ErrIssuerMixUp means the authorization answer named a different issuer than
// the one sign-in started with (RFC 9207), a sign of a mix-up attack.
var ErrIssuerMixUp = errors.New("sign-in answer came from a different service")

// SignIn signs in to the provider with the authorization code grant, PKCE S256
// and state, over a loopback redirect (RFC 8252 §7.3):
//
//   - it listens on 127.0.0.1:0 only and uses http://127.0.0.1:{port}/callback;
//   - openBrowser is called with the authorization URL (the app passes a
//     function that opens the system browser; tests pass a scripted client);
//   - a callback whose state does not match is answered 400 and otherwise
//     ignored, so a stray or hostile request can neither finish nor kill the
//     sign-in; the first callback with the right state is the one answer taken,
//     after which the listener closes (a later callback is refused);
//   - cancelling ctx (the Cancel button) closes the listener and returns ctx.Err().
//
// The browser is shown "You can close this tab and return to Linkdesk" once
// the code has been exchanged. The returned Session is not saved anywhere; see
// Sessions.SignIn for the saving variant.
//
// Extra options go on the authorization URL, for example
// oauth2.SetAuthURLParam("prompt", "login") when adding a second account
// while the browser is still signed in as the first.
func SignIn(ctx context.Context, p *Provider, httpClient *http.Client, openBrowser func(url string) error, opts ...oauth2.AuthCodeOption) (*Session, error) {
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("sign-in: open loopback listener: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	cfg := appConfig(p, "http://127.0.0.1:"+strconv.Itoa(port)+CallbackPath)
	verifier := oauth2.GenerateVerifier()
	state := randomString(32)
	authURL := cfg.AuthCodeURL(state, slices.Concat(opts, []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)})...)

	answers := make(chan callbackAnswer)
	cb := &callbackHandler{state: state, issuer: p.Issuer, answers: answers}
	srv := &http.Server{
		Handler:           cb,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		// Let the page already being written finish, then refuse everything.
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			_ = srv.Close()
		}
	}()

	// The opener runs on its own goroutine, so one that blocks (a test browser
	// following the whole flow, a slow desktop launcher) can't stall the answer.
	browserErr := make(chan error, 1)
	go func() { browserErr <- openBrowser(authURL) }()

	var ans callbackAnswer
	for ans.reply == nil {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case err := <-browserErr:
			if err != nil {
				return nil, fmt.Errorf("sign-in: open browser: %w", err)
			}
		case ans = <-answers:
		}
	}
	sess, err := finishSignIn(ctx, p, httpClient, cfg, verifier, ans)
	ans.reply <- err
	return sess, err
}

func finishSignIn(ctx context.Context, p *Provider, hc *http.Client, cfg *oauth2.Config, verifier string, ans callbackAnswer) (*Session, error) {
	if ans.err != nil {
		return nil, ans.err
	}
	tok, err := cfg.Exchange(appClient(p, hc).context(ctx), ans.code, oauth2.VerifierOption(verifier))
	if err != nil {
		return nil, fmt.Errorf("sign-in: exchange code: %w", err)
	}
	acct, err := fetchAccount(ctx, p, hc, tok)
	if err != nil {
		return nil, fmt.Errorf("sign-in: read account: %w", err)
	}
	return newSession(p, hc, acct, tok, nil), nil
}

// appClient is the desktop app's public client at p.
func appClient(p *Provider, hc *http.Client) *Client {
	return &Client{Provider: p, ID: devices.AppClientID, HTTP: hc}
}

// appConfig is the oauth2 configuration of the desktop app's public client.
func appConfig(p *Provider, redirect string) *oauth2.Config {
	return appClient(p, nil).Config(AppScopes, redirect)
}

// randomString returns n random bytes from crypto/rand, base64url encoded.
func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (Go 1.24+ crypto/rand panics instead)
	return base64.RawURLEncoding.EncodeToString(b)
}

// callbackAnswer is the one accepted answer of the loopback redirect. The
// handler waits on reply for the outcome of the code exchange so the browser
// page can say whether sign-in worked.
type callbackAnswer struct {
	code  string
	err   error
	reply chan error
}

type callbackHandler struct {
	state   string
	issuer  string
	answers chan<- callbackAnswer

	mu   sync.Mutex
	done bool
}

func (h *callbackHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	if r.URL.Path != CallbackPath {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writePage(w, http.StatusMethodNotAllowed, "Not allowed", "This address only takes the sign-in answer from your browser.")
		return
	}
	q := r.URL.Query()
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(h.state)) != 1 {
		slog.Warn("auth: sign-in callback with wrong state ignored")
		writePage(w, http.StatusBadRequest, "Sign-in not recognised",
			"This answer doesn't belong to the sign-in Linkdesk started, so it was ignored. Return to Linkdesk and try again if needed.")
		return
	}
	h.mu.Lock()
	if h.done {
		h.mu.Unlock()
		writePage(w, http.StatusGone, "Already finished", "This sign-in has already finished. You can close this tab and return to Linkdesk.")
		return
	}
	h.done = true
	h.mu.Unlock()

	ans := callbackAnswer{reply: make(chan error, 1)}
	switch {
	case q.Get("iss") != "" && q.Get("iss") != h.issuer:
		ans.err = ErrIssuerMixUp
	case q.Get("error") != "":
		ans.err = &AuthorizationError{Code: q.Get("error"), Description: q.Get("error_description")}
	case q.Get("code") == "":
		ans.err = errors.New("sign-in: the answer carried no code")
	default:
		ans.code = q.Get("code")
	}
	select {
	case h.answers <- ans:
	case <-r.Context().Done():
		// Nobody took the answer (sign-in cancelled, or the browser went away
		// first): leave the slot open rather than wedge the flow.
		h.mu.Lock()
		h.done = false
		h.mu.Unlock()
		return
	}
	var err error
	select {
	case err = <-ans.reply:
	case <-r.Context().Done():
		return
	}
	switch {
	case err == nil:
		writePage(w, http.StatusOK, "Signed in", "You can close this tab and return to Linkdesk.")
	case isAccessDenied(err):
		writePage(w, http.StatusOK, "Sign-in cancelled", "You didn't allow Linkdesk to sign in. You can close this tab and return to Linkdesk.")
	default:
		writePage(w, http.StatusBadRequest, "Sign-in failed", "Linkdesk couldn't finish signing in. You can close this tab and return to Linkdesk to try again.")
	}
}

func isAccessDenied(err error) bool {
	var ae *AuthorizationError
	return errors.As(err, &ae) && ae.Code == "access_denied"
}

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{{.Title}} – Linkdesk</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}h1{font-size:1.5rem}</style>
</head><body><h1>{{.Title}}</h1><p>{{.Message}}</p></body></html>
`))

func writePage(w http.ResponseWriter, status int, title, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = pageTmpl.Execute(w, struct{ Title, Message string }{title, msg})
}
