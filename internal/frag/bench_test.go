package frag

import (
	"testing"
)

// BenchmarkReassemble puts a 9,000-byte UDP datagram cut for a 1,500-byte
// MTU (7 fragments) back together, IPv4 and IPv6.
func BenchmarkReassemble(b *testing.B) {
	for _, fam := range []string{"ipv4", "ipv6"} {
		b.Run(fam, func(b *testing.B) {
			var f Fragmenter
			pkt := whole4(b, 1, pattern(9000))
			if fam == "ipv6" {
				pkt = whole6(b, pattern(9000), nil)
			}
			frags := fragments(b, &f, pkt, 1500, 1)
			r := NewReassembler(Config{})
			b.SetBytes(int64(len(pkt)))
			b.ReportAllocs()
			for b.Loop() {
				var res Result
				for _, p := range frags {
					res = r.Input(p, t0)
				}
				if res.Verdict != Done {
					b.Fatal(res.Verdict)
				}
			}
		})
	}
}

// BenchmarkFragment cuts the same datagram.
func BenchmarkFragment(b *testing.B) {
	var f Fragmenter
	pkt := whole4(b, 1, pattern(9000))
	emit := func(hdr, data []byte) error { return nil }
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	for b.Loop() {
		if err := f.FragmentIPv4(pkt, 1500, emit); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSteadyStateDoesNotAllocate: once its free lists are warm, reassembly
// (of MTU-sized fragments) and fragmentation allocate nothing.
func TestSteadyStateDoesNotAllocate(t *testing.T) {
	var f Fragmenter
	r := NewReassembler(Config{})
	for _, pkt := range [][]byte{whole4(t, 1, pattern(9000)), whole6(t, pattern(9000), nil)} {
		frags := fragments(t, &f, pkt, 1500, 1)
		emit := func(hdr, data []byte) error { return nil }
		allocs := testing.AllocsPerRun(100, func() {
			var res Result
			for _, p := range frags {
				res = r.Input(p, t0)
			}
			if res.Verdict != Done {
				t.Fatal(res.Verdict)
			}
			var err error
			if pkt[0]>>4 == 4 {
				err = f.FragmentIPv4(pkt, 1500, emit)
			} else {
				err = f.FragmentIPv6(pkt, 1500, 1, emit)
			}
			if err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Fatalf("%v allocations per datagram, want 0", allocs)
		}
	}
}
