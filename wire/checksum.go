package wire

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// Checksum returns the one's-complement sum of b, read as big-endian 16-bit
// words (an odd trailing byte is padded with a zero byte), added to initial.
// The result is not complemented; it is folded to at most 0xffff so that
// several partial sums can be added together without overflow before the
// final FoldChecksum. When chaining calls over consecutive pieces of one
// message, every piece but the last must have an even length.
func Checksum(b []byte, initial uint32) uint32 {
	acc := uint64(initial)
	var carries uint64
	var c uint64
	// Main loop: 32 bytes per iteration as four 64-bit words with a
	// carry chain. A carry out of bit 63 is worth 2^64, which is 1 modulo
	// 0xffff, so carries are simply counted and added at the end.
	for len(b) >= 32 {
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[0:8]), 0)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[8:16]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[16:24]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[24:32]), c)
		carries += c
		b = b[32:]
	}
	for len(b) >= 8 {
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[0:8]), 0)
		carries += c
		b = b[8:]
	}
	if len(b) >= 4 {
		acc, c = bits.Add64(acc, uint64(binary.BigEndian.Uint32(b[0:4])), 0)
		carries += c
		b = b[4:]
	}
	if len(b) >= 2 {
		acc, c = bits.Add64(acc, uint64(binary.BigEndian.Uint16(b[0:2])), 0)
		carries += c
		b = b[2:]
	}
	if len(b) == 1 {
		acc, c = bits.Add64(acc, uint64(b[0])<<8, 0)
		carries += c
	}
	// Fold 64 -> 16 bits. 2^16 is 1 modulo 0xffff, so adding the 16-bit
	// pieces preserves the sum; folding keeps a non-zero value non-zero.
	s := (acc >> 32) + (acc & 0xffffffff) + carries // < 2^34
	s = (s >> 16) + (s & 0xffff)
	s = (s >> 16) + (s & 0xffff)
	s = (s >> 16) + (s & 0xffff)
	return uint32(s)
}

// FoldChecksum folds a partial sum to 16 bits and complements it, giving the
// value to store in a checksum field. A message whose stored checksum is
// correct sums (including the checksum field) to a value for which
// FoldChecksum returns 0.
func FoldChecksum(sum uint32) uint16 {
	s := (sum >> 16) + (sum & 0xffff)
	s = (s >> 16) + (s & 0xffff)
	return ^uint16(s)
}

// PseudoHeaderSum returns the partial sum of the pseudo-header used by TCP,
// UDP and ICMPv6 checksums: the IPv4 form (RFC 9293) when both addresses are
// IPv4, otherwise the IPv6 form (RFC 8200) over the 16-byte forms of the
// addresses. length is the upper-layer length (header plus payload).
func PseudoHeaderSum(src, dst netip.Addr, proto uint8, length int) uint32 {
	var s uint32
	if src.Is4() && dst.Is4() {
		a, d := src.As4(), dst.As4()
		s = uint32(a[0])<<8 | uint32(a[1])
		s += uint32(a[2])<<8 | uint32(a[3])
		s += uint32(d[0])<<8 | uint32(d[1])
		s += uint32(d[2])<<8 | uint32(d[3])
		s += uint32(proto)
		s += uint32(length) & 0xffff
		return s
	}
	a, d := src.As16(), dst.As16()
	for i := 0; i < 16; i += 2 {
		s += uint32(a[i])<<8 | uint32(a[i+1])
		s += uint32(d[i])<<8 | uint32(d[i+1])
	}
	s += uint32(length) >> 16
	s += uint32(length) & 0xffff
	s += uint32(proto)
	return s
}
