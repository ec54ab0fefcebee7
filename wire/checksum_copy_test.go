package wire

import (
	"bytes"
	"math/rand/v2"
	"strconv"
	"testing"
)

// checkCopy runs CopyChecksum from src into dst and checks it against copy
// and the reference sum: the count, the bytes copied, dst untouched past
// them, and the sum.
func checkCopy(t *testing.T, dst, src []byte, initial uint32) {
	t.Helper()
	want := bytes.Clone(dst)
	wantN := copy(want, src)
	wantSum := refChecksum(src[:wantN], initial)
	n, sum := CopyChecksum(dst, src, initial)
	if n != wantN {
		t.Fatalf("dst %d src %d: copied %d, want %d", len(dst), len(src), n, wantN)
	}
	if !bytes.Equal(dst, want) {
		t.Fatalf("dst %d src %d: dst differs from what copy writes", len(dst), len(src))
	}
	if sum != wantSum {
		t.Fatalf("dst %d src %d initial %#x: sum %#x, reference %#x", len(dst), len(src), initial, sum, wantSum)
	}
	if asmCopyChecksum == nil {
		return
	}
	d := make([]byte, n)
	if sum := asmCopyChecksum(d, src[:n], initial); sum != wantSum || !bytes.Equal(d, src[:n]) {
		t.Fatalf("dst %d src %d initial %#x: assembly sum %#x (reference %#x), bytes equal: %v", len(dst), len(src), initial, sum, wantSum, bytes.Equal(d, src[:n]))
	}
}

// asmCopyChecksum is this GOARCH's assembly for CopyChecksum on slices of
// one length that do not overlap, nil where there is none; called directly
// like asmChecksum.
var asmCopyChecksum func(dst, src []byte, initial uint32) uint32

// TestCopyChecksum copies every boundary length, at start offsets that
// put source and destination at different alignments, from each data
// pattern, with a destination as long, shorter and longer.
func TestCopyChecksum(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	src := make([]byte, 65537+8)
	dst := make([]byte, 65537+8+64)
	for _, n := range checksumLengths {
		for _, off := range [][2]int{{0, 0}, {1, 0}, {0, 3}, {5, 7}} {
			s := src[off[0] : off[0]+n]
			for p := range nPatterns {
				fillPattern(r, s, p)
				fillPattern(r, dst, 2)
				initial := checksumInitials[(n+p)%len(checksumInitials)]
				checkCopy(t, dst[off[1]:off[1]+n], s, initial)
				checkCopy(t, dst[off[1]:off[1]+n+61], s, initial)
				checkCopy(t, dst[off[1]:off[1]+n/2], s, initial)
			}
		}
	}
}

// TestCopyChecksumOverlap copies within one buffer, forward and backward
// by small and large steps: the result is copy's, and the sum is of the
// bytes as they were in src.
func TestCopyChecksumOverlap(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	buf := make([]byte, 5000)
	for _, n := range []int{7, 64, 255, 256, 1000, 4096} {
		for _, step := range []int{-200, -64, -1, 0, 1, 3, 64, 200} {
			fillPattern(r, buf, 2)
			so := 500
			s := buf[so : so+n]
			d := buf[so+step : so+step+n]
			want := bytes.Clone(buf)
			copy(want[so+step:so+step+n], want[so:so+n])
			wantSum := refChecksum(s, 0x1234)
			m, sum := CopyChecksum(d, s, 0x1234)
			if m != n || !bytes.Equal(buf, want) {
				t.Fatalf("n %d step %d: copied %d, bytes differ from copy's: %v", n, step, m, !bytes.Equal(buf, want))
			}
			if sum != wantSum {
				t.Fatalf("n %d step %d: sum %#x, reference %#x", n, step, sum, wantSum)
			}
		}
	}
}

// TestCopyChecksumLong copies more than the 1 MiB the vector loop takes at
// a time, all ones and random, at odd offsets.
func TestCopyChecksumLong(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	src := make([]byte, 3<<20+200)
	dst := make([]byte, 3<<20+200)
	for _, n := range []int{1 << 20, 1<<20 + 65, 3<<20 + 131} {
		for p := 1; p <= 2; p++ {
			fillPattern(r, src, p)
			checkCopy(t, dst[1:1+n], src[3:3+n], 0xffffffff)
		}
	}
}

// FuzzCopyChecksum checks CopyChecksum against copy and the reference for
// any bytes, source and destination offsets, destination length and
// initial sum.
func FuzzCopyChecksum(f *testing.F) {
	f.Add(make([]byte, 300), uint8(1), uint8(2), uint16(300), uint32(0))
	f.Add([]byte{0xff, 0xff, 0xff}, uint8(0), uint8(0), uint16(2), uint32(0xffff))
	f.Fuzz(func(t *testing.T, data []byte, soff, doff uint8, dlen uint16, initial uint32) {
		src := data[min(int(soff), len(data)):]
		dst := make([]byte, int(doff)+int(dlen))
		for i := range dst {
			dst[i] = byte(i)
		}
		checkCopy(t, dst[doff:], src, initial)
	})
}

// BenchmarkCopyChecksum copies and sums a payload at each benchmark size,
// fused in CopyChecksum and as copy then Checksum, in turns on the same
// buffers (see alternate), and reports the GB/s of each and the ratio.
func BenchmarkCopyChecksum(b *testing.B) {
	for _, n := range benchSizes {
		src := benchData(n)
		dst := make([]byte, n)
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			var s uint32
			alternate(b, n, "fused", func(reps int) {
				for range reps {
					_, x := CopyChecksum(dst, src, 0)
					s += x
				}
			}, "copy+sum", func(reps int) {
				for range reps {
					copy(dst, src)
					s += Checksum(dst, 0)
				}
			})
			sink = s
		})
	}
}
