package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/linkdesk/linkdesk/devices"
)

// DeviceGrantType is the RFC 8628 grant type a device polls the token endpoint with.
const DeviceGrantType = "urn:ietf:params:oauth:grant-type:device_code"

// DeviceWaitPath is linkd's push channel below the issuer: a long poll that answers as soon
// as a device authorization changes state, so an approval reaches the device at once.
const DeviceWaitPath = "/device/wait"

// Default timings of the device flow.
const (
	defaultInterval         = 5 * time.Second  // RFC 8628 §3.2: 5 s when the provider names none
	defaultUserinfoInterval = 30 * time.Second // how often a linked device checks it is still linked
	minBackoff              = time.Second
	maxBackoff              = 30 * time.Second
	pushTimeout             = 40 * time.Second // a little over linkd's ~25 s long poll
	pushSafetyPoll          = 60 * time.Second // token poll cadence while the push channel is live
)

// ErrNoToken is what a TokenStore returns when it holds no token for a key.
var ErrNoToken = errors.New("auth: no stored token")

// DeviceTokenStore keeps a linked device's tokens between runs (in the OS keyring in the
// app). Load returns ErrNoToken (possibly wrapped) when there is nothing stored.
type DeviceTokenStore interface {
	Load(ctx context.Context, key string) (*oauth2.Token, error)
	Save(ctx context.Context, key string, tok *oauth2.Token) error
	Delete(ctx context.Context, key string) error
}

// Clock is the time source of the device flow, injectable so tests can control it.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// DeviceConfig configures a DeviceFlow.
type DeviceConfig struct {
	Issuer       string   // the provider's issuer URL; endpoints come from its discovery document
	ClientID     string   // e.g. devices.KioskClientID
	ClientSecret string   // optional; confidential clients authenticate with HTTP Basic
	Scopes       []string // default "openid profile offline_access"
	DeviceName   string   // sent as the device_name extension parameter
	DeviceModel  string   // sent as device_model
	DeviceKind   string   // sent as device_kind, e.g. "kiosk"

	HTTPClient *http.Client     // default http.DefaultClient
	Store      DeviceTokenStore // optional; without it a restart asks for a new code
	Clock      Clock            // default the real clock
	Logger     *slog.Logger     // default slog.Default()

	// UserinfoInterval is how often a linked device checks it is still linked (default 30 s).
	UserinfoInterval time.Duration
	// NoPush turns the linkd push channel off, so only plain polling is used.
	NoPush bool
}

// DeviceState is one state of the device flow, reported to the screen that renders it.
type DeviceState interface{ deviceState() }

// Connecting is reported while the flow reaches the provider for the first time.
type Connecting struct{}

// ShowingCode is reported whenever a new code is to be shown.
type ShowingCode struct {
	UserCode                string
	VerificationURI         string
	VerificationURIComplete string // empty when the provider sends none
	ExpiresAt               time.Time
	AfterDecline            bool // the previous code was declined
}

// Offline is reported when the provider cannot be reached; the flow retries at RetryAt and
// the code shown before (if any, and still valid) stays usable.
type Offline struct {
	Err     error
	RetryAt time.Time
	Linked  bool // the device is linked and only the periodic check failed
}

// Declined is reported when the person declined the link; a fresh code follows.
type Declined struct{}

// Linked is reported when the device holds tokens for an account.
type Linked struct {
	Token       *oauth2.Token
	DisplayName string
	Subject     string
}

// Unlinked is reported when the link was removed, by this device or elsewhere; a fresh code follows.
type Unlinked struct{ ByUs bool }

// Error is reported for a failure that is not a network outage (a misconfigured client,
// a provider error); the flow retries at RetryAt.
type Error struct {
	Err     error
	RetryAt time.Time
}

func (Connecting) deviceState()  {}
func (ShowingCode) deviceState() {}
func (Offline) deviceState()     {}
func (Declined) deviceState()    {}
func (Linked) deviceState()      {}
func (Unlinked) deviceState()    {}
func (Error) deviceState()       {}

// DeviceFlow is the device side of RFC 8628 for a kiosk or any input-constrained box: it
// shows codes until linked, stays linked across restarts, notices when it is unlinked and
// can unlink itself. It never imports Fyne; a screen renders the states it reports.
type DeviceFlow struct {
	cfg    DeviceConfig
	clock  Clock
	log    *slog.Logger
	client *http.Client

	unlink chan chan error

	mu       sync.Mutex
	meta     *providerMeta
	noPush   bool
	oauthCfg *oauth2.Config
}

