//go:build purego || !(amd64 || arm64)

package wire

// sumLE is sumGeneric where no assembly is written: every architecture but
// amd64 and arm64, and any with the purego build tag. On arm64 with purego
// that is a carry chain of ADDS/ADCS over eight words a round, which the
// compiler emits from bits.Add64.
func sumLE(b []byte) uint64 { return sumGeneric(b) }
