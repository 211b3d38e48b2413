package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/links"
	"github.com/linkdesk/linkdesk/server/metrics"
	"github.com/linkdesk/linkdesk/server/store"
)

// userCodeAttempts bounds the retries after a user-code clash; with 20^8 codes a
// second clash in a row means something else is wrong.
const userCodeAttempts = 8

// deviceAuthorization serves the RFC 8628 device authorization endpoint in place of
// zitadel's: it reads the extension parameters and the caller's address into the
// storage call's context, makes user codes with devices.NewUserCode, and retries on
// a code clash instead of answering 500.
func (p *Provider) deviceAuthorization(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context() // with the issuer (Provider.Handler)
	clientID, authenticated, err := p.requestClientID(r)
	if err != nil {
		op.RequestError(w, r, err, p.log)
		return
	}
	c, err := p.storage.clientByID(ctx, clientID)
	if err != nil {
		op.RequestError(w, r, err, p.log)
		return
	}
	if !op.ValidateGrantType(c, oidc.GrantTypeDeviceCode) {
		op.RequestError(w, r, oidc.ErrUnauthorizedClient().WithDescription("client may not use the device code grant"), p.log)
		return
	}
	if op.IsConfidentialType(c) && !authenticated && r.PostForm.Get("client_secret") != "" {
		// client_secret in the body (RFC 6749 §2.3.1), as x/oauth2's DeviceAuth sends it.
		if err := p.storage.AuthorizeClientIDSecret(ctx, clientID, r.PostForm.Get("client_secret")); err != nil {
			op.RequestError(w, r, err, p.log)
			return
		}
		authenticated = true
	}
	if op.IsConfidentialType(c) && !authenticated {
		op.RequestError(w, r, oidc.ErrInvalidClient().WithDescription("confidential client requires authentication"), p.log)
		return
	}
	ip := p.cfg.ClientIP(r)
	if refusal := policyRefusal(c.c.Policy, ip); refusal != nil {
		p.log.Info("device authorization refused by client policy", "client", clientID, "ip", ip, "reason", refusal.Description)
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusBadRequest, refusal)
		return
	}
	// The request's one parameter besides the client (RFC 8628 §3.1), read directly:
	// zitadel's reflection-driven form decoder cost a tenth of a request.
	scopes := strings.Fields(r.Form.Get("scope"))
	dr := deviceRequest{
		info: devices.DeviceInfo{
			Name:  clean(r.Form.Get(devices.ParamDeviceName)),
			Model: clean(r.Form.Get(devices.ParamDeviceModel)),
			Kind:  devices.ParseKind(strings.ToLower(strings.TrimSpace(r.Form.Get(devices.ParamDeviceKind)))),
		},
		ip: ip,
	}
	ctx = context.WithValue(ctx, deviceKey{}, dr)

	now := p.cfg.Now()
	deviceCode := newDeviceCode(now)
	expires := now.Add(p.cfg.DeviceCodeLifetime)
	var userCode string
	for attempt := 0; ; attempt++ {
		userCode, err = devices.NewUserCode()
		if err == nil {
			err = p.storage.StoreDeviceAuthorization(ctx, clientID, deviceCode, userCode, expires, scopes)
		}
		if err == nil {
			break
		}
		if errors.Is(err, op.ErrDuplicateUserCode) && attempt+1 < userCodeAttempts {
			continue
		}
		if errors.Is(err, store.ErrLimited) {
			// Too many requests from this address or client, or waiting overall. RFC 8628
			// defines no error for this endpoint; slow_down belongs to the token endpoint,
			// so the answer is HTTP 429 with RFC 6749's temporarily_unavailable.
			p.cfg.Metrics.LimitTrip(metrics.LimitDeviceAuths)
			p.log.WarnContext(r.Context(), "device authorizations limited", "client", clientID, "ip", dr.ip)
			w.Header().Set("Retry-After", strconv.Itoa(int(max(p.cfg.DeviceAuthCaps.Window, time.Second).Seconds())))
			w.Header().Set("Cache-Control", "no-store")
			writeJSON(w, http.StatusTooManyRequests, errTemporarilyUnavailable(
				"too many devices asked to link from this network or for this app; try again in a minute"))
			return
		}
		if errors.Is(err, store.ErrUnavailable) {
			// A passing storage fault (logged once by the store): the device asks again.
			w.Header().Set("Retry-After", "5")
			w.Header().Set("Cache-Control", "no-store")
			writeJSON(w, http.StatusServiceUnavailable, oidc.ErrServerError().
				WithDescription("linkd could not save just now; try again in a moment"))
			return
		}
		if r.Context().Err() != nil {
			// The device hung up while its request was stored (the store's error is
			// the cancelled transaction): nobody to answer, and no fault of linkd's.
			p.log.InfoContext(r.Context(), "device authorization abandoned by the device", "client", clientID)
			return
		}
		p.log.Error("device authorization failed", "client", clientID, "err", err)
		op.RequestError(w, r, op.NewStatusError(oidc.ErrServerError().WithDescription("could not start linking; try again"), http.StatusInternalServerError), p.log)
		return
	}
	p.cfg.Metrics.DeviceAuth(metrics.DeviceAuthStarted)
	shown := devices.FormatCode(userCode)
	verify := p.cfg.Issuer + devices.VerificationPath
	resp := oidc.DeviceAuthorizationResponse{
		DeviceCode:              deviceCode,
		UserCode:                shown,
		VerificationURI:         verify,
		VerificationURIComplete: verify + "?" + url.Values{devices.ParamUserCode: {shown}}.Encode(),
		ExpiresIn:               int(p.cfg.DeviceCodeLifetime.Seconds()),
		Interval:                int(p.cfg.PollInterval.Seconds()),
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(resp)
}

// policyRefusal is the answer to a device authorization its client's operator does not
// allow (store.ClientPolicy), or nil. Both refusals are RFC 6749 unauthorized_client
// (the error RFC 8628 §3.2 lets this endpoint give a client that may not use the
// grant), with a description that says why without naming the allowed networks.
func policyRefusal(p store.ClientPolicy, ip string) *oidc.Error {
	switch {
	case p.DeviceFlowOff:
		return oidc.ErrUnauthorizedClient().WithDescription("linking new devices is turned off for this app")
	case !links.NetworkAllowed(p, ip):
		return oidc.ErrUnauthorizedClient().WithDescription("this app may not link devices from this network")
	}
	return nil
}

// newDeviceCode makes a device code: 256 random bits after a prefix that orders codes
// by creation time (16 hex digits of now's Unix nanoseconds, and a dot). Device codes
// are opaque to devices (RFC 8628); the prefix lets a store that indexes them append
// new ones instead of writing a random page of its index for every request (see
// server/store/sqlite's deviceCodeKey). It reveals only when the code was made.
func newDeviceCode(now time.Time) string {
	return fmt.Sprintf("%016x.", uint64(now.UnixNano())) + randomToken(32)
}

// clean makes a label a device supplies (name, model) fit to show: the rule typed names
// follow (links.Label), with hidden characters dropped rather than refused so the device
// still links.
func clean(s string) string { return links.Label(s) }

// remoteIP is the host part of r.RemoteAddr, trusting no forwarding headers.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
