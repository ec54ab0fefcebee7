//go:build !purego

package wire

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

// useAVX2 says whether sumLE may use AVX2: the CPU has it and the
// operating system saves the YMM registers. Read by the assembly.
var useAVX2 = cpu.X86.HasAVX2

// sumLE returns the same value as sumGeneric(b), in assembly
// (checksum_amd64.s): inputs of 256 bytes or more have their whole 64-byte
// blocks summed with AVX2 when the CPU has it, and the rest, or all of a
// shorter input, goes through a carry chain of ADCQ, eight words a round.
//
//go:noescape
func sumLE(b []byte) uint64

// copySumAsm copies src to dst and returns sumLE(src), in one pass:
// each word or vector that it sums it also stores. len(dst) must equal
// len(src) and the two must not overlap.
//
//go:noescape
func copySumAsm(dst, src []byte) uint64

// copySumLE copies src to dst (of the same length) and returns sumLE(src):
// in one pass unless the slices overlap, when memmove copies (as copy
// must) and then dst is summed.
func copySumLE(dst, src []byte) uint64 {
	if overlap(dst, src) {
		copy(dst, src)
		return sumLE(dst)
	}
	return copySumAsm(dst, src)
}

// overlap says whether a and b, both non-empty, share any byte.
func overlap(a, b []byte) bool {
	pa := uintptr(unsafe.Pointer(unsafe.SliceData(a)))
	pb := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return pa < pb+uintptr(len(b)) && pb < pa+uintptr(len(a))
}
