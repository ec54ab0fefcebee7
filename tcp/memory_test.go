package tcp

import (
	"bytes"
	"testing"
	"time"

	"github.com/synstack/synstack/tcp/seq"
)

// forge has B receive data from A's sequence space that A never sent: what
// an attacker on the path, or a hostile peer, sends.
func forge(n *testNet, s seq.Value, payload []byte) {
	seg := Segment{SEQ: s, ACK: n.a.c.rcv.nxt, Flags: flagACK | flagPSH, WND: 1024, Payload: payload}
	n.b.c.Input(n.now, &seg)
}

// pattern is the octet at sequence number s of the forged stream: the
// stream checks itself.
func pattern(iss seq.Value, s seq.Value, k int) []byte {
	p := make([]byte, k)
	for i := range p {
		p[i] = byte(s.Add(seq.Size(i)).Sub(iss) * 7)
	}
	return p
}

// TestForcedACKAttackBounded is issue 14's first attack: a peer sends
// 250-octet segments, each followed by a 1-octet duplicate that forces an
// ACK, to an application that reads nothing. Every forced ACK rounds the
// window's right edge up to the window scale, so the window never closes;
// without a bound on what the queue holds it grew to 20 MB. Here it stops at
// rq.bufSize, the drops are counted, and what the application then reads is
// exactly the stream, in order.
func TestForcedACKAttackBounded(t *testing.T) {
	n := newNet(t, func(c *Config) { c.NoTimestamps = true; c.NoSACK = true })
	n.handshake()
	n.a.out, n.b.out = nil, nil
	b := n.b.c
	iss := n.a.c.snd.iss
	if b.opt.rcvShift == 0 {
		t.Fatal("no window scale: the attack needs one")
	}
	maxExtent := 0
	for round := 0; round < 4000; round++ {
		s := b.rcv.nxt
		forge(n, s, pattern(iss, s, 250))
		forge(n, s-1, pattern(iss, s-1, 1))
		n.now = n.now.Add(600 * time.Millisecond) // past the duplicate-ACK rate limit
		n.b.out = nil
		maxExtent = max(maxExtent, b.rqExtent())
		if err := b.checkQueues(); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}
	if maxExtent > int(b.rq.bufSize) {
		t.Fatalf("the receive queue reached %d octets, over its buffer %d", maxExtent, b.rq.bufSize)
	}
	if maxExtent <= b.rcvCapacity() {
		t.Fatalf("the queue never passed the window's %d octets (%d): the attack did not creep the window, so this test shows nothing", b.rcvCapacity(), maxExtent)
	}
	cnt := b.cfg.Counters
	if cnt.PruneCalled == 0 || cnt.RcvPruned == 0 || cnt.RcvQDrop == 0 {
		t.Fatalf("counters %+v: want PruneCalled, RcvPruned and TCPRcvQDrop to rise", *cnt)
	}
	got := readAll(t, n, n.b)
	if want := pattern(iss, iss.Add(1), len(got)); !bytes.Equal(got, want) {
		t.Fatalf("read %d octets that are not the stream", len(got))
	}
	if len(got) != maxExtent {
		t.Fatalf("read %d octets, the queue held %d", len(got), maxExtent)
	}
}

