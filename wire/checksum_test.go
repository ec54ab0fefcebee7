package wire

import (
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
