package links

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/store"
)

// List returns subject's linked devices, newest first.
func (s *Service) List(ctx context.Context, subject string) ([]Link, error) {
	grants, err := s.cfg.Store.ListGrants(ctx, subject, store.FlowDevice)
	if err != nil {
		return nil, fmt.Errorf("links: list devices: %w", err)
	}
	out := make([]Link, 0, len(grants))
	for _, g := range grants {
		l, err := s.link(ctx, g)
		if err != nil {
			return nil, fmt.Errorf("links: device of grant: %w", err)
		}
		out = append(out, l)
	}
	return out, nil
}

// Get returns subject's linked device id; ErrNotLinked for anything else.
func (s *Service) Get(ctx context.Context, subject, id string) (Link, error) {
	g, err := s.own(ctx, subject, id)
	if err != nil {
		return Link{}, err
	}
	l, err := s.link(ctx, g)
	if err != nil {
		return Link{}, fmt.Errorf("links: device: %w", err)
	}
	return l, nil
}

// Rename gives subject's linked device id a new name (which must pass CleanName, else
// a *NameError), tells the account's stream and logs it. ErrNotLinked when there is
// no such device.
func (s *Service) Rename(ctx context.Context, subject, id, name string) (Link, error) {
	name, err := CleanName(name)
	if err != nil {
		return Link{}, err
	}
	if _, err := s.own(ctx, subject, id); err != nil {
		return Link{}, err
	}
	g, err := s.cfg.Store.RenameGrant(ctx, subject, id, name)
	if errors.Is(err, store.ErrNotFound) {
		return Link{}, ErrNotLinked
	}
	if err != nil {
		return Link{}, fmt.Errorf("links: rename device: %w", err)
	}
	s.log.InfoContext(ctx, "device renamed", "subject", subject, "device", g.ID, "client", g.ClientID)
	l := s.saved(ctx, g)
	s.cfg.Events.PublishAccount(subject, devices.Event{Type: devices.EventRenamed, Device: l.Device})
	return l, nil
}

// Unlink removes subject's linked device id and every token of it at once, tells the
// account's stream and logs it. ErrNotLinked when there is no such device (or it was
// unlinked in the meantime).
func (s *Service) Unlink(ctx context.Context, subject, id string) (Link, error) {
	if _, err := s.own(ctx, subject, id); err != nil {
		return Link{}, err
	}
	return s.unlink(ctx, subject, id, "account")
}

// UnlinkSelf ends a device's own link when the device gives it up (it revoked its
// refresh token, RFC 7009): the same unlink as Unlink, logged and published to the
// account's stream, so the account's screens drop the device at once. clientID is the
// client the device authenticated as; ErrNotLinked when grant id is not a link of
// subject through that client (the app's own sign-in, or already gone).
func (s *Service) UnlinkSelf(ctx context.Context, clientID, subject, id string) (Link, error) {
	g, err := s.own(ctx, subject, id)
	if err != nil {
		return Link{}, err
	}
	if g.ClientID != clientID {
		return Link{}, ErrNotLinked
	}
	return s.unlink(ctx, subject, id, "device")
}

// UnlinkAll unlinks every device linked to subject (the app's own sign-ins stay), as
// Unlink does each one, and returns those it unlinked. On an error it stops and
// returns what it had unlinked so far with the error.
func (s *Service) UnlinkAll(ctx context.Context, subject string) ([]Link, error) {
	grants, err := s.cfg.Store.ListGrants(ctx, subject, store.FlowDevice)
	if err != nil {
		return nil, fmt.Errorf("links: list devices: %w", err)
	}
	var out []Link
	for _, g := range grants {
		l, err := s.unlink(ctx, subject, g.ID, "account")
		if errors.Is(err, ErrNotLinked) {
			continue // unlinked meanwhile, from another screen
		}
		if err != nil {
			return out, err
		}
		out = append(out, l)
	}
	return out, nil
}

// unlink deletes the grant; by says who asked ("account" or "device"), for the log.
func (s *Service) unlink(ctx context.Context, subject, id, by string) (Link, error) {
	g, err := s.cfg.Store.DeleteGrant(ctx, subject, id)
	if errors.Is(err, store.ErrNotFound) {
		return Link{}, ErrNotLinked
	}
	if err != nil {
		return Link{}, fmt.Errorf("links: unlink device: %w", err)
	}
	return s.unlinked(ctx, g, by), nil
}

// unlinked logs and publishes to its account's stream that grant g was deleted; by
// says who asked ("account", "device" or "idle").
func (s *Service) unlinked(ctx context.Context, g store.Grant, by string) Link {
	if by == "idle" {
		s.log.InfoContext(ctx, "device unlinked", "subject", g.Subject, "device", g.ID, "client", g.ClientID, "by", by,
			"last_used", g.LastUsed().UTC().Format(time.RFC3339))
	} else {
		s.log.InfoContext(ctx, "device unlinked", "subject", g.Subject, "device", g.ID, "client", g.ClientID, "by", by)
	}
	l := s.saved(ctx, g)
	s.cfg.Events.PublishAccount(g.Subject, devices.Event{Type: devices.EventUnlinked, Device: l.Device})
	return l
}

// own loads subject's device-flow grant id; ErrNotLinked for anything else (another
// account's grant, or the app's own sign-in grant).
func (s *Service) own(ctx context.Context, subject, id string) (store.Grant, error) {
	if subject == "" {
		return store.Grant{}, ErrNotLinked // "" would match any owner in the store
	}
	g, err := s.cfg.Store.GrantByID(ctx, subject, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (g.Flow != store.FlowDevice || g.Subject != subject)) {
		return store.Grant{}, ErrNotLinked
	}
	if err != nil {
		return store.Grant{}, fmt.Errorf("links: device by id: %w", err)
	}
	return g, nil
}