// TestMemoryBudget: connections charge the stack-wide budget for the
// buffers they hold and give it all back when they close; past High a
// receiver drops and counts, a writer gets no more room, and each keeps one
// minimal buffer so it still makes progress. Above Pressure, buffers stop
// growing and the window opens by four segments at most.
func TestMemoryBudget(t *testing.T) {
	mem := NewMemory(MemoryLimits{Low: 8 << 10, Pressure: 16 << 10, High: 24 << 10})
	n := newNet(t, func(c *Config) { c.Memory = mem; c.NoTimestamps = true })
	n.handshake()
	a, b := n.a.c, n.b.c
	held := func() int64 {
		return int64(len(a.rq.buf) + len(a.sq.buf) + len(b.rq.buf) + len(b.sq.buf))
	}

	// A writes far more than the budget; B reads nothing.
	data := pattern(0, 0, 1<<20)
	wrote := 0
	for range 200 {
		k, _ := a.Write(n.now, data[wrote:])
		wrote += k
		n.settle()
		n.wait(300 * time.Millisecond)
		if mem.Used() != held() {
			t.Fatalf("budget says %d, the rings hold %d", mem.Used(), held())
		}
		if lim := mem.Limits().High + 4*minRing; mem.Used() > lim {
			t.Fatalf("%d bytes charged, over %d", mem.Used(), lim)
		}
	}
	if !mem.UnderPressure() || mem.Pressures() == 0 {
		t.Fatalf("used %d of %+v: not under pressure (%d entries)", mem.Used(), mem.Limits(), mem.Pressures())
	}
	// Reading opens B's buffer, but under pressure its window opens by four
	// segments at most (the right edge never moves left).
	cur := b.rcvWindowNow()
	got := make([]byte, 8192)
	k, _ := b.Read(n.now, got)
	if k == 0 {
		t.Fatal("B had nothing to read")
	}
	got = got[:k]
	b.ackNow(b.at(n.now))
	if w, lim := b.rcvWindowNow(), max(cur, 4*uint32(b.opt.rcvMSS))+1<<b.opt.rcvShift; w > lim {
		t.Fatalf("under pressure B advertises %d after a read, over %d", w, lim)
	}

	// B reads everything A wrote, byte for byte, then both close: the
	// budget empties and leaves pressure.
	buf := make([]byte, 4096)
	for range 10000 {
		k, _ := b.Read(n.now, buf)
		got = append(got, buf[:k]...)
		if k2, _ := a.Write(n.now, data[wrote:]); k2 > 0 {
			wrote += k2
		}
		n.settle()
		if len(got) == wrote && a.sq.n == 0 {
			break
		}
		if k == 0 {
			n.wait(time.Second)
		}
	}
	if len(got) != wrote || !bytes.Equal(got, data[:wrote]) {
		t.Fatalf("B read %d octets of the %d written, or not them", len(got), wrote)
	}
	if wrote < 256<<10 {
		t.Fatalf("only %d octets went through a 24 KiB budget: progress stalled", wrote)
	}
	a.Close(n.now)
	b.Close(n.now)
	n.settle()
	n.wait(2 * time.Minute)
	if mem.Used() != 0 || held() != 0 {
		t.Fatalf("after close the budget holds %d (rings %d)", mem.Used(), held())
	}
	if mem.UnderPressure() {
		t.Fatal("still under pressure with nothing charged")
	}
}

// TestBudgetPrunesOutOfOrder: a receiver refused room by the budget first
// gives back what its out-of-order data holds (OfoPruned, the ranges
// forgotten, to be sent again), then takes what fits in one minimal buffer
// and drops the rest (TCPRcvQDrop).
func TestBudgetPrunesOutOfOrder(t *testing.T) {
	mem := NewMemory(MemoryLimits{Low: 1 << 30, Pressure: 1 << 30, High: 1 << 30})
	n := newNet(t, func(c *Config) { c.Memory = mem; c.NoTimestamps = true })
	n.handshake()
	b := n.b.c
	iss := n.a.c.snd.iss
	far := b.rcv.nxt.Add(1000)
	forge(n, far, pattern(iss, far, 100))
	if len(b.rq.ooo) != 1 || len(b.rq.buf) != minRing {
		t.Fatalf("out-of-order ranges %v in a ring of %d", b.rq.ooo, len(b.rq.buf))
	}
	// Growing the ring to 4096 would pass the budget by one byte.
	mem.limits.High = mem.Used() + minRing - 1
	s := b.rcv.nxt
	forge(n, s, pattern(iss, s, 3000))
	cnt := b.cfg.Counters
	if cnt.PruneCalled != 1 || cnt.OfoPruned != 1 || cnt.RcvPruned != 1 || cnt.RcvQDrop != 1 {
		t.Fatalf("counters %+v: want one prune of out-of-order data, then one drop", *cnt)
	}
	if len(b.rq.ooo) != 0 {
		t.Fatalf("out-of-order ranges %v still held", b.rq.ooo)
	}
	if err := b.checkQueues(); err != nil {
		t.Fatal(err)
	}
	if mem.Used() != int64(len(b.rq.buf)+len(b.sq.buf)+len(n.a.c.rq.buf)+len(n.a.c.sq.buf)) {
		t.Fatal("budget out of step with the rings")
	}
	if got := readAll(t, n, n.b); !bytes.Equal(got, pattern(iss, s, minRing)) {
		t.Fatalf("read %d octets, want the first %d sent in order", len(got), minRing)
	}
}
