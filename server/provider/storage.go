package provider

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/accounts"
	"github.com/linkdesk/linkdesk/server/links"
	"github.com/linkdesk/linkdesk/server/store"
)

// refreshPrefix marks a refresh token handed to RevokeToken as a "token id".
const refreshPrefix = "rt:"

// storage adapts the Store to zitadel's op.Storage and op.DeviceAuthorizationStorage.
type storage struct {
	store    Store
	log      *slog.Logger
	now      func() time.Time
	loginURL func(string) string
	cfg      *Config

	mu         sync.RWMutex
	keys       []parsedKey  // newest first
	keysAt     time.Time    // when keys were read from the store
	refreshing atomic.Bool  // a caller of currentKeys is reading the keys again
	signerID   atomic.Value // string: the kid SigningKey last returned, to log a change
}

type parsedKey struct {
	id        string
	key       *rsa.PrivateKey
	notBefore time.Time // signs from then on
}

var (
	_ op.Storage                    = (*storage)(nil)
	_ op.DeviceAuthorizationStorage = (*storage)(nil)
)

// randomToken returns n random bytes, base64url without padding.
func randomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func newID() string { return randomToken(16) }

// ---- signing keys ----

// Every replica on one store serves the same key set: the first key is added exactly
// once (EnsureSigningKey), each replica reads the keys again at most KeyRefresh after
// its last read (on the next request that needs them, one request at a time, so
// signing reads its key from memory), and a rotated key signs only from its NotBefore,
// at least MinSignAfter after it was stored, by when every replica publishes it.
const (
	// keyReadTimeout bounds one read of the keys, which a request's cancellation does
	// not cut short (the keys serve the next requests too).
	keyReadTimeout = 5 * time.Second
)

// KeyRefresh is how old a linkd's copy of the signing keys may get before it reads
// them again, so a key added by another process is published within it.
const KeyRefresh = 10 * time.Second

// MinSignAfter is the least time between storing a rotated key and its first
// signature: two refreshes, so every replica that reads the store publishes the key
// before any signs with it, even one that was reading its keys when it was stored.
const MinSignAfter = 2 * KeyRefresh

// SignAfter is how long after a rotation the new key starts signing by default.
const SignAfter = 30 * time.Second

// NewSigningKey makes a new RS256 signing key created at now that may sign at once.
func NewSigningKey(now time.Time) (store.SigningKey, error) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return store.SigningKey{}, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return store.SigningKey{}, err
	}
	return store.SigningKey{ID: newID(), Algorithm: string(jose.RS256),
		PrivateKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), CreatedAt: now, NotBefore: now}, nil
}

// RotateSigningKey is RotateSigningKeyAfter with the default SignAfter.
func RotateSigningKey(ctx context.Context, st interface {
	AddSigningKey(ctx context.Context, k store.SigningKey) error
}, now time.Time) (string, error) {
	k, err := RotateSigningKeyAfter(ctx, st, now, SignAfter)
	return k.ID, err
}

// RotateSigningKeyAfter adds a new signing key to st and returns it (without its
// private key). Every linkd on st publishes it within KeyRefresh and signs with it from
// now+after (after is raised to MinSignAfter); older keys stay published, so ID tokens
// they signed still verify, until RetireSigningKeys removes them after those expired.
func RotateSigningKeyAfter(ctx context.Context, st interface {
	AddSigningKey(ctx context.Context, k store.SigningKey) error
}, now time.Time, after time.Duration) (store.SigningKey, error) {
	k, err := NewSigningKey(now)
	if err != nil {
		return store.SigningKey{}, err
	}
	k.NotBefore = now.Add(max(after, MinSignAfter))
	if err := st.AddSigningKey(ctx, k); err != nil {
		return store.SigningKey{}, err
	}
	k.PrivateKeyPEM = nil
	return k, nil
}

