package provider

import (
	"context"
	"errors"

	"github.com/linkdesk/linkdesk/server/store"
)

// The sign-in page of the authorization-code flow is server/web's one sign-in, served
// at /login (zitadel's login URL); these two methods are the provider's side of it
// (web.AuthRequests).

// ErrAuthRequestGone is returned for an auth request that is unknown, expired or
// already signed in.
var ErrAuthRequestGone = errors.New("provider: auth request expired or not valid")

// AuthRequestClient names the app of auth request id, or fails when id is no auth
// request waiting for a sign-in.
func (p *Provider) AuthRequestClient(ctx context.Context, id string) (string, error) {
	a, err := p.cfg.Store.AuthRequestByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return "", ErrAuthRequestGone
	}
	if err != nil {
		return "", err
	}
	if p.cfg.Now().After(a.ExpiresAt) || a.Done {
		return "", ErrAuthRequestGone
	}
	c, err := p.storage.clientByID(ctx, a.ClientID)
	if err != nil {
		return "", err
	}
	return c.c.Name, nil
}

// CompleteAuthRequest records that subject signed in (by the methods amr) for auth
// request id and returns zitadel's callback, which sends the browser on to the app
// with its code.
func (p *Provider) CompleteAuthRequest(ctx context.Context, id, subject string, amr []string) (string, error) {
	if _, err := p.AuthRequestClient(ctx, id); err != nil {
		return "", err
	}
	if err := p.cfg.Store.CompleteAuthRequest(ctx, id, subject, p.cfg.Now(), amr); err != nil {
		return "", err
	}
	return p.authCallbackURL(id), nil
}
