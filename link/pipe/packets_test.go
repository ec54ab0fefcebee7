package pipe

import "encoding/binary"

// The packets the multi-queue tests write (the steering itself is
// link.FlowQueue, tested in package link).

// ipv4Packet builds an IPv4 packet (20-byte header, no options) of protocol
// proto from src to dst, whose transport header starts with the two ports,
// followed by 16 more transport-header bytes and payload.
func ipv4Packet(src, dst [4]byte, proto byte, sport, dport uint16, payload []byte) []byte {
	p := make([]byte, 20+20+len(payload))
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:4], uint16(len(p)))
	p[8] = 64
	p[9] = proto
	copy(p[12:16], src[:])
	copy(p[16:20], dst[:])
	binary.BigEndian.PutUint16(p[20:22], sport)
	binary.BigEndian.PutUint16(p[22:24], dport)
	copy(p[40:], payload)
	return p
}

// ipv6Packet is ipv4Packet for IPv6 (40-byte header, next header proto).
func ipv6Packet(src, dst [16]byte, proto byte, sport, dport uint16, payload []byte) []byte {
	p := make([]byte, 40+20+len(payload))
	p[0] = 0x60
	binary.BigEndian.PutUint16(p[4:6], uint16(len(p)-40))
	p[6] = proto
	p[7] = 64
	copy(p[8:24], src[:])
	copy(p[24:40], dst[:])
	binary.BigEndian.PutUint16(p[40:42], sport)
	binary.BigEndian.PutUint16(p[42:44], dport)
	copy(p[60:], payload)
	return p
}

var (
	v4a = [4]byte{10, 0, 0, 1}
	v4b = [4]byte{10, 0, 0, 2}
	v6a = [16]byte{0: 0xfd, 15: 1}
	v6b = [16]byte{0: 0xfd, 15: 2}
)

// IP protocol numbers of the test packets.
const (
	protoTCP = 6
	protoUDP = 17
)
