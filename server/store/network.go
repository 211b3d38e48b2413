package store

import (
	"net"
	"net/netip"
)

// NetworkKey is the network an address stands for when linkd asks "is this the same
// place": the address itself for IPv4, its /64 for IPv6 (one machine commonly holds a
// whole /64); IPv4-mapped addresses count as IPv4, and a port or zone is ignored. It
// is the one definition behind the code-lookup counters' address keys and the nearby
// device list; a string that is no address is its own key.
func NetworkKey(ip string) string {
	if host, _, err := net.SplitHostPort(ip); err == nil {
		ip = host
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}
