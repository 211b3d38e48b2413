package provider

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/linkdesk/linkdesk/server/events"
	"github.com/linkdesk/linkdesk/server/metrics"
	"github.com/linkdesk/linkdesk/server/store"
)

// deviceToken serves the device_code grant of the token endpoint (RFC 8628 §3.4) in
// place of zitadel's, so that:
//   - collecting the tokens is one store transaction (CollectDeviceTokens): the code is
//     consumed and the tokens exist, or neither;
//   - a device that repeats the request within LostAnswerWindow after an answer it
//     never received gets a working answer again;
//   - every storage fault answers slow_down: the device keeps polling and links once
//     the store is back, where server_error would make an RFC 8628 client give up;
//   - routine answers (authorization_pending, slow_down) are not logged per request.
//
// The client is authenticated before the device code is looked at, so a request
// without the credentials of a confidential client never burns an approved code.
func (p *Provider) deviceToken(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context() // with the issuer (Provider.Handler)
	clientID, authenticated, err := p.requestClientID(r)
	if err != nil {
		p.tokenFault(w, r, "", err)
		return
	}
	c, err := p.storage.clientByID(ctx, clientID)
	if err != nil {
		p.tokenFault(w, r, clientID, err)
		return
	}
	if !op.ValidateGrantType(c, oidc.GrantTypeDeviceCode) {
		p.pollError(w, oidc.ErrUnauthorizedClient().WithDescription("client may not use the device code grant"))
		return
	}
	if op.IsConfidentialType(c) && !authenticated && r.PostForm.Get("client_secret") != "" {
		// client_secret in the body (RFC 6749 §2.3.1), as x/oauth2 sends it by default.
		if err := p.storage.AuthorizeClientIDSecret(ctx, clientID, r.PostForm.Get("client_secret")); err != nil {
			p.tokenFault(w, r, clientID, err)
			return
		}
		authenticated = true
	}
	if op.IsConfidentialType(c) && !authenticated {
		p.pollError(w, oidc.ErrInvalidClient().WithDescription("confidential client requires authentication"))
		return
	}
	deviceCode := r.PostForm.Get("device_code")
	if deviceCode == "" {
		p.pollError(w, oidc.ErrInvalidRequest().WithDescription("device_code is required"))
		return
	}

	// A poll reads (from the pending cache, else the store's read pool) and paces in
	// memory; only a real change of state (collecting the tokens) writes.
	now := p.cfg.Now()
	key := newPollKey(clientID, deviceCode)
	d, err := p.deviceAuthForPoll(ctx, key, clientID, deviceCode)
	if errors.Is(err, store.ErrNotFound) {
		p.pollError(w, oidc.ErrAccessDenied().WithDescription("unknown device code"))
		return
	}
	if err != nil {
		p.tokenFault(w, r, clientID, err)
		return
	}
	switch d.State {
	case store.DeviceAuthPending:
		// Only a pending request is paced: final answers are given whatever the pace.
		switch {
		case !now.Before(d.ExpiresAt):
			p.pacer.forget(key)
			p.polls.expired.Add(1)
			p.cfg.Metrics.DeviceAuth(metrics.DeviceAuthExpired)
			p.pollError(w, oidc.ErrExpiredDeviceCode())
		case p.pacer.poll(key, d.Interval, d.ExpiresAt):
			p.polls.slowDown.Add(1)
			p.pollError(w, oidc.ErrSlowDown())
		default:
			p.polls.pending.Add(1)
			p.pollError(w, oidc.ErrAuthorizationPending())
		}
	case store.DeviceAuthDenied:
		p.pollError(w, oidc.ErrAccessDenied())
	case store.DeviceAuthConsumed:
		if d.CollectedAt.IsZero() || now.Sub(d.CollectedAt) >= p.cfg.LostAnswerWindow {
			p.pollError(w, oidc.ErrAccessDenied().WithDescription("the device code was already used"))
			return
		}
		p.collect(w, r, c, deviceCode, d, now)
	case store.DeviceAuthApproved:
		p.collect(w, r, c, deviceCode, d, now)
	default:
		p.tokenFault(w, r, clientID, errors.New("provider: unknown device authorization state "+string(d.State)))
	}
}

