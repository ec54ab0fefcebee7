package wire

import "net/netip"

// IP is what IPv4 and IPv6 headers have in common, as ParseIP reads it.
type IP struct {
	// V6 reports an IPv6 packet.
	V6 bool
	// Protocol is the upper-layer protocol: IPv4's Protocol, or IPv6's
	// NextHeader after the extension headers.
	Protocol uint8
	// TTL is IPv4's TTL or IPv6's HopLimit.
	TTL uint8
	// Src and Dst are the source and destination addresses.
	Src, Dst netip.Addr
}

// ParseIP parses an IPv4 or IPv6 packet, chosen by the version in its first
// byte, with ParseIPv4 or ParseIPv6 (and their errors, ErrFragment with the
// header and payload among them). It returns the fields the two headers
// share and the payload. An empty packet, or a version other than 4 or 6,
// is ErrBadVersion.
func ParseIP(b []byte) (IP, []byte, error) {
	if len(b) == 0 {
		return IP{}, nil, ErrBadVersion
	}
	switch b[0] >> 4 {
	case 4:
		h, payload, err := ParseIPv4(b)
		return IP{Protocol: h.Protocol, TTL: h.TTL, Src: h.Src, Dst: h.Dst}, payload, err
	case 6:
		h, payload, err := ParseIPv6(b)
		return IP{V6: true, Protocol: h.NextHeader, TTL: h.HopLimit, Src: h.Src, Dst: h.Dst}, payload, err
	}
	return IP{}, nil, ErrBadVersion
}
