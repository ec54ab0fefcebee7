package wire

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"testing"
)

func TestChecksumRFC1071(t *testing.T) {
	// The worked example of RFC 1071 section 3.
	b := []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}
	if got := Checksum(b, 0); got != 0xddf2 {
		t.Fatalf("Checksum = %#x, want 0xddf2", got)
	}
	if got := FoldChecksum(Checksum(b, 0)); got != 0x220d {
		t.Fatalf("FoldChecksum = %#x, want 0x220d", got)
	}
}

func TestChecksumMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 4000)
	for i := range 3000 {
		n := r.IntN(len(buf))
		if i < 200 {
			n = i // every small length, odd ones included
		}
		b := buf[:n]
		switch i % 3 {
		case 0:
			for j := range b {
				b[j] = byte(r.Uint32())
			}
		case 1: // all ones: maximal carries
			for j := range b {
				b[j] = 0xff
			}
		case 2:
			clear(b)
		}
		// Misaligned start.
		off := r.IntN(8)
		if off > n {
			off = n
		}
		b = b[off:]
		initial := r.Uint32()
		if i%5 == 0 {
			initial = 0
		}
		if i%7 == 0 {
			initial = 0xffffffff
		}
		got, want := Checksum(b, initial), refChecksum(b, initial)
		if got != want {
			t.Fatalf("len %d initial %#x: Checksum = %#x, reference %#x", len(b), initial, got, want)
		}
		if got > 0xffff {
			t.Fatalf("Checksum result %#x not folded", got)
		}
		// Chaining over an even split equals one pass.
		k := r.IntN(len(b)+1) &^ 1
		if c := Checksum(b[k:], Checksum(b[:k], initial)); c != got {
			t.Fatalf("len %d split %d: chained %#x, want %#x", len(b), k, c, got)
		}
	}
}

func TestFoldChecksum(t *testing.T) {
	for _, tc := range []struct {
		in   uint32
		want uint16
	}{
		{0, 0xffff},
		{0xffff, 0},
		{0x1fffe, 0},
		{0x12345, ^uint16(0x2346)},
		{0xffffffff, 0},
	} {
		if got := FoldChecksum(tc.in); got != tc.want {
			t.Errorf("FoldChecksum(%#x) = %#x, want %#x", tc.in, got, tc.want)
		}
	}
}

func TestPseudoHeaderSum(t *testing.T) {
	// IPv4: src, dst, zero, proto, length.
	ph := []byte{10, 0, 0, 1, 10, 0, 0, 2, 0, 6, 0x01, 0x02}
	if got, want := PseudoHeaderSum(v4a, v4b, 6, 0x102), refChecksum(ph, 0); refChecksum(nil, got) != want {
		t.Errorf("v4 pseudo-header sum %#x, want %#x", got, want)
	}
	// IPv6: src, dst, 32-bit length, 3 zero bytes, next header.
	s, d := v6a.As16(), v6b.As16()
	ph6 := append(append(s[:], d[:]...), 0, 1, 0x01, 0x02, 0, 0, 0, 58)
	if got, want := PseudoHeaderSum(v6a, v6b, 58, 0x10102), refChecksum(ph6, 0); refChecksum(nil, got) != want {
		t.Errorf("v6 pseudo-header sum %#x, want %#x", got, want)
	}
	// Mixed families fall back to the IPv6 form without panicking.
	_ = PseudoHeaderSum(v4a, v6b, 6, 20)
	_ = PseudoHeaderSum(netip.Addr{}, netip.Addr{}, 6, 20)
}

// checksumCopy copies as copy does and sums as Checksum does, for every
// length (odd ones, tails under a word), alignment, initial sum, and data
// from all zeros to all ones.
func TestChecksumCopy(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	src := make([]byte, 300)
	dst := make([]byte, 300)
	for trial := range 4000 {
		switch trial % 4 {
		case 0:
			clear(src)
		case 1:
			for i := range src {
				src[i] = 0xff
			}
		default:
			for i := range src {
				src[i] = byte(rng.Uint32())
			}
		}
		off := rng.IntN(8)
		n := rng.IntN(len(src) - off)
		dn := n
		if trial%7 == 0 {
			dn = rng.IntN(n + 1) // a shorter destination: copy's count
		}
		initial := uint32(rng.IntN(0x10000))
		if trial%5 == 0 {
			initial = 0
		}
		clear(dst)
		gotN, got := checksumCopy(dst[off:off+dn], src[off:off+n], initial)
		if gotN != dn {
			t.Fatalf("n=%d dst %d: copied %d", n, dn, gotN)
		}
		if !bytes.Equal(dst[off:off+dn], src[off:off+dn]) {
			t.Fatalf("n=%d off=%d: bytes differ", n, off)
		}
		if want := Checksum(src[off:off+dn], initial); FoldChecksum(got) != FoldChecksum(want) {
			t.Fatalf("trial %d n=%d off=%d initial %#x: sum %#x, Checksum says %#x", trial, dn, off, initial, got, want)
		}
	}
}

