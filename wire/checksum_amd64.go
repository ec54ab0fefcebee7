//go:build !purego

package wire

import "golang.org/x/sys/cpu"

// useAVX2 says whether the assembly may use AVX2: the CPU has it and the
// operating system saves the YMM registers.
var useAVX2 = cpu.X86.HasAVX2

// checksumAsm is Checksum in assembly (checksum_amd64.s): inputs of 256
// bytes or more have their whole 64-byte blocks summed with AVX2 when the
// CPU has it, and the rest, or all of a shorter input, goes through a
// carry chain of ADCQ, eight words a round; the sum of little-endian words
// is then folded, swapped and added to initial as addSwapped does.
//
//go:noescape
func checksumAsm(b []byte, initial uint32) uint32

// copyChecksumAsm copies src to dst and returns Checksum(src, initial), in
// one pass: each word or vector that it sums it also stores. len(dst)
// must equal len(src) and the two must not overlap.
//
//go:noescape
func copyChecksumAsm(dst, src []byte, initial uint32) uint32
