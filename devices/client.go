package devices

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// maxResponse bounds how much of an answer the client reads.
const maxResponse = 4 << 20

// Client calls linkd's management API (DESIGN.md, "Management API"). Its HTTP
// client must carry the bearer token of the linkdesk app client, for instance
// auth.Session.HTTPClient(), which refreshes and saves tokens as needed.
type Client struct {
	base string // {issuer}/api/v1
	hc   *http.Client
}

// NewClient returns a client for the service at issuer that sends its
// requests with httpClient.
func NewClient(issuer string, httpClient *http.Client) *Client {
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	return &Client{base: strings.TrimRight(issuer, "/") + APIPrefix, hc: httpClient}
}

// Me returns the signed-in account.
func (c *Client) Me(ctx context.Context) (Me, error) {
	var me Me
	err := c.do(ctx, http.MethodGet, "/me", nil, &me)
	return me, err
}

// LinkRequest looks up the pending request a user code stands for. The code is
// normalised first, and bad input fails without a request (so it does not count
// against the brute-force limit).
func (c *Client) LinkRequest(ctx context.Context, code string) (LinkRequest, error) {
	var lr LinkRequest
	clean, err := NormalizeCode(code)
	if err != nil {
		return lr, err
	}
	err = c.do(ctx, http.MethodGet, "/link-requests/"+clean, nil, &lr)
	return lr, err
}

// Approve links the device waiting with code to the account, optionally
// naming it; the device's next poll gets its tokens.
func (c *Client) Approve(ctx context.Context, code, deviceName string) (Device, error) {
	return c.ApproveWith(ctx, code, ApproveRequest{DeviceName: deviceName})
}

// ApproveWith is Approve with the whole approval: a request from another network
// than the caller's needs req.ConfirmedInFront (the person's tick), else linkd
// answers CodeConfirmationRequired and the request stays pending.
func (c *Client) ApproveWith(ctx context.Context, code string, req ApproveRequest) (Device, error) {
	clean, err := NormalizeCode(code)
	if err != nil {
		return Device{}, err
	}
	var out ApproveResponse
	err = c.do(ctx, http.MethodPost, "/link-requests/"+clean+"/approve", req, &out)
	return out.Device, err
}

// Deny refuses the request; the device's next poll gets access_denied.
func (c *Client) Deny(ctx context.Context, code string) error {
	clean, err := NormalizeCode(code)
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodPost, "/link-requests/"+clean+"/deny", nil, nil)
}

// Devices lists the account's linked devices, newest first.
func (c *Client) Devices(ctx context.Context) ([]Device, error) {
	var out DeviceList
	err := c.do(ctx, http.MethodGet, "/devices", nil, &out)
	return out.Devices, err
}

// Device returns one linked device.
func (c *Client) Device(ctx context.Context, id string) (Device, error) {
	var d Device
	err := c.do(ctx, http.MethodGet, "/devices/"+url.PathEscape(id), nil, &d)
	return d, err
}

// Rename gives a linked device a new name.
func (c *Client) Rename(ctx context.Context, id, name string) (Device, error) {
	var d Device
	err := c.do(ctx, http.MethodPatch, "/devices/"+url.PathEscape(id), RenameRequest{Name: name}, &d)
	return d, err
}

// Unlink ends a link: every token of that device stops working at once.
func (c *Client) Unlink(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/devices/"+url.PathEscape(id), nil, nil)
}

// do sends one JSON request and decodes a 2xx answer into out (when not nil).
// Failures are an *APIError (the service answered), a *NetworkError (it
// could not be reached), or the transport's own error otherwise (an untrusted
// certificate, a sign-in that can no longer be refreshed), wrapped with the call.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	op := method + " " + APIPrefix + path
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return transportError(ctx, op, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return transportError(ctx, op, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return problemFromResponse(resp, b)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := jsonUnmarshal(b, out); err != nil {
		return &APIError{Status: resp.StatusCode, Code: CodeInternal, Title: "Unreadable answer", Detail: err.Error()}
	}
	return nil
}

// transportError classifies an error from http.Client.Do or reading a body.
func transportError(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return ctx.Err()
	}
	if isNetworkFailure(err) {
		return &NetworkError{Op: op, Err: err}
	}
	return fmt.Errorf("linkdesk API: %s: %w", op, err)
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// Nearby lists the link requests waiting on the caller's own network, newest first,
// without their codes. When the service has the list turned off it fails with an
// *APIError of code CodeNearbyOff.
func (c *Client) Nearby(ctx context.Context) ([]NearbyRequest, error) {
	var out NearbyList
	err := c.do(ctx, http.MethodGet, "/link-requests/nearby", nil, &out)
	return out.Requests, err
}

// NearbyChoices returns the three codes (XXXX-XXXX) offered for the nearby request
// id; one of them is the code its device shows.
func (c *Client) NearbyChoices(ctx context.Context, id string) ([]string, error) {
	var out NearbyChoices
	err := c.do(ctx, http.MethodGet, "/link-requests/nearby/"+url.PathEscape(id)+"/choices", nil, &out)
	return out.Choices, err
}

// PickNearby tells the service which code the device of nearby request id shows. A
// right pick returns the request to confirm (approve it with Approve and its
// UserCode); a wrong one ends the request and fails with CodeWrongPick.
func (c *Client) PickNearby(ctx context.Context, id, code string) (LinkRequest, error) {
	var lr LinkRequest
	err := c.do(ctx, http.MethodPost, "/link-requests/nearby/"+url.PathEscape(id)+"/pick", NearbyPick{UserCode: code}, &lr)
	return lr, err
}
