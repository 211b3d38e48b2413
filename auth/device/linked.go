package device

import (
	"context"
	"errors"
	"net/http"
	"time"

	"golang.org/x/oauth2"

	"github.com/linkdesk/linkdesk/auth"
)

// displayName is the name a linked device shows for its account, or "" when the provider
// says nothing about it.
func displayName(c auth.Claims) string {
	for _, s := range []string{c.Name, c.PreferredUsername, c.Email, c.Subject} {
		if s != "" {
			return s
		}
	}
	return ""
}

// stayLinked reports Linked and checks every UserinfoInterval that the link still holds,
// refreshing tokens as needed. It returns when the link is gone: byUs is true when this
// device unlinked itself.
func (f *Flow) stayLinked(ctx context.Context, tok *oauth2.Token, report func(State)) (byUs bool, err error) {
	shown, lastShown := false, ""
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
		case errors.Is(cerr, auth.ErrSessionEnded):
			f.log.Info("device flow: link revoked by the provider", "err", cerr)
			f.deleteToken(ctx)
			return false, nil
		case cerr != nil:
			wait = min(backoff(offline), f.cfg.UserinfoInterval)
			offline++
			f.log.Warn("device flow: link check failed", "err", cerr)
			report(Offline{Err: cerr, RetryAt: f.clock.Now().Add(wait), Linked: true})
			shown = false
		default:
			offline = 0
			if name := displayName(info); !shown || name != lastShown {
				report(Linked{Token: tok, DisplayName: name, Subject: info.Subject})
				shown, lastShown = true, name
			}
		}
		// While linked, linkd's push channel tells of an unlink at once; the periodic
		// check stays as the fallback (and the only check elsewhere).
		wctx, stopWatch := context.WithCancel(ctx)
		var watch <-chan struct{}
		if cerr == nil {
			watch = f.watchLink(wctx, tok)
		}
		done, byUs, err := f.waitLinked(ctx, tok, wait, watch)
		stopWatch()
		if done {
			return byUs, err
		}
	}
}

// waitLinked waits until the next check of the link: wait has passed or the push
// channel watch signals. done is true when stayLinked must return byUs and err: ctx
// ended, or the device unlinked itself (Flow.Unlink).
func (f *Flow) waitLinked(ctx context.Context, tok *oauth2.Token, wait time.Duration, watch <-chan struct{}) (done, byUs bool, err error) {
	timer := f.clock.After(wait)
	for {
		select {
		case <-ctx.Done():
			return true, false, ctx.Err()
		case reply := <-f.unlink:
			rctx, cancel := context.WithTimeout(ctx, requestTimeout)
			err := f.oauthClient().Revoke(rctx, tok)
			cancel()
			f.deleteToken(ctx)
			reply <- err
			return true, true, nil
		case _, ok := <-watch:
			if !ok {
				watch = nil // push channel gone for now: the periodic check remains
				continue
			}
			f.log.Info("device flow: linkd says the link may be gone; checking now")
			return false, false, nil
		case <-timer:
			return false, false, nil
		}
	}
}

// expired reports whether tok's access token is missing or (nearly) expired on the flow's clock.
func (f *Flow) expired(tok *oauth2.Token) bool {
	return tok.AccessToken == "" || (!tok.Expiry.IsZero() && !f.clock.Now().Before(tok.Expiry.Add(-expiryDelta)))
}

// checkLink fetches userinfo with tok, refreshing it when it has expired or the provider
// refuses it. It returns an error wrapping auth.ErrSessionEnded when the link is gone, the
// token it ended up with, and any other error as an outage.
func (f *Flow) checkLink(ctx context.Context, tok *oauth2.Token) (auth.Claims, *oauth2.Token, error) {
	c := f.oauthClient()
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	if f.expired(tok) {
		next, err := c.Refresh(rctx, tok)
		if err != nil {
			return auth.Claims{}, tok, err
		}
		tok = next
	}
	info, err := userinfo(rctx, c, tok)
	var he *auth.HTTPError
	// 401, or 403 as zitadel/oidc answers for a token it no longer knows: refresh. A
	// refused refresh means the link is gone.
	if errors.As(err, &he) && (he.Status == http.StatusUnauthorized || he.Status == http.StatusForbidden) {
		next, rerr := c.Refresh(rctx, tok)
		if rerr != nil {
			return auth.Claims{}, tok, rerr
		}
		tok = next
		info, err = userinfo(rctx, c, tok)
		if errors.As(err, &he) && he.Status == http.StatusUnauthorized {
			return auth.Claims{}, tok, errors.Join(auth.ErrSessionEnded, err)
		}
		if errors.As(err, &he) && he.Status == http.StatusForbidden {
			// The fresh token works for refresh but may not read userinfo (scope):
			// still linked, just without a name to show.
			return auth.Claims{}, tok, nil
		}
	}
	return info, tok, err
}

// userinfo asks who tok belongs to; a provider without a userinfo endpoint only tells
// that the token is good (by refreshing it when needed).
func userinfo(ctx context.Context, c *auth.Client, tok *oauth2.Token) (auth.Claims, error) {
	info, err := c.Userinfo(ctx, tok)
	if errors.Is(err, auth.ErrNoUserinfo) {
		return auth.Claims{}, nil
	}
	return info, err
}
