package provider

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/store"
)

// AppRedirectURI is the registered redirect of the linkdesk app; any port on the
// loopback address is accepted (RFC 8252 §7.3), the path must be /callback. See
// ValidAppRedirect for the exact form.
const AppRedirectURI = "http://127.0.0.1/callback"

// ValidAppRedirect reports whether uri is exactly http://127.0.0.1:{port}/callback
// with a port from 1 to 65535 written without leading zeros: the only redirect the
// linkdesk app uses (it listens on 127.0.0.1 alone). localhost (which a hosts file or
// resolver may point elsewhere), [::1] (the app never listens there), other loopback
// addresses, https, userinfo, queries and fragments are refused (RFC 8252 §7.3, §8.3).
func ValidAppRedirect(uri string) bool {
	rest, ok := strings.CutPrefix(uri, "http://127.0.0.1:")
	if !ok {
		return false
	}
	port, ok := strings.CutSuffix(rest, "/callback")
	if !ok || port == "" || len(port) > 5 || port[0] == '0' {
		return false
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
		return false
	}
	return true
}

// appRedirectOnly refuses an authorization request of the linkdesk app whose
// redirect_uri is not ValidAppRedirect, before zitadel (whose loopback rule is wider)
// sees it. The refusal is a page, never a redirect to the doubtful address.
func appRedirectOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, "the request could not be read", http.StatusBadRequest)
			return
		}
		if r.Form.Get("client_id") == devices.AppClientID && !ValidAppRedirect(r.Form.Get("redirect_uri")) {
			http.Error(w, "invalid redirect_uri: the linkdesk app uses http://127.0.0.1:{port}/callback", http.StatusBadRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// publicCORS lets any web page read public metadata (discovery, signing keys), without
// credentials; no other endpoint answers cross-origin requests.
func publicCORS(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		next.ServeHTTP(w, r)
	})
}

// DefaultScopes are the scopes a client may ask for when it names none.
var DefaultScopes = []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, oidc.ScopeOfflineAccess}

// BuiltinClients returns the two clients that always exist: the desktop app (code +
// PKCE + refresh) and its kiosk mode (device code + refresh). Both are public.
func BuiltinClients() []store.Client {
	return []store.Client{
		{
			ID: devices.AppClientID, Name: devices.AppClientName, Scopes: DefaultScopes,
			RedirectURIs: []string{AppRedirectURI},
			GrantTypes:   []string{string(oidc.GrantTypeCode), string(oidc.GrantTypeRefreshToken)},
		},
		{
			ID: devices.KioskClientID, Name: devices.KioskClientName, Scopes: DefaultScopes,
			GrantTypes: []string{string(oidc.GrantTypeDeviceCode), string(oidc.GrantTypeRefreshToken)},
		},
	}
}

// builtins are the built-in clients, made once: every device authorization and poll
// looks its client up. Nothing changes them (BuiltinClients hands out fresh copies).
var builtins = BuiltinClients()

// builtinClient returns the built-in client id, if it is one; its lists are shared
// and must not be changed.
func builtinClient(id string) (store.Client, bool) {
	for _, c := range builtins {
		if c.ID == id {
			return c, true
		}
	}
	return store.Client{}, false
}

// client adapts a store.Client to op.Client.
type client struct {
	c        store.Client
	loginURL func(string) string
	idTTL    time.Duration
}

var _ op.Client = (*client)(nil)

func (c *client) GetID() string                    { return c.c.ID }
func (c *client) RedirectURIs() []string           { return c.c.RedirectURIs }
func (c *client) PostLogoutRedirectURIs() []string { return nil }
func (c *client) ApplicationType() op.ApplicationType {
	if c.c.SecretHash != "" {
		return op.ApplicationTypeWeb
	}
	return op.ApplicationTypeNative
}
func (c *client) AuthMethod() oidc.AuthMethod {
	if c.c.SecretHash != "" {
		return oidc.AuthMethodBasic
	}
	return oidc.AuthMethodNone
}
func (c *client) ResponseTypes() []oidc.ResponseType {
	if slices.Contains(c.GrantTypes(), oidc.GrantTypeCode) {
		return []oidc.ResponseType{oidc.ResponseTypeCode}
	}
	return nil
}
func (c *client) GrantTypes() []oidc.GrantType {
	gts := c.c.GrantTypes
	if len(gts) == 0 {
		gts = []string{string(oidc.GrantTypeDeviceCode), string(oidc.GrantTypeRefreshToken)}
	}
	out := make([]oidc.GrantType, len(gts))
	for i, g := range gts {
		out[i] = oidc.GrantType(g)
	}
	return out
}
func (c *client) LoginURL(id string) string            { return c.loginURL(id) }
func (c *client) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeBearer }
func (c *client) IDTokenLifetime() time.Duration       { return c.idTTL }
func (c *client) DevMode() bool                        { return false }
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return false }
func (c *client) ClockSkew() time.Duration             { return 0 }
func (c *client) IsScopeAllowed(scope string) bool     { return slices.Contains(c.scopes(), scope) }
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

func (c *client) scopes() []string {
	if len(c.c.Scopes) == 0 {
		return DefaultScopes
	}
	return c.c.Scopes
}

// allowScopes keeps the requested scopes the client may have, always allowing openid.
func (c *client) allowScopes(req []string) []string {
	var out []string
	for _, s := range req {
		if (s == oidc.ScopeOpenID || slices.Contains(c.scopes(), s)) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
