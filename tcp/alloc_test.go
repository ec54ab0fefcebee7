package tcp

import (
	"testing"
	"time"

	"github.com/synstack/synstack/tcp/seq"
)

// allocNet joins two connections through preallocated segment slots, so
// that the harness itself allocates nothing once warm.
type allocNet struct {
	now   time.Time
	conns [2]*Conn
	// Segments in flight towards conns[i] are in q[i]; deliver swaps it
	// with spare[i] before handing them over, so answers queue apart.
	q, spare [2][]slot
	bufs     [2]sliceBuffers
}

type slot struct {
	seg     Segment
	payload [65536]byte
}

// sliceBuffers is a Buffers that recycles what it is given, like the
// stack's pool, without sync.Pool's dependence on the collector.
type sliceBuffers struct{ free [][]byte }

func (b *sliceBuffers) Get(n int) []byte {
	for i, x := range b.free {
		if len(x) >= n {
			b.free[i] = b.free[len(b.free)-1]
			b.free = b.free[:len(b.free)-1]
			return x
		}
	}
	size := minRing
	for size < n {
		size *= 2
	}
	return make([]byte, size)
}

func (b *sliceBuffers) Put(x []byte) { b.free = append(b.free, x) }

func newAllocNet(mss uint16) *allocNet {
	n := &allocNet{now: time.Unix(1000, 0)}
	for i := range n.conns {
		dst := 1 - i
		n.q[dst] = make([]slot, 0, 256)
		n.spare[dst] = make([]slot, 0, 256)
		cfg := Config{MSS: mss, Buffers: &n.bufs[i], RcvBuf: 1 << 20, SndBuf: 1 << 20}
		cfg.Output = func(s *Segment) {
			q := &n.q[dst]
			*q = (*q)[:len(*q)+1]
			sl := &(*q)[len(*q)-1]
			sl.seg = *s
			sl.seg.Payload = sl.payload[:copy(sl.payload[:], s.Payload)]
		}
		n.conns[i] = NewConn(cfg, seq.Value(1000+4000*i))
	}
	return n
}

// deliver hands every queued segment to its connection; segments sent in
// answer wait for the next call. It reports how many it delivered.
func (n *allocNet) deliver() int {
	k := 0
	for i := range n.q {
		q := n.q[i]
		n.q[i], n.spare[i] = n.spare[i][:0], q
		for j := range q {
			n.conns[i].Input(n.now, &q[j].seg)
			k++
		}
	}
	return k
}

// TestSteadyBulkDoesNotAllocate moves data one way between two connections
// (writes of 64 KiB, the reader draining with a fixed buffer) and counts
// allocations once the transfer is warm: there must be none, at MTU 1500
// and at MTU 65535, whatever the number of segments a step takes.
func TestSteadyBulkDoesNotAllocate(t *testing.T) {
	for _, mss := range []uint16{1460, 65495} {
		n := newAllocNet(mss)
		a, b := n.conns[0], n.conns[1]
		b.Listen()
		if err := a.Connect(n.now); err != nil {
			t.Fatal(err)
		}
		for n.deliver() > 0 {
		}
		if a.State() != Established || b.State() != Established {
			t.Fatalf("handshake: %s %s", a.State(), b.State())
		}
		chunk := make([]byte, 64<<10)
		rd := make([]byte, 32<<10)
		segs := 0
		step := func() {
			before := a.stats.segsOut
			off := 0
			for off < len(chunk) {
				k, _ := a.Write(n.now, chunk[off:])
				off += k
				for n.deliver() > 0 {
					for {
						if k, _ := b.Read(n.now, rd); k == 0 {
							break
						}
					}
				}
				n.now = n.now.Add(time.Millisecond)
				a.Tick(n.now)
				b.Tick(n.now)
			}
			segs += int(a.stats.segsOut - before)
		}
		for range 50 { // warm up: windows open, buffers reach their sizes
			step()
		}
		segs = 0
		allocs := testing.AllocsPerRun(200, step)
		if segs == 0 {
			t.Fatal("no segment sent")
		}
		perSeg := allocs * 201 / float64(segs) // AllocsPerRun also runs once to warm up
		t.Logf("MSS %d: %.0f allocations per 64 KiB (%d segments per step): %.4f per segment", mss, allocs, segs/201, perSeg)
		if allocs != 0 {
			t.Errorf("MSS %d: %v allocations per 64 KiB moved, want 0", mss, allocs)
		}
	}
}
