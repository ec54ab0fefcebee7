package tcp

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/synstack/synstack/tcp/seq"
)

// TestReassemblyInPlace forges segments of a known stream, cut at random,
// overlapping, duplicated and in random order, feeds them to a receiver
// with reads of random sizes in between, and checks that the stream read
// is the stream sent, that the queues' invariants hold after every segment
// and that the receive queue holds no buffer once it is drained.
func TestReassemblyInPlace(t *testing.T) {
	maxRanges, fed := 0, 0
	for seed := uint64(1); seed <= 300; seed++ {
		rng := rand.New(rand.NewPCG(seed, 0))
		n := newNet(t, func(c *Config) { c.NoDelay = true })
		n.handshake()
		b := n.b.c
		stream := make([]byte, 1+rng.IntN(200_000))
		for i := range stream {
			stream[i] = byte(rng.Uint32())
		}
		base := b.rcv.nxt
		var got []byte
		buf := make([]byte, 1+rng.IntN(9000))
		read := func() {
			for {
				k, _ := b.Read(n.now, buf[:1+rng.IntN(len(buf))])
				if k == 0 {
					return
				}
				got = append(got, buf[:k]...)
			}
		}
		for len(got) < len(stream) {
			// A burst of segments within the window, shuffled.
			left := int(b.rcv.nxt.Sub(base))
			wnd := int(b.rcv.right.Sub(b.rcv.nxt))
			var segs []Segment
			for range 1 + rng.IntN(40) {
				off := left + rng.IntN(max(1, min(wnd, len(stream)-left)))
				k := 1 + rng.IntN(1460)
				off, end := max(0, off-rng.IntN(300)), min(len(stream), off+k)
				if off >= end {
					continue
				}
				segs = append(segs, Segment{SEQ: base.Add(seq.Size(off)), ACK: b.snd.nxt, Flags: flagACK, WND: 1000, Payload: stream[off:end]})
			}
			rng.Shuffle(len(segs), func(i, j int) { segs[i], segs[j] = segs[j], segs[i] })
			// The segment at RCV.NXT comes last so the burst always moves on.
			k := min(1460, len(stream)-left)
			segs = append(segs, Segment{SEQ: b.rcv.nxt, ACK: b.snd.nxt, Flags: flagACK, WND: 1000, Payload: stream[left : left+k]})
			for i := range segs {
				b.Input(n.now, &segs[i])
				if err := b.checkQueues(); err != nil {
					t.Fatalf("seed %d: %v", seed, err)
				}
				maxRanges = max(maxRanges, len(b.rq.ooo))
				fed++
				if rng.IntN(4) == 0 {
					read()
				}
			}
			n.drop(n.b)
			read()
		}
		if !bytes.Equal(got, stream) {
			t.Fatalf("seed %d: the stream read differs from the stream sent (%d and %d octets)", seed, len(got), len(stream))
		}
		if b.rq.buf != nil || len(b.rq.ooo) != 0 {
			t.Fatalf("seed %d: drained receive queue still holds a buffer of %d and %d ranges", seed, len(b.rq.buf), len(b.rq.ooo))
		}
	}
	// The test is only worth something if it made the receiver hold many
	// ranges at once.
	if maxRanges < 10 {
		t.Fatalf("at most %d out-of-order ranges at once in %d segments: the test lost its teeth", maxRanges, fed)
	}
	t.Logf("%d segments, up to %d out-of-order ranges at once", fed, maxRanges)
}

