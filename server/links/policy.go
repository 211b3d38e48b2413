package links

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/store"
)

// An operator's rules for one device client (store.ClientPolicy, set with linkd clients
// add/update) are judged here: where a device may ask from (the provider asks
// NetworkAllowed at device authorization), who may approve and how many links an account
// may have (policyCheck, inside the approving transaction), and how long an unused link
// lives (sweep.go).

// Errors of the client policy, returned by Approve. The request stays pending.
var (
	// ErrOtherNetwork: the client lets only an approver on the device's own network
	// (SameNetwork) approve, and the caller is elsewhere.
	ErrOtherNetwork = errors.New("links: approve from the device's network")
	// ErrTooManyDevices: the account already has as many links to the client as its
	// operator allows; errors.As gives a *TooManyDevicesError naming them.
	ErrTooManyDevices = errors.New("links: too many linked devices of this app")
)

// TooManyDevicesError refuses one link more than the client's MaxDevices; Linked are
// the account's links to that client, newest first, so the person can pick one to
// unlink first.
type TooManyDevicesError struct {
	ClientID string
	Max      int
	Linked   []Link
}

func (e *TooManyDevicesError) Error() string {
	return fmt.Sprintf("links: client %s allows %d linked devices per account", e.ClientID, e.Max)
}

// Is makes errors.Is(err, ErrTooManyDevices) true.
func (e *TooManyDevicesError) Is(target error) bool { return target == ErrTooManyDevices }

// policy returns clientID's policy; built-in and unknown clients have none.
func (s *Service) policy(ctx context.Context, clientID string) (store.ClientPolicy, error) {
	if clientID == devices.AppClientID || clientID == devices.KioskClientID {
		return store.ClientPolicy{}, nil
	}
	c, err := s.cfg.Store.ClientByID(ctx, clientID)
	if errors.Is(err, store.ErrNotFound) {
		return store.ClientPolicy{}, nil
	}
	if err != nil {
		return store.ClientPolicy{}, fmt.Errorf("links: client policy: %w", err)
	}
	return c.Policy, nil
}

// policyCheck is the approval check of the request's client policy: approval only
// from the device's network (ApproveSameNetwork) and at most MaxDevices links per
// account, counted inside the approving transaction so concurrent approvals cannot
// pass the cap together. Approve composes it with the other checks.
func (s *Service) policyCheck(ctx context.Context, c Caller) store.ApproveCheck {
	return func(d store.DeviceAuth, linked func() (int, error)) error {
		p, err := s.policy(ctx, d.ClientID)
		if err != nil {
			return err
		}
		if p.ApproveSameNetwork && !SameNetwork(d.RequestIP, c.IP) {
			return ErrOtherNetwork
		}
		if p.MaxDevices > 0 {
			n, err := linked()
			if err != nil {
				return err
			}
			if n >= p.MaxDevices {
				return &TooManyDevicesError{ClientID: d.ClientID, Max: p.MaxDevices}
			}
		}
		return nil
	}
}

// policyRefused turns a refusal of policyCheck into Approve's error, naming the
// account's links to the client for a *TooManyDevicesError, and logs it; it returns
// nil for any other outcome.
func (s *Service) policyRefused(ctx context.Context, c Caller, err error) error {
	var tooMany *TooManyDevicesError
	switch {
	case errors.Is(err, ErrOtherNetwork):
		s.log.InfoContext(ctx, "link refused by client policy", "subject", c.Subject, "reason", "approver on another network", "ip", c.IP)
		return err
	case errors.As(err, &tooMany):
		s.log.InfoContext(ctx, "link refused by client policy", "subject", c.Subject, "client", tooMany.ClientID,
			"reason", "max devices", "max", tooMany.Max)
		all, lerr := s.List(ctx, c.Subject)
		if lerr != nil {
			s.log.ErrorContext(ctx, "list devices for a max-devices refusal", "err", lerr)
		}
		for _, l := range all {
			if l.Grant.ClientID == tooMany.ClientID {
				tooMany.Linked = append(tooMany.Linked, l)
			}
		}
		return tooMany
	}
	return nil
}

// NetworkAllowed reports whether a device at ip may ask to link under p: anywhere when
// p names no networks, else only from one of p.AllowedNetworks. An address that does
// not parse is outside every network.
func NetworkAllowed(p store.ClientPolicy, ip string) bool {
	if len(p.AllowedNetworks) == 0 {
		return true
	}
	a, ok := parseIP(ip)
	if !ok {
		return false
	}
	a = a.Unmap()
	for _, n := range p.AllowedNetworks {
		if pr, err := netip.ParsePrefix(n); err == nil && pr.Contains(a) {
			return true
		}
	}
	return false
}

// ParseNetworks reads CIDRs (each item may be a comma-separated list; a bare address
// is its own /32 or /128) into their canonical masked form, for
// ClientPolicy.AllowedNetworks.
func ParseNetworks(items []string) ([]string, error) {
	var out []string
	for _, item := range items {
		for _, f := range strings.Split(item, ",") {
			f = strings.TrimSpace(f)
			if f == "" {
				continue
			}
			var p netip.Prefix
			if a, err := netip.ParseAddr(f); err == nil {
				p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
			} else if p, err = netip.ParsePrefix(f); err != nil {
				return nil, fmt.Errorf("%q is not a network (CIDR such as 192.0.2.0/24 or 2001:db8::/32)", f)
			}
			out = append(out, p.Masked().String())
		}
	}
	return out, nil
}
