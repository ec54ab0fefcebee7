package wire

import (
	"strconv"
	"testing"
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