// requestClientID is op.ClientIDFromRequest without its reflection-driven form
// decoder, which cost a tenth of a poll or a device authorization: the client from
// HTTP Basic (checked) or, for a public client, from client_id in the body. A JWT
// client assertion, which no Linkdesk client sends, still goes through zitadel.
func (p *Provider) requestClientID(r *http.Request) (clientID string, authenticated bool, err error) {
	if err := r.ParseForm(); err != nil {
		return "", false, oidc.ErrInvalidRequest().WithDescription("cannot parse form").WithParent(err)
	}
	if r.Form.Get("client_assertion") != "" {
		return op.ClientIDFromRequest(r, p.op)
	}
	if _, _, ok := r.BasicAuth(); ok {
		clientID, err := op.ClientBasicAuth(r, p.storage)
		return clientID, err == nil, err
	}
	if clientID = r.Form.Get("client_id"); clientID == "" {
		return "", false, oidc.ErrInvalidClient().WithParent(op.ErrMissingClientID)
	}
	return clientID, false, nil
}

// deviceAuthForPoll returns the device authorization a poll asks about: from the
// pending cache while it is known to be still pending, else from the store (a pending
// answer is then cached, unless a change was reported while it was read).
func (p *Provider) deviceAuthForPoll(ctx context.Context, key pollKey, clientID, deviceCode string) (store.DeviceAuth, error) {
	if p.pending == nil {
		return p.cfg.Store.DeviceAuthByDeviceCode(ctx, clientID, deviceCode)
	}
	if d, ok := p.pending.get(key); ok {
		return d, nil
	}
	gen := p.pending.generation()
	d, err := p.cfg.Store.DeviceAuthByDeviceCode(ctx, clientID, deviceCode)
	if err == nil && d.State == store.DeviceAuthPending {
		p.pending.put(key, d, events.DeviceAuthKey(d.UserCode), gen)
	}
	return d, err
}

// collect builds the whole answer for an approved (or, within the lost-answer window,
// already collected) device code first, then stores its tokens in one transaction and
// only then answers: a crash at any point leaves either no tokens or tokens the device
// can collect again.
func (p *Provider) collect(w http.ResponseWriter, r *http.Request, c *client, deviceCode string, d store.DeviceAuth, now time.Time) {
	ctx := r.Context()
	clientID := c.GetID()
	at := p.storage.newAccess("", d.Subject, clientID, d.Scopes)
	var rt store.RefreshToken
	if slices.Contains(d.Scopes, oidc.ScopeOfflineAccess) && op.ValidateGrantType(c, oidc.GrantTypeRefreshToken) {
		rt = store.RefreshToken{Token: randomToken(32), ClientID: clientID, Scopes: d.Scopes,
			AMR: deviceAMR, CreatedAt: now, ExpiresAt: now.Add(p.cfg.RefreshTokenLifetime)}
	}
	access, err := op.CreateBearerToken(at.ID, d.Subject, p.op.Crypto())
	if err != nil {
		p.tokenFault(w, r, clientID, err)
		return
	}
	resp := oidc.AccessTokenResponse{AccessToken: access, RefreshToken: rt.Token, TokenType: oidc.BearerToken,
		ExpiresIn: uint64(p.cfg.AccessTokenLifetime.Seconds()), Scope: d.Scopes}
	if slices.Contains(d.Scopes, oidc.ScopeOpenID) {
		req := &op.DeviceAuthorizationState{ClientID: clientID, Scopes: d.Scopes, Subject: d.Subject,
			AuthTime: d.AuthTime, AMR: deviceAMR, Done: true}
		if resp.IDToken, err = op.CreateIDToken(ctx, p.cfg.Issuer, req, c.IDTokenLifetime(), access, "", p.storage, c); err != nil {
			p.tokenFault(w, r, clientID, err)
			return
		}
	}
	got, err := p.cfg.Store.CollectDeviceTokens(ctx, clientID, deviceCode, store.DeviceTokens{Access: at, Refresh: rt},
		p.cfg.ClientIP(r), now, p.cfg.LostAnswerWindow)
	switch {
	case errors.Is(err, store.ErrAlreadyUsed):
		p.pollError(w, oidc.ErrAccessDenied().WithDescription("the device code was already used"))
		return
	case errors.Is(err, store.ErrNotFound):
		// Unlinked before the device collected its tokens.
		p.pollError(w, oidc.ErrAccessDenied())
		return
	case err != nil:
		p.tokenFault(w, r, clientID, err)
		return
	}
	p.pacer.forget(newPollKey(clientID, deviceCode))
	if !got.CollectedAt.Equal(now) {
		p.log.Info("device collected its tokens again after a lost answer; the earlier ones are revoked",
			"client", clientID, "link", got.GrantID, "first", got.CollectedAt)
	}
	p.polls.tokens.Add(1)
	p.cfg.Metrics.Poll(metrics.PollSuccess)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, resp)
}

