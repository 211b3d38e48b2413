package links

import (
	"context"
	"errors"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/store"
)

// Rendering turns stored records into the wire types the API, the event stream and the
// web pages show, so a device reads the same wherever a person sees it.

// client names a client. The built-in clients live in no store and show their display
// names; an unknown client (removed by the operator) shows its id. What it read is
// reused for a minute (clientNames).
func (s *Service) client(ctx context.Context, id string) (devices.ClientInfo, error) {
	now := s.cfg.Now()
	if info, ok := s.clientNames.get(id, now); ok {
		return info, nil
	}
	c, err := s.cfg.Store.ClientByID(ctx, id)
	var info devices.ClientInfo
	switch {
	case errors.Is(err, store.ErrNotFound):
		info = devices.ClientInfo{ID: id, Name: devices.ClientName(id)}
	case err != nil:
		return devices.ClientInfo{}, err
	default:
		info = devices.ClientInfo{ID: c.ID, Name: c.Name, LogoURI: c.LogoURI}
		if info.Name == "" {
			info.Name = devices.ClientName(c.ID)
		}
	}
	s.clientNames.put(id, info, now)
	return info, nil
}

// scopes pairs scope names with their plain-words descriptions.
func (s *Service) scopes(names []string) []devices.Scope {
	out := make([]devices.Scope, 0, len(names))
	for _, n := range names {
		desc := ""
		if s.cfg.DescribeScope != nil {
			desc = s.cfg.DescribeScope(n)
		}
		if desc == "" {
			desc = n
		}
		out = append(out, devices.Scope{Name: n, Description: desc})
	}
	return out
}

// link renders a grant as a linked device.
func (s *Service) link(ctx context.Context, g store.Grant) (Link, error) {
	c, err := s.client(ctx, g.ClientID)
	if err != nil {
		return Link{}, err
	}
	return Link{Grant: g, Device: s.device(g, devices.ClientInfo{ID: c.ID, Name: c.Name})}, nil
}

// saved renders a grant whose change the store has already saved: when its client
// cannot be read, the device is shown with the client's id as its name, so the change
// is still reported and published.
func (s *Service) saved(ctx context.Context, g store.Grant) Link {
	l, err := s.link(ctx, g)
	if err != nil {
		s.log.ErrorContext(ctx, "render changed device; showing it from the stored link", "device", g.ID, "err", err)
		return Link{Grant: g, Device: s.device(g, devices.ClientInfo{ID: g.ClientID, Name: devices.ClientName(g.ClientID)})}
	}
	return l
}

func (s *Service) device(g store.Grant, c devices.ClientInfo) devices.Device {
	d := devices.Device{
		ID:        g.ID,
		Name:      Label(g.Name), // stored before labels were cleaned on the way in
		Kind:      devices.ParseKind(string(g.Device.Kind)),
		Model:     Label(g.Device.Model),
		Client:    c,
		Scopes:    s.scopes(g.Scopes),
		LinkedAt:  g.CreatedAt.UTC(),
		LastIP:    g.LastIP,
		LastPlace: s.place(g.LastIP),
	}
	if !g.LastSeenAt.IsZero() {
		t := g.LastSeenAt.UTC()
		d.LastSeenAt = &t
	}
	return d
}

// place is ip's approximate place, zero without a location database.
func (s *Service) place(ip string) devices.Place {
	if s.cfg.Places == nil {
		return devices.Place{}
	}
	return s.cfg.Places.Place(ip)
}

// request renders a pending request as the person at c judges it.
func (s *Service) request(c Caller, d store.DeviceAuth, client devices.ClientInfo) Request {
	return Request{Auth: d, Client: client, Scopes: s.scopes(d.Scopes),
		SameNetwork: SameNetwork(d.RequestIP, c.IP), Place: s.place(d.RequestIP)}
}
