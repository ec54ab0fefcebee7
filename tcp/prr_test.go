package tcp_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/synstack/synstack/tcp"
	"github.com/synstack/synstack/tcp/tcptest"
)

// slowStartTo20 opens a connection with SACK and grows the congestion
// window to 20 segments, all of them in flight: 10001:30001.
func slowStartTo20(t *testing.T) *tcptest.Conn {
	c := passiveOpen(t, tcp.Config{}, "320")
	c.Write(strings.Repeat("x", 40000))
	outPairs(c, 0, 10)
	c.Advance(100 * time.Millisecond)
	c.In(". 1:1(0) ack 5001 win 320")
	outPairs(c, 10, 20)
	c.In(". 1:1(0) ack 10001 win 320")
	outPairs(c, 20, 30)
	if got := c.Conn().Info(c.Now()).Cwnd; got != 20 {
		t.Fatalf("cwnd %d after slow start, want 20", got)
	}
	return c
}

// While more than ssthresh is in flight, PRR sends ssthresh/RecoverFS
// (14/20) of what is delivered, rounded up, the lost segment first
// (testdata/scripts/recovery/prr-proportional.pkt).
func TestPRRSendsInProportion(t *testing.T) {
	c := slowStartTo20(t)
	c.Advance(100 * time.Millisecond)
	c.In(". 1:1(0) ack 10001 win 320 <nop,nop,sack 11001:14001>")
	c.Out(". 10001:11001(1000) ack 1")
	c.Out(". 30001:31001(1000) ack 1")
	c.Out("P. 31001:32001(1000) ack 1")
	c.NoOut()
	if inf := c.Conn().Info(c.Now()); inf.CAState != 3 || inf.Ssthresh != 14 {
		t.Fatalf("state %d, ssthresh %d; want recovery (3), 14", inf.CAState, inf.Ssthresh)
	}
	// Delivered 4..10: ceil(14*d/20) is 3 4 5 5 6 7 7, so the sends
	// are 0 1 1 0 1 1 0.
	next := 32001
	for i, want := range []int{0, 1, 1, 0, 1, 1, 0} {
		c.In(". 1:1(0) ack 10001 win 320 <nop,nop,sack 11001:" + itoa(15001+1000*i) + ">")
		for range want {
			c.Out(". " + itoa(next) + ":" + itoa(next+1000) + "(1000) ack 1")
			next += 1000
		}
		c.NoOut()
	}
}

// Below ssthresh, PRR's slow start reduction bound: the window grows back
// towards ssthresh by what is delivered, plus one on an ACK that advances
// SND.UNA, never past it.
func TestPRRSlowStartReductionBound(t *testing.T) {
	c := passiveOpen(t, tcp.Config{}, "320")
	c.Write(strings.Repeat("x", 20000))
	outPairs(c, 0, 10)
	c.Advance(100 * time.Millisecond)
	// The first four are lost; six delivered at once: nothing is in
	// flight any more, so six go (four resent, two new), not seven. The
	// four go again as the two packets they were sent in.
	c.In(". 1:1(0) ack 1 win 320 <nop,nop,sack 4001:10001>")
	outPairs(c, 0, 4)
	c.Out(". " + seg(10) + " ack 1")
	c.Out("P. " + seg(11) + " ack 1")
	c.NoOut()
	// Two resent segments acknowledged: 2 delivered, +1 for the
	// advance; four in flight, ssthresh 7: three go.
	c.Advance(100 * time.Millisecond)
	c.In(". 1:1(0) ack 2001 win 320 <nop,nop,sack 4001:10001>")
	c.Out(". " + seg(12) + " ack 1")
	c.Out("P. " + seg(13) + " ack 1")
	c.Out(". " + seg(14) + " ack 1")
	c.NoOut()
	if inf := c.Conn().Info(c.Now()); inf.Cwnd != 7 || inf.CAState != 3 {
		t.Fatalf("cwnd %d, state %d; want 7 in recovery (3)", inf.Cwnd, inf.CAState)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
