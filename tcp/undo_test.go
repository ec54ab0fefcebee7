package tcp_test

import (
	"strings"
	"testing"
	"time"

	"github.com/synstack/synstack/tcp"
	"github.com/synstack/synstack/tcp/tcptest"
)

// openTS opens a connection with SACK and timestamps (1000-byte
// segments), the peer's TSval 100, and returns it with its counters; data
// written now carries TSval 101.
func openTS(t *testing.T) (*tcptest.Conn, *tcp.Counters) {
	cnt := new(tcp.Counters)
	c := tcptest.New(t, tcp.Config{Counters: cnt})
	c.Listen()
	c.In("S 0:0(0) win 32792 <mss 1012,sackOK,TS val 100 ecr 0,nop,wscale 7>")
	c.Out("S. 0:0(0) ack 1")
	c.Advance(100 * time.Millisecond)
	c.In(". 1:1(0) ack 1 win 320 <nop,nop,TS val 100 ecr 1>")
	c.State(tcp.Established)
	return c, cnt
}

// lossByReordering sends ten segments and has the peer SACK the second to
// fourth: the first looks lost, and is sent again at once (PRR).
func lossByReordering(c *tcptest.Conn, opts string) {
	c.Write(strings.Repeat("x", 10000))
	outPairs(c, 0, 10)
	c.Advance(100 * time.Millisecond)
	c.In(". 1:1(0) ack 1 win 320 <nop,nop,sack 1001:4001" + opts + ">")
	c.Out(". 1:1001(1000) ack 1")
}

// Timestamps show the recovery needless when the ACK that ends it echoes
// the original segment's timestamp, older than the retransmission: cwnd
// and ssthresh come back (Linux's tcp_try_undo_recovery, TCPFullUndo).
func TestUndoRecoveryByTimestamp(t *testing.T) {
	c, cnt := openTS(t)
	lossByReordering(c, ",TS val 200 ecr 101")
	if inf := c.Conn().Info(c.Now()); inf.CAState != 3 || inf.Ssthresh != 7 {
		t.Fatalf("state %d, ssthresh %d; want recovery (3), 7", inf.CAState, inf.Ssthresh)
	}
	c.In(". 1:1(0) ack 10001 win 320 <nop,nop,TS val 201 ecr 101>")
	inf := c.Conn().Info(c.Now())
	if inf.CAState != 0 || inf.Cwnd < 10 || inf.Ssthresh < 1000 || cnt.FullUndo != 1 {
		t.Fatalf("state %d, cwnd %d, ssthresh %d, full undos %d; want open (0), cwnd 10 or more, ssthresh back to infinite, 1",
			inf.CAState, inf.Cwnd, inf.Ssthresh, cnt.FullUndo)
	}
}

// Without that evidence (the ACK echoes the retransmission), the recovery
// ends with cwnd = ssthresh, and nothing is undone; the ACK's seven
// segments then grow cwnd by one in congestion avoidance, as Linux's.
func TestNoUndoWhenRetransmissionDelivered(t *testing.T) {
	c, cnt := openTS(t)
	lossByReordering(c, ",TS val 200 ecr 101")
	c.In(". 1:1(0) ack 10001 win 320 <nop,nop,TS val 201 ecr 201>")
	inf := c.Conn().Info(c.Now())
	if inf.CAState != 0 || inf.Cwnd != 8 || inf.Ssthresh != 7 || cnt.FullUndo+cnt.DSACKUndo != 0 {
		t.Fatalf("state %d, cwnd %d, ssthresh %d, undos %d; want open (0), 8, 7, none",
			inf.CAState, inf.Cwnd, inf.Ssthresh, cnt.FullUndo+cnt.DSACKUndo)
	}
}

