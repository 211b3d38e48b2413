package linkd

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ClientIP returns linkd's one way of telling who is calling, used by the provider, the
// API, the web pages and (through them) the links service's limits and records. The
// caller is the direct peer (r.RemoteAddr) unless that peer is in trusted (the
// reverse proxies given with --trusted-proxy): then X-Forwarded-For, or when absent
// the for= parameters of Forwarded, is read from the right, skipping trusted proxies,
// and the first address not in trusted is the caller. A client can prepend anything
// to those headers but cannot get past the hop the proxy itself appended. Headers
// from an untrusted peer are ignored. Configure the proxy to append to
// X-Forwarded-For (or, if it only writes Forwarded, to drop X-Forwarded-For).
func ClientIP(trusted []netip.Prefix) func(r *http.Request) string {
	trusted = append([]netip.Prefix(nil), trusted...)
	isTrusted := func(a netip.Addr) bool {
		for _, p := range trusted {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	return func(r *http.Request) string {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		peer, err := netip.ParseAddr(host)
		if err != nil || len(trusted) == 0 || !isTrusted(peer.Unmap()) {
			return host
		}
		hops := forwardedFor(r.Header)
		caller := peer.Unmap()
		for i := len(hops) - 1; i >= 0; i-- {
			a, ok := parseHop(hops[i])
			if !ok {
				break // an obfuscated or garbled hop: the last proxy that vouched is the caller
			}
			caller = a
			if !isTrusted(a) {
				break
			}
		}
		return caller.String()
	}
}

// forwardedFor lists the client addresses the proxies reported, oldest first:
// X-Forwarded-For when present, else Forwarded's for= parameters (RFC 7239).
func forwardedFor(h http.Header) []string {
	var hops []string
	if xff := h.Values("X-Forwarded-For"); len(xff) > 0 {
		for _, v := range xff {
			for _, hop := range strings.Split(v, ",") {
				hops = append(hops, strings.TrimSpace(hop))
			}
		}
		return hops
	}
	for _, v := range h.Values("Forwarded") {
		for _, elem := range strings.Split(v, ",") {
			for _, pair := range strings.Split(elem, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if ok && strings.EqualFold(strings.TrimSpace(k), "for") {
					hops = append(hops, strings.Trim(strings.TrimSpace(val), `"`))
				}
			}
		}
	}
	return hops
}

// parseHop reads one reported address: "192.0.2.1", "2001:db8::1", "[2001:db8::1]",
// or any of these with a port.
func parseHop(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); err == nil && a.Zone() == "" {
		return a.Unmap(), true
	}
	return netip.Addr{}, false
}

// ParseTrustedProxies reads --trusted-proxy values: CIDRs or single addresses,
// comma-separated.
func ParseTrustedProxies(values []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range values {
		for _, s := range strings.Split(v, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			if p, err := netip.ParsePrefix(s); err == nil {
				out = append(out, p.Masked())
				continue
			}
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, &net.ParseError{Type: "CIDR address", Text: s}
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return out, nil
}
