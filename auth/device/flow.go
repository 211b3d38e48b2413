// Package device is the device side of the OAuth device authorization grant (RFC 8628)
// for a kiosk or any input-constrained box: it shows codes until linked, stays linked
// across restarts, notices when it is unlinked and can unlink itself. Against linkd it
// hears approvals and unlinks on its push channels at once (docs/push-channel.md). It
// is built on package auth's client core (discovery, client authentication, userinfo,
// refresh, revocation), returns typed errors and never imports Fyne; a screen renders
// the states it reports.
package device

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/linkdesk/linkdesk/auth"
	"github.com/linkdesk/linkdesk/devices"
)

// grantType is the RFC 8628 grant type a device polls the token endpoint with.
const grantType = "urn:ietf:params:oauth:grant-type:device_code"

// Default timings of the device flow.
const (
	defaultInterval         = 5 * time.Second  // RFC 8628 §3.2: 5 s when the provider names none
	defaultCodeLifetime     = 10 * time.Minute // when the provider names none
	defaultUserinfoInterval = 30 * time.Second // how often a linked device checks it is still linked
	minBackoff              = time.Second
	maxBackoff              = 30 * time.Second
	requestTimeout          = 30 * time.Second // bounds each request on the network (real time)
	expiryDelta             = 10 * time.Second // refresh this long before the access token expires
)

// ErrNoDeviceGrant means the provider's discovery document names no device authorization
// endpoint: it does not offer RFC 8628.
var ErrNoDeviceGrant = errors.New("device flow: the provider does not offer the device authorization grant")

// TokenStore keeps a linked device's tokens between runs (auth.TokenStore, the OS keyring,
// in the app). Load returns auth.ErrNoToken (possibly wrapped) when there is nothing stored.
type TokenStore interface {
	Load(ctx context.Context, key string) (*oauth2.Token, error)
	Save(ctx context.Context, key string, tok *oauth2.Token) error
	Delete(ctx context.Context, key string) error
}

// Clock is the one time source of the device flow: every wait, deadline and token expiry
// is on it, so tests can control time.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Config configures a Flow.
type Config struct {
	Issuer       string   // the provider's issuer URL; endpoints come from its discovery document
	ClientID     string   // e.g. devices.KioskClientID
	ClientSecret string   // optional; confidential clients authenticate with HTTP Basic
	Scopes       []string // default "openid profile offline_access"
	DeviceName   string   // sent as the device_name extension parameter
	DeviceModel  string   // sent as device_model
	DeviceKind   string   // sent as device_kind, e.g. "kiosk"

	HTTPClient *http.Client // default http.DefaultClient
	Store      TokenStore   // optional; without it a restart asks for a new code
	Clock      Clock        // default the real clock
	Logger     *slog.Logger // default slog.Default()

	// UserinfoInterval is how often a linked device checks it is still linked (default 30 s).
	UserinfoInterval time.Duration
	// NoPush turns linkd's push channels off, so only plain polling and the periodic
	// link check are used.
	NoPush bool
}

// Flow is one device's run of the device flow; see the package comment.
type Flow struct {
	cfg   Config
	clock Clock
	log   *slog.Logger
	hc    *http.Client

	unlink chan chan error

	mu           sync.Mutex
	client       *auth.Client // set once discovery succeeds
	noPush       bool         // no push channels at all (Config.NoPush, or none at /device/wait)
	noLinkedPush bool         // no /device/linked-wait at this provider
}

// NewFlow checks cfg and returns a flow ready to Run.
func NewFlow(cfg Config) (*Flow, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" {
		return nil, errors.New("device flow: issuer and client id are required")
	}
	if _, err := auth.ParseIssuer(cfg.Issuer); err != nil {
		return nil, err
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = []string{"openid", "profile", "offline_access"}
	}
	if cfg.UserinfoInterval <= 0 {
		cfg.UserinfoInterval = defaultUserinfoInterval
	}
	f := &Flow{cfg: cfg, clock: cfg.Clock, log: cfg.Logger, hc: cfg.HTTPClient,
		unlink: make(chan chan error), noPush: cfg.NoPush}
	if f.clock == nil {
		f.clock = realClock{}
	}
	if f.log == nil {
		f.log = slog.Default()
	}
	if f.hc == nil {
		f.hc = http.DefaultClient
	}
	return f, nil
}

