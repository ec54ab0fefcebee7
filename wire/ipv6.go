package wire

import (
	"encoding/binary"
	"net/netip"
)

// IPv6HeaderLen is the length of the fixed IPv6 header.
const IPv6HeaderLen = 40

// Byte offsets of the IPv6 header fields (RFC 8200).
const (
	ipv6VerTCFL   = 0  // 4 bytes: version (4 bits), traffic class (8), flow label (20)
	ipv6PayLen    = 4  // 2 bytes
	ipv6NextHdr   = 6  // next header
	ipv6HopLimit  = 7  // hop limit
	ipv6Src       = 8  // 16 bytes
	ipv6Dst       = 24 // 16 bytes
	ipv6FlowMask  = 0x000fffff
	ipv6ExtMinLen = 8 // every extension header is a multiple of 8 bytes
)

// IPv6 extension header types (Next Header values) recognized by ParseIPv6.
const (
	// ProtoHopByHop is the IPv6 Hop-by-Hop Options header.
	ProtoHopByHop = 0
	// ProtoRouting is the IPv6 Routing header.
	ProtoRouting = 43
	// ProtoFragment is the IPv6 Fragment header.
	ProtoFragment = 44
	// ProtoNoNext is IPv6 "No Next Header".
	ProtoNoNext = 59
	// ProtoDestOpts is the IPv6 Destination Options header.
	ProtoDestOpts = 60
)

// MaxIPv6ExtHeaders is the most extension headers ParseIPv6 skips before
// giving up with ErrBadExtHeader.
const MaxIPv6ExtHeaders = 8

// IPv6 is a parsed IPv6 header.
type IPv6 struct {
	// TrafficClass is the traffic class byte (DSCP and ECN).
	TrafficClass uint8
	// FlowLabel is the 20-bit flow label.
	FlowLabel uint32
	// PayloadLen is the payload length field as parsed (extension headers
	// included); Emit computes it from its payloadLen argument.
	PayloadLen uint16
	// NextHeader is, after ParseIPv6, the upper-layer protocol found after
	// skipping extension headers (ProtoFragment for a fragment). Emit
	// writes it as the fixed header's Next Header field.
	NextHeader uint8
	// HopLimit is the hop limit.
	HopLimit uint8
	// Src and Dst are the 16-byte source and destination addresses.
	Src, Dst netip.Addr
}

// ParseIPv6 parses the IPv6 packet in b. It validates the version and the
// payload length (bytes after it are link-layer padding and are trimmed),
// skips Hop-by-Hop, Routing and Destination Options extension headers (at
// most MaxIPv6ExtHeaders, each length-checked), and returns the header and the
// upper-layer payload, a subslice of b.
//
// If a Fragment header is found, ParseIPv6 returns the header with NextHeader
// set to ProtoFragment, the payload starting at the Fragment header, and
// ErrFragment.
func ParseIPv6(b []byte) (IPv6, []byte, error) {
	if len(b) < IPv6HeaderLen {
		return IPv6{}, nil, ErrTruncated
	}
	w := binary.BigEndian.Uint32(b[ipv6VerTCFL:])
	if w>>28 != 6 {
		return IPv6{}, nil, ErrBadVersion
	}
	plen := int(binary.BigEndian.Uint16(b[ipv6PayLen:]))
	if IPv6HeaderLen+plen > len(b) {
		return IPv6{}, nil, ErrTruncated
	}
	h := IPv6{
		TrafficClass: uint8(w >> 20),
		FlowLabel:    w & ipv6FlowMask,
		PayloadLen:   uint16(plen),
		NextHeader:   b[ipv6NextHdr],
		HopLimit:     b[ipv6HopLimit],
		Src:          netip.AddrFrom16([16]byte(b[ipv6Src : ipv6Src+16])),
		Dst:          netip.AddrFrom16([16]byte(b[ipv6Dst : ipv6Dst+16])),
	}
	nh, _, p, err := SkipIPv6ExtHeaders(h.NextHeader, b[IPv6HeaderLen:IPv6HeaderLen+plen])
	if err != nil {
		return IPv6{}, nil, err
	}
	h.NextHeader = nh
	if nh == ProtoFragment {
		if len(p) < IPv6FragmentLen {
			return IPv6{}, nil, ErrTruncated
		}
		return h, p, ErrFragment
	}
	return h, p, nil
}

// isIPv6SkippedExt reports whether ParseIPv6 skips the extension header
// type nh (it stops at a Fragment header).
func isIPv6SkippedExt(nh uint8) bool {
	return nh == ProtoHopByHop || nh == ProtoRouting || nh == ProtoDestOpts
}

// SkipIPv6ExtHeaders skips the Hop-by-Hop, Routing and Destination Options
// headers at the start of b, the first of type next, each length-checked
// (ErrTruncated), at most MaxIPv6ExtHeaders of them (else ErrBadExtHeader).
// It returns the type of the first header it does not skip (an upper-layer
// protocol, ProtoFragment or ProtoNoNext), the offset in b of the Next
// Header field that names it (the first byte of the last header skipped;
// -1 if none was), and the rest of b from that header on.
//
// ParseIPv6 uses it after the fixed header; a reassembler uses it after a
// Fragment header, to check that a first fragment holds the whole header
// chain (RFC 8200 section 4.5, RFC 7112).
func SkipIPv6ExtHeaders(next uint8, b []byte) (nh uint8, at int, rest []byte, err error) {
	nh, at, rest = next, -1, b
	for range MaxIPv6ExtHeaders {
		if !isIPv6SkippedExt(nh) {
			return nh, at, rest, nil
		}
		// Next Header (1), Hdr Ext Len (1, in 8-byte units not
		// counting the first 8).
		if len(rest) < ipv6ExtMinLen {
			return 0, 0, nil, ErrTruncated
		}
		n := (int(rest[1]) + 1) * 8
		if n > len(rest) {
			return 0, 0, nil, ErrTruncated
		}
		at = len(b) - len(rest)
		nh = rest[0]
		rest = rest[n:]
	}
	if isIPv6SkippedExt(nh) || nh == ProtoFragment {
		return 0, 0, nil, ErrBadExtHeader
	}
	return nh, at, rest, nil
}

// Emit writes the 40-byte IPv6 header for a payload of payloadLen bytes into
// b, with NextHeader as set, and returns IPv6HeaderLen. It fails with
// ErrShortBuffer if b is too short, ErrBadAddress if Src or Dst is not an
// IPv6 address, and ErrBadValue if payloadLen exceeds 65535 or FlowLabel
// exceeds 20 bits. h is not modified.
func (h *IPv6) Emit(b []byte, payloadLen int) (int, error) {
	if len(b) < IPv6HeaderLen {
		return 0, ErrShortBuffer
	}
	if !h.Src.Is6() || !h.Dst.Is6() {
		return 0, ErrBadAddress
	}
	if payloadLen < 0 || payloadLen > 0xffff || h.FlowLabel > ipv6FlowMask {
		return 0, ErrBadValue
	}
	b = b[:IPv6HeaderLen]
	binary.BigEndian.PutUint32(b[ipv6VerTCFL:], 6<<28|uint32(h.TrafficClass)<<20|h.FlowLabel)
	binary.BigEndian.PutUint16(b[ipv6PayLen:], uint16(payloadLen))
	b[ipv6NextHdr] = h.NextHeader
	b[ipv6HopLimit] = h.HopLimit
	src, dst := h.Src.As16(), h.Dst.As16()
	copy(b[ipv6Src:ipv6Src+16], src[:])
	copy(b[ipv6Dst:ipv6Dst+16], dst[:])
	return IPv6HeaderLen, nil
}
