package wire

import "encoding/binary"

// This file holds what fragmentation and reassembly need beyond the plain
// headers: the IPv6 Fragment header (RFC 8200 section 4.5), the split of an
// IPv6 packet into its unfragmentable and fragmentable parts, and IPv4
// headers with options, whose options later fragments carry only in part
// (RFC 791). The IPv4 fragment fields (ID, DF, MF, offset) are in IPv4.

// IPv6FragmentLen is the length of the IPv6 Fragment header.
const IPv6FragmentLen = 8

// Byte offsets of the IPv6 Fragment header fields (RFC 8200 section 4.5).
const (
	ipv6FragNextHdr = 0 // next header
	ipv6FragOffM    = 2 // 2 bytes: offset (13 bits, 8-byte units), Res (2), M (1)
	ipv6FragID      = 4 // 4 bytes: identification

	ipv6FragOffMask = 0xfff8 // the offset, already in bytes once masked
	ipv6FragM       = 0x0001
)

// IPv6Fragment is a parsed IPv6 Fragment header.
type IPv6Fragment struct {
	// NextHeader is the type of the header that starts the fragmentable
	// part (in every fragment, the first fragment's).
	NextHeader uint8
	// FragOffset is the offset of this fragment's data in the
	// fragmentable part, in bytes (a multiple of 8).
	FragOffset uint16
	// MoreFragments is the M flag.
	MoreFragments bool
	// ID is the identification, shared by the fragments of one packet.
	ID uint32
}

// Atomic reports whether the header is an atomic fragment: offset 0 and M
// clear, a whole packet in one fragment, which a receiver processes apart
// from any reassembly (RFC 6946).
func (h *IPv6Fragment) Atomic() bool { return h.FragOffset == 0 && !h.MoreFragments }

// ParseIPv6Fragment parses the Fragment header at the start of b (the
// payload ParseIPv6 returns with ErrFragment) and returns it and the
// fragment's data, a subslice of b. The two reserved fields are ignored,
// as RFC 8200 says.
func ParseIPv6Fragment(b []byte) (IPv6Fragment, []byte, error) {
	if len(b) < IPv6FragmentLen {
		return IPv6Fragment{}, nil, ErrTruncated
	}
	om := binary.BigEndian.Uint16(b[ipv6FragOffM:])
	h := IPv6Fragment{
		NextHeader:    b[ipv6FragNextHdr],
		FragOffset:    om & ipv6FragOffMask,
		MoreFragments: om&ipv6FragM != 0,
		ID:            binary.BigEndian.Uint32(b[ipv6FragID:]),
	}
	return h, b[IPv6FragmentLen:], nil
}

// Emit writes the 8-byte Fragment header into b, with zero reserved fields,
// and returns IPv6FragmentLen. It fails with ErrShortBuffer if b is too
// short and ErrBadValue if FragOffset is not a multiple of 8.
func (h *IPv6Fragment) Emit(b []byte) (int, error) {
	if len(b) < IPv6FragmentLen {
		return 0, ErrShortBuffer
	}
	if h.FragOffset%8 != 0 {
		return 0, ErrBadValue
	}
	om := h.FragOffset
	if h.MoreFragments {
		om |= ipv6FragM
	}
	b[ipv6FragNextHdr] = h.NextHeader
	b[1] = 0 // reserved
	binary.BigEndian.PutUint16(b[ipv6FragOffM:], om)
	binary.BigEndian.PutUint32(b[ipv6FragID:], h.ID)
	return IPv6FragmentLen, nil
}

// IPv6Unfragmentable splits the IPv6 packet pkt (fixed header included, as
// trimmed to its payload length) for fragmentation. The unfragmentable
// part, repeated in every fragment, is the IPv6 header with the extension
// headers the nodes on the path process: Hop-by-Hop Options and Routing,
// with any Destination Options header before a Routing header (RFC 8200
// section 4.5). It returns the part's length n (the Fragment header goes at
// pkt[n:]) and the offset in pkt of the Next Header field that is to name
// the Fragment header. It fails with ErrTruncated or ErrBadExtHeader as
// ParseIPv6 does, and with ErrFragment if pkt already holds a Fragment
// header.
func IPv6Unfragmentable(pkt []byte) (n, nextAt int, err error) {
	if len(pkt) < IPv6HeaderLen {
		return 0, 0, ErrTruncated
	}
	n, nextAt = IPv6HeaderLen, ipv6NextHdr
	typ, rest := pkt[ipv6NextHdr], pkt[IPv6HeaderLen:]
	for range MaxIPv6ExtHeaders {
		if !isIPv6SkippedExt(typ) {
			break
		}
		if len(rest) < ipv6ExtMinLen {
			return 0, 0, ErrTruncated
		}
		l := (int(rest[1]) + 1) * 8
		if l > len(rest) {
			return 0, 0, ErrTruncated
		}
		at := len(pkt) - len(rest)
		if typ != ProtoDestOpts {
			// Hop-by-Hop or Routing: the part reaches its end,
			// with the Destination Options before a Routing.
			n, nextAt = at+l, at
		}
		typ, rest = rest[0], rest[l:]
	}
	switch {
	case typ == ProtoFragment:
		return 0, 0, ErrFragment
	case isIPv6SkippedExt(typ):
		return 0, 0, ErrBadExtHeader
	}
	return n, nextAt, nil
}

// IPv4 option types that are one byte long (RFC 791).
const (
	ipv4OptEOL    = 0
	ipv4OptNOP    = 1
	ipv4OptCopied = 0x80 // the copied flag, high bit of the type
)

// IPv4FragmentOptions writes into dst (at least len(opts) bytes) the
// options a fragment other than the first carries, given the options opts
// of the datagram: those whose copied flag is set (RFC 791: security,
// source routes), the others overwritten with No Operation so that every
// fragment has the first's header length, as Linux does
// (ip_options_fragment). An End of Option List and what follows it are
// kept; a malformed option (length under 2 or past the end) and what
// follows it become No Operations. It returns len(opts).
func IPv4FragmentOptions(dst, opts []byte) int {
	dst = dst[:len(opts)]
	for i := 0; i < len(opts); {
		switch t := opts[i]; {
		case t == ipv4OptEOL:
			copy(dst[i:], opts[i:])
			return len(opts)
		case t == ipv4OptNOP:
			dst[i] = ipv4OptNOP
			i++
		case i+1 >= len(opts) || opts[i+1] < 2 || i+int(opts[i+1]) > len(opts):
			for ; i < len(opts); i++ {
				dst[i] = ipv4OptNOP
			}
		default:
			n := int(opts[i+1])
			if t&ipv4OptCopied != 0 {
				copy(dst[i:i+n], opts[i:i+n])
			} else {
				for j := i; j < i+n; j++ {
					dst[j] = ipv4OptNOP
				}
			}
			i += n
		}
	}
	return len(opts)
}
