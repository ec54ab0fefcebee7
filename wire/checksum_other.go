//go:build purego || race || !amd64

package wire

// checksum is Checksum: the sum of little-endian words by sumLE (assembly
// on arm64, sumGeneric elsewhere), folded, swapped and added to initial.
func checksum(b []byte, initial uint32) uint32 {
	return addSwapped(sumLE(b), initial)
}

// copyChecksum is CopyChecksum for dst and src of the same length. Without
// a fused loop in assembly (there is one for amd64 only), memmove (wide
// vector moves) then the sum of dst, still in cache, is the fastest pair: a
// fused loop in Go measured slower on amd64.
func copyChecksum(dst, src []byte, initial uint32) uint32 {
	copy(dst, src)
	return checksum(dst, initial)
}
