package auth

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zalando/go-keyring"
	"golang.org/x/oauth2"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest"
)

// The desktop app's whole sign-in life against a real linkd: discovery over
// TLS with its CA file, the loopback sign-in through linkd's login page, the
// keyring, the management API, refresh-token rotation saved back, and sign-out
// revoking the grant.
func TestLinkdSessionEndToEnd(t *testing.T) {
	keyring.MockInit()
	in := linkdtest.Start(t, linkdtest.Options{})
	in.CreateUser(t, "alice", "correct horse battery staple")

	hc, err := HTTPClient(in.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	p, err := CheckIssuer(t.Context(), hc, in.Issuer)
	if err != nil {
		t.Fatal(err)
	}
	if p.RevocationEndpoint == "" || p.DeviceAuthorizationEndpoint == "" {
		t.Fatalf("linkd discovery lacks endpoints: %+v", p)
	}

	// A wrong password keeps the browser on the login page; no answer reaches the app.
	store := NewTokenStore(nil, 0)
	bad := in.Browser().Launcher("alice", "wrong", nil)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	m := &Sessions{Provider: p, HTTPClient: hc, Store: store, OpenBrowser: bad.Open}
	signInErr := make(chan error, 1)
	go func() {
		_, err := m.SignIn(ctx)
		signInErr <- err
	}()
	if _, err := bad.Wait(); err == nil {
		t.Fatal("test browser got through with a wrong password")
	}
	cancel()
	if err := <-signInErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("sign-in with wrong password: %v", err)
	}

	browser := in.Browser().Launcher("alice", "correct horse battery staple", nil)
	m.OpenBrowser = browser.Open
	ctx, cancel = context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	sess, err := m.SignIn(ctx)
	page, berr := browser.Wait()
	if berr != nil {
		t.Fatalf("browser: %v (sign-in: %v)", berr, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if page.Status != http.StatusOK || !strings.Contains(page.Body, "You can close this tab and return to Linkdesk") {
		t.Fatalf("browser shows %d %q", page.Status, page.Body)
	}
	if sess.Account.Username != "alice" || sess.Account.Subject == "" || sess.Account.Issuer != in.Issuer {
		t.Fatalf("account = %+v", sess.Account)
	}
	saved, err := store.Load(t.Context(), sess.Account.Key())
	if err != nil || saved.RefreshToken == "" || saved.AccessToken == "" {
		t.Fatalf("keyring token: %+v %v", saved, err)
	}

	// The app restarts: the session comes back from the keyring and Me works.
	resumed, err := m.Resume(t.Context(), sess.Account.Key())
	if err != nil {
		t.Fatal(err)
	}
	api := devices.NewClient(p.Issuer, resumed.HTTPClient())
	me, err := api.Me(t.Context())
	if err != nil || me.Subject != sess.Account.Subject || me.Username != "alice" {
		t.Fatalf("Me = %+v, %v", me, err)
	}

	// The access token goes stale: the next call refreshes, rotation is saved.
	expire(resumed)
	if _, err := api.Devices(t.Context()); err != nil {
		t.Fatal(err)
	}
	rotated, err := store.Load(t.Context(), sess.Account.Key())
	if err != nil || rotated.RefreshToken == saved.RefreshToken || rotated.AccessToken == saved.AccessToken {
		t.Fatalf("rotated token not saved: %v", err)
	}

	// Many calls at once with a stale token refresh once: a second refresh with
	// the same (rotated) token would look like reuse to linkd and end the link.
	expire(resumed)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			_, err := api.Me(t.Context())
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent call after expiry: %v", err)
		}
	}
	rotated2, err := store.Load(t.Context(), sess.Account.Key())
	if err != nil || rotated2.RefreshToken == rotated.RefreshToken {
		t.Fatalf("second rotation not saved: %v", err)
	}
	if _, err := api.Me(t.Context()); err != nil {
		t.Fatalf("session broken after concurrent refresh: %v", err)
	}
	rotated = rotated2

	// Sign-out revokes at linkd and empties the keyring.
	if err := m.SignOut(t.Context(), sess.Account.Key()); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Load(t.Context(), sess.Account.Key()); !errors.Is(err, ErrNoToken) {
		t.Fatalf("token left in keyring: %v", err)
	}
	if _, err := appConfig(p, "").TokenSource(context.WithValue(t.Context(), oauth2.HTTPClient, hc),
		&oauth2.Token{RefreshToken: rotated.RefreshToken}).Token(); err == nil {
		t.Fatal("revoked refresh token still refreshes")
	}
	// The in-memory session (e.g. another window) finds out on its next call.
	_, err = api.Me(t.Context())
	var ae *devices.APIError
	if !errors.As(err, &ae) || ae.Code != devices.CodeUnauthorized {
		t.Fatalf("Me after sign-out: %v", err)
	}
	expire(resumed)
	if _, err := api.Me(t.Context()); !errors.Is(err, ErrSessionEnded) {
		t.Fatalf("refresh after sign-out: %v, want ErrSessionEnded", err)
	}
}

// expire makes the session's access token stale so its next use refreshes.
func expire(s *Session) {
	s.src.mu.Lock()
	defer s.src.mu.Unlock()
	stale := *s.src.tok
	stale.Expiry = time.Now().Add(-time.Minute)
	s.src.tok = &stale
}
