package wire

import (
	"encoding/binary"
	"net/netip"
)

// ICMPHeaderLen is the length of the ICMP (v4 and v6) header: type, code,
// checksum and the 4-byte rest-of-header.
const ICMPHeaderLen = 8

// Byte offsets of the ICMP header fields (RFC 792, RFC 4443).
const (
	icmpType     = 0
	icmpCode     = 1
	icmpChecksum = 2 // 2 bytes
	icmpRest     = 4 // 4 bytes
)

// ICMPv4 types (RFC 792).
const (
	// ICMPv4EchoReply is Echo Reply.
	ICMPv4EchoReply = 0
	// ICMPv4DestUnreachable is Destination Unreachable.
	ICMPv4DestUnreachable = 3
	// ICMPv4EchoRequest is Echo Request.
	ICMPv4EchoRequest = 8
	// ICMPv4TimeExceeded is Time Exceeded.
	ICMPv4TimeExceeded = 11
)

// ICMPv4 Destination Unreachable codes (RFC 792, RFC 1191).
const (
	// ICMPv4NetUnreachable is "net unreachable".
	ICMPv4NetUnreachable = 0
	// ICMPv4HostUnreachable is "host unreachable".
	ICMPv4HostUnreachable = 1
	// ICMPv4ProtoUnreachable is "protocol unreachable".
	ICMPv4ProtoUnreachable = 2
	// ICMPv4PortUnreachable is "port unreachable".
	ICMPv4PortUnreachable = 3
	// ICMPv4FragNeeded is "fragmentation needed and DF set"; the next-hop
	// MTU is in the low 16 bits of Rest (RFC 1191).
	ICMPv4FragNeeded = 4
)

// ICMPv6 types (RFC 4443).
const (
	// ICMPv6DestUnreachable is Destination Unreachable.
	ICMPv6DestUnreachable = 1
	// ICMPv6PacketTooBig is Packet Too Big; the MTU is Rest.
	ICMPv6PacketTooBig = 2
	// ICMPv6TimeExceeded is Time Exceeded.
	ICMPv6TimeExceeded = 3
	// ICMPv6ParamProblem is Parameter Problem; the pointer is Rest.
	ICMPv6ParamProblem = 4
	// ICMPv6EchoRequest is Echo Request.
	ICMPv6EchoRequest = 128
	// ICMPv6EchoReply is Echo Reply.
	ICMPv6EchoReply = 129
)

// ICMPv6 Destination Unreachable codes (RFC 4443).
const (
	// ICMPv6NoRoute is "no route to destination".
	ICMPv6NoRoute = 0
	// ICMPv6AdminProhibited is "communication administratively prohibited".
	ICMPv6AdminProhibited = 1
	// ICMPv6AddrUnreachable is "address unreachable".
	ICMPv6AddrUnreachable = 3
	// ICMPv6PortUnreachable is "port unreachable".
	ICMPv6PortUnreachable = 4
)

// ICMP is a parsed ICMPv4 or ICMPv6 header.
type ICMP struct {
	// Type and Code are the message type and code.
	Type, Code uint8
	// Checksum is the checksum field as parsed; the Emit methods compute
	// it and ignore this field.
	Checksum uint16
	// Rest is bytes 4..7 of the header, big-endian: identifier and
	// sequence number for echo, the MTU for ICMPv4 fragmentation-needed
	// (low 16 bits) and ICMPv6 packet-too-big, the pointer for parameter
	// problem.
	Rest uint32
}

// EchoID returns the identifier of an echo request or reply (the high 16
// bits of Rest).
func (h *ICMP) EchoID() uint16 { return uint16(h.Rest >> 16) }

// EchoSeq returns the sequence number of an echo request or reply (the low
// 16 bits of Rest).
func (h *ICMP) EchoSeq() uint16 { return uint16(h.Rest) }

func parseICMP(b []byte, initial uint32) (ICMP, []byte, error) {
	if len(b) < ICMPHeaderLen {
		return ICMP{}, nil, ErrTruncated
	}
	if FoldChecksum(Checksum(b, initial)) != 0 {
		return ICMP{}, nil, ErrBadChecksum
	}
	h := ICMP{
		Type:     b[icmpType],
		Code:     b[icmpCode],
		Checksum: binary.BigEndian.Uint16(b[icmpChecksum:]),
		Rest:     binary.BigEndian.Uint32(b[icmpRest:]),
	}
	return h, b[ICMPHeaderLen:], nil
}

// ParseICMPv4 parses the ICMPv4 message in b (the whole IP payload), verifies
// its checksum, and returns the header and the body, a subslice of b.
func ParseICMPv4(b []byte) (ICMP, []byte, error) {
	return parseICMP(b, 0)
}

// ParseICMPv6 parses the ICMPv6 message in b (the whole upper-layer payload),
// verifies its checksum with the pseudo-header built from src and dst, and
// returns the header and the body, a subslice of b.
func ParseICMPv6(b []byte, src, dst netip.Addr) (ICMP, []byte, error) {
	return parseICMP(b, PseudoHeaderSum(src, dst, ProtoICMPv6, len(b)))
}

func (h *ICMP) emit(b, body []byte, v6 bool, src, dst netip.Addr) (int, error) {
	n := ICMPHeaderLen + len(body)
	if len(b) < n {
		return 0, ErrShortBuffer
	}
	b = b[:n]
	copy(b[ICMPHeaderLen:], body) // body may alias b[ICMPHeaderLen:]
	b[icmpType] = h.Type
	b[icmpCode] = h.Code
	binary.BigEndian.PutUint16(b[icmpChecksum:], 0)
	binary.BigEndian.PutUint32(b[icmpRest:], h.Rest)
	var initial uint32
	if v6 {
		initial = PseudoHeaderSum(src, dst, ProtoICMPv6, n)
	}
	binary.BigEndian.PutUint16(b[icmpChecksum:], FoldChecksum(Checksum(b, initial)))
	return n, nil
}

// EmitV4 writes the ICMPv4 header followed by body into b, computing the
// checksum, and returns the number of bytes written. body may already be in
// place at b[ICMPHeaderLen:]. It fails with ErrShortBuffer if b is too short.
func (h *ICMP) EmitV4(b []byte, body []byte) (int, error) {
	return h.emit(b, body, false, netip.Addr{}, netip.Addr{})
}

// EmitV6 writes the ICMPv6 header followed by body into b, computing the
// checksum with the pseudo-header built from src and dst, and returns the
// number of bytes written. body may already be in place at
// b[ICMPHeaderLen:]. It fails with ErrShortBuffer if b is too short and
// ErrBadAddress if src or dst is not an IPv6 address.
func (h *ICMP) EmitV6(b []byte, body []byte, src, dst netip.Addr) (int, error) {
	if !src.Is6() || !dst.Is6() {
		return 0, ErrBadAddress
	}
	return h.emit(b, body, true, src, dst)
}
