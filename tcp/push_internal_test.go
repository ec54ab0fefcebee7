package tcp

import "testing"

// A Fast Open SYN's data that the SYN,ACK did not acknowledge goes again
// as a retransmission does on Linux, not as a small new segment: a write
// right after it is not held by Nagle's rule behind it, its last partial
// segment leaving with the rest (fastopen/client/syn-data-only-syn-acked.pkt
// and nonblocking-sendto-over-mss.pkt of packetdrill's corpus).
func TestPushResentSynDataIsNoSmallSegment(t *testing.T) {
	n := fastOpenNet(t, false, "hello")
	n.deliver(n.b)
	if len(n.a.out) != 1 || string(n.a.out[0].Payload) != "hello" {
		t.Fatalf("after the SYN,ACK the client sent\n%s", n.dump())
	}
	n.a.out = nil
	if k, err := n.a.c.Write(n.now, make([]byte, 3000)); err != nil || k != 3000 {
		t.Fatalf("Write = %d, %v", k, err)
	}
	sent := 0
	for _, s := range n.a.out {
		sent += len(s.Payload)
	}
	if sent != 3000 {
		t.Fatalf("sent %d of 3000 at once\n%s", sent, n.dump())
	}
	if last := n.a.out[len(n.a.out)-1]; last.Flags&flagPSH == 0 {
		t.Fatalf("the write's last segment %s has no PSH", fmtSeg(&last))
	}
}
