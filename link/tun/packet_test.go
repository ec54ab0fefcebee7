//go:build linux

package tun

import (
	"encoding/binary"
	"net/netip"
)

// tcp4Packet is the header of a TCP segment over IPv4 from src:sport to
// dst:dport, as far as link.FlowQueue reads it: to choose ports by the
// queue the endpoint writes their flows to.
func tcp4Packet(src, dst netip.Addr, sport, dport uint16) []byte {
	p := make([]byte, 20+20)
	p[0], p[9] = 0x45, 6
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	copy(p[12:16], src.AsSlice())
	copy(p[16:20], dst.AsSlice())
	binary.BigEndian.PutUint16(p[20:], sport)
	binary.BigEndian.PutUint16(p[22:], dport)
	return p
}
