//go:build !purego

package wire

import (
	"math/rand/v2"
	"testing"
)

func init() {
	asmChecksum = checksumAsm
	asmCopyChecksum = copyChecksumAsm
}

// TestChecksumWithoutAVX2 runs the boundary lengths through the assembly
// as a CPU without AVX2 would: the carry chain alone.
func TestChecksumWithoutAVX2(t *testing.T) {
	withoutAVX2(t)
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

// TestCopyChecksumWithoutAVX2 copies the boundary lengths as on a CPU
// without AVX2: the carry chain, storing each word.
func TestCopyChecksumWithoutAVX2(t *testing.T) {
	withoutAVX2(t)
	r := rand.New(rand.NewPCG(15, 16))
	src := make([]byte, 65537+8)
	dst := make([]byte, 65537+8)
	for _, n := range checksumLengths {
		s := src[1 : 1+n]
		fillPattern(r, s, 2)
		checkCopy(t, dst[:n], s, 0xffff0001)
	}
}

// withoutAVX2 turns the AVX2 paths off until t ends, or skips t if they are
// off already.
func withoutAVX2(t *testing.T) {
	if !useAVX2 {
		t.Skip("this CPU has no AVX2: every test already takes the scalar path")
	}
	useAVX2 = false
	t.Cleanup(func() { useAVX2 = true })
}