// NewDeviceFlow checks cfg and returns a flow ready to Run.
func NewDeviceFlow(cfg DeviceConfig) (*DeviceFlow, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" {
		return nil, errors.New("device flow: issuer and client id are required")
	}
	if err := checkIssuerURL(cfg.Issuer); err != nil {
		return nil, err
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = []string{"openid", "profile", "offline_access"}
	}
	if cfg.UserinfoInterval <= 0 {
		cfg.UserinfoInterval = defaultUserinfoInterval
	}
	f := &DeviceFlow{
		cfg:    cfg,
		clock:  cfg.Clock,
		log:    cfg.Logger,
		client: cfg.HTTPClient,
		unlink: make(chan chan error),
		noPush: cfg.NoPush,
	}
	if f.clock == nil {
		f.clock = realClock{}
	}
	if f.log == nil {
		f.log = slog.Default()
	}
	if f.client == nil {
		f.client = http.DefaultClient
	}
	return f, nil
}

// checkIssuerURL enforces the design's rule: https unless the issuer is on loopback.
func checkIssuerURL(issuer string) error {
	_, err := ParseIssuer(issuer)
	return err
}

// StoreKey is the key the flow's tokens are kept under in the token store.
func (f *DeviceFlow) StoreKey() string {
	return "device:" + strings.TrimSuffix(f.cfg.Issuer, "/") + "|" + f.cfg.ClientID
}

