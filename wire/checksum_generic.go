//go:build purego || race || !(amd64 || arm64)

package wire

// sumLE is sumGeneric where no assembly is written or none is wanted:
// every architecture but amd64 and arm64, and any with the purego build
// tag or the race detector (so that it sees every byte the sum reads). On
// arm64 that is a carry chain of ADDS/ADCS over eight words a round,
// which the compiler emits from bits.Add64.
func sumLE(b []byte) uint64 { return sumGeneric(b) }
