package tcp_test

import (
	"testing"
	"time"

	"github.com/synstack/synstack/tcp"
	"github.com/synstack/synstack/tcp/tcptest"
)

// A SACK block that covers only part of a segment marks none of it, as
// Linux takes SACK information in whole segments (tcp_match_skb_to_sack):
// when the segment goes again it goes whole, not only the bytes the block
// left out (testdata/scripts/recovery/partial-sack-whole-segment.pkt).
func TestPartialSACKResendsWholeSegment(t *testing.T) {
	c := tcptest.New(t, tcp.Config{})
	c.Listen()
	c.In(synFromPeer)
	c.Out("S. 0:0(0) ack 1")
	c.Advance(100 * time.Millisecond) // a round trip of 100 ms
	c.In(". 1:1(0) ack 1 win 512 <nop,nop,TS val 200 ecr 1>")
	c.Write(string(make([]byte, 3*1448)))
	c.Out(". 1:1449(1448) ack 1")
	c.Out("P. 1449:2897(1448) ack 1")
	c.Out("P. 2897:4345(1448) ack 1")
	c.Advance(100 * time.Millisecond)
	// The first arrives, and only the last 400 bytes of the third.
	c.In(". 1:1(0) ack 1449 win 512 <nop,nop,TS val 300 ecr 101,sack 3945:4345>")
	c.NoOut()
	c.Advance(time.Second) // the probe, then the timeout
	c.Out("P. 2897:4345(1448) ack 1")
	c.Out(". 1449:2897(1448) ack 1")
	// The second arrives; the third is still reported only by its tail.
	// It echoes the retransmission's timestamp: no undo (the retransmission
	// was needed).
	c.In(". 1:1(0) ack 2897 win 512 <nop,nop,TS val 400 ecr 703,sack 3945:4345>")
	c.Out("P. 2897:4345(1448) ack 1")
}
