package wire

import (
	"encoding/binary"
	"net/netip"
)

// IPv4HeaderLen is the length of an IPv4 header without options.
const IPv4HeaderLen = 20

// Byte offsets of the IPv4 header fields (RFC 791).
const (
	ipv4VerIHL   = 0  // version (high nibble), IHL in 32-bit words (low nibble)
	ipv4TOS      = 1  // type of service / DSCP+ECN
	ipv4TotalLen = 2  // 2 bytes
	ipv4ID       = 4  // 2 bytes
	ipv4FlagsOff = 6  // 2 bytes: flags (3 bits) and fragment offset (13 bits, 8-byte units)
	ipv4TTL      = 8  // time to live
	ipv4Proto    = 9  // protocol
	ipv4Checksum = 10 // 2 bytes
	ipv4Src      = 12 // 4 bytes
	ipv4Dst      = 16 // 4 bytes

	ipv4FlagDF      = 0x4000
	ipv4FlagMF      = 0x2000
	ipv4FragOffMask = 0x1fff
)

// IPv4 is a parsed IPv4 header.
type IPv4 struct {
	// TOS is the type-of-service byte (DSCP and ECN).
	TOS uint8
	// TotalLen is the total length field as parsed; Emit computes it from
	// the payload length instead of reading it.
	TotalLen uint16
	// ID is the identification field.
	ID uint16
	// DontFragment is the DF flag.
	DontFragment bool
	// MoreFragments is the MF flag.
	MoreFragments bool
	// FragOffset is the fragment offset in bytes (a multiple of 8).
	FragOffset uint16
	// TTL is the time to live.
	TTL uint8
	// Protocol is the upper-layer protocol (ProtoTCP, ProtoICMP, ...).
	Protocol uint8
	// Src and Dst are the 4-byte (Is4) source and destination addresses.
	Src, Dst netip.Addr
	// HeaderLen is the header length in bytes as parsed, options included
	// (options are skipped, not interpreted). Emit always writes
	// IPv4HeaderLen bytes and ignores this field.
	HeaderLen int
}

// ParseIPv4 parses the IPv4 packet in b. It validates the version, the IHL
// (at least 5 and within b), the total length (at least the header length and
// at most len(b); bytes after it are link-layer padding and are trimmed) and
// the header checksum. It returns the header and the payload, a subslice of b.
//
// A fragment (MF set or a non-zero offset) returns the parsed header and its
// payload together with ErrFragment.
func ParseIPv4(b []byte) (IPv4, []byte, error) {
	if len(b) < IPv4HeaderLen {
		return IPv4{}, nil, ErrTruncated
	}
	if b[ipv4VerIHL]>>4 != 4 {
		return IPv4{}, nil, ErrBadVersion
	}
	hl := int(b[ipv4VerIHL]&0x0f) * 4
	if hl < IPv4HeaderLen {
		return IPv4{}, nil, ErrBadHeaderLen
	}
	if hl > len(b) {
		return IPv4{}, nil, ErrTruncated
	}
	total := int(binary.BigEndian.Uint16(b[ipv4TotalLen:]))
	if total < hl {
		return IPv4{}, nil, ErrBadLength
	}
	if total > len(b) {
		return IPv4{}, nil, ErrTruncated
	}
	if FoldChecksum(Checksum(b[:hl], 0)) != 0 {
		return IPv4{}, nil, ErrBadChecksum
	}
	fo := binary.BigEndian.Uint16(b[ipv4FlagsOff:])
	h := IPv4{
		TOS:           b[ipv4TOS],
		TotalLen:      uint16(total),
		ID:            binary.BigEndian.Uint16(b[ipv4ID:]),
		DontFragment:  fo&ipv4FlagDF != 0,
		MoreFragments: fo&ipv4FlagMF != 0,
		FragOffset:    (fo & ipv4FragOffMask) * 8,
		TTL:           b[ipv4TTL],
		Protocol:      b[ipv4Proto],
		Src:           netip.AddrFrom4([4]byte(b[ipv4Src : ipv4Src+4])),
		Dst:           netip.AddrFrom4([4]byte(b[ipv4Dst : ipv4Dst+4])),
		HeaderLen:     hl,
	}
	payload := b[hl:total]
	if h.MoreFragments || h.FragOffset != 0 {
		return h, payload, ErrFragment
	}
	return h, payload, nil
}

// Emit writes a 20-byte IPv4 header without options for a payload of
// payloadLen bytes into b, computing the total length and the header
// checksum. It returns IPv4HeaderLen. It fails with ErrShortBuffer if b is
// shorter than IPv4HeaderLen, ErrBadAddress if Src or Dst is not a 4-byte
// address, and ErrBadValue if the total length exceeds 65535 or FragOffset is
// not a multiple of 8. h is not modified.
func (h *IPv4) Emit(b []byte, payloadLen int) (int, error) {
	return h.EmitWithOptions(b, nil, payloadLen)
}

// IPv4MaxOptionsLen is the most option bytes an IPv4 header holds (IHL 15).
const IPv4MaxOptionsLen = 40

// EmitWithOptions is Emit for a header that carries the options opts,
// written as they are after the fixed header (their length must be a
// multiple of 4, at most IPv4MaxOptionsLen, else ErrBadValue). It returns
// the header length, IPv4HeaderLen+len(opts). opts may already be in place
// at b[IPv4HeaderLen:].
func (h *IPv4) EmitWithOptions(b, opts []byte, payloadLen int) (int, error) {
	hl := IPv4HeaderLen + len(opts)
	if len(opts)%4 != 0 || len(opts) > IPv4MaxOptionsLen {
		return 0, ErrBadValue
	}
	if len(b) < hl {
		return 0, ErrShortBuffer
	}
	if !h.Src.Is4() || !h.Dst.Is4() {
		return 0, ErrBadAddress
	}
	if payloadLen < 0 || payloadLen > 0xffff-hl {
		return 0, ErrBadValue
	}
	if h.FragOffset%8 != 0 { // any multiple of 8 in a uint16 fits 13 bits
		return 0, ErrBadValue
	}
	b = b[:hl]
	copy(b[IPv4HeaderLen:], opts)
	b[ipv4VerIHL] = 4<<4 | byte(hl/4)
	b[ipv4TOS] = h.TOS
	binary.BigEndian.PutUint16(b[ipv4TotalLen:], uint16(hl+payloadLen))
	binary.BigEndian.PutUint16(b[ipv4ID:], h.ID)
	fo := h.FragOffset / 8
	if h.DontFragment {
		fo |= ipv4FlagDF
	}
	if h.MoreFragments {
		fo |= ipv4FlagMF
	}
	binary.BigEndian.PutUint16(b[ipv4FlagsOff:], fo)
	b[ipv4TTL] = h.TTL
	b[ipv4Proto] = h.Protocol
	binary.BigEndian.PutUint16(b[ipv4Checksum:], 0)
	src, dst := h.Src.As4(), h.Dst.As4()
	copy(b[ipv4Src:ipv4Src+4], src[:])
	copy(b[ipv4Dst:ipv4Dst+4], dst[:])
	binary.BigEndian.PutUint16(b[ipv4Checksum:], FoldChecksum(Checksum(b, 0)))
	return hl, nil
}
