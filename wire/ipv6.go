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
	p := b[IPv6HeaderLen : IPv6HeaderLen+plen]
	for range MaxIPv6ExtHeaders {
		switch h.NextHeader {
		case ProtoHopByHop, ProtoRouting, ProtoDestOpts:
			// Next Header (1), Hdr Ext Len (1, in 8-byte units
			// not counting the first 8).
			if len(p) < ipv6ExtMinLen {
				return IPv6{}, nil, ErrTruncated
			}
			n := (int(p[1]) + 1) * 8
			if n > len(p) {
				return IPv6{}, nil, ErrTruncated
			}
			h.NextHeader = p[0]
			p = p[n:]
		case ProtoFragment:
			if len(p) < ipv6ExtMinLen {
				return IPv6{}, nil, ErrTruncated
			}
			return h, p, ErrFragment
		default:
			return h, p, nil
		}
	}
	switch h.NextHeader {
	case ProtoHopByHop, ProtoRouting, ProtoDestOpts, ProtoFragment:
		return IPv6{}, nil, ErrBadExtHeader
	}
	return h, p, nil
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