func BenchmarkChecksumCopy(b *testing.B) {
	for _, size := range []int{1460, 65483} {
		src := make([]byte, size)
		for i := range src {
			src[i] = byte(i * 7)
		}
		dst := make([]byte, size)
		b.Run(fmt.Sprintf("fused/%d", size), func(b *testing.B) {
			b.SetBytes(int64(size))
			var s uint32
			for b.Loop() {
				_, x := checksumCopy(dst, src, 0)
				s += x
			}
			_ = s
		})
		b.Run(fmt.Sprintf("copy-then-sum/%d", size), func(b *testing.B) {
			b.SetBytes(int64(size))
			var s uint32
			for b.Loop() {
				copy(dst, src)
				s += Checksum(dst, 0)
			}
			_ = s
		})
	}
}

// checksumCopy copies src to dst, as copy does, and returns the number of
// bytes copied and Checksum(src[:n], initial): one pass over the bytes
// instead of two. It lives here, not in the package, because it does not
// pay: BenchmarkChecksumCopy measures it slower than copy (memmove, with
// SIMD) followed by Checksum, on data in cache; so the stack copies, then
// sums. It is kept so that the measurement can be repeated.
//
// It sums the words in the machine's byte order and swaps the folded sum
// once at the end, which gives the same result (RFC 1071 2(B)): each
// 8-byte word is then loaded once, stored to dst and added.
func checksumCopy(dst, src []byte, initial uint32) (int, uint32) {
	n := min(len(dst), len(src))
	dst, src = dst[:n], src[:n]
	var acc, carries, c uint64
	for len(src) >= 32 && len(dst) >= 32 {
		w0 := binary.LittleEndian.Uint64(src[0:8])
		w1 := binary.LittleEndian.Uint64(src[8:16])
		w2 := binary.LittleEndian.Uint64(src[16:24])
		w3 := binary.LittleEndian.Uint64(src[24:32])
		binary.LittleEndian.PutUint64(dst[0:8], w0)
		binary.LittleEndian.PutUint64(dst[8:16], w1)
		binary.LittleEndian.PutUint64(dst[16:24], w2)
		binary.LittleEndian.PutUint64(dst[24:32], w3)
		acc, c = bits.Add64(acc, w0, 0)
		acc, c = bits.Add64(acc, w1, c)
		acc, c = bits.Add64(acc, w2, c)
		acc, c = bits.Add64(acc, w3, c)
		carries += c
		src, dst = src[32:], dst[32:]
	}
	for len(src) >= 8 && len(dst) >= 8 {
		w := binary.LittleEndian.Uint64(src[0:8])
		binary.LittleEndian.PutUint64(dst[0:8], w)
		acc, c = bits.Add64(acc, w, 0)
		carries += c
		src, dst = src[8:], dst[8:]
	}
	// The last 0 to 7 bytes: copied, then summed as little-endian words
	// with a trailing odd byte in the low half (the zero pad above it).
	copy(dst, src)
	for len(src) >= 2 {
		acc, c = bits.Add64(acc, uint64(binary.LittleEndian.Uint16(src[0:2])), 0)
		carries += c
		src = src[2:]
	}
	if len(src) == 1 {
		acc, c = bits.Add64(acc, uint64(src[0]), 0)
		carries += c
	}
	s := (acc >> 32) + (acc & 0xffffffff) + carries
	s = (s >> 16) + (s & 0xffff)
	s = (s >> 16) + (s & 0xffff)
	s = (s >> 16) + (s & 0xffff)
	s = uint64(bits.ReverseBytes16(uint16(s))) + uint64(initial)
	s = (s >> 16) + (s & 0xffff)
	s = (s >> 16) + (s & 0xffff)
	return n, uint32(s)
}
