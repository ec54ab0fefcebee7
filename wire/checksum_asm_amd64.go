//go:build !purego && !race

package wire

import "unsafe"

// checksum is Checksum: the assembly. (With the race detector on, which
// does not see what assembly reads and writes, checksum_other.go's
// pure-Go path runs instead; the tests still call the assembly.)
func checksum(b []byte, initial uint32) uint32 {
	return checksumAsm(b, initial)
}

// copyChecksum is CopyChecksum for dst and src of the same length: in one
// pass unless the slices overlap, when memmove copies (as copy must) and
// then dst is summed.
func copyChecksum(dst, src []byte, initial uint32) uint32 {
	if overlap(dst, src) {
		copy(dst, src)
		return checksumAsm(dst, initial)
	}
	return copyChecksumAsm(dst, src, initial)
}

// overlap says whether a and b share any byte.
func overlap(a, b []byte) bool {
	pa := uintptr(unsafe.Pointer(unsafe.SliceData(a)))
	pb := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return pa < pb+uintptr(len(b)) && pb < pa+uintptr(len(a))
}
