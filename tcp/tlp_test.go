package tcp_test

import (
	"strings"
	"testing"
	"time"

	"github.com/synstack/synstack/tcp"
	"github.com/synstack/synstack/tcp/tcptest"
)

// tlpRepaired sends ten segments, has all but the last acknowledged, lets
// the tail loss probe resend it and acknowledges it: the probe's episode
// waits for an ACK beyond, or a D-SACK (testdata/scripts/recovery/
// tlp-cwnd-reduction.pkt).
func tlpRepaired(t *testing.T) (*tcptest.Conn, *tcp.Counters) {
	cnt := new(tcp.Counters)
	c := passiveOpen(t, tcp.Config{Counters: cnt}, "320")
	c.Write(strings.Repeat("x", 10000))
	outPairs(c, 0, 10)
	c.Advance(100 * time.Millisecond)
	c.In(". 1:1(0) ack 9001 win 320")
	c.Fire(c.Conn().Deadline().Sub(c.Now()))
	c.Out("P. 9001:10001(1000) ack 1")
	c.Advance(100 * time.Millisecond)
	c.In(". 1:1(0) ack 10001 win 320")
	if inf := c.Conn().Info(c.Now()); inf.CAState != 0 || inf.Cwnd != 20 || cnt.LossProbeRecovery != 0 {
		t.Fatalf("state %d, cwnd %d, probe recoveries %d at the probe's point; want open, 20, none", inf.CAState, inf.Cwnd, cnt.LossProbeRecovery)
	}
	return c, cnt
}

// An ACK beyond the probe's point with no D-SACK of it: the probe
// repaired a loss, and the window falls to the new ssthresh at once.
func TestTLPRepairReducesWindow(t *testing.T) {
	c, cnt := tlpRepaired(t)
	c.Write(strings.Repeat("x", 2000))
	c.Out(". 10001:11001(1000) ack 1")
	c.Out("P. 11001:12001(1000) ack 1")
	c.Advance(100 * time.Millisecond)
	c.In(". 1:1(0) ack 12001 win 320")
	inf := c.Conn().Info(c.Now())
	if inf.Ssthresh != 14 || inf.Cwnd != 14 || inf.CAState != 0 || cnt.LossProbeRecovery != 1 {
		t.Fatalf("ssthresh %d, cwnd %d, state %d, probe recoveries %d; want 14, 14, open, 1", inf.Ssthresh, inf.Cwnd, inf.CAState, cnt.LossProbeRecovery)
	}
}

// A D-SACK of the probe says both copies arrived: no loss, no reduction,
// however far later ACKs go.
func TestTLPDSACKMeansNoLoss(t *testing.T) {
	c, cnt := tlpRepaired(t)
	c.In(". 1:1(0) ack 10001 win 320 <nop,nop,sack 9001:10001>")
	c.Write(strings.Repeat("x", 2000))
	c.Advance(100 * time.Millisecond)
	c.In(". 1:1(0) ack 12001 win 320")
	if inf := c.Conn().Info(c.Now()); inf.Ssthresh != 0x7fffffff || cnt.LossProbeRecovery != 0 {
		t.Fatalf("ssthresh %d, probe recoveries %d; want infinite, none", inf.Ssthresh, cnt.LossProbeRecovery)
	}
}

// A probe that sent new data ends its episode when that is acknowledged:
// nothing was resent, nothing is reduced.
func TestTLPNewDataNoReduction(t *testing.T) {
	cnt := new(tcp.Counters)
	c := passiveOpen(t, tcp.Config{Counters: cnt}, "320")
	c.Write(strings.Repeat("x", 10000))
	outPairs(c, 0, 10)
	c.Write(strings.Repeat("x", 1000)) // waits for the window
	c.Advance(100 * time.Millisecond)
	c.Fire(c.Conn().Deadline().Sub(c.Now()))
	c.Out("P. 10001:11001(1000) ack 1") // the probe: new data
	c.In(". 1:1(0) ack 11001 win 320")
	c.Write(strings.Repeat("x", 1000))
	c.Advance(100 * time.Millisecond)
	c.In(". 1:1(0) ack 12001 win 320")
	if inf := c.Conn().Info(c.Now()); inf.Ssthresh != 0x7fffffff || cnt.LossProbeRecovery != 0 {
		t.Fatalf("ssthresh %d, probe recoveries %d; want infinite, none", inf.Ssthresh, cnt.LossProbeRecovery)
	}
}

// A timeout after the probe ends its episode (Linux's tcp_enter_loss): the
// timeout's own reduction stands, the probe adds none.
func TestTimeoutEndsProbeEpisode(t *testing.T) {
	cnt := new(tcp.Counters)
	c := passiveOpen(t, tcp.Config{Counters: cnt}, "320")
	c.Write(strings.Repeat("x", 10000))
	outPairs(c, 0, 10)
	c.Fire(c.Conn().Deadline().Sub(c.Now())) // the probe
	c.Out("P. 9001:10001(1000) ack 1")
	c.Fire(c.Conn().Deadline().Sub(c.Now())) // the timeout
	c.Out(". 1:1001(1000) ack 1")
	c.Advance(50 * time.Millisecond)
	c.In(". 1:1(0) ack 10001 win 320")
	c.Write(strings.Repeat("x", 1000))
	c.Advance(50 * time.Millisecond)
	c.In(". 1:1(0) ack 11001 win 320") // beyond the probe's point
	if cnt.LossProbeRecovery != 0 {
		t.Fatalf("%d probe recoveries after a timeout, want none", cnt.LossProbeRecovery)
	}
}
