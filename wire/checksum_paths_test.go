package wire

import (
	"math/rand/v2"
	"testing"
)

// checksumLengths are the lengths where a path of the summing code starts
// or stops: each side of the 8-, 16-, 32- and 64-byte steps of the carry
// chain, of the 256-byte start of the vector loop and of its 128-byte
// rounds, and of the largest IP datagram.
var checksumLengths = []int{
	0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 31, 32, 33, 39, 40, 41,
	63, 64, 65, 127, 128, 129, 191, 192, 193, 255, 256, 257, 319, 320, 321,
	383, 384, 385, 511, 512, 513, 1459, 1460, 1500, 1501, 4095, 4096, 4097,
	9000, 65535, 65536, 65537,
}

// checksumInitials are initial sums at the edges: none, one, a folded
// maximum, values that need one and two folds, and the largest.
var checksumInitials = []uint32{0, 1, 0xfffe, 0xffff, 0x10000, 0x1fffe, 0xffff0001, 0xffffffff}

// fillPattern fills b with pattern p: 0 zeros, 1 all ones (every add
// carries), 2 random bytes, 3 bytes of 0xff and 0x00 alternating (the
// halves of every word differ), 4 a single non-zero byte at a random
// place.
func fillPattern(r *rand.Rand, b []byte, p int) {
	switch p {
	case 0:
		clear(b)
	case 1:
		for i := range b {
			b[i] = 0xff
		}
	case 2:
		for i := range b {
			b[i] = byte(r.Uint32())
		}
	case 3:
		for i := range b {
			b[i] = byte(-(i & 1)) // 0x00, 0xff, ...
		}
	case 4:
		clear(b)
		if len(b) > 0 {
			b[r.IntN(len(b))] = byte(1 + r.IntN(255))
		}
	}
}

const nPatterns = 5

// asmChecksum is this GOARCH's assembly for Checksum, nil where there is
// none. The tests call it directly, so that it is checked also where
// Checksum does not take it (under the race detector).
var asmChecksum func(b []byte, initial uint32) uint32

// checkSum compares Checksum, the pure-Go path and the assembly on b with
// the reference.
func checkSum(t *testing.T, b []byte, off int, initial uint32) {
	t.Helper()
	want := refChecksum(b, initial)
	if got := Checksum(b, initial); got != want {
		t.Fatalf("len %d offset %d initial %#x: Checksum = %#x, reference %#x", len(b), off, initial, got, want)
	}
	if got := addSwapped(sumGeneric(b), initial); got != want {
		t.Fatalf("len %d offset %d initial %#x: pure Go sum = %#x, reference %#x", len(b), off, initial, got, want)
	}
	if asmChecksum == nil {
		return
	}
	if got := asmChecksum(b, initial); got != want {
		t.Fatalf("len %d offset %d initial %#x: assembly sum = %#x, reference %#x", len(b), off, initial, got, want)
	}
}

// TestChecksumBoundaries checks every length of checksumLengths at every
// start offset from 0 to 8 (the slice start at each alignment), with each
// data pattern and each initial sum.
func TestChecksumBoundaries(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	buf := make([]byte, 65537+8)
	for _, n := range checksumLengths {
		for off := range 9 {
			b := buf[off : off+n]
			for p := range nPatterns {
				fillPattern(r, b, p)
				for _, initial := range checksumInitials {
					checkSum(t, b, off, initial)
				}
			}
		}
	}
}

// TestChecksumLong checks inputs longer than the 1 MiB the vector loop
// takes at a time, all ones (the lanes' largest values) and random, at an
// odd start.
func TestChecksumLong(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	buf := make([]byte, 3<<20+200)
	for _, n := range []int{1 << 20, 1<<20 + 64, 1<<20 + 63, 2<<20 + 1, 3<<20 + 131} {
		for p := 1; p <= 2; p++ {
			b := buf[3 : 3+n]
			fillPattern(r, b, p)
			checkSum(t, b, 3, 0)
			checkSum(t, b, 3, 0xffffffff)
		}
	}
}

// FuzzChecksum compares Checksum and the pure-Go path with the reference
// for any bytes, start offset and initial sum, and checks that chaining
// over an even split gives the one-pass result.
func FuzzChecksum(f *testing.F) {
	f.Add([]byte{}, uint8(0), uint32(0))
	f.Add([]byte{0xff}, uint8(0), uint32(0xffff))
	f.Add(make([]byte, 300), uint8(3), uint32(0xffffffff))
	long := make([]byte, 1000)
	for i := range long {
		long[i] = 0xff
	}
	f.Add(long, uint8(1), uint32(1))
	f.Fuzz(func(t *testing.T, data []byte, off uint8, initial uint32) {
		b := data[min(int(off), len(data)):]
		checkSum(t, b, int(off), initial)
		k := int(initial%uint32(len(b)+1)) &^ 1
		if got, want := Checksum(b[k:], Checksum(b[:k], initial)), Checksum(b, initial); got != want {
			t.Fatalf("len %d split at %d: chained %#x, one pass %#x", len(b), k, got, want)
		}
	})
}
