//go:build purego || !amd64

package wire

// sumLE is sumGeneric where no assembly is written (every architecture but
// amd64, and any with the purego build tag). On arm64 that is a carry chain
// of ADDS/ADCS over eight words per round, which the compiler emits from
// bits.Add64.
func sumLE(b []byte) uint64 { return sumGeneric(b) }

// copySumLE copies src to dst (of the same length) and returns
// sumLE(src). Without a fused loop in assembly, memmove (wide vector
// moves) and then the sum of dst, still in cache, is the fastest pair.
func copySumLE(dst, src []byte) uint64 {
	copy(dst, src)
	return sumLE(dst)
}
