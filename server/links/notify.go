package links

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

// notify hands a new link to the configured Notifier, if any.
func (s *Service) notify(subject string, l Link) {
	if s.cfg.Notifier != nil {
		s.cfg.Notifier.Linked(LinkNotice{Subject: subject, Link: l})
	}
}
