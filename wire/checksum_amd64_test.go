//go:build !purego

package wire

import (
	"math/rand/v2"
	"testing"
)

// TestChecksumWithoutAVX2 runs the boundary lengths through the assembly
// as a CPU without AVX2 would: the carry chain alone.
func TestChecksumWithoutAVX2(t *testing.T) {
	if !useAVX2 {
		t.Skip("this CPU has no AVX2: every test already takes the scalar path")
	}
	useAVX2 = false
	defer func() { useAVX2 = true }()
	r := rand.New(rand.NewPCG(7, 8))
	buf := make([]byte, 65537+8)
	for _, n := range checksumLengths {
		for _, off := range []int{0, 1, 7} {
			b := buf[off : off+n]
			for p := range nPatterns {
				fillPattern(r, b, p)
				checkSum(t, b, off, 0xffff0001)
			}
		}
	}
}
