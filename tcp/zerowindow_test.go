package tcp

import (
	"testing"
	"time"
)

// TestZeroWindowTakesACKOfDataAtRcvNxt: with its window closed, a receiver
// drops the data of a segment that starts at RCV.NXT but takes its ACK
// (RFC 9293 3.10.7.4: "special allowance should be made to accept valid
// ACKs"; Linux's tcp_sequence), and answers at once with its closed
// window. Refusing the segment whole deadlocked two stacks that held each
// other's data behind zero windows (nettest's FutureTimeout, under load):
// each one's ACKs rode on retransmissions the other refused.
func TestZeroWindowTakesACKOfDataAtRcvNxt(t *testing.T) {
	n := newNet(t, func(c *Config) { c.RcvBuf = 4096; c.NoTimestamps = true })
	n.handshake()
	a, b := n.a.c, n.b.c
	// A fills B's window; B reads nothing.
	if _, err := a.Write(n.now, make([]byte, 8192)); err != nil {
		t.Fatal(err)
	}
	n.settle()
	// The last part of the window, less than a segment, is filled by
	// the probe timer (Linux's tcp_write_wakeup).
	for i := 0; i < 10 && b.rcvWindowNow() != 0; i++ {
		n.advance(n.now.Add(time.Minute))
		n.settle()
	}
	if w := b.rcvWindowNow(); w != 0 {
		t.Fatalf("B's window %d, want it closed", w)
	}
	// B sends A data; A's ACK of it is lost.
	if _, err := b.Write(n.now, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	n.deliver(n.b)
	n.drop(n.a)
	una, queued := b.snd.una, b.rq.n
	// A's next segment carries data at B's RCV.NXT, and the ACK of hello.
	forge(n, b.rcv.nxt, make([]byte, 100))
	if want := una.Add(5); b.snd.una != want {
		t.Fatalf("B's SND.UNA %d, want %d: the ACK on a segment at RCV.NXT was ignored", b.snd.una, want)
	}
	if b.rq.n != queued {
		t.Fatalf("B queued %d octets into a closed window", b.rq.n-queued)
	}
	var acks int
	for _, s := range n.b.out {
		if len(s.Payload) == 0 && s.Flags == flagACK && s.WND == 0 {
			acks++
		}
	}
	if acks != 1 {
		t.Fatalf("B answered with %d zero-window ACKs, want 1: %v", acks, n.b.out)
	}
}
