package tcp

import (
	"testing"
	"time"

	"github.com/synstack/synstack/tcp/seq"
)

// sendRun has A write n full segments and returns them, undelivered.
func sendRun(t *testing.T, n *testNet, segs int) []Segment {
	t.Helper()
	mss := int(n.a.c.opt.sndMSS)
	if _, err := n.a.c.Write(n.now, make([]byte, segs*mss)); err != nil {
		t.Fatal(err)
	}
	out := n.a.out
	n.a.out = nil
	if len(out) != segs {
		t.Fatalf("A sent %d segments, want %d", len(out), segs)
	}
	return out
}

// acks returns B's pure ACKs, delivering all B sent to A.
func acks(n *testNet) []Segment {
	var a []Segment
	for _, s := range n.b.out {
		if len(s.Payload) == 0 && s.Flags == flagACK {
			a = append(a, s)
		}
	}
	n.deliver(n.b)
	return a
}

// TestHoldACKOneACKPerRun: a run of in-order segments passed under
// HoldACK draws one ACK, for all of it, from the run's last Input (held
// false) or from FlushACK; without HoldACK, one every two segments.
func TestHoldACKOneACKPerRun(t *testing.T) {
	n := newNet(t, func(c *Config) { c.NoDelay = true })
	n.handshake()

	run := sendRun(t, n, 8)
	for i := range run {
		n.b.c.Input(n.now, &run[i])
	}
	if got := len(acks(n)); got < 4 {
		t.Fatalf("without HoldACK: %d ACKs for 8 segments, want one every two at least (every one in quick-ACK mode)", got)
	}

	run = sendRun(t, n, 8)
	for i := range run {
		n.b.c.HoldACK(i < len(run)-1)
		n.b.c.Input(n.now, &run[i])
	}
	n.b.c.FlushACK(n.now)
	a := acks(n)
	end := run[len(run)-1].SEQ.Add(seq.Size(len(run[len(run)-1].Payload)))
	if len(a) != 1 || a[0].ACK != end {
		t.Fatalf("with HoldACK: ACKs %v, want one for %d", a, end)
	}

	// Held to the end: FlushACK sends the ACK, once.
	run = sendRun(t, n, 5)
	for i := range run {
		n.b.c.HoldACK(true)
		n.b.c.Input(n.now, &run[i])
	}
	if got := len(acks(n)); got != 0 {
		t.Fatalf("%d ACKs while held", got)
	}
	n.b.c.FlushACK(n.now)
	n.b.c.FlushACK(n.now)
	if got := len(acks(n)); got != 1 {
		t.Fatalf("FlushACK twice: %d ACKs, want 1", got)
	}
	n.settle()
	if got := readAll(t, n, n.b); len(got) != 21*int(n.a.c.opt.sndMSS) {
		t.Fatalf("B read %d bytes", len(got))
	}
}

// TestHoldACKStillAcksOutOfOrderAtOnce: a segment past a hole is
// acknowledged at once (duplicate ACK with SACK) even while held, and so
// is the one that fills the hole.
func TestHoldACKStillAcksOutOfOrderAtOnce(t *testing.T) {
	n := newNet(t, func(c *Config) { c.NoDelay = true })
	n.handshake()
	run := sendRun(t, n, 3)
	n.b.c.HoldACK(true)
	n.b.c.Input(n.now, &run[1])
	if a := acks(n); len(a) != 1 || a[0].Options.NumSACK != 1 {
		t.Fatalf("out of order while held: %v, want one ACK with SACK", a)
	}
	n.b.c.Input(n.now, &run[0])
	if a := acks(n); len(a) != 1 {
		t.Fatalf("hole filled while held: %d ACKs, want 1", len(a))
	}
	n.b.c.HoldACK(false)
	n.b.c.Input(n.now, &run[2])
	n.b.c.FlushACK(n.now)
}

// TestHoldACKBackstop: a held ACK whose FlushACK never comes goes out
// with the delayed-ACK timer, so a host's mistake costs time, not a stall.
func TestHoldACKBackstop(t *testing.T) {
	n := newNet(t, func(c *Config) { c.NoDelay = true })
	n.handshake()
	run := sendRun(t, n, 4)
	n.b.c.HoldACK(true)
	for i := range run {
		n.b.c.Input(n.now, &run[i])
	}
	if got := len(acks(n)); got != 0 {
		t.Fatalf("%d ACKs while held", got)
	}
	d := n.b.c.Deadline()
	if d.IsZero() || d.Sub(n.now) > time.Second {
		t.Fatalf("no delayed-ACK backstop armed (deadline %v)", d)
	}
	n.now = d
	n.b.c.Tick(n.now)
	if a := acks(n); len(a) != 1 {
		t.Fatalf("after the backstop: %d ACKs, want 1", len(a))
	}
}

// TestFlushACKNothingOwed: when data from B carried the ACK already,
// FlushACK sends nothing.
func TestFlushACKNothingOwed(t *testing.T) {
	n := newNet(t, func(c *Config) { c.NoDelay = true })
	n.handshake()
	run := sendRun(t, n, 4)
	n.b.c.HoldACK(true)
	for i := range run {
		n.b.c.Input(n.now, &run[i])
	}
	if _, err := n.b.c.Write(n.now, []byte("reply")); err != nil {
		t.Fatal(err)
	}
	n.b.out = nil
	n.b.c.FlushACK(n.now)
	if len(n.b.out) != 0 {
		t.Fatalf("FlushACK sent %v after a data segment acknowledged everything", n.b.out)
	}
}