// Unlink asks a running flow to revoke its own tokens and start over with a new code. It
// returns once the tokens are revoked (or revocation failed) or ctx ends.
func (f *DeviceFlow) Unlink(ctx context.Context) error {
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
func (f *DeviceFlow) Run(ctx context.Context, report func(DeviceState)) error {
	report(Connecting{})
	if err := f.discover(ctx, report, false); err != nil {
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
	d := minBackoff << min(n, 5)
	if d > maxBackoff {
		d = maxBackoff
	}
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// sleep waits d on the flow's clock; false when ctx ended first.
func (f *DeviceFlow) sleep(ctx context.Context, d time.Duration) bool {
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

// isTransient says whether err is an outage worth retrying with backoff rather than a
// definite answer from the provider.
func isTransient(err error) bool {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.Response == nil || re.Response.StatusCode >= 500 || re.Response.StatusCode == http.StatusTooManyRequests
	}
	var he *httpStatusError
	if errors.As(err, &he) {
		return he.status >= 500 || he.status == http.StatusTooManyRequests
	}
	return true // network errors, timeouts, bad JSON from a proxy
}

// providerMeta is the part of the discovery document the device flow needs.
type providerMeta struct {
	Issuer                      string `json:"issuer"`
	TokenEndpoint               string `json:"token_endpoint"`
	DeviceAuthorizationEndpoint string `json:"device_authorization_endpoint"`
	UserinfoEndpoint            string `json:"userinfo_endpoint"`
	RevocationEndpoint          string `json:"revocation_endpoint"`
}

type httpStatusError struct {
	status int
	body   string
	ctype  string
}

func (e *httpStatusError) Error() string {
	return fmt.Sprintf("HTTP %d: %s", e.status, e.body)
}

// discover fetches the discovery document, retrying outages until ctx ends.
func (f *DeviceFlow) discover(ctx context.Context, report func(DeviceState), linked bool) error {
	for n := 0; ; n++ {
		meta, err := f.fetchDiscovery(ctx)
		if err == nil {
			f.mu.Lock()
			f.meta = meta
			f.oauthCfg = &oauth2.Config{
				ClientID:     f.cfg.ClientID,
				ClientSecret: f.cfg.ClientSecret,
				Scopes:       f.cfg.Scopes,
				Endpoint: oauth2.Endpoint{
					TokenURL:      meta.TokenEndpoint,
					DeviceAuthURL: meta.DeviceAuthorizationEndpoint,
					AuthStyle:     f.authStyle(),
				},
			}
			f.mu.Unlock()
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		wait := backoff(n)
		f.log.Warn("device flow: discovery failed", "issuer", f.cfg.Issuer, "err", err)
		if isTransient(err) {
			report(Offline{Err: err, RetryAt: f.clock.Now().Add(wait), Linked: linked})
		} else {
			wait = maxBackoff
			report(Error{Err: err, RetryAt: f.clock.Now().Add(wait)})
		}
		if !f.sleep(ctx, wait) {
			return ctx.Err()
		}
	}
}

func (f *DeviceFlow) authStyle() oauth2.AuthStyle {
	if f.cfg.ClientSecret != "" {
		return oauth2.AuthStyleInHeader
	}
	return oauth2.AuthStyleInParams
}

func (f *DeviceFlow) fetchDiscovery(ctx context.Context) (*providerMeta, error) {
	p, err := CheckIssuer(ctx, f.client, f.cfg.Issuer)
	if err != nil {
		if errors.Is(err, ErrUnreachable) || ctx.Err() != nil {
			return nil, err
		}
		// A wrong answer (not OpenID, another issuer, a bad certificate) is not an
		// outage: report it as an error and retry slowly.
		return nil, &httpStatusError{status: 400, body: err.Error()}
	}
	if p.DeviceAuthorizationEndpoint == "" {
		return nil, &httpStatusError{status: 400, body: "provider does not offer the device authorization grant"}
	}
	return &providerMeta{
		Issuer:                      p.Issuer,
		TokenEndpoint:               p.TokenEndpoint,
		DeviceAuthorizationEndpoint: p.DeviceAuthorizationEndpoint,
		UserinfoEndpoint:            p.UserinfoEndpoint,
		RevocationEndpoint:          p.RevocationEndpoint,
	}, nil
}

// doJSON sends req and decodes a 2xx JSON answer into v.
func (f *DeviceFlow) doJSON(req *http.Request, v any) error {
	resp, err := f.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &httpStatusError{status: resp.StatusCode, body: strings.TrimSpace(string(truncate(body, 200))),
			ctype: resp.Header.Get("Content-Type")}
	}
	return json.Unmarshal(body, v)
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

func (f *DeviceFlow) config() (*oauth2.Config, *providerMeta) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.oauthCfg, f.meta
}

// httpCtx carries the flow's HTTP client (with Basic client authentication on device
// authorization requests for confidential clients) to x/oauth2.
func (f *DeviceFlow) httpCtx(ctx context.Context) context.Context {
	c := f.client
	if f.cfg.ClientSecret != "" {
		_, meta := f.config()
		base := c.Transport
		if base == nil {
			base = http.DefaultTransport
		}
		c = &http.Client{
			Timeout:       c.Timeout,
			CheckRedirect: c.CheckRedirect,
			Jar:           c.Jar,
			Transport: &deviceAuthBasic{base: base, url: meta.DeviceAuthorizationEndpoint,
				id: f.cfg.ClientID, secret: f.cfg.ClientSecret},
		}
	}
	return context.WithValue(ctx, oauth2.HTTPClient, c)
}

// deviceAuthBasic adds HTTP Basic client authentication (RFC 6749 §2.3.1) to requests to
// the device authorization endpoint, which x/oauth2's DeviceAuth does not authenticate.
type deviceAuthBasic struct {
	base       http.RoundTripper
	url        string
	id, secret string
}

func (t *deviceAuthBasic) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.String() == t.url && r.Header.Get("Authorization") == "" {
		r = r.Clone(r.Context())
		r.SetBasicAuth(url.QueryEscape(t.id), url.QueryEscape(t.secret))
	}
	return t.base.RoundTrip(r)
}

// requestCode asks for a new device code, retrying outages with backoff until ctx ends.
func (f *DeviceFlow) requestCode(ctx context.Context, report func(DeviceState)) (*oauth2.DeviceAuthResponse, time.Time, error) {
	cfg, _ := f.config()
	var opts []oauth2.AuthCodeOption
	if f.cfg.DeviceName != "" {
		opts = append(opts, oauth2.SetAuthURLParam(devices.ParamDeviceName, f.cfg.DeviceName))
	}
	if f.cfg.DeviceModel != "" {
		opts = append(opts, oauth2.SetAuthURLParam(devices.ParamDeviceModel, f.cfg.DeviceModel))
	}
	if f.cfg.DeviceKind != "" {
		opts = append(opts, oauth2.SetAuthURLParam(devices.ParamDeviceKind, f.cfg.DeviceKind))
	}
	for n := 0; ; n++ {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		da, err := cfg.DeviceAuth(f.httpCtx(rctx), opts...)
		cancel()
		if err == nil {
			// x/oauth2 computes Expiry on the wall clock; carry the lifetime over to ours.
			expires := f.clock.Now().Add(10 * time.Minute)
			if !da.Expiry.IsZero() {
				expires = f.clock.Now().Add(time.Until(da.Expiry))
			}
			return da, expires, nil
		}
		if ctx.Err() != nil {
			return nil, time.Time{}, ctx.Err()
		}
		f.log.Warn("device flow: device authorization failed", "err", err)
		wait := backoff(n)
		if isTransient(err) {
			report(Offline{Err: err, RetryAt: f.clock.Now().Add(wait)})
		} else {
			wait = maxBackoff
			report(Error{Err: err, RetryAt: f.clock.Now().Add(wait)})
		}
		if !f.sleep(ctx, wait) {
			return nil, time.Time{}, ctx.Err()
		}
	}
}

// acquire shows codes until one is approved and returns its tokens.
func (f *DeviceFlow) acquire(ctx context.Context, report func(DeviceState)) (*oauth2.Token, error) {
	declined := false
	for {
		da, expires, err := f.requestCode(ctx, report)
		if err != nil {
			return nil, err
		}
		report(ShowingCode{
			UserCode:                da.UserCode,
			VerificationURI:         da.VerificationURI,
			VerificationURIComplete: da.VerificationURIComplete,
			ExpiresAt:               expires,
			AfterDecline:            declined,
		})
		tok, outcome, err := f.waitForCode(ctx, da, expires, report)
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
func (f *DeviceFlow) waitForCode(ctx context.Context, da *oauth2.DeviceAuthResponse, expires time.Time, report func(DeviceState)) (*oauth2.Token, codeOutcome, error) {
	interval := time.Duration(da.Interval) * time.Second
	if interval <= 0 {
		interval = defaultInterval
	}
	pctx, stopPush := context.WithCancel(ctx)
	defer stopPush()
	push := f.startPush(pctx, da.DeviceCode)

	shown := ShowingCode{UserCode: da.UserCode, VerificationURI: da.VerificationURI,
		VerificationURIComplete: da.VerificationURIComplete, ExpiresAt: expires}
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
		left := expires.Sub(now)
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
		var re *oauth2.RetrieveError
		code := ""
		if errors.As(err, &re) {
			code = re.ErrorCode
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
		case isTransient(err):
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
			wait := maxBackoff
			report(Error{Err: err, RetryAt: f.clock.Now().Add(wait)})
			if !f.sleep(ctx, wait) {
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
func (f *DeviceFlow) pollToken(ctx context.Context, deviceCode string) (*oauth2.Token, error) {
	_, meta := f.config()
	v := url.Values{
		"grant_type":  {DeviceGrantType},
		"device_code": {deviceCode},
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return f.tokenRequest(rctx, meta.TokenEndpoint, v)
}

// tokenRequest posts v to the token endpoint with the client's authentication and parses
// the answer the way x/oauth2 does, errors as *oauth2.RetrieveError.
func (f *DeviceFlow) tokenRequest(ctx context.Context, tokenURL string, v url.Values) (*oauth2.Token, error) {
	req, err := f.clientRequest(ctx, tokenURL, v)
	if err != nil {
		return nil, err
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		re := &oauth2.RetrieveError{Response: resp, Body: body}
		var e struct {
			Error            string `json:"error"`
			ErrorDescription string `json:"error_description"`
		}
		if json.Unmarshal(body, &e) == nil {
			re.ErrorCode, re.ErrorDescription = e.Error, e.ErrorDescription
		}
		return nil, re
	}
	var raw map[string]any
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("token response: %w", err)
	}
	var tj struct {
		AccessToken  string `json:"access_token"`
		TokenType    string `json:"token_type"`
		RefreshToken string `json:"refresh_token"`
		ExpiresIn    int64  `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &tj); err != nil {
		return nil, fmt.Errorf("token response: %w", err)
	}
	if tj.AccessToken == "" {
		return nil, errors.New("token response without access_token")
	}
	tok := &oauth2.Token{AccessToken: tj.AccessToken, TokenType: tj.TokenType,
		RefreshToken: tj.RefreshToken, ExpiresIn: tj.ExpiresIn}
	if tj.ExpiresIn > 0 {
		tok.Expiry = time.Now().Add(time.Duration(tj.ExpiresIn) * time.Second)
	}
	return tok.WithExtra(raw), nil
}

// clientRequest builds a form POST carrying the client's identity: HTTP Basic for
// confidential clients, client_id in the body for public ones.
func (f *DeviceFlow) clientRequest(ctx context.Context, u string, v url.Values) (*http.Request, error) {
	if f.cfg.ClientSecret == "" {
		v.Set("client_id", f.cfg.ClientID)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(v.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if f.cfg.ClientSecret != "" {
		req.SetBasicAuth(url.QueryEscape(f.cfg.ClientID), url.QueryEscape(f.cfg.ClientSecret))
	}
	return req, nil
}

// startPush long-polls linkd's {issuer}/device/wait while a code is shown and sends each
// state change ("approved", "denied", "expired") on the returned channel. A provider
// without the endpoint (404) turns push off for the rest of the flow.
func (f *DeviceFlow) startPush(ctx context.Context, deviceCode string) <-chan string {
	f.mu.Lock()
	off := f.noPush
	f.mu.Unlock()
	if off {
		return nil
	}
	out := make(chan string, 1)
	go func() {
		defer close(out)
		u := strings.TrimSuffix(f.cfg.Issuer, "/") + DeviceWaitPath
		for ctx.Err() == nil {
			started := f.clock.Now()
			rctx, cancel := context.WithTimeout(ctx, pushTimeout)
			v := url.Values{"client_id": {f.cfg.ClientID}, "device_code": {deviceCode}}
			req, err := http.NewRequestWithContext(rctx, http.MethodPost, u, strings.NewReader(v.Encode()))
			if err != nil {
				cancel()
				return
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Accept", "application/json")
			var ans struct {
				Status string `json:"status"`
			}
			err = f.doJSON(req, &ans)
			cancel()
			if ctx.Err() != nil {
				return
			}
			var he *httpStatusError
			if errors.As(err, &he) && he.status >= 400 && he.status < 500 && he.status != http.StatusTooManyRequests {
				// linkd answers an unknown device code with a problem document: stop
				// waiting on this code only. Anything else (a 404 page, 405, 501) means the
				// provider has no push channel: poll only from now on.
				if !(he.status == http.StatusNotFound && strings.HasPrefix(he.ctype, "application/problem+json")) {
					f.disablePush()
				}
				return
			}
			if errors.As(err, &he) && he.status == http.StatusNotImplemented {
				f.disablePush()
				return
			}
			if err != nil || ans.Status == "" {
				// Outage or an odd answer: fall back to polling for this code.
				f.log.Info("device flow: push channel failed; polling", "err", err)
				return
			}
			switch ans.Status {
			case "pending":
				// A long poll that comes back at once would make this loop spin.
				if f.clock.Now().Sub(started) < minBackoff && !f.sleep(ctx, minBackoff) {
					return
				}
				continue
			case "approved", "denied", "expired":
				select {
				case out <- ans.Status:
				case <-ctx.Done():
				}
				return
			default:
				return
			}
		}
	}()
	return out
}

func (f *DeviceFlow) disablePush() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.noPush {
		f.log.Info("device flow: provider has no push channel; polling only")
	}
	f.noPush = true
}

func (f *DeviceFlow) loadToken(ctx context.Context) (*oauth2.Token, error) {
	if f.cfg.Store == nil {
		return nil, ErrNoToken
	}
	tok, err := f.cfg.Store.Load(ctx, f.StoreKey())
	if err != nil {
		if !errors.Is(err, ErrNoToken) {
			f.log.Warn("device flow: cannot read stored token", "err", err)
		}
		return nil, err
	}
	if tok == nil || (tok.AccessToken == "" && tok.RefreshToken == "") {
		return nil, ErrNoToken
	}
	return tok, nil
}

func (f *DeviceFlow) saveToken(ctx context.Context, tok *oauth2.Token) {
	if f.cfg.Store == nil {
		return
	}
	if err := f.cfg.Store.Save(ctx, f.StoreKey(), tok); err != nil {
		f.log.Warn("device flow: cannot store token", "err", err)
	}
}

func (f *DeviceFlow) deleteToken(ctx context.Context) {
	if f.cfg.Store == nil {
		return
	}
	if err := f.cfg.Store.Delete(ctx, f.StoreKey()); err != nil && !errors.Is(err, ErrNoToken) {
		f.log.Warn("device flow: cannot delete stored token", "err", err)
	}
}
