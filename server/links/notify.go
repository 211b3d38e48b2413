package links

import (
	"context"

	"github.com/linkdesk/linkdesk/server/store"
)

// Notifier hears of every new link once the store has saved it, so the account's owner
// can be told by another way than the account's event stream (linkd's email notices).
// Linked must return at once and can never fail or hold up the link: it only queues.
type Notifier interface {
	Linked(n LinkNotice)
}

// LinkNotice is a new link as a Notifier hears of it.
type LinkNotice struct {
	Subject string // the account the device was linked to
	Link    Link   // the link, its Device.RequestIP set when known
}

// withRequestIP sets the address the device asked to be linked from on l's device, read
// from the approved request holding canon (linkd keeps no copy of it on the link), so
// the account's apps and the notifier can say where the new device is. A failed read
// leaves it empty: the link stands whatever happens here.
func (s *Service) withRequestIP(ctx context.Context, canon string, l Link) Link {
	if l.Device.RequestIP != "" {
		return l
	}
	d, err := s.cfg.Store.DeviceAuthByUserCode(ctx, canon)
	if err != nil {
		s.log.WarnContext(ctx, "read the approved link request's address", "device", l.Grant.ID, "err", err)
		return l
	}
	if d.GrantID == l.Grant.ID && d.State != store.DeviceAuthPending {
		l.Device.RequestIP = d.RequestIP
	}
	return l
}

// notify hands a new link to the configured Notifier, if any.
func (s *Service) notify(subject string, l Link) {
	if s.cfg.Notifier != nil {
		s.cfg.Notifier.Linked(LinkNotice{Subject: subject, Link: l})
	}
}
