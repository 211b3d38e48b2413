package auth

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/zalando/go-keyring"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"golang.org/x/oauth2"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest/browsertest"
)

// offlineProvider has endpoints that are never contacted: the tests using it
// end before any code exchange.
var offlineProvider = &Provider{
	Issuer:                "https://idp.example",
	AuthorizationEndpoint: "https://idp.example/authorize",
	TokenEndpoint:         "https://idp.example/token",
}

// authParams pulls the redirect URI and state out of an authorization URL and
// checks the PKCE and client parameters are there.
func authParams(t *testing.T, authURL string) (redirect, state string) {
	t.Helper()
	u, err := url.Parse(authURL)
	if err != nil {
		t.Error(err)
		return "", ""
	}
	q := u.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("client_id") != devices.AppClientID ||
		q.Get("scope") != "openid profile email offline_access" || q.Get("response_type") != "code" || len(q.Get("state")) < 32 {
		t.Errorf("authorization URL lacks PKCE/state/client parameters: %s", authURL)
	}
	redirect = q.Get("redirect_uri")
	if !strings.HasPrefix(redirect, "http://127.0.0.1:") || !strings.HasSuffix(redirect, CallbackPath) {
		t.Errorf("redirect_uri = %q", redirect)
	}
	return redirect, q.Get("state")
}

func get(t *testing.T, u string) (int, string, error) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

func TestSignInWrongStateIgnoredThenOneAnswer(t *testing.T) {
	var redirect, state string
	browser := func(authURL string) error {
		redirect, state = authParams(t, authURL)
		// An attacker's (or stale tab's) answer: refused, and the flow goes on.
		code, page, err := get(t, redirect+"?code=evil&state=wrong")
		if err != nil || code != http.StatusBadRequest || !strings.Contains(page, "belong to the sign-in") {
			t.Errorf("wrong state: %d %q %v", code, page, err)
		}
		// The person clicks Deny at the provider.
		code, page, err = get(t, redirect+"?error=access_denied&error_description=no&state="+url.QueryEscape(state))
		if err != nil || code != http.StatusOK || !strings.Contains(page, "You can close this tab and return to Linkdesk") {
			t.Errorf("denied answer: %d %q %v", code, page, err)
		}
		return nil
	}
	_, err := SignIn(t.Context(), offlineProvider, nil, browser)
	var ae *AuthorizationError
	if !errors.As(err, &ae) || ae.Code != "access_denied" {
		t.Fatalf("err = %v, want access_denied", err)
	}
	// The one answer has been taken: the listener is closed.
	if _, _, err := get(t, redirect+"?code=again&state="+url.QueryEscape(state)); err == nil {
		t.Fatal("second callback was answered; listener should be closed")
	}
}

func TestSignInRejectsIssuerMixUp(t *testing.T) {
	browser := func(authURL string) error {
		redirect, state := authParams(t, authURL)
		_, _, err := get(t, redirect+"?code=c&iss="+url.QueryEscape("https://other.example")+"&state="+url.QueryEscape(state))
		return err
	}
	if _, err := SignIn(t.Context(), offlineProvider, nil, browser); !errors.Is(err, ErrIssuerMixUp) {
		t.Fatalf("err = %v", err)
	}
}

func TestSignInCancelClosesListener(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	urls := make(chan string, 1)
	browser := func(authURL string) error { urls <- authURL; return nil }
	done := make(chan error, 1)
	go func() {
		_, err := SignIn(ctx, offlineProvider, nil, browser)
		done <- err
	}()
	redirect, _ := authParams(t, <-urls)
	cancel() // the Cancel button
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if _, _, err := get(t, redirect); err == nil {
		t.Fatal("listener still answers after cancel")
	}
}

