package tcp_test

import (
	"strings"
	"testing"
	"time"

	"github.com/synstack/synstack/tcp"
)

// Limited transmit (RFC 3042) without SACK: each of the first two
// duplicate ACKs lets one new segment go with the window unchanged, and a
// cumulative ACK after them grows slow start only by what the duplicates
// had not reported (testdata/scripts/recovery/limited-transmit-no-sack.pkt).
func TestLimitedTransmitWithoutSACK(t *testing.T) {
	c := passiveOpenWith(t, tcp.Config{}, "mss 1000,nop,wscale 7", "mss 1460,nop,wscale 8", "300")
	c.Write(strings.Repeat("x", 16000))
	outPairs(c, 0, 10)
	c.NoOut()
	c.Advance(100 * time.Millisecond)
	c.In(". 1:1(0) ack 1 win 300")
	c.Out(". 10001:11001(1000) ack 1")
	c.NoOut()
	c.In(". 1:1(0) ack 1 win 300")
	c.Out(". 11001:12001(1000) ack 1")
	c.NoOut()
	if inf := c.Conn().Info(c.Now()); inf.Cwnd != 10 || inf.CAState != 1 {
		t.Fatalf("cwnd %d, state %d after two duplicate ACKs; want 10 in disorder (1)", inf.Cwnd, inf.CAState)
	}
	c.In(". 1:1(0) ack 3001 win 300")
	c.Out(". 12001:13001(1000) ack 1")
	c.Out("P. 13001:14001(1000) ack 1")
	c.NoOut()
	if inf := c.Conn().Info(c.Now()); inf.Cwnd != 11 || inf.TotalRetrans != 0 {
		t.Fatalf("cwnd %d, %d retransmissions after the reordered ACK; want 11 and none", inf.Cwnd, inf.TotalRetrans)
	}
}

// A third duplicate ACK still starts fast retransmit: limited transmit
// sends new data, it does not put off the recovery.
func TestLimitedTransmitThenFastRetransmit(t *testing.T) {
	c := passiveOpenWith(t, tcp.Config{}, "mss 1000,nop,wscale 7", "mss 1460,nop,wscale 8", "300")
	c.Write(strings.Repeat("x", 16000))
	outPairs(c, 0, 10)
	c.Advance(100 * time.Millisecond)
	c.In(". 1:1(0) ack 1 win 300")
	c.Out(". 10001:11001(1000) ack 1")
	c.In(". 1:1(0) ack 1 win 300")
	c.Out(". 11001:12001(1000) ack 1")
	c.In(". 1:1(0) ack 1 win 300")
	c.Out(". 1:1001(1000) ack 1")
	if inf := c.Conn().Info(c.Now()); inf.CAState != 3 {
		t.Fatalf("state %d after three duplicate ACKs, want recovery (3)", inf.CAState)
	}
}
