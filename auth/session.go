package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"

	"golang.org/x/oauth2"
)

// Session is one signed-in account with a token source that refreshes itself
// and, when it has a store, saves each rotated token back to the keyring.
type Session struct {
	Account  Account
	Provider *Provider
	src      *savingSource
	base     *http.Client
}

func newSession(p *Provider, hc *http.Client, acct Account, tok *oauth2.Token, store *TokenStore) *Session {
	return &Session{
		Account:  acct,
		Provider: p,
		base:     hc,
		src:      &savingSource{client: appClient(p, hc), tok: tok, store: store, key: acct.Key()},
	}
}

// TokenSource returns the session's token source: it hands out the current
// access token, refreshes it when expired (refresh tokens rotate) and saves the
// new token to the keyring. Two callers never refresh at once.
func (s *Session) TokenSource() oauth2.TokenSource { return s.src }

// Token returns the current token, refreshing it if needed.
func (s *Session) Token() (*oauth2.Token, error) { return s.src.Token() }

// HTTPClient returns a client that sends the session's bearer token, built on
// the base client given at sign-in (so it trusts the same CAs). Give it to
// devices.NewClient.
func (s *Session) HTTPClient() *http.Client {
	base := http.DefaultTransport
	if s.base != nil && s.base.Transport != nil {
		base = s.base.Transport
	}
	// The source caches and locks itself; no extra ReuseTokenSource needed.
	return &http.Client{Transport: &oauth2.Transport{Base: base, Source: s.src}}
}

// Save stores the session's current token and account in store, and makes
// every later refresh save there too.
func (s *Session) Save(ctx context.Context, store *TokenStore) error {
	s.src.mu.Lock()
	defer s.src.mu.Unlock()
	s.src.store = store
	return store.SaveAccount(ctx, s.Account, s.src.tok)
}

// savingSource is a mutex-guarded refreshing token source that writes each new
// token back to the keyring before handing it out.
type savingSource struct {
	mu     sync.Mutex
	client *Client
	tok    *oauth2.Token
	store  *TokenStore
	key    string
}

func (s *savingSource) Token() (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok.Valid() {
		return s.tok, nil
	}
	nt, err := s.client.Refresh(context.Background(), s.tok)
	if err != nil {
		if errors.Is(err, ErrSessionEnded) {
			return nil, err
		}
		return nil, fmt.Errorf("refresh sign-in: %w", err)
	}
	s.tok = nt
	if s.store != nil {
		// The old refresh token is dead now (rotation): failing to save means the
		// next start of the app will have to sign in again, so say so loudly.
		ctx, cancel := context.WithTimeout(context.Background(), s.store.timeout)
		defer cancel()
		if err := s.store.Save(ctx, s.key, nt); err != nil {
			slog.Error("auth: could not save refreshed token to the keyring", "err", err)
		}
	}
	return nt, nil
}

// fetchAccount learns who signed in: from the userinfo endpoint when there is
// one, else from the ID token the token endpoint returned over TLS (OpenID
// Connect Core §3.1.3.7 allows trusting it without a signature check then).
func fetchAccount(ctx context.Context, p *Provider, hc *http.Client, tok *oauth2.Token) (Account, error) {
	claims, err := appClient(p, hc).Userinfo(ctx, tok)
	if errors.Is(err, ErrNoUserinfo) {
		claims, err = idTokenClaims(tok)
	}
	if err != nil {
		return Account{}, err
	}
	if claims.Subject == "" {
		return Account{}, errors.New("the service did not say who signed in")
	}
	return Account{Issuer: p.Issuer, Subject: claims.Subject, Username: claims.PreferredUsername, DisplayName: claims.Name, Email: claims.Email}, nil
}

// idTokenClaims reads the claims of the ID token in tok, if any, without checking its
// signature (see fetchAccount).
func idTokenClaims(tok *oauth2.Token) (Claims, error) {
	var claims Claims
	idt, ok := tok.Extra("id_token").(string)
	if !ok {
		return claims, nil
	}
	parts := strings.Split(idt, ".")
	if len(parts) != 3 {
		return claims, errors.New("malformed ID token")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return claims, fmt.Errorf("ID token: %w", err)
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return claims, fmt.Errorf("ID token: %w", err)
	}
	return claims, nil
}