// PollAnswers counts the device-token answers linkd gave since it started, by kind.
// Routine answers are counted here instead of logged one line each (a poll every 5 s
// from every waiting device would fill a disk with log lines).
type PollAnswers struct {
	Pending, SlowDown, Expired, Tokens, StorageFaults int64
}

type pollCounters struct {
	pending, slowDown, expired, tokens, faults atomic.Int64
}

// PollAnswers returns the device-token answers given so far.
func (p *Provider) PollAnswers() PollAnswers {
	return PollAnswers{Pending: p.polls.pending.Load(), SlowDown: p.polls.slowDown.Load(),
		Expired: p.polls.expired.Load(), Tokens: p.polls.tokens.Load(), StorageFaults: p.polls.faults.Load()}
}

// deviceAMR is what a device-flow grant's tokens say about the approval: a password
// sign-in of the approver.
var deviceAMR = []string{"pwd"}

// tokenFault answers a device-token request that failed for a reason of its own: an
// OAuth error (a bad client) as such, anything else, a storage fault above all, as
// slow_down, so the device keeps its code and polls again.
func (p *Provider) tokenFault(w http.ResponseWriter, r *http.Request, clientID string, err error) {
	var oe *oidc.Error
	if errors.As(err, &oe) && oe.ErrorType != oidc.ServerError {
		p.pollError(w, oe)
		return
	}
	p.polls.faults.Add(1)
	if !errors.Is(err, context.Canceled) {
		p.log.Debug("device token request failed; answering slow_down", "client", clientID, "err", err)
	}
	p.pollError(w, oidc.ErrSlowDown().WithDescription("linkd is busy; poll again more slowly"))
}

// pollError answers a device-token poll with the error e and counts the answer.
func (p *Provider) pollError(w http.ResponseWriter, e *oidc.Error) {
	a := metrics.PollOther
	switch e.ErrorType {
	case oidc.AuthorizationPending:
		a = metrics.PollPending
	case oidc.SlowDown:
		a = metrics.PollSlowDown
	case oidc.AccessDenied:
		a = metrics.PollDenied
	case oidc.ExpiredToken:
		a = metrics.PollExpired
	}
	p.cfg.Metrics.Poll(a)
	writeTokenError(w, e)
}

// writeTokenError writes an RFC 6749 §5.2 error answer: 401 for invalid_client, 400
// for everything else (authorization_pending and slow_down included).
func writeTokenError(w http.ResponseWriter, e *oidc.Error) {
	status := http.StatusBadRequest
	if e.ErrorType == oidc.InvalidClient {
		status = http.StatusUnauthorized
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, e)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
