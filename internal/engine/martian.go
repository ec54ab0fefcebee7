package engine

import "net/netip"

// Martians: packets whose addresses no packet arriving on a link may carry
// (RFC 1812 5.3.7, RFC 4291 2.5.5.2). Linux drops them in routing
// (ip_route_input_slow's martian source and destination, ip6_rcv_core) and
// logs them when log_martians is set; the stack drops them before any
// protocol sees them, counts them (SynstackInMartianSources,
// SynstackInMartianDestinations), and never answers: a SYN,ACK, RST or echo
// reply to a broadcast, a loopback or its own address would be a reflection
// an attacker could aim.
//
// Loopback addresses are martians unless the stack has a loopback address
// itself (a link standing in for lo), as Linux accepts them only on lo.

// martianSource reports whether a packet from src must be dropped: an
// unspecified, multicast, limited- or subnet-broadcast, 0.0.0.0/8,
// loopback, IPv4-mapped IPv6, or the stack's own address.
func (s *Host) martianSource(src netip.Addr) bool {
	// From one of our own addresses: looped back, or forged (a LAND
	// attack).
	return s.martianAddr(src) || s.isLocalAddr(src)
}

// martianDestination reports whether a packet to dst must be dropped: the
// addresses martianSource refuses, but the stack's own.
func (s *Host) martianDestination(dst netip.Addr) bool { return s.martianAddr(dst) }

// martianAddr reports whether a is no unicast address a host on a link may
// use: unspecified, multicast, 0.0.0.0/8, the limited broadcast or a
// subnet broadcast of the stack's prefixes, an IPv4-mapped IPv6 address in
// an IPv6 header, or loopback on a stack that has no loopback address.
func (s *Host) martianAddr(a netip.Addr) bool {
	switch {
	case !a.IsValid(), a.IsUnspecified(), a.IsMulticast(), a.Is4In6():
		return true
	case a.IsLoopback():
		return !s.loopback
	case a.Is4():
		if a.As4()[0] == 0 || a == limitedBroadcast {
			return true
		}
		for _, b := range s.broadcasts {
			if a == b {
				return true
			}
		}
	}
	return false
}

// limitedBroadcast is 255.255.255.255.
var limitedBroadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})

// subnetBroadcasts returns the subnet broadcast addresses of the IPv4
// prefixes among addrs that have one (/30 and wider), for martianAddr to
// compare with, packet after packet, without working them out again.
func subnetBroadcasts(addrs []netip.Prefix) []netip.Addr {
	var out []netip.Addr
	for _, p := range addrs {
		if p.Addr().Is4() && p.Bits() <= 30 {
			out = append(out, broadcastOf(p))
		}
	}
	return out
}

// broadcastOf is the subnet broadcast address of an IPv4 prefix: every
// host bit set.
func broadcastOf(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
