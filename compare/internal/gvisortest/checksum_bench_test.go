package gvisortest_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/synstack/synstack/wire"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
)

// checksumSizes run from an IPv4 header plus a little to the largest IP
// datagram, through MSS, MTU, page and jumbo-frame sizes.
var checksumSizes = []int{40, 64, 128, 256, 512, 1460, 1500, 4096, 9000, 16384, 65536}

// BenchmarkChecksumVsGVisor sums the same buffer with wire.Checksum and
// gVisor's checksum.Checksum, alternating in blocks of about 64 KiB each
// so that both see the same machine load, and reports each one's GB/s and
// the ratio ours/gVisor (above 1: synstack is faster). Run with
//
//	nice go test -run - -bench ChecksumVsGVisor -count 5 ./internal/gvisortest/
//
// and take the medians (benchstat does).
//
// The odd/ cases start the buffer one byte past an 8-byte boundary.
func BenchmarkChecksumVsGVisor(b *testing.B) {
	for _, n := range checksumSizes {
		benchChecksumVsGVisor(b, strconv.Itoa(n), n, 0)
	}
	for _, n := range checksumSizes {
		benchChecksumVsGVisor(b, "odd/"+strconv.Itoa(n), n, 1)
	}
}

// benchChecksumVsGVisor runs one case of BenchmarkChecksumVsGVisor: n bytes
// starting off bytes into a fresh allocation.
func benchChecksumVsGVisor(b *testing.B, name string, n, off int) {
	buf := make([]byte, n+off)[off:]
	for i := range buf {
		buf[i] = byte(i*7 + i>>8)
	}
	if got, want := uint16(wire.Checksum(buf, 0)), checksum.Checksum(buf, 0); got != want {
		b.Fatalf("%d bytes: wire.Checksum %#x, gVisor %#x", n, got, want)
	}
	reps := max(1, 65536/n)
	b.Run(name, func(b *testing.B) {
		var ours, theirs time.Duration
		var s1 uint32
		var s2 uint16
		for b.Loop() {
			t0 := time.Now()
			for range reps {
				s1 += wire.Checksum(buf, 0)
			}
			t1 := time.Now()
			for range reps {
				s2 += checksum.Checksum(buf, 0)
			}
			ours += t1.Sub(t0)
			theirs += time.Since(t1)
		}
		bytes := float64(b.N) * float64(reps*n)
		b.ReportMetric(bytes/ours.Seconds()/1e9, "ours-GB/s")
		b.ReportMetric(bytes/theirs.Seconds()/1e9, "gvisor-GB/s")
		b.ReportMetric(theirs.Seconds()/ours.Seconds(), "ours/gvisor")
		b.ReportMetric(0, "ns/op")
		sinkSum = s1 + uint32(s2)
	})
}

var sinkSum uint32
