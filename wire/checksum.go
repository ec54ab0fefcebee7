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
// final FoldChecksum. It is zero only when initial and every byte of b are
// zero. When chaining calls over consecutive pieces of one message, every
// piece but the last must have an even length.
//
// The bytes are summed as little-endian 64-bit words and the folded sum is
// byte-swapped once at the end, which gives the same result (RFC 1071,
// section 2(B)). On amd64 and arm64 that is done in assembly, with the
// bulk of a long b in vector registers (checksum_amd64.go,
// checksum_arm64.go); elsewhere by sumGeneric, and so with the purego
// build tag, and with the race detector on, which sees the memory that Go
// code reads and writes but not what assembly does.
func Checksum(b []byte, initial uint32) uint32 {
	return checksum(b, initial)
}

// addSwapped folds sum, a sum of little-endian words, to 16 bits, swaps it
// to network order and adds initial, folding again.
func addSwapped(sum uint64, initial uint32) uint32 {
	s := uint64(bits.ReverseBytes16(fold16(sum)))
	return uint32(fold16(s + uint64(initial)))
}

// fold16 folds x to 16 bits with end-around carry: the result is congruent
// to x modulo 0xffff, and is zero only when x is. Adding a 64-bit value to
// itself rotated by half its width puts the end-around sum of the halves
// in the upper half.
func fold16(x uint64) uint16 {
	y := uint32((x + bits.RotateLeft64(x, 32)) >> 32)
	return uint16((y + bits.RotateLeft32(y, 16)) >> 16)
}

// add4 adds the four little-endian 64-bit words of b (32 bytes) and the
// carry c to acc, returning the sum and the carry out.
func add4(acc, c uint64, b []byte) (uint64, uint64) {
	b = b[:32]
	acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b[0:8]), c)
	acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b[8:16]), c)
	acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b[16:24]), c)
	return bits.Add64(acc, binary.LittleEndian.Uint64(b[24:32]), c)
}

// addCarry adds a and b with end-around carry: a carry out of bit 63 is
// worth 2^64, which is 1 modulo 0xffff. The result is zero only when a and
// b are.
func addCarry(a, b uint64) uint64 {
	s, c := bits.Add64(a, b, 0)
	return s + c
}

// sumGeneric returns the sum of b read as little-endian 16-bit words (an
// odd trailing byte is the low byte of its word), reduced modulo 0xffff
// only as far as it must be to fit 64 bits: congruent to the true sum, and
// zero only when every byte is zero. It is the pure-Go path (every
// GOARCH but amd64 and arm64, and any with the purego tag or the race
// detector); the tests hold the assembly to it and to a simple reference.
//
// The main loop adds eight 64-bit words per round in one carry chain; the
// carry out of each round is counted and added at the end.
func sumGeneric(b []byte) uint64 {
	var acc, carries, c uint64
	for len(b) >= 64 {
		acc, c = add4(acc, 0, b[0:32])
		acc, c = add4(acc, c, b[32:64])
		carries += c
		b = b[64:]
	}
	if len(b) >= 32 {
		acc, c = add4(acc, 0, b[0:32])
		carries += c
		b = b[32:]
	}
	if len(b) >= 16 {
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b[0:8]), 0)
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b[8:16]), c)
		carries += c
		b = b[16:]
	}
	if len(b) >= 8 {
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b[0:8]), 0)
		carries += c
		b = b[8:]
	}
	// The last 0 to 7 bytes make one word; a 16-bit word at any even byte
	// offset of it has its place value congruent to 1 modulo 0xffff.
	var w uint64
	if len(b) >= 4 {
		w = uint64(binary.LittleEndian.Uint32(b[0:4]))
		b = b[4:]
	}
	if len(b) >= 2 {
		w |= uint64(binary.LittleEndian.Uint16(b[0:2])) << 32
		b = b[2:]
	}
	if len(b) == 1 {
		w |= uint64(b[0]) << 48
	}
	acc, c = bits.Add64(acc, w, 0)
	return addCarry(acc, carries+c)
}

// CopyChecksum copies src into dst, as copy does, and returns the number
// of bytes copied, n = min(len(dst), len(src)), and Checksum(src[:n],
// initial): the sum of what was copied, with the payload read once. dst and
// src may overlap; the sum is then of the bytes as copied. For a payload
// copied and summed in pieces, every piece but the last must have an even
// length, as with Checksum.
//
// On amd64 the copy and the sum are one loop in assembly, which stores
// each word or vector it sums; elsewhere, when dst and src overlap, and
// with the purego tag or the race detector, it is copy then Checksum of
// dst while dst is in cache.
func CopyChecksum(dst, src []byte, initial uint32) (n int, sum uint32) {
	n = min(len(dst), len(src))
	return n, copyChecksum(dst[:n], src[:n], initial)
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