// TestSendQueueWrapsAndEmpties moves a stream through a send queue that
// wraps around its buffer many times (writes and acknowledgements of
// uneven sizes) and checks what arrives, and that the queue gives its
// buffer back when everything is acknowledged.
func TestSendQueueWrapsAndEmpties(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	n := newNet(t, func(c *Config) { c.NoDelay = true; c.SndBuf = 10_000 })
	n.handshake()
	stream := make([]byte, 300_000)
	for i := range stream {
		stream[i] = byte(rng.Uint32())
	}
	var got []byte
	buf := make([]byte, 7000)
	for sent := 0; sent < len(stream) || len(got) < len(stream); {
		if sent < len(stream) {
			k, _ := n.a.c.Write(n.now, stream[sent:min(len(stream), sent+1+rng.IntN(5000))])
			sent += k
		}
		n.settle()
		for {
			k, _ := n.b.c.Read(n.now, buf[:1+rng.IntN(len(buf))])
			if k == 0 {
				break
			}
			got = append(got, buf[:k]...)
		}
		n.settle()
		if err := n.a.c.checkQueues(); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, stream) {
		t.Fatalf("the stream read differs from the stream sent")
	}
	if n.a.c.sq.n != 0 || n.a.c.sq.buf != nil {
		t.Fatalf("acknowledged send queue holds %d octets and a buffer of %d", n.a.c.sq.n, len(n.a.c.sq.buf))
	}
}

// TestIdleAfterExchangesHoldsNothing runs request/response exchanges (a
// kept-alive connection's life) and checks that once the delayed ACKs are
// out, neither end holds a queue buffer, out-of-order ranges or a flight
// state: between requests a connection is as small as one that never
// carried data.
func TestIdleAfterExchangesHoldsNothing(t *testing.T) {
	for _, size := range []int{1, 1000, 100_000} {
		n := newNet(t, nil)
		n.handshake()
		req := bytes.Repeat([]byte{'q'}, size)
		buf := make([]byte, size)
		for round := range 20 {
			for _, pair := range [][2]*end{{n.a, n.b}, {n.b, n.a}} {
				from, to := pair[0], pair[1]
				for sent, got := 0, 0; got < size; {
					if sent < size {
						k, err := from.c.Write(n.now, req[sent:])
						if err != nil {
							t.Fatal(err)
						}
						sent += k
					}
					n.settle()
					k, _ := to.c.Read(n.now, buf[got:])
					got += k
					if k == 0 && sent == size {
						n.wait(10 * time.Millisecond)
					}
				}
			}
			n.wait(time.Second) // delayed ACKs, and no timer left to fire
			for _, e := range []*end{n.a, n.b} {
				c := e.c
				if c.sq.buf != nil || c.rq.buf != nil || c.fl != nil || len(c.rq.ooo) != 0 || len(c.sq.pushMarks) != 0 {
					t.Fatalf("%d-byte exchanges, round %d: idle %v holds send buffer %d, receive buffer %d, flight %v, %d ranges, %d marks",
						size, round, c.state, len(c.sq.buf), len(c.rq.buf), c.fl != nil, len(c.rq.ooo), len(c.sq.pushMarks))
				}
			}
		}
	}
}

// A queue given back at every drain borrows next what the recent buffers
// needed, not just the last one: short drains between two large bursts do
// not have the next burst grow from small, copying at every doubling.
// ringHintCalm buffers in a row that need less than half the hint halve
// it, one step at a time.
func TestRingHintOutlastsShortDrains(t *testing.T) {
	var b heapBuffers
	var r ring
	use := func(extent int) int {
		r.ensure(b, nil, extent, 0)
		n := len(r.buf)
		r.release(b, nil)
		return n
	}
	if got := use(1 << 20); got != 1<<20 {
		t.Fatalf("a burst of 1 MiB borrowed %d", got)
	}
	for i := range ringHintCalm - 1 {
		if got := use(1000); got != 1<<20 {
			t.Fatalf("small buffer %d after the burst borrowed %d, want the burst's 1 MiB", i+1, got)
		}
	}
	if got := use(1000); got != 1<<20 {
		t.Fatalf("the last small buffer before the hint halves borrowed %d", got)
	}
	if got := use(1000); got != 1<<19 {
		t.Fatalf("after %d small buffers the next borrowed %d, want half the hint", ringHintCalm, got)
	}
	// A buffer needing more than half the hint keeps it, and a larger
	// one raises it at once.
	if got := use(300 << 10); got != 1<<19 {
		t.Fatalf("borrowed %d, want 512 KiB", got)
	}
	if got := use(3 << 20); got != 4<<20 {
		t.Fatalf("a burst of 3 MiB borrowed %d", got)
	}
	if got := use(1000); got != 4<<20 {
		t.Fatalf("after it, a small buffer borrowed %d, want 4 MiB", got)
	}
}
