//go:build !purego

package wire

import "golang.org/x/sys/cpu"

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
