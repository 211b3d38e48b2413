package api

import (
	"context"
	"errors"
	"time"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/store"
)

// Renderer turns stored records into the wire types that the API, the events stream
// and the web pages show, so a device reads the same wherever a person sees it.
type Renderer struct {
	Store         store.Store
	DescribeScope func(string) string // nil shows scope names as they are
}

// Client names a client; an unknown client (removed by the operator) shows its id.
func (r Renderer) Client(ctx context.Context, id string) (devices.ClientInfo, error) {
	c, err := r.Store.ClientByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return devices.ClientInfo{ID: id, Name: id}, nil
	}
	if err != nil {
		return devices.ClientInfo{}, err
	}
	name := c.Name
	if name == "" {
		name = c.ID
	}
	return devices.ClientInfo{ID: c.ID, Name: name, LogoURI: c.LogoURI}, nil
}

// Scopes pairs scope names with their plain-words descriptions.
func (r Renderer) Scopes(names []string) []devices.Scope {
	out := make([]devices.Scope, 0, len(names))
	for _, n := range names {
		desc := ""
		if r.DescribeScope != nil {
			desc = r.DescribeScope(n)
		}
		if desc == "" {
			desc = n
		}
		out = append(out, devices.Scope{Name: n, Description: desc})
	}
	return out
}

// Device renders a grant as a linked Device.
func (r Renderer) Device(ctx context.Context, g store.Grant) (devices.Device, error) {
	c, err := r.Client(ctx, g.ClientID)
	if err != nil {
		return devices.Device{}, err
	}
	d := devices.Device{
		ID:       g.ID,
		Name:     g.Name,
		Kind:     devices.ParseKind(string(g.Device.Kind)),
		Model:    g.Device.Model,
		Client:   devices.ClientInfo{ID: c.ID, Name: c.Name},
		Scopes:   r.Scopes(g.Scopes),
		LinkedAt: g.CreatedAt.UTC(),
		LastIP:   g.LastIP,
	}
	if !g.LastSeenAt.IsZero() {
		t := g.LastSeenAt.UTC()
		d.LastSeenAt = &t
	}
	return d, nil
}

// PendingDeviceAuth reads a device authorization by canonical user code and turns one
// that is no longer pending, or has expired at now, into store.ErrAlreadyUsed or
// store.ErrExpired, so the API and the web pages judge a code the same way.
func PendingDeviceAuth(ctx context.Context, st store.Store, now time.Time, code string) (store.DeviceAuth, error) {
	d, err := st.DeviceAuthByUserCode(ctx, code)
	if err != nil {
		return d, err
	}
	if d.State != store.DeviceAuthPending {
		return d, store.ErrAlreadyUsed
	}
	if !now.Before(d.ExpiresAt) {
		return d, store.ErrExpired
	}
	return d, nil
}
