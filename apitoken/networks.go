package apitoken

import (
	"fmt"
	"net/netip"
	"strings"
)

// MaxAllowedIPs is the most networks a token's allowed_ips may list.
const MaxAllowedIPs = 20

// Networks are the client networks a token may be used from (allowed_ips);
// empty allows any. They are parsed once, when the token is read from the
// store, so that the request path only compares addresses.
type Networks []netip.Prefix

// ParseNetworks checks and normalises allowed_ips as a client gives them: at
// most MaxAllowedIPs CIDRs or single addresses, IPv4 or IPv6, each once. A
// single address becomes its /32 or /128. A CIDR with bits set past its
// prefix length (10.1.2.3/24) is refused rather than widened to its network:
// the writer may have meant the one address. Zones and IPv4-mapped IPv6
// addresses are refused too: the first is local to one host, and Caddy gives
// an IPv4 client's address in IPv4 form. The order is kept. None gives nil.
func ParseNetworks(list []string) (Networks, error) {
	if len(list) > MaxAllowedIPs {
		return nil, Errorf(ErrInvalid, "allowed_ips has %d entries; the limit is %d: cover several addresses with one CIDR (such as 198.51.100.0/24)", len(list), MaxAllowedIPs)
	}
	var out Networks
	for i, s := range list {
		p, err := parseNetwork(strings.TrimSpace(s))
		if err != nil {
			return nil, Errorf(ErrInvalid, "allowed_ips entry %d: %s", i+1, err)
		}
		for _, q := range out {
			if q == p {
				return nil, Errorf(ErrInvalid, "allowed_ips lists %s twice: give each network once", p)
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// maxQuoted bounds how much of a refused entry a message repeats.
const maxQuoted = 60

// parseNetwork reads one entry of allowed_ips; its error is a sentence for
// the person who wrote it.
func parseNetwork(s string) (netip.Prefix, error) {
	const examples = "such as 203.0.113.7, 198.51.100.0/24 or 2001:db8::/48"
	if s == "" {
		return netip.Prefix{}, fmt.Errorf("is empty; give an address or CIDR, %s", examples)
	}
	q := s
	if len(q) > maxQuoted {
		q = q[:maxQuoted] + "..."
	}
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an address or CIDR, %s", q, examples)
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an address or CIDR, %s", q, examples)
		}
		if a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q has a zone (%%%s), which only means something on one host; drop it", q, a.Zone())
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("%q is an IPv4-mapped IPv6 address; write the IPv4 form (such as %s)", q, p.Addr().Unmap())
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("%q has bits set past its /%d; write the network %s, or %s for the one address", q, p.Bits(), m, netip.PrefixFrom(p.Addr(), p.Addr().BitLen()))
	}
	return p, nil
}

// NetworksOf reads networks as the store keeps them (String). A stored form
// that does not read back is an error: the token must not lose its limit.
func NetworksOf(stored string) (Networks, error) {
	n, err := ParseNetworks(strings.Fields(stored))
	if err != nil {
		return nil, fmt.Errorf("reading stored allowed_ips %q: %s", stored, Message(err))
	}
	return n, nil
}

// String is the space-separated form the store keeps; "" for none.
func (n Networks) String() string { return n.join(" ") }

// Names lists the networks as CIDRs; an empty list (not nil) for none.
func (n Networks) Names() []string {
	out := make([]string, len(n))
	for i, p := range n {
		out[i] = p.String()
	}
	return out
}

// describe is the form of logs: the CIDRs, or "any" for none.
func (n Networks) describe() string {
	if len(n) == 0 {
		return "any"
	}
	return n.join(", ")
}

func (n Networks) join(sep string) string { return strings.Join(n.Names(), sep) }

// Allow reports whether a client at ip (Caddy's client IP, as text) may use
// a token limited to n. Any client may when n is empty; otherwise an address
// that does not parse may not. It does not allocate.
func (n Networks) Allow(ip string) bool {
	if len(n) == 0 {
		return true
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	// An IPv4 client seen through an IPv6 socket, or with a zone, is the
	// same client: Prefix.Contains matches neither form.
	a = a.Unmap().WithZone("")
	for _, p := range n {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