// A D-SACK of the only retransmission, after the recovery ended and
// everything was acknowledged, undoes it (tcp_try_undo_dsack,
// TCPDSACKUndo): the flight state waits an RTO for it, then goes.
func TestUndoByDSACKAfterRecovery(t *testing.T) {
	cnt := new(tcp.Counters)
	c := passiveOpen(t, tcp.Config{Counters: cnt}, "320")
	lossByReordering(c, "")
	c.In(". 1:1(0) ack 10001 win 320")
	if inf := c.Conn().Info(c.Now()); inf.Cwnd != 8 || cnt.DSACKUndo != 0 {
		t.Fatalf("cwnd %d, D-SACK undos %d at the end of the recovery; want 8, none", inf.Cwnd, cnt.DSACKUndo)
	}
	if c.Conn().Deadline().IsZero() {
		t.Fatalf("no deadline: the wait for a D-SACK should be armed")
	}
	c.In(". 1:1(0) ack 10001 win 320 <nop,nop,sack 1:1001>")
	inf := c.Conn().Info(c.Now())
	if inf.Cwnd != 10 || inf.Ssthresh < 1000 || cnt.DSACKUndo != 1 {
		t.Fatalf("cwnd %d, ssthresh %d, D-SACK undos %d; want 10, infinite, 1", inf.Cwnd, inf.Ssthresh, cnt.DSACKUndo)
	}
	if d := c.Conn().Deadline(); !d.IsZero() {
		t.Fatalf("a timer is armed %v after the undo, with nothing in flight", d.Sub(c.Now()))
	}
}

// The wait for a D-SACK ends: with none, nothing is undone and no timer
// is left.
func TestUndoWaitExpires(t *testing.T) {
	cnt := new(tcp.Counters)
	c := passiveOpen(t, tcp.Config{Counters: cnt}, "320")
	lossByReordering(c, "")
	c.In(". 1:1(0) ack 10001 win 320")
	d := c.Conn().Deadline()
	if d.IsZero() {
		t.Fatal("no deadline for the D-SACK wait")
	}
	c.Fire(d.Sub(c.Now()))
	c.NoOut()
	if d := c.Conn().Deadline(); !d.IsZero() {
		t.Fatalf("a timer is still armed %v after the wait", d.Sub(c.Now()))
	}
	c.In(". 1:1(0) ack 10001 win 320 <nop,nop,sack 1:1001>")
	if inf := c.Conn().Info(c.Now()); inf.Cwnd != 8 || cnt.DSACKUndo != 0 {
		t.Fatalf("cwnd %d, D-SACK undos %d after the wait; want 8, none", inf.Cwnd, cnt.DSACKUndo)
	}
}

// A partial ACK whose echo predates the retransmission says the hole was
// filled by the delayed original; with no retransmission left in flight
// the recovery is undone and ends (tcp_try_undo_partial, TCPPartialUndo).
func TestUndoPartial(t *testing.T) {
	c, cnt := openTS(t)
	lossByReordering(c, ",TS val 200 ecr 101")
	c.In(". 1:1(0) ack 4001 win 320 <nop,nop,TS val 201 ecr 101>")
	inf := c.Conn().Info(c.Now())
	if inf.CAState == 3 || inf.Cwnd < 10 || cnt.PartialUndo != 1 {
		t.Fatalf("state %d, cwnd %d, partial undos %d; want out of recovery, cwnd 10 or more, 1", inf.CAState, inf.Cwnd, cnt.PartialUndo)
	}
}

// A retransmission timeout whose first ACK echoes a timestamp from before
// it was spurious: cwnd and ssthresh come back and the connection is open
// again (tcp_try_undo_loss, TCPLossUndo).
func TestUndoLossByTimestamp(t *testing.T) {
	c, cnt := openTS(t)
	c.Write(strings.Repeat("x", 10000))
	outPairs(c, 0, 10)
	d := c.Conn().Deadline()
	c.Fire(d.Sub(c.Now())) // the tail loss probe
	c.Out("P. 9001:10001(1000) ack 1")
	d = c.Conn().Deadline()
	c.Fire(d.Sub(c.Now())) // the timeout
	c.Out(". 1:1001(1000) ack 1")
	if inf := c.Conn().Info(c.Now()); inf.CAState != 4 || inf.Cwnd != 1 {
		t.Fatalf("state %d, cwnd %d after the timeout; want loss (4), 1", inf.CAState, inf.Cwnd)
	}
	c.In(". 1:1(0) ack 10001 win 320 <nop,nop,TS val 300 ecr 101>")
	inf := c.Conn().Info(c.Now())
	if inf.CAState != 0 || inf.Cwnd < 10 || cnt.LossUndo != 1 {
		t.Fatalf("state %d, cwnd %d, loss undos %d; want open (0), 10 or more, 1", inf.CAState, inf.Cwnd, cnt.LossUndo)
	}
}