// loadKeys reads the signing keys. When the store has no usable key (first start, or
// no stored key opens with this linkd's secrets key) it adds one with
// EnsureSigningKey, so replicas starting at once on an empty store add exactly one and
// all sign with it.
func (s *storage) loadKeys(ctx context.Context) error {
	ks, err := s.store.SigningKeys(ctx)
	if err != nil {
		return err
	}
	if len(ks) == 0 {
		k, err := NewSigningKey(s.now())
		if err != nil {
			return err
		}
		if ks, err = s.store.EnsureSigningKey(ctx, k); err != nil {
			return err
		}
	}
	s.mu.RLock()
	known := make(map[string]parsedKey, len(s.keys))
	for _, k := range s.keys {
		known[k.id] = k
	}
	s.mu.RUnlock()
	var parsed []parsedKey
	for _, k := range ks {
		if p, ok := known[k.ID]; ok {
			p.notBefore = k.NotBefore
			parsed = append(parsed, p)
			continue
		}
		blk, _ := pem.Decode(k.PrivateKeyPEM)
		if blk == nil {
			return fmt.Errorf("provider: signing key %s is not PEM", k.ID)
		}
		anyKey, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return fmt.Errorf("provider: signing key %s: %w", k.ID, err)
		}
		rk, ok := anyKey.(*rsa.PrivateKey)
		if !ok {
			return fmt.Errorf("provider: signing key %s is not RSA", k.ID)
		}
		parsed = append(parsed, parsedKey{id: k.ID, key: rk, notBefore: k.NotBefore})
	}
	if len(parsed) == 0 {
		return errors.New("provider: no signing key")
	}
	s.mu.Lock()
	s.keys = parsed
	s.keysAt = s.now()
	s.mu.Unlock()
	return nil
}

// currentKeys returns the signing keys, newest first. When they are older than
// KeyRefresh, one caller reads them again from the store while the others go on with
// the keys they have; a failed read keeps the keys and is tried again after KeyRefresh.
func (s *storage) currentKeys(ctx context.Context) []parsedKey {
	s.mu.RLock()
	keys, stale := s.keys, s.now().Sub(s.keysAt) >= KeyRefresh
	s.mu.RUnlock()
	if !stale || !s.refreshing.CompareAndSwap(false, true) {
		return keys
	}
	defer s.refreshing.Store(false)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), keyReadTimeout)
	defer cancel()
	if err := s.loadKeys(rctx); err != nil {
		s.log.Warn("signing keys not refreshed", "err", err)
		s.mu.Lock()
		s.keysAt = s.now() // try again after KeyRefresh, not on every request
		s.mu.Unlock()
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.keys
}

// signer is the key that signs at now: the newest whose NotBefore has come, or, should
// none have (a store holding only keys of a future rotation), the one that comes first.
func signer(keys []parsedKey, now time.Time) parsedKey {
	first := keys[0]
	for _, k := range keys {
		if !k.notBefore.After(now) {
			return k
		}
		if k.notBefore.Before(first.notBefore) {
			first = k
		}
	}
	return first
}

type signingKey struct{ parsedKey }

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k signingKey) Key() any                                    { return k.key }
func (k signingKey) ID() string                                  { return k.id }

type publicKey struct{ parsedKey }

func (k publicKey) ID() string                         { return k.id }
func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return &k.key.PublicKey }

func (s *storage) SigningKey(ctx context.Context) (op.SigningKey, error) {
	k := signer(s.currentKeys(ctx), s.now())
	if last, _ := s.signerID.Swap(k.id).(string); last != k.id {
		s.log.Info("signing with key", "kid", k.id)
	}
	return signingKey{k}, nil
}

func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *storage) KeySet(ctx context.Context) ([]op.Key, error) {
	keys := s.currentKeys(ctx)
	out := make([]op.Key, len(keys))
	for i, k := range keys {
		out[i] = publicKey{k}
	}
	return out, nil
}

// ---- clients ----

func (s *storage) clientByID(ctx context.Context, id string) (*client, error) {
	c, ok := builtinClient(id)
	if !ok {
		var err error
		c, err = s.store.ClientByID(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil, oidc.ErrInvalidClient().WithDescription("unknown client")
		}
		if err != nil {
			return nil, err
		}
		if len(c.RedirectURIs) == 0 {
			c.GrantTypes = slices.DeleteFunc(slices.Clone(c.GrantTypes), func(g string) bool { return g == string(oidc.GrantTypeCode) })
		}
	}
	return &client{c: c, loginURL: s.loginURL, idTTL: time.Hour}, nil
}

func (s *storage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	return s.clientByID(ctx, id)
}

func (s *storage) AuthorizeClientIDSecret(ctx context.Context, id, secret string) error {
	c, err := s.clientByID(ctx, id)
	if err != nil {
		return err
	}
	if c.c.SecretHash == "" && secret == "" {
		// A public client naming itself in HTTP Basic with an empty secret, as
		// x/oauth2's default auth-style probe does (RFC 6749 §2.3.1 allows Basic for
		// any client): accept it as the public client it is, instead of refusing every
		// first request and making such devices send each poll twice.
		return nil
	}
	if c.c.SecretHash == "" || !accounts.CheckPassword(c.c.SecretHash, secret) {
		return oidc.ErrInvalidClient().WithDescription("wrong client credentials")
	}
	return nil
}

