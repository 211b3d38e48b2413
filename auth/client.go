package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// maxAnswerBody bounds what is read of any provider answer, so a hostile server can't make
// the app read forever.
const maxAnswerBody = 1 << 20

// Client is one OAuth client of one provider: who it is (ID, optional Secret) and how it
// reaches the provider. The app's sign-in sessions and the device flow (auth/device) both
// talk to the provider through it, so client authentication, userinfo, refresh and
// revocation exist once.
type Client struct {
	Provider *Provider
	ID       string
	Secret   string           // empty for public clients; else sent with HTTP Basic (RFC 6749 §2.3.1)
	HTTP     *http.Client     // nil means http.DefaultClient
	Now      func() time.Time // the clock token expiry is computed on; nil means time.Now
}

// ErrSessionEnded means the provider no longer honours the saved tokens (refresh token
// revoked, expired or reused, or refused outright): the person has to sign in, or the
// device be linked, again.
var ErrSessionEnded = errors.New("signed out: sign in again")

// ErrNoRevocation means the provider publishes no revocation endpoint.
var ErrNoRevocation = errors.New("the service offers no way to revoke a sign-in")

// ErrNoUserinfo means the provider publishes no userinfo endpoint.
var ErrNoUserinfo = errors.New("the service has no userinfo endpoint")

// HTTPError is a provider's answer with a status other than 2xx. Code and Description
// carry the OAuth error (RFC 6749 §5.2) when the body holds one.
type HTTPError struct {
	URL         string
	Status      int
	ContentType string
	Code        string // OAuth "error", e.g. "authorization_pending", "invalid_grant"
	Description string // OAuth "error_description"
}

func (e *HTTPError) Error() string {
	s := fmt.Sprintf("%s answered HTTP %d", e.URL, e.Status)
	if e.Code != "" {
		s += ": " + e.Code
	}
	if e.Description != "" {
		s += ": " + e.Description
	}
	return s
}

// Temporary reports whether the answer is an outage worth retrying (a server error or
// too many requests) rather than a definite refusal.
func (e *HTTPError) Temporary() bool {
	return e.Status == 0 || e.Status >= 500 || e.Status == http.StatusTooManyRequests
}

func newHTTPError(u string, status int, h http.Header, body []byte) *HTTPError {
	e := &HTTPError{URL: u, Status: status, ContentType: h.Get("Content-Type")}
	var oe struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}
	if json.Unmarshal(body, &oe) == nil {
		e.Code, e.Description = oe.Error, oe.ErrorDescription
	}
	return e
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP == nil {
		return http.DefaultClient
	}
	return c.HTTP
}

func (c *Client) now() time.Time {
	if c.Now == nil {
		return time.Now()
	}
	return c.Now()
}

// Config is the client in golang.org/x/oauth2 form, for the given scopes and redirect URI.
func (c *Client) Config(scopes []string, redirectURL string) *oauth2.Config {
	style := oauth2.AuthStyleInParams
	if c.Secret != "" {
		style = oauth2.AuthStyleInHeader
	}
	return &oauth2.Config{
		ClientID:     c.ID,
		ClientSecret: c.Secret,
		RedirectURL:  redirectURL,
		Scopes:       scopes,
		Endpoint: oauth2.Endpoint{
			AuthURL:       c.Provider.AuthorizationEndpoint,
			TokenURL:      c.Provider.TokenEndpoint,
			DeviceAuthURL: c.Provider.DeviceAuthorizationEndpoint,
			AuthStyle:     style,
		},
	}
}

// context returns ctx carrying the client's HTTP client, for golang.org/x/oauth2 calls.
func (c *Client) context(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, c.httpClient())
}

// PostForm posts form to one of the provider's OAuth endpoints with the client's
// authentication: HTTP Basic for confidential clients, client_id in the body for public
// ones. A 2xx JSON answer is decoded into v (unless v is nil); any other is an *HTTPError.
func (c *Client) PostForm(ctx context.Context, endpoint string, form url.Values, v any) error {
	if c.Secret == "" {
		form.Set("client_id", c.ID)
	}
	req, err := newFormRequest(ctx, endpoint, form)
	if err != nil {
		return err
	}
	if c.Secret != "" {
		req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	}
	return do(c.httpClient(), req, v)
}

// PostForm posts form to endpoint without client authentication (for endpoints such as
// linkd's push channel that take no secret). Answers are handled as by Client.PostForm.
func PostForm(ctx context.Context, hc *http.Client, endpoint string, form url.Values, v any) error {
	req, err := newFormRequest(ctx, endpoint, form)
	if err != nil {
		return err
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	return do(hc, req, v)
}

func newFormRequest(ctx context.Context, endpoint string, form url.Values) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	return req, nil
}