func TestSignInBrowserFailure(t *testing.T) {
	boom := errors.New("no browser")
	if _, err := SignIn(t.Context(), offlineProvider, nil, func(string) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
}

// A whole sign-in against zitadel/oidc's example provider (a real OpenID
// provider that is not ours): login form, code exchange with PKCE, keyring,
// refresh with rotation saved back, sign-out with revocation.
func TestSessionLifecycleExampleProvider(t *testing.T) {
	keyring.MockInit()
	storage.RegisterClients(storage.NativeClient(devices.AppClientID, "http://127.0.0.1/callback"))
	srv := startExampleOP(t, true)
	hc := srv.Client()
	p, err := CheckIssuer(t.Context(), hc, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	store := NewTokenStore(nil, 0)
	browser := browsertest.New("", hc.Transport).Launcher("test-user2", "verysecure", nil)
	m := &Sessions{Provider: p, HTTPClient: hc, Store: store, OpenBrowser: browser.Open}
	sess, err := m.SignIn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	page, err := browser.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if page.Status != http.StatusOK || !strings.Contains(page.Body, "You can close this tab and return to Linkdesk") {
		t.Fatalf("browser shows %d %q", page.Status, page.Body)
	}
	if sess.Account.Subject != "id2" || sess.Account.Username != "test-user2" || sess.Account.Issuer != p.Issuer {
		t.Fatalf("account = %+v", sess.Account)
	}
	accts, err := m.Accounts(t.Context())
	if err != nil || len(accts) != 1 || accts[0].Key() != sess.Account.Key() {
		t.Fatalf("accounts = %+v %v", accts, err)
	}
	saved, err := store.Load(t.Context(), sess.Account.Key())
	if err != nil || saved.RefreshToken == "" {
		t.Fatalf("saved token: %v", err)
	}

	// A later start of the app resumes from the keyring.
	resumed, err := m.Resume(t.Context(), sess.Account.Key())
	if err != nil {
		t.Fatal(err)
	}
	// Make the access token stale so the next use refreshes.
	expire(resumed)
	tok, err := resumed.Token()
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken == saved.RefreshToken {
		t.Fatal("refresh token did not rotate")
	}
	after, err := store.Load(t.Context(), sess.Account.Key())
	if err != nil || after.RefreshToken != tok.RefreshToken {
		t.Fatalf("rotated token not saved: %v", err)
	}
	// The HTTP client sends the token: userinfo answers.
	resp, err := resumed.HTTPClient().Get(p.UserinfoEndpoint)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("userinfo with session client: %v %v", resp, err)
	}
	resp.Body.Close()

	if err := m.SignOut(t.Context(), sess.Account.Key()); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Load(t.Context(), sess.Account.Key()); !errors.Is(err, ErrNoToken) {
		t.Fatalf("token still in keyring: %v", err)
	}
	if accts, _ := m.Accounts(t.Context()); len(accts) != 0 {
		t.Fatalf("accounts after sign-out = %+v", accts)
	}
	// The revoked refresh token no longer works.
	cfg := appConfig(p, "")
	_, err = cfg.TokenSource(context.WithValue(t.Context(), oauth2.HTTPClient, hc), &oauth2.Token{RefreshToken: after.RefreshToken}).Token()
	if err == nil {
		t.Fatal("refresh after sign-out succeeded")
	}
	// And a session still holding it reports it must sign in again.
	expire(resumed)
	if _, err := resumed.Token(); !errors.Is(err, ErrSessionEnded) {
		t.Fatalf("err = %v, want ErrSessionEnded", err)
	}
}

func TestSignOutDeletesEvenWhenRevocationFails(t *testing.T) {
	keyring.MockInit()
	store := NewTokenStore(nil, 0)
	acct := Account{Issuer: offlineProvider.Issuer, Subject: "s"}
	if err := store.SaveAccount(t.Context(), acct, &oauth2.Token{AccessToken: "a", RefreshToken: "r"}); err != nil {
		t.Fatal(err)
	}
	m := &Sessions{Provider: offlineProvider, Store: store} // no revocation endpoint
	err := m.SignOut(t.Context(), acct.Key())
	var se *SignOutError
	if !errors.As(err, &se) || !errors.Is(se.RevokeErr, ErrNoRevocation) || se.DeleteErr != nil {
		t.Fatalf("err = %v", err)
	}
	if _, err := store.Load(t.Context(), acct.Key()); !errors.Is(err, ErrNoToken) {
		t.Fatalf("token left in keyring: %v", err)
	}
}

func TestSignInExtraAuthOptions(t *testing.T) {
	browser := func(authURL string) error {
		u, _ := url.Parse(authURL)
		if u.Query().Get("prompt") != "login" {
			t.Errorf("prompt missing: %s", authURL)
		}
		redirect, state := authParams(t, authURL)
		_, _, err := get(t, redirect+"?error=access_denied&state="+url.QueryEscape(state))
		return err
	}
	_, err := SignIn(t.Context(), offlineProvider, nil, browser, oauth2.SetAuthURLParam("prompt", "login"))
	if !isAccessDenied(err) {
		t.Fatalf("err = %v", err)
	}
}

func TestSessionsKeepIssuersApart(t *testing.T) {
	keyring.MockInit()
	store := NewTokenStore(nil, 0)
	mine := Account{Issuer: offlineProvider.Issuer, Subject: "1", Username: "alice", DisplayName: "Alice", Email: "a@example.com"}
	theirs := Account{Issuer: "https://other.example", Subject: "1", Username: "alice"}
	for _, a := range []Account{mine, theirs} {
		if err := store.SaveAccount(t.Context(), a, &oauth2.Token{AccessToken: "a", RefreshToken: "r"}); err != nil {
			t.Fatal(err)
		}
	}
	m := &Sessions{Provider: offlineProvider, Store: store}
	list, err := m.Accounts(t.Context())
	if err != nil || len(list) != 1 || list[0] != mine {
		t.Fatalf("Accounts = %+v, %v", list, err)
	}
	if me := list[0].Me(); me.Subject != "1" || me.Username != "alice" || me.DisplayName != "Alice" || me.Email != "a@example.com" {
		t.Fatalf("Me = %+v", me)
	}
	if _, err := m.Resume(t.Context(), theirs.Key()); !errors.Is(err, ErrNoToken) {
		t.Fatalf("resumed another issuer's account: %v", err)
	}
	s, err := m.Resume(t.Context(), mine.Key())
	if err != nil || s.Account != mine {
		t.Fatalf("Resume = %+v, %v", s, err)
	}
	if tok, err := s.Token(); err != nil || tok.AccessToken != "a" {
		t.Fatalf("Token = %v, %v", tok, err) // no expiry: valid as is, no refresh
	}
}

// TestResumeFirstPrefersRememberedAccount: the remembered account is resumed when its
// token is readable; else the first readable one; none when no token is left.
func TestResumeFirstPrefersRememberedAccount(t *testing.T) {
	keyring.MockInit()
	ctx := t.Context()
	store := NewTokenStore(OSKeyring(), DefaultKeyringTimeout)
	p := &Provider{Issuer: "https://link.example.com", TokenEndpoint: "https://link.example.com/token"}
	m := &Sessions{Provider: p, Store: store}
	ada := Account{Issuer: p.Issuer, Subject: "ada"}
	bob := Account{Issuer: p.Issuer, Subject: "bob"}
	for _, a := range []Account{ada, bob} {
		if err := store.SaveAccount(ctx, a, &oauth2.Token{AccessToken: "at-" + a.Subject, RefreshToken: "rt"}); err != nil {
			t.Fatal(err)
		}
	}
	accts, err := m.Accounts(ctx)
	if err != nil || len(accts) != 2 {
		t.Fatalf("accounts %v %v", accts, err)
	}
	for _, c := range []struct{ preferred, want string }{{bob.Key(), "bob"}, {"", "ada"}, {"gone", "ada"}} {
		s, err := m.ResumeFirst(ctx, accts, c.preferred)
		if err != nil || s == nil || s.Account.Subject != c.want {
			t.Fatalf("preferring %q: %+v %v, want %s", c.preferred, s, err, c.want)
		}
	}
	// bob's token is lost: preferring him falls back to ada; with both lost, nobody.
	if err := store.Delete(ctx, bob.Key()); err != nil {
		t.Fatal(err)
	}
	if s, err := m.ResumeFirst(ctx, accts, bob.Key()); err != nil || s == nil || s.Account.Subject != "ada" {
		t.Fatalf("bob unreadable: %+v %v", s, err)
	}
	if err := store.Delete(ctx, ada.Key()); err != nil {
		t.Fatal(err)
	}
	if s, err := m.ResumeFirst(ctx, accts, ""); err != nil || s != nil {
		t.Fatalf("no readable token: %+v %v", s, err)
	}
}