// StoreKey is the key the flow's tokens are kept under in the token store.
func (f *Flow) StoreKey() string {
	return "device:" + strings.TrimSuffix(f.cfg.Issuer, "/") + "|" + f.cfg.ClientID
}

// Unlink asks a running flow to revoke its own tokens and start over with a new code. It
// returns once the tokens are revoked (or revocation failed) or ctx ends.
func (f *Flow) Unlink(ctx context.Context) error {
	done := make(chan error, 1)
	select {
	case f.unlink <- done:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run drives the flow until ctx ends, calling report for every state change. report is
// called from Run's goroutine and must not block for long.
func (f *Flow) Run(ctx context.Context, report func(State)) error {
	report(Connecting{})
	if err := f.discover(ctx, report); err != nil {
		return err
	}
	for ctx.Err() == nil {
		tok, err := f.loadToken(ctx)
		if err != nil {
			tok, err = f.acquire(ctx, report)
			if err != nil {
				return err
			}
			f.saveToken(ctx, tok)
		}
		byUs, err := f.stayLinked(ctx, tok, report)
		if err != nil {
			return err
		}
		report(Unlinked{ByUs: byUs})
	}
	return ctx.Err()
}

// backoff returns the wait before retry n (0-based): 1 s doubling to 30 s, with jitter.
func backoff(n int) time.Duration {
	d := min(minBackoff<<min(n, 5), maxBackoff)
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// sleep waits d on the flow's clock; false when ctx ended first.
func (f *Flow) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	select {
	case <-ctx.Done():
		return false
	case <-f.clock.After(d):
		return true
	}
}

// transient says whether err is an outage worth retrying with backoff rather than a
// definite answer from the provider.
func transient(err error) bool {
	var de *auth.DiscoveryError
	if errors.As(err, &de) {
		return errors.Is(err, auth.ErrUnreachable)
	}
	var he *auth.HTTPError
	if errors.As(err, &he) {
		return he.Temporary()
	}
	return !errors.Is(err, ErrNoDeviceGrant) // else network errors, timeouts, bad JSON from a proxy
}

// retry reports err as Offline (an outage: retry with backoff n) or Error (a definite
// answer: retry slowly, so a misconfiguration never spins) and sleeps until the retry.
// It returns false when ctx ended first.
func (f *Flow) retry(ctx context.Context, report func(State), err error, n int, linked bool) bool {
	wait := backoff(n)
	if transient(err) {
		report(Offline{Err: err, RetryAt: f.clock.Now().Add(wait), Linked: linked})
	} else {
		wait = maxBackoff
		report(Error{Err: err, RetryAt: f.clock.Now().Add(wait)})
	}
	return f.sleep(ctx, wait)
}

// discover fetches the discovery document, retrying until it works or ctx ends.
func (f *Flow) discover(ctx context.Context, report func(State)) error {
	for n := 0; ; n++ {
		p, err := auth.CheckIssuer(ctx, f.hc, f.cfg.Issuer)
		if err == nil && p.DeviceAuthorizationEndpoint == "" {
			err = ErrNoDeviceGrant
		}
		if err == nil {
			f.mu.Lock()
			f.client = &auth.Client{Provider: p, ID: f.cfg.ClientID, Secret: f.cfg.ClientSecret,
				HTTP: f.hc, Now: f.clock.Now}
			f.mu.Unlock()
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		f.log.Warn("device flow: discovery failed", "issuer", f.cfg.Issuer, "err", err)
		if !f.retry(ctx, report, err, n, false) {
			return ctx.Err()
		}
	}
}

func (f *Flow) oauthClient() *auth.Client {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.client
}

// authorization is the device authorization answer (RFC 8628 §3.2).
type authorization struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURL         string `json:"verification_url"` // the name some providers (Google) use
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int64  `json:"expires_in"`
	Interval                int64  `json:"interval"`
}

// requestCode asks for a new device code, retrying until it gets one or ctx ends. It
// returns the code and when it expires on the flow's clock.
func (f *Flow) requestCode(ctx context.Context, report func(State)) (*authorization, time.Time, error) {
	c := f.oauthClient()
	form := url.Values{"scope": {strings.Join(f.cfg.Scopes, " ")}}
	for param, v := range map[string]string{devices.ParamDeviceName: f.cfg.DeviceName,
		devices.ParamDeviceModel: f.cfg.DeviceModel, devices.ParamDeviceKind: f.cfg.DeviceKind} {
		if v != "" {
			form.Set(param, v)
		}
	}
	for n := 0; ; n++ {
		var da authorization
		rctx, cancel := context.WithTimeout(ctx, requestTimeout)
		err := c.PostForm(rctx, c.Provider.DeviceAuthorizationEndpoint, form, &da)
		cancel()
		if err == nil && (da.DeviceCode == "" || da.UserCode == "") {
			err = errors.New("device authorization answer without device_code or user_code")
		}
		if err == nil {
			if da.VerificationURI == "" {
				da.VerificationURI = da.VerificationURL
			}
			lifetime := defaultCodeLifetime
			if da.ExpiresIn > 0 {
				lifetime = time.Duration(da.ExpiresIn) * time.Second
			}
			return &da, f.clock.Now().Add(lifetime), nil
		}
		if ctx.Err() != nil {
			return nil, time.Time{}, ctx.Err()
		}
		f.log.Warn("device flow: device authorization failed", "err", err)
		if !f.retry(ctx, report, err, n, false) {
			return nil, time.Time{}, ctx.Err()
		}
	}
}

// acquire shows codes until one is approved and returns its tokens.
func (f *Flow) acquire(ctx context.Context, report func(State)) (*oauth2.Token, error) {
	declined := false
	for {
		da, expires, err := f.requestCode(ctx, report)
		if err != nil {
			return nil, err
		}
		shown := ShowingCode{
			UserCode:                da.UserCode,
			VerificationURI:         da.VerificationURI,
			VerificationURIComplete: da.VerificationURIComplete,
			ExpiresAt:               expires,
			AfterDecline:            declined,
		}
		report(shown)
		shown.AfterDecline = false
		tok, outcome, err := f.waitForCode(ctx, da, shown, report)
		switch {
		case err != nil:
			return nil, err
		case tok != nil:
			return tok, nil
		}
		declined = outcome == outcomeDeclined
		if declined {
			report(Declined{})
		}
	}
}

type codeOutcome int

const (
	outcomeExpired codeOutcome = iota
	outcomeDeclined
)

// waitForCode polls for one code until it yields tokens, is declined or expires
// (RFC 8628 §3.4-3.5). Against linkd it waits on the push channel instead of polling at
// the interval (a token request then follows each wake-up, no sooner than the interval
// after the previous one, so slow_down is never tripped); if the push channel fails or
// is missing, it falls back to plain polling at once.
func (f *Flow) waitForCode(ctx context.Context, da *authorization, shown ShowingCode, report func(State)) (*oauth2.Token, codeOutcome, error) {
	interval := time.Duration(da.Interval) * time.Second
	if interval <= 0 {
		interval = defaultInterval
	}
	pctx, stopPush := context.WithCancel(ctx)
	defer stopPush()
	push := f.startPush(pctx, da.DeviceCode)

	// after is how long to wait before the next scheduled poll: the interval, or a rare
	// safety poll while the push channel is live.
	after := func() time.Duration {
		if push != nil {
			return max(interval, pushSafetyPoll)
		}
		return interval
	}
	var lastPoll time.Time
	nextPoll := f.clock.Now().Add(after())
	failures := 0
	for {
		now := f.clock.Now()
		left := shown.ExpiresAt.Sub(now)
		if left <= 0 {
			return nil, outcomeExpired, nil
		}
		wait := nextPoll.Sub(now)
		select {
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		case st, ok := <-push:
			if !ok {
				// Push channel gone: plain polling from now on, on the usual schedule.
				push = nil
				if lastPoll.IsZero() {
					nextPoll = f.clock.Now().Add(interval)
				} else {
					nextPoll = lastPoll.Add(interval)
				}
				continue
			}
			push = nil // one wake-up per code; the token endpoint has the final word
			if st == "expired" {
				return nil, outcomeExpired, nil
			}
			// approved or denied: collect the answer now, but not sooner than the
			// interval after the previous token request (RFC 8628 §3.5).
			if !lastPoll.IsZero() {
				if !f.sleep(ctx, lastPoll.Add(interval).Sub(f.clock.Now())) {
					return nil, 0, ctx.Err()
				}
			}
		case <-f.clock.After(min(max(wait, 0), left)):
			if wait > left {
				continue // expired while waiting
			}
		}
		lastPoll = f.clock.Now()
		tok, err := f.pollToken(ctx, da.DeviceCode)
		if err == nil {
			return tok, 0, nil
		}
		if ctx.Err() != nil {
			return nil, 0, ctx.Err()
		}
		var he *auth.HTTPError
		code := ""
		if errors.As(err, &he) {
			code = he.Code
		}
		switch {
		case code == "authorization_pending":
			nextPoll = lastPoll.Add(after())
		case code == "slow_down":
			interval += 5 * time.Second // RFC 8628 §3.5: for this and all later requests
			nextPoll = lastPoll.Add(after())
		case code == "access_denied":
			return nil, outcomeDeclined, nil
		case code == "expired_token":
			return nil, outcomeExpired, nil
		case transient(err):
			// Outage: keep the code (it is still valid), retry with backoff, never
			// faster than the interval.
			wait := max(backoff(failures), interval)
			failures++
			nextPoll = lastPoll.Add(wait)
			f.log.Warn("device flow: token poll failed", "err", err)
			report(Offline{Err: err, RetryAt: nextPoll})
			continue
		default:
			// invalid_grant, invalid_client and the like: this code is no good; start
			// over after a pause so a misconfiguration never spins.
			f.log.Warn("device flow: token poll refused", "error_code", code, "err", err)
			report(Error{Err: err, RetryAt: f.clock.Now().Add(maxBackoff)})
			if !f.sleep(ctx, maxBackoff) {
				return nil, 0, ctx.Err()
			}
			return nil, outcomeExpired, nil
		}
		if failures > 0 {
			failures = 0
			report(shown) // back online: show the code again without the offline note
		}
	}
}

// pollToken makes one device access token request (RFC 8628 §3.4).
func (f *Flow) pollToken(ctx context.Context, deviceCode string) (*oauth2.Token, error) {
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	return f.oauthClient().Token(rctx, url.Values{"grant_type": {grantType}, "device_code": {deviceCode}})
}

func (f *Flow) loadToken(ctx context.Context) (*oauth2.Token, error) {
	if f.cfg.Store == nil {
		return nil, auth.ErrNoToken
	}
	tok, err := f.cfg.Store.Load(ctx, f.StoreKey())
	if err != nil {
		if !errors.Is(err, auth.ErrNoToken) {
			f.log.Warn("device flow: cannot read stored token", "err", err)
		}
		return nil, err
	}
	if tok == nil || (tok.AccessToken == "" && tok.RefreshToken == "") {
		return nil, auth.ErrNoToken
	}
	return tok, nil
}

func (f *Flow) saveToken(ctx context.Context, tok *oauth2.Token) {
	if f.cfg.Store == nil {
		return
	}
	if err := f.cfg.Store.Save(ctx, f.StoreKey(), tok); err != nil {
		f.log.Warn("device flow: cannot store token", "err", err)
	}
}

func (f *Flow) deleteToken(ctx context.Context) {
	if f.cfg.Store == nil {
		return
	}
	if err := f.cfg.Store.Delete(ctx, f.StoreKey()); err != nil && !errors.Is(err, auth.ErrNoToken) {
		f.log.Warn("device flow: cannot delete stored token", "err", err)
	}
}
