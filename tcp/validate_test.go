package tcp_test

import "testing"

// In a synchronized state a segment without the ACK flag is dropped
// before its text is looked at (RFC 9293 3.10.7.4, fifth check; Linux's
// tcp_rcv_established and tcp_rcv_state_process alike): its data is not
// queued and draws no ACK. The same data with ACK set is taken.
func TestEstablishedDropsSegmentWithoutACK(t *testing.T) {
	c := established(t)
	c.In("- 1:1001(1000) win 512 <nop,nop,TS val 102 ecr 1>")
	c.NoOut()
	if n := c.Conn().Readable(); n != 0 {
		t.Fatalf("%d octets queued from a segment without ACK", n)
	}
	c.In(". 1:1001(1000) ack 1 win 512 <nop,nop,TS val 103 ecr 1>")
	c.Out(". 1:1(0) ack 1001")
	if n := c.Conn().Readable(); n != 1000 {
		t.Fatalf("%d octets queued, want 1000", n)
	}
}