// SignOutError reports the two halves of a sign-out separately: revoking at
// the service and deleting from the keyring. Either may be nil.
type SignOutError struct {
	RevokeErr error
	DeleteErr error
}

func (e *SignOutError) Error() string {
	var parts []string
	if e.RevokeErr != nil {
		parts = append(parts, "revoke at service: "+e.RevokeErr.Error())
	}
	if e.DeleteErr != nil {
		parts = append(parts, "delete from keyring: "+e.DeleteErr.Error())
	}
	return "sign-out: " + strings.Join(parts, "; ")
}

// Unwrap exposes both causes.
func (e *SignOutError) Unwrap() []error {
	var errs []error
	for _, err := range []error{e.RevokeErr, e.DeleteErr} {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// Sessions ties a provider, its HTTP client and the keyring store together:
// the API the app's sign-in and account screens use.
type Sessions struct {
	Provider    *Provider
	HTTPClient  *http.Client           // base client (see HTTPClient); nil means http.DefaultClient
	Store       *TokenStore            // where tokens live
	OpenBrowser func(url string) error // opens the system browser at url
}

func (m *Sessions) client() *http.Client {
	if m.HTTPClient == nil {
		return http.DefaultClient
	}
	return m.HTTPClient
}

// SignIn signs in (see SignIn, which also explains opts) and saves the account
// and its token in the keyring.
func (m *Sessions) SignIn(ctx context.Context, opts ...oauth2.AuthCodeOption) (*Session, error) {
	s, err := SignIn(ctx, m.Provider, m.client(), m.OpenBrowser, opts...)
	if err != nil {
		return nil, err
	}
	if err := s.Save(ctx, m.Store); err != nil {
		return nil, fmt.Errorf("save sign-in: %w", err)
	}
	return s, nil
}

// Accounts lists the accounts signed in to this Sessions' issuer.
func (m *Sessions) Accounts(ctx context.Context) ([]Account, error) {
	all, err := m.Store.Accounts(ctx)
	if err != nil {
		return nil, err
	}
	var mine []Account
	for _, a := range all {
		if a.Issuer == m.Provider.Issuer {
			mine = append(mine, a)
		}
	}
	return mine, nil
}

// Resume loads the saved session of the account with key. A missing or
// unreadable token wraps ErrNoToken.
func (m *Sessions) Resume(ctx context.Context, key string) (*Session, error) {
	acct, tok, err := m.Store.LoadAccount(ctx, key)
	if err != nil {
		return nil, err
	}
	if acct.Issuer != m.Provider.Issuer {
		return nil, fmt.Errorf("%w (account belongs to %s)", ErrNoToken, acct.Issuer)
	}
	return newSession(m.Provider, m.client(), acct, tok, m.Store), nil
}

// ResumeFirst resumes the first of accts whose saved token is readable, trying the
// account with key preferred before the others. It returns nil when none is (each must
// sign in again); only the end of ctx is an error.
func (m *Sessions) ResumeFirst(ctx context.Context, accts []Account, preferred string) (*Session, error) {
	order := slices.Clone(accts)
	slices.SortStableFunc(order, func(x, y Account) int {
		switch {
		case x.Key() == preferred:
			return -1
		case y.Key() == preferred:
			return 1
		}
		return 0
	})
	for _, a := range order {
		s, err := m.Resume(ctx, a.Key())
		if err == nil {
			return s, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		slog.Info("auth: saved sign-in unreadable; that account must sign in again", "account", a.Key(), "err", err)
	}
	return nil, nil
}

// SignOut revokes the account's refresh token at the service and deletes it
// from the keyring, the latter even when revocation fails. A failure of
// either is reported in a *SignOutError.
func (m *Sessions) SignOut(ctx context.Context, key string) error {
	_, tok, loadErr := m.Store.LoadAccount(ctx, key)
	var revokeErr error
	switch {
	case loadErr != nil && !errors.Is(loadErr, ErrNoToken):
		revokeErr = loadErr
	case tok != nil:
		revokeErr = appClient(m.Provider, m.client()).Revoke(ctx, tok)
	}
	deleteErr := m.Store.RemoveAccount(ctx, key)
	if revokeErr != nil || deleteErr != nil {
		return &SignOutError{RevokeErr: revokeErr, DeleteErr: deleteErr}
	}
	return nil
}
