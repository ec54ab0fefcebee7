//go:build !purego && !race

package wire

// sumLE is sumNEON, the assembly.
func sumLE(b []byte) uint64 { return sumNEON(b) }
