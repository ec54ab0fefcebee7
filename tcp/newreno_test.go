package tcp_test

import (
	"strings"
	"testing"
	"time"

	"github.com/synstack/synstack/tcp"
)

// Without SACK, a recovery lasts until something above its recovery point
// is acknowledged: the ACK of exactly everything sent when it began keeps
// it (Linux's tcp_try_undo_recovery; testdata/scripts/recovery/
// newreno-partial-ack.pkt), the next one that advances ends it.
func TestNewRenoHoldsRecoveryAtRecoveryPoint(t *testing.T) {
	c := passiveOpenWith(t, tcp.Config{}, "mss 1000,nop,wscale 7", "mss 1460,nop,wscale 8", "257")
	c.Write(strings.Repeat("x", 4000))
	outPairs(c, 0, 4)
	c.Advance(100 * time.Millisecond)
	for i := 0; i < 3; i++ { // the first segment is lost
		c.In(". 1:1(0) ack 1 win 257")
	}
	c.Out(". 1:1001(1000) ack 1")
	caState := func() int { return c.Conn().Info(c.Now()).CAState }
	if caState() != 3 {
		t.Fatalf("state %d after three duplicate ACKs, want recovery (3)", caState())
	}
	c.Advance(100 * time.Millisecond)
	c.In(". 1:1(0) ack 4001 win 257") // the recovery point
	c.NoOut()
	if caState() != 3 {
		t.Fatalf("state %d at the recovery point, want recovery (3) still", caState())
	}
	c.Write(strings.Repeat("x", 1000))
	c.Out("P. 4001:5001(1000) ack 1")
	c.Advance(100 * time.Millisecond)
	c.In(". 1:1(0) ack 5001 win 257")
	inf := c.Conn().Info(c.Now())
	if inf.CAState != 0 || inf.Cwnd != inf.Ssthresh {
		t.Fatalf("state %d, cwnd %d, ssthresh %d past the recovery point; want open (0) with cwnd = ssthresh", inf.CAState, inf.Cwnd, inf.Ssthresh)
	}
}
