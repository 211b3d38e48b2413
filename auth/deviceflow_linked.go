package auth

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"golang.org/x/oauth2"
)

// errRevoked means the provider no longer honours the device's tokens: it was unlinked.
var errRevoked = errors.New("device flow: link revoked")

// userinfo is the part of the OpenID userinfo answer the kiosk shows.
type userinfo struct {
	Subject           string `json:"sub"`
	Name              string `json:"name"`
	PreferredUsername string `json:"preferred_username"`
	Email             string `json:"email"`
}

func (u userinfo) displayName() string {
	for _, s := range []string{u.Name, u.PreferredUsername, u.Email, u.Subject} {
		if s != "" {
			return s
		}
	}
	return "your account"
}

// stayLinked reports Linked and checks every UserinfoInterval that the link still holds,
// refreshing tokens as needed. It returns when the link is gone: byUs is true when this
// device unlinked itself.
func (f *DeviceFlow) stayLinked(ctx context.Context, tok *oauth2.Token, report func(DeviceState)) (byUs bool, err error) {
	lastShown := ""
	offline := 0
	for {
		info, fresh, cerr := f.checkLink(ctx, tok)
		if fresh != nil && fresh != tok {
			tok = fresh
			f.saveToken(ctx, tok)
		}
		wait := f.cfg.UserinfoInterval
		switch {
		case ctx.Err() != nil:
			return false, ctx.Err()
		case errors.Is(cerr, errRevoked):
			f.log.Info("device flow: link revoked by the provider")
			f.deleteToken(ctx)
			return false, nil
		case cerr != nil:
			wait = min(backoff(offline), f.cfg.UserinfoInterval)
			offline++
			f.log.Warn("device flow: link check failed", "err", cerr)
			report(Offline{Err: cerr, RetryAt: f.clock.Now().Add(wait), Linked: true})
			lastShown = ""
		default:
			offline = 0
			name := info.displayName()
			if name != lastShown {
				report(Linked{Token: tok, DisplayName: name, Subject: info.Subject})
				lastShown = name
			}
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case done := <-f.unlink:
			err := f.revoke(ctx, tok)
			f.deleteToken(ctx)
			done <- err
			return true, nil
		case <-f.clock.After(wait):
		}
	}
}

// checkLink fetches userinfo with tok, refreshing it when it has expired or the provider
// answers 401. It returns errRevoked when the link is gone, the token it ended up with,
// and any other error as an outage.
func (f *DeviceFlow) checkLink(ctx context.Context, tok *oauth2.Token) (userinfo, *oauth2.Token, error) {
	_, meta := f.config()
	if meta == nil {
		return userinfo{}, tok, errors.New("no provider metadata")
	}
	if !tok.Valid() {
		next, err := f.refresh(ctx, tok)
		if err != nil {
			return userinfo{}, tok, err
		}
		tok = next
	}
	info, err := f.userinfo(ctx, tok)
	var he *httpStatusError
	// 401, or 403 as zitadel/oidc answers for a token it no longer knows: refresh. A
	// refused refresh means the link is gone.
	if errors.As(err, &he) && (he.status == http.StatusUnauthorized || he.status == http.StatusForbidden) {
		next, rerr := f.refresh(ctx, tok)
		if rerr != nil {
			return userinfo{}, tok, rerr
		}
		tok = next
		info, err = f.userinfo(ctx, tok)
		if errors.As(err, &he) && he.status == http.StatusUnauthorized {
			return userinfo{}, tok, errRevoked
		}
		if errors.As(err, &he) && he.status == http.StatusForbidden {
			// The fresh token works for refresh but may not read userinfo (scope):
			// still linked, just without a name to show.
			return userinfo{}, tok, nil
		}
	}
	return info, tok, err
}

// userinfo calls the userinfo endpoint; without one it only reports the token as good.
func (f *DeviceFlow) userinfo(ctx context.Context, tok *oauth2.Token) (userinfo, error) {
	_, meta := f.config()
	if meta.UserinfoEndpoint == "" {
		return userinfo{}, nil
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, meta.UserinfoEndpoint, nil)
	if err != nil {
		return userinfo{}, err
	}
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("Accept", "application/json")
	var info userinfo
	err = f.doJSON(req, &info)
	return info, err
}

// refresh trades tok's refresh token for new tokens. invalid_grant (or no refresh token
// at all) means the link is gone: errRevoked.
func (f *DeviceFlow) refresh(ctx context.Context, tok *oauth2.Token) (*oauth2.Token, error) {
	if tok.RefreshToken == "" {
		return nil, errRevoked
	}
	_, meta := f.config()
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	next, err := f.tokenRequest(rctx, meta.TokenEndpoint, url.Values{
		"grant_type":    {"refresh_token"},
		"refresh_token": {tok.RefreshToken},
	})
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && !isTransient(err) {
			return nil, errRevoked
		}
		return nil, err
	}
	if next.RefreshToken == "" {
		next.RefreshToken = tok.RefreshToken
	}
	return next, nil
}

// revoke revokes the device's own tokens (RFC 7009): the refresh token (which ends the
// whole grant on linkd) and then the access token.
func (f *DeviceFlow) revoke(ctx context.Context, tok *oauth2.Token) error {
	_, meta := f.config()
	if meta == nil || meta.RevocationEndpoint == "" {
		return errors.New("provider has no revocation endpoint; tokens forgotten locally only")
	}
	var firstErr error
	for _, t := range []struct{ value, hint string }{
		{tok.RefreshToken, "refresh_token"},
		{tok.AccessToken, "access_token"},
	} {
		if t.value == "" {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		req, err := f.clientRequest(rctx, meta.RevocationEndpoint, url.Values{"token": {t.value}, "token_type_hint": {t.hint}})
		if err == nil {
			var resp *http.Response
			resp, err = f.client.Do(req)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = &httpStatusError{status: resp.StatusCode, body: "revocation refused"}
				}
			}
		}
		cancel()
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}
