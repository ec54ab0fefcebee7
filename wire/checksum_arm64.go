//go:build !purego

package wire

// sumNEON returns the same value as sumGeneric(b), in assembly
// (checksum_arm64.s): inputs of 256 bytes or more have their whole 64-byte
// blocks summed with Advanced SIMD (every arm64 CPU has it), widening
// 32-bit words into 64-bit lanes, and the rest, or all of a shorter input,
// goes through a carry chain of ADCS, eight words a round.
//
// It is checked against the reference under emulation; its speed has not
// been measured on arm64 hardware (the project's machines are amd64). The
// purego build tag gives the pure-Go path, the same carry chain as the
// scalar part here; so does the race detector, which does not see what
// assembly reads, but the tests still call sumNEON.
//
//go:noescape
func sumNEON(b []byte) uint64
