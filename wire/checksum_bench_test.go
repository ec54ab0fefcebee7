package wire

import (
	"strconv"
	"testing"
	"time"
)

// benchSizes are the lengths the checksum benchmarks run at: headers,
// small segments, MSS and MTU payloads, pages, jumbo frames and the
// largest IP datagram.
var benchSizes = []int{40, 64, 128, 256, 512, 1460, 1500, 4096, 9000, 16384, 65536}

// benchData returns n bytes of varied data.
func benchData(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

func BenchmarkChecksum(b *testing.B) {
	for _, n := range benchSizes {
		buf := benchData(n)
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			var s uint32
			for b.Loop() {
				s += Checksum(buf, 0)
			}
			sink = s
		})
	}
}

var sink uint32

// alternate measures two ways of doing the same work on n bytes, f and g,
// in turns of about 64 KiB each (reps calls), so that both see the same
// load on a shared machine. It reports the GB/s of each, named by fname
// and gname, and the ratio of f's speed to g's (above 1: f is faster).
func alternate(b *testing.B, n int, fname string, f func(reps int), gname string, g func(reps int)) {
	reps := max(1, 65536/n)
	var tf, tg time.Duration
	for b.Loop() {
		t0 := time.Now()
		f(reps)
		t1 := time.Now()
		g(reps)
		tf += t1.Sub(t0)
		tg += time.Since(t1)
	}
	bytes := float64(b.N) * float64(reps*n)
	b.ReportMetric(bytes/tf.Seconds()/1e9, fname+"-GB/s")
	b.ReportMetric(bytes/tg.Seconds()/1e9, gname+"-GB/s")
	b.ReportMetric(tg.Seconds()/tf.Seconds(), fname+"/"+gname)
	b.ReportMetric(0, "ns/op")
}

// BenchmarkChecksumOdd is BenchmarkChecksum at an odd start, one byte past
// an 8-byte boundary: every wide load then crosses a word boundary and
// some cross cache lines.
func BenchmarkChecksumOdd(b *testing.B) {
	for _, n := range benchSizes {
		buf := benchData(n + 1)[1:]
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			var s uint32
			for b.Loop() {
				s += Checksum(buf, 0)
			}
			sink = s
		})
	}
}
