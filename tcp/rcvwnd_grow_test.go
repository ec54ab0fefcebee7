package tcp

import "testing"

// TestRcvWindowGrowsWithArrivingData: a window threshold held low (as
// memory pressure leaves it, four segments) grows by two segments for
// each segment that arrives, or twice the segment when larger, up to the
// clamp and the free room, and the window offered follows it (Linux's
// tcp_grow_window).
func TestRcvWindowGrowsWithArrivingData(t *testing.T) {
	n := newNet(t, func(c *Config) { c.RcvBuf = 540000; c.NoDelay = true })
	n.handshake()
	b := n.b.c
	adv := uint32(b.rcvAdvMSS())
	b.rcv.ssthresh = 4 * adv
	want := b.rcv.ssthresh
	for i := range 5 {
		if _, err := n.a.c.Write(n.now, make([]byte, 1000)); err != nil {
			t.Fatal(err)
		}
		n.settle()
		want = min(want+2*adv, b.rcv.clamp)
		if b.rcv.ssthresh != want {
			t.Fatalf("after segment %d: rcv_ssthresh %d, want %d", i+1, b.rcv.ssthresh, want)
		}
		unit := uint32(1) << b.opt.rcvShift
		if w, cur := b.selectRcvWindow(), (want+unit-1)&^(unit-1); w != cur {
			t.Fatalf("after segment %d: window %d, want %d (rcv_ssthresh rounded up to %d)", i+1, w, cur, unit)
		}
	}
	// Near the clamp it stops there, once the application has read what
	// came (the free room bounds it too).
	if _, err := b.Read(n.now, make([]byte, 8000)); err != nil {
		t.Fatal(err)
	}
	b.rcv.ssthresh = b.rcv.clamp - 100
	n.a.c.Write(n.now, make([]byte, 1000))
	n.settle()
	if b.rcv.ssthresh != b.rcv.clamp {
		t.Fatalf("rcv_ssthresh %d, want the clamp %d", b.rcv.ssthresh, b.rcv.clamp)
	}
}

// TestRcvWindowClosesWhenLittleIsLeft: once less than half the room is
// free, a window under a segment is announced as zero rather than offered
// as a sliver (Linux's __tcp_select_window).
func TestRcvWindowClosesWhenLittleIsLeft(t *testing.T) {
	n := newNet(t, func(c *Config) { c.RcvBuf = 8192; c.NoWindowScale = true })
	n.handshake()
	b := n.b.c
	b.rq.n = b.rcvCapacity() - 500 // as if that much waited unread
	if w := b.selectRcvWindow(); w != 0 {
		t.Fatalf("window %d with 500 octets free, want 0", w)
	}
	b.rq.n = b.rcvCapacity() / 2
	if w := b.selectRcvWindow(); w == 0 {
		t.Fatalf("window 0 with half the room free")
	}
}
