//go:build purego || !amd64

package wire

// copySumLE copies src to dst (of the same length) and returns
// sumLE(src). Without a fused loop in assembly (there is one for amd64
// only), memmove (wide vector moves) and then the sum of dst, still in
// cache, is the fastest pair: a fused loop in Go measured slower on amd64.
func copySumLE(dst, src []byte) uint64 {
	copy(dst, src)
	return sumLE(dst)
}
