package tcp

import (
	"testing"
	"time"

	"github.com/synstack/synstack/tcp/seq"
)

// sackAckAt gives c an ACK of ack carrying the SACK blocks, in segments
// of mss from base.
func sackAckAt(n *testNet, c *Conn, base seq.Value, mss, ack int, blocks ...[2]int) {
	seg := Segment{SEQ: c.rcv.nxt, ACK: base.Add(seq.Size(ack * mss)), Flags: flagACK,
		WND: uint16(c.snd.wnd >> c.opt.sndShift)}
	for i, b := range blocks {
		seg.Options.SACK[i].Left = uint32(base.Add(seq.Size(b[0] * mss)))
		seg.Options.SACK[i].Right = uint32(base.Add(seq.Size(b[1] * mss)))
		seg.Options.NumSACK++
	}
	c.Input(n.now, &seg)
}

// TestReordSeen: tcpi_reord_seen counts an ACK whose SACK blocks deliver
// a segment below one SACKed before, and an ACK whose cumulative
// acknowledgment fills such a hole, once each (Linux's
// tcp_check_sack_reordering); once reordering beyond three segments has
// been seen, an ACK that only SACKs grows cwnd by what it SACKed (Linux's
// tcp_may_raise_cwnd). The trace of packetdrill's
// cubic-rack-reo-timeout-retrans-failed-incoming-data.
func TestReordSeen(t *testing.T) {
	n := newNet(t, nil)
	n.b.c.Listen()
	c := n.a.c
	if err := c.Connect(n.now); err != nil {
		t.Fatal(err)
	}
	n.deliver(n.a)
	n.now = n.now.Add(20 * time.Millisecond) // the round trip RACK times against
	n.deliver(n.b)
	n.settle()
	mss := c.opt.sndMSS
	base := c.snd.una
	if _, err := c.Write(n.now, make([]byte, 10*mss)); err != nil {
		t.Fatal(err)
	}
	if sent := n.drop(n.a); sent == 0 || c.snd.nxt != base.Add(seq.Size(10*mss)) {
		t.Fatalf("%d segments sent, SND.NXT %d; want ten segments", sent, c.snd.nxt.Sub(base))
	}
	n.now = n.now.Add(20 * time.Millisecond)
	check := func(step string, seen, reordering, cwnd int) {
		t.Helper()
		inf := c.Info(n.now)
		if inf.ReordSeen != seen || inf.Reordering != reordering || inf.Cwnd != cwnd {
			t.Errorf("%s: tcpi_reord_seen %d, tcpi_reordering %d, cwnd %d; want %d, %d, %d",
				step, inf.ReordSeen, inf.Reordering, inf.Cwnd, seen, reordering, cwnd)
		}
	}
	sackAckAt(n, c, base, mss, 0, [2]int{9, 10})
	check("the last segment SACKed", 0, 3, 10)
	sackAckAt(n, c, base, mss, 0, [2]int{3, 4}, [2]int{9, 10})
	check("the fourth SACKed after it", 1, 7, 11)
	sackAckAt(n, c, base, mss, 10)
	check("all acknowledged", 2, 10, 19)
	sackAckAt(n, c, base, mss, 10)
	check("a duplicate", 2, 10, 19)
}