// do sends req and decodes a 2xx JSON answer into v (unless v is nil). Any other status
// is an *HTTPError; the body read is bounded.
func do(hc *http.Client, req *http.Request, v any) error {
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBody))
	if err != nil {
		return err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return newHTTPError(req.URL.Redacted(), resp.StatusCode, resp.Header, body)
	}
	if v == nil {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%s: %w", req.URL.Redacted(), err)
	}
	return nil
}

// Token makes one request to the token endpoint with form (a grant such as RFC 8628's
// device code) and returns the tokens, their expiry on the client's clock. A refusal is
// an *HTTPError whose Code is the OAuth error, such as "authorization_pending".
func (c *Client) Token(ctx context.Context, form url.Values) (*oauth2.Token, error) {
	var raw map[string]any
	if err := c.PostForm(ctx, c.Provider.TokenEndpoint, form, &raw); err != nil {
		return nil, err
	}
	tok := &oauth2.Token{}
	tok.AccessToken, _ = raw["access_token"].(string)
	tok.TokenType, _ = raw["token_type"].(string)
	tok.RefreshToken, _ = raw["refresh_token"].(string)
	switch e := raw["expires_in"].(type) {
	case float64:
		tok.ExpiresIn = int64(e)
	case string:
		tok.ExpiresIn, _ = strconv.ParseInt(e, 10, 64)
	}
	if tok.AccessToken == "" {
		return nil, errors.New("token response without access_token")
	}
	c.stamp(tok)
	return tok.WithExtra(raw), nil
}

// stamp sets tok's expiry from its lifetime on the client's clock.
func (c *Client) stamp(tok *oauth2.Token) {
	if tok.ExpiresIn > 0 {
		tok.Expiry = c.now().Add(time.Duration(tok.ExpiresIn) * time.Second)
	}
}

// Refresh trades tok's refresh token for new tokens through golang.org/x/oauth2 (keeping
// the old refresh token when the provider sends no new one). A definite refusal, or no
// refresh token at all, wraps ErrSessionEnded; an outage is returned as is.
func (c *Client) Refresh(ctx context.Context, tok *oauth2.Token) (*oauth2.Token, error) {
	if tok == nil || tok.RefreshToken == "" {
		return nil, ErrSessionEnded
	}
	next, err := c.Config(nil, "").TokenSource(c.context(ctx), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil {
			he := newHTTPError(c.Provider.TokenEndpoint, re.Response.StatusCode, re.Response.Header, re.Body)
			if !he.Temporary() {
				return nil, fmt.Errorf("%w (%w)", ErrSessionEnded, he)
			}
			return nil, he
		}
		return nil, err
	}
	c.stamp(next)
	return next, nil
}

// Claims is who a token belongs to, as the userinfo endpoint (or an ID token) says.
type Claims struct {
	Subject           string `json:"sub"`
	Name              string `json:"name"`
	PreferredUsername string `json:"preferred_username"`
	Email             string `json:"email"`
}

// Userinfo asks the provider's userinfo endpoint who tok belongs to. Without an endpoint
// it returns ErrNoUserinfo; a refusal (401 for a dead token) is an *HTTPError.
func (c *Client) Userinfo(ctx context.Context, tok *oauth2.Token) (Claims, error) {
	if c.Provider.UserinfoEndpoint == "" {
		return Claims{}, ErrNoUserinfo
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Provider.UserinfoEndpoint, nil)
	if err != nil {
		return Claims{}, err
	}
	tok.SetAuthHeader(req)
	req.Header.Set("Accept", "application/json")
	var cl Claims
	err = do(c.httpClient(), req, &cl)
	return cl, err
}

// Revoke revokes tok at the provider (RFC 7009): the refresh token first (which ends the
// whole grant), then the access token. It returns the first failure, or ErrNoRevocation
// when the provider has no revocation endpoint.
func (c *Client) Revoke(ctx context.Context, tok *oauth2.Token) error {
	if c.Provider.RevocationEndpoint == "" {
		return ErrNoRevocation
	}
	var first error
	for _, t := range []struct{ value, hint string }{
		{tok.RefreshToken, "refresh_token"},
		{tok.AccessToken, "access_token"},
	} {
		if t.value == "" {
			continue
		}
		err := c.PostForm(ctx, c.Provider.RevocationEndpoint, url.Values{"token": {t.value}, "token_type_hint": {t.hint}}, nil)
		if err != nil && first == nil {
			first = fmt.Errorf("revoke: %w", err)
		}
	}
	return first
}