// ---- authorization code requests ----

type authRequest struct{ store.AuthRequest }

func (a *authRequest) GetID() string          { return a.ID }
func (a *authRequest) GetACR() string         { return "" }
func (a *authRequest) GetAMR() []string       { return a.AMR }
func (a *authRequest) GetAudience() []string  { return []string{a.ClientID} }
func (a *authRequest) GetAuthTime() time.Time { return a.AuthTime }
func (a *authRequest) GetClientID() string    { return a.ClientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge {
	if a.CodeChallenge == "" {
		return nil
	}
	return &oidc.CodeChallenge{Challenge: a.CodeChallenge, Method: oidc.CodeChallengeMethod(a.CodeChallengeMethod)}
}
func (a *authRequest) GetNonce() string                   { return a.Nonce }
func (a *authRequest) GetRedirectURI() string             { return a.RedirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType { return oidc.ResponseType(a.ResponseType) }
func (a *authRequest) GetResponseMode() oidc.ResponseMode { return oidc.ResponseMode(a.ResponseMode) }
func (a *authRequest) GetScopes() []string                { return a.Scopes }
func (a *authRequest) GetState() string                   { return a.State }
func (a *authRequest) GetSubject() string                 { return a.Subject }
func (a *authRequest) Done() bool                         { return a.AuthRequest.Done }

const authRequestLifetime = 15 * time.Minute

func (s *storage) CreateAuthRequest(ctx context.Context, req *oidc.AuthRequest, userID string) (op.AuthRequest, error) {
	c, err := s.clientByID(ctx, req.ClientID)
	if err != nil {
		return nil, err
	}
	// PKCE with S256 is required of every public client (the linkdesk app).
	if c.AuthMethod() == oidc.AuthMethodNone && (req.CodeChallenge == "" || req.CodeChallengeMethod != oidc.CodeChallengeMethodS256) {
		return nil, oidc.ErrInvalidRequest().WithDescription("PKCE with code_challenge_method S256 is required")
	}
	now := s.now()
	a := store.AuthRequest{
		ID: newID(), ClientID: req.ClientID, RedirectURI: req.RedirectURI, State: req.State,
		Nonce: req.Nonce, Scopes: c.allowScopes(req.Scopes), ResponseType: string(req.ResponseType),
		ResponseMode: string(req.ResponseMode), CodeChallenge: req.CodeChallenge,
		CodeChallengeMethod: string(req.CodeChallengeMethod), Prompt: req.Prompt, MaxAge: req.MaxAge,
		LoginHint: req.LoginHint, RequestIP: clientIPFrom(ctx), CreatedAt: now, ExpiresAt: now.Add(authRequestLifetime),
	}
	if err := s.store.CreateAuthRequestCapped(ctx, a, s.cfg.AuthRequestCaps); err != nil {
		if errors.Is(err, store.ErrLimited) {
			// zitadel sends this to the app's (checked) redirect URI.
			s.log.Warn("authorization requests limited", "ip", a.RequestIP, "client", a.ClientID)
			return nil, errTemporarilyUnavailable("too many sign-ins were started from your network; try again in a minute")
		}
		return nil, err
	}
	return &authRequest{a}, nil
}

func (s *storage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	a, err := s.store.AuthRequestByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if s.now().After(a.ExpiresAt) {
		return nil, oidc.ErrInvalidRequest().WithDescription("the sign-in took too long; start again")
	}
	return &authRequest{a}, nil
}

func (s *storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	a, err := s.store.AuthRequestByCode(ctx, code)
	if err != nil {
		return nil, err
	}
	if s.now().After(a.ExpiresAt) {
		return nil, oidc.ErrInvalidGrant().WithDescription("code expired")
	}
	return &authRequest{a}, nil
}

// SaveAuthCode issues the request's one code; a re-opened callback gets an error
// (sent to the app's redirect) instead of a second code that would break the first.
func (s *storage) SaveAuthCode(ctx context.Context, id, code string) error {
	err := s.store.SaveAuthCode(ctx, id, code)
	if errors.Is(err, store.ErrAlreadyUsed) {
		return oidc.ErrInvalidRequest().WithDescription("this sign-in already gave the app its code; start again")
	}
	return err
}

func (s *storage) DeleteAuthRequest(ctx context.Context, id string) error {
	err := s.store.DeleteAuthRequest(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

// ---- tokens ----

// refreshRequest is a live refresh token presented at the token endpoint.
type refreshRequest struct {
	store.RefreshToken
	current []string
}

func (r *refreshRequest) GetAMR() []string            { return r.AMR }
func (r *refreshRequest) GetAudience() []string       { return []string{r.ClientID} }
func (r *refreshRequest) GetAuthTime() time.Time      { return r.AuthTime }
func (r *refreshRequest) GetClientID() string         { return r.ClientID }
func (r *refreshRequest) GetScopes() []string         { return r.current }
func (r *refreshRequest) GetSubject() string          { return r.Subject }
func (r *refreshRequest) SetCurrentScopes(s []string) { r.current = s }

// grantFor finds (or, for a redeemed sign-in code, creates) the grant the new tokens
// belong to. Device-code grants never get here: Provider.deviceToken serves them.
func (s *storage) grantFor(ctx context.Context, req op.TokenRequest) (grantID, clientID string, authTime time.Time, amr []string, err error) {
	switch r := req.(type) {
	case *authRequest:
		c, err := s.clientByID(ctx, r.ClientID)
		if err != nil {
			return "", "", time.Time{}, nil, err
		}
		now := s.now()
		g := store.Grant{ID: newID(), Subject: r.Subject, ClientID: r.ClientID, Scopes: r.Scopes,
			Flow: store.FlowSignIn, Name: c.c.Name, Device: devices.DeviceInfo{Kind: devices.KindComputer},
			AuthTime: r.AuthTime, CreatedAt: now}
		if err := s.store.CreateGrant(ctx, g); err != nil {
			return "", "", time.Time{}, nil, err
		}
		return g.ID, r.ClientID, r.AuthTime, r.AMR, nil
	case *refreshRequest:
		return r.GrantID, r.ClientID, r.AuthTime, r.AMR, nil
	}
	return "", "", time.Time{}, nil, fmt.Errorf("provider: unsupported token request %T", req)
}

func (s *storage) newAccess(grantID, subject, clientID string, scopes []string) store.AccessToken {
	now := s.now()
	return store.AccessToken{ID: newID(), GrantID: grantID, Subject: subject, ClientID: clientID,
		Scopes: scopes, CreatedAt: now, ExpiresAt: now.Add(s.cfg.AccessTokenLifetime)}
}

func (s *storage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	grantID, clientID, _, _, err := s.grantFor(ctx, req)
	if err != nil {
		return "", time.Time{}, err
	}
	at := s.newAccess(grantID, req.GetSubject(), clientID, req.GetScopes())
	if err := s.store.CreateAccessToken(ctx, at); err != nil {
		return "", time.Time{}, err
	}
	return at.ID, s.realTime(at.ExpiresAt), nil
}

func (s *storage) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	grantID, clientID, authTime, amr, err := s.grantFor(ctx, req)
	if err != nil {
		return "", "", time.Time{}, err
	}
	now := s.now()
	at := s.newAccess(grantID, req.GetSubject(), clientID, req.GetScopes())
	next := store.RefreshToken{Token: randomToken(32), GrantID: grantID, Subject: req.GetSubject(),
		ClientID: clientID, Scopes: req.GetScopes(), AuthTime: authTime, AMR: amr, CreatedAt: now,
		ExpiresAt: now.Add(s.cfg.RefreshTokenLifetime)}
	if rr, ok := req.(*refreshRequest); ok && current != "" {
		next.Scopes = rr.Scopes // a narrower request narrows the access token, not the grant
		if err := s.store.RotateRefreshToken(ctx, current, next, at, s.cfg.LostAnswerWindow); err != nil {
			if errors.Is(err, store.ErrRefreshReused) {
				s.logReuse(rr.RefreshToken)
			}
			if errors.Is(err, store.ErrRefreshReused) || errors.Is(err, store.ErrNotFound) {
				return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("refresh token is no longer valid")
			}
			markStoreFault(ctx)
			return "", "", time.Time{}, unavailable(err)
		}
	} else {
		if err := s.store.CreateAccessToken(ctx, at); err != nil {
			return "", "", time.Time{}, err
		}
		if err := s.store.CreateRefreshToken(ctx, next); err != nil {
			return "", "", time.Time{}, err
		}
	}
	if err := s.store.TouchGrant(ctx, grantID, clientIPFrom(ctx), now); err != nil {
		s.log.Debug("touch grant", "err", err)
	}
	return at.ID, next.Token, s.realTime(at.ExpiresAt), nil
}

// realTime hands zitadel a time of our clock as the real-clock time with the same time
// left: zitadel computes expires_in against time.Now, so with an injected clock (tests)
// a token's lifetime would come out wrong, or negative and wrapped around. With the
// real clock it is t itself.
func (s *storage) realTime(t time.Time) time.Time {
	return time.Now().Add(t.Sub(s.now()))
}

func (s *storage) TokenRequestByRefreshToken(ctx context.Context, token string) (op.RefreshTokenRequest, error) {
	rt, err := s.store.RefreshTokenByToken(ctx, token, s.now(), s.cfg.LostAnswerWindow)
	switch {
	case errors.Is(err, store.ErrRefreshReused):
		s.logReuse(rt)
		return nil, op.ErrInvalidRefreshToken
	case errors.Is(err, store.ErrNotFound):
		return nil, op.ErrInvalidRefreshToken
	case err != nil:
		// Not a final answer: the device keeps its refresh token and tries again.
		markStoreFault(ctx)
		return nil, unavailable(err)
	}
	if s.cfg.Links != nil {
		// A link unused for longer than its client allows ends here rather than at
		// the next sweep (store.ClientPolicy.UnlinkAfter).
		idle, err := s.cfg.Links.EndIfIdle(ctx, rt.ClientID, rt.GrantID)
		if err != nil {
			markStoreFault(ctx)
			return nil, unavailable(err)
		}
		if idle {
			return nil, oidc.ErrInvalidGrant().WithDescription("this link was removed because the device was not used for too long; link it again")
		}
	}
	return &refreshRequest{RefreshToken: rt, current: rt.Scopes}, nil
}

// logReuse warns that a rotated refresh token came back after its successor was used
// (or after the grace period): a sign the token was copied, so the link is gone.
func (s *storage) logReuse(rt store.RefreshToken) {
	s.log.Warn("refresh token reused; link revoked", "client", rt.ClientID, "link", rt.GrantID, "subject", rt.Subject)
}

// errTemporarilyUnavailable is the OAuth error temporarily_unavailable (RFC 6749
// §4.1.2.1) with description.
func errTemporarilyUnavailable(description string) *oidc.Error {
	return &oidc.Error{ErrorType: "temporarily_unavailable", Description: description}
}

// unavailable turns a storage fault on the token endpoint into server_error (which
// tokenEndpoint sends as 503 with Retry-After), leaving the caller's refresh token
// untouched, instead of an invalid_grant that would end the link.
func unavailable(err error) error {
	return oidc.ErrServerError().WithParent(err).
		WithDescription("linkd could not read or save just now; try again in a moment")
}

func (s *storage) TerminateSession(context.Context, string, string) error { return nil }

func (s *storage) GetRefreshTokenInfo(ctx context.Context, clientID, token string) (string, string, error) {
	rt, err := s.store.RefreshTokenByToken(ctx, token, s.now(), s.cfg.LostAnswerWindow)
	if err != nil || rt.ClientID != clientID {
		return "", "", op.ErrInvalidRefreshToken
	}
	return rt.Subject, refreshPrefix + token, nil
}

func (s *storage) RevokeToken(ctx context.Context, tokenOrID, userID, clientID string) *oidc.Error {
	if rt, ok := strings.CutPrefix(tokenOrID, refreshPrefix); ok {
		// A device giving up its link (a kiosk's "Unlink this display"): unlink it as
		// the account would, so it is logged and the account's screens hear of it.
		if s.cfg.Links != nil {
			if r, err := s.store.RefreshTokenByToken(ctx, rt, s.now(), s.cfg.LostAnswerWindow); err == nil && r.ClientID == clientID {
				_, err := s.cfg.Links.UnlinkSelf(ctx, clientID, r.Subject, r.GrantID)
				if err == nil {
					return nil
				}
				if !errors.Is(err, links.ErrNotLinked) {
					return oidc.ErrServerError().WithParent(err)
				}
			}
		}
		if err := s.store.RevokeRefreshToken(ctx, rt); err != nil && !errors.Is(err, store.ErrNotFound) {
			return oidc.ErrServerError().WithParent(err)
		}
		return nil
	}
	at, err := s.store.AccessTokenByID(ctx, tokenOrID, s.now())
	if err != nil {
		return nil // unknown tokens are answered 200 (RFC 7009 §2.2)
	}
	if at.ClientID != clientID {
		return oidc.ErrInvalidClient().WithDescription("token was issued to another client")
	}
	if err := s.store.DeleteAccessToken(ctx, at.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return oidc.ErrServerError().WithParent(err)
	}
	return nil
}

// ---- userinfo and introspection ----

func (s *storage) fillUserinfo(ctx context.Context, ui *oidc.UserInfo, subject string, scopes []string) error {
	u, err := s.store.UserBySubject(ctx, subject)
	if err != nil {
		return err
	}
	ui.Subject = u.Subject
	if slices.Contains(scopes, oidc.ScopeProfile) {
		ui.Name = u.DisplayName
		ui.PreferredUsername = u.Username
	}
	if slices.Contains(scopes, oidc.ScopeEmail) {
		ui.Email = u.Email
	}
	return nil
}

func (s *storage) SetUserinfoFromScopes(ctx context.Context, ui *oidc.UserInfo, userID, clientID string, scopes []string) error {
	return s.fillUserinfo(ctx, ui, userID, scopes)
}

func (s *storage) SetUserinfoFromToken(ctx context.Context, ui *oidc.UserInfo, tokenID, subject, origin string) error {
	at, err := s.store.AccessTokenByID(ctx, tokenID, s.now())
	if err != nil || at.Subject != subject {
		return errors.New("token is not valid")
	}
	return s.fillUserinfo(ctx, ui, subject, at.Scopes)
}

func (s *storage) SetIntrospectionFromToken(ctx context.Context, in *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	at, err := s.store.AccessTokenByID(ctx, tokenID, s.now())
	if err != nil || at.Subject != subject {
		return errors.New("token is not valid")
	}
	ui := new(oidc.UserInfo)
	if err := s.fillUserinfo(ctx, ui, subject, at.Scopes); err != nil {
		return err
	}
	in.SetUserInfo(ui)
	in.Scope = at.Scopes
	in.ClientID = at.ClientID
	in.Expiration = oidc.FromTime(at.ExpiresAt)
	in.IssuedAt = oidc.FromTime(at.CreatedAt)
	in.Audience = []string{at.ClientID}
	return nil
}

func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("provider: JWT profile is not supported")
}

func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("provider: JWT profile is not supported")
}

func (s *storage) Health(ctx context.Context) error { return s.store.Health(ctx) }

// ---- device authorization ----

// deviceRequest carries what zitadel's StoreDeviceAuthorization is not given: the
// extension parameters and the caller's address.
type deviceRequest struct {
	info devices.DeviceInfo
	ip   string
}

type deviceKey struct{}
type ipKey struct{}

func clientIPFrom(ctx context.Context) string {
	ip, _ := ctx.Value(ipKey{}).(string)
	return ip
}

func (s *storage) StoreDeviceAuthorization(ctx context.Context, clientID, deviceCode, userCode string, expires time.Time, scopes []string) error {
	dr, _ := ctx.Value(deviceKey{}).(deviceRequest)
	if dr.info.Kind == "" {
		dr.info.Kind = devices.KindOther
	}
	code, err := devices.NormalizeCode(userCode)
	if err != nil {
		return err
	}
	c, err := s.clientByID(ctx, clientID)
	if err != nil {
		return err
	}
	err = s.store.CreateDeviceAuthCapped(ctx, store.DeviceAuth{
		DeviceCode: deviceCode, UserCode: code, ClientID: clientID, Scopes: c.allowScopes(scopes),
		Device: dr.info, RequestIP: dr.ip, CreatedAt: s.now(), ExpiresAt: expires,
		Interval: s.cfg.PollInterval, State: store.DeviceAuthPending,
	}, s.cfg.DeviceAuthCaps)
	if errors.Is(err, store.ErrDuplicateUserCode) {
		return fmt.Errorf("%w: %w", op.ErrDuplicateUserCode, err)
	}
	return err
}

// GetDeviceAuthorizatonState is part of zitadel's device storage, whose presence
// turns the device flow on; linkd serves the device_code grant itself
// (Provider.deviceToken), so zitadel never reaches this.
func (s *storage) GetDeviceAuthorizatonState(context.Context, string, string) (*op.DeviceAuthorizationState, error) {
	return nil, errors.New("provider: device token requests are served by Provider.deviceToken")
}
