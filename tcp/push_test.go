package tcp_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/synstack/synstack/tcp"
	"github.com/synstack/synstack/tcp/tcptest"
)

// PSH as Linux places it (testdata/scripts/options/mss-1000.pkt,
// wscale-absent.pkt, wscale-used.pkt, cc/bbr-pacing.pkt): at the end of a
// write, once more than half the peer's largest window is written
// unpushed (forced_push), and on every GSO packet of more than one
// segment, which synstack sends as MSS-sized segments, the last of each
// group carrying the flag.

// passiveOpen completes a passive open with a peer that offers MSS 1000,
// SACK and window scale 7, no timestamps, its ACK's window field win, and
// an RTT of 100 ms.
func passiveOpen(t *testing.T, cfg tcp.Config, win string) *tcptest.Conn {
	return passiveOpenWith(t, cfg, "mss 1000,sackOK,nop,nop,nop,wscale 7", "mss 1460,nop,nop,sackOK,nop,wscale 8", win)
}

// passiveOpenWith is passiveOpen with the SYN's options and those the
// SYN,ACK must carry.
func passiveOpenWith(t *testing.T, cfg tcp.Config, synOpts, synAckOpts, win string) *tcptest.Conn {
	c := tcptest.New(t, cfg)
	c.Listen()
	c.In("S 0:0(0) win 32792 <" + synOpts + ">")
	c.Out("S. 0:0(0) ack 1 <" + synAckOpts + ">")
	c.Advance(100 * time.Millisecond)
	c.In(". 1:1(0) ack 1 win " + win)
	c.State(tcp.Established)
	return c
}

// Linux's GSO packets are two segments at CUBIC's 200 kB/s (tcp_tso_autosize
// at least tcp_min_tso_segs), each carrying PSH: the second, fourth...
// segment of a burst, and the last of the write.
func TestPushEveryGSOPacket(t *testing.T) {
	c := passiveOpen(t, tcp.Config{}, "257")
	c.Write(strings.Repeat("x", 5500))
	c.Out(". 1:1001(1000) ack 1")
	c.Out("P. 1001:2001(1000) ack 1")
	c.Out(". 2001:3001(1000) ack 1")
	c.Out("P. 3001:4001(1000) ack 1")
	c.Out(". 4001:5001(1000) ack 1")
	c.Out("P. 5001:5501(500) ack 1") // the end of the write
	c.NoOut()
}

// A write sent at once ends its packet: the next write's data starts a
// packet of its own, and a lone segment at its start is a packet of one
// segment, which carries no PSH of its own.
func TestPushGSOPacketEndsWithWrite(t *testing.T) {
	c := passiveOpen(t, tcp.Config{}, "257")
	c.Write(strings.Repeat("x", 1000))
	c.Out("P. 1:1001(1000) ack 1")
	c.Write(strings.Repeat("x", 3000))
	c.Out(". 1001:2001(1000) ack 1")
	c.Out("P. 2001:3001(1000) ack 1")
	c.Out("P. 3001:4001(1000) ack 1")
	c.NoOut()
}

// The congestion window ends a GSO packet: with room for one segment, the
// segment goes alone and without PSH.
func TestPushGSOPacketBoundedByCwnd(t *testing.T) {
	c := passiveOpen(t, tcp.Config{}, "257")
	c.Write(strings.Repeat("x", 20000))
	outPairs(c, 0, 10) // the initial window: five packets of two
	c.NoOut()
	c.Advance(100 * time.Millisecond)
	// One segment acknowledged: slow start opens room for two.
	c.In(". 1:1(0) ack 1001 win 257")
	c.Out(". 10001:11001(1000) ack 1")
	c.Out("P. 11001:12001(1000) ack 1")
	c.NoOut()
}

// outPairs expects the 1000-byte segments from the from-th to the to-th
// (excluded), sent as GSO packets of two: PSH on every second.
func outPairs(c *tcptest.Conn, from, to int) {
	for i := from; i < to; i++ {
		flags := "."
		if (i-from)%2 == 1 {
			flags = "P."
		}
		c.Out(flags + " " + seg(i) + " ack 1")
	}
}

// seg is the i-th 1000-byte segment from sequence number 1.
func seg(i int) string {
	return strconv.Itoa(1+1000*i) + ":" + strconv.Itoa(1001+1000*i) + "(1000)"
}

// Forced push: the largest window the peer offered is that of the ACK that
// completed the handshake (Linux's tcp_create_openreq_child), 1000 bytes
// here, not the SYN's 32792; a 1000-byte segment is more than half of it.
func TestPushForcedBySmallPeerWindow(t *testing.T) {
	c := passiveOpenWith(t, tcp.Config{}, "mss 1000,sackOK,nop,nop", "mss 1460,nop,nop,sackOK", "1000")
	c.Write(strings.Repeat("x", 2000))
	c.Out("P. 1:1001(1000) ack 1")
	c.NoOut()
	c.Advance(100 * time.Millisecond)
	c.In(". 1:1(0) ack 1001 win 1000")
	c.Out("P. 1001:2001(1000) ack 1")
	c.NoOut()
}

// outBurst expects n 1000-byte segments from the k-th, the end of a write:
// GSO packets of two, PSH on the second of each and on the last.
func outBurst(c *tcptest.Conn, k, n int) {
	outPairs(c, k, k+n-1)
	c.Out("P. " + seg(k+n-1) + " ack 1")
}

// span is the SACK block from the i-th segment to the j-th (excluded).
func span(i, j int) string { return seqOf(i) + ":" + seqOf(j) }

// seqOf is the sequence number of the i-th 1000-byte segment from 1.
func seqOf(i int) string { return strconv.Itoa(1 + 1000*i) }

// outGroups expects 1000-byte segments from the k-th, n of them, sent as
// GSO packets of size segments: PSH on the last of each packet of more
// than one segment and on the last segment (the end of a write).
func outGroups(c *tcptest.Conn, k, n, size int) {
	for i := range n {
		flags := "."
		if (size > 1 && (i+1)%size == 0) || i == n-1 {
			flags = "P."
		}
		c.Out(flags + " " + seg(k+i) + " ack 1")
	}
}

// A GSO packet takes at most half the congestion window (Linux's
// tcp_cwnd_test), however large Config.MinTSOSegs makes it: the initial
// window of ten goes as two packets of five, and after an idle RTO the
// restarted window of ten does too, restarted before the first packet is
// sized (slow_start/slow-start-after-idle.pkt of packetdrill's corpus).
func TestPushHalfWindowPerPacket(t *testing.T) {
	c := passiveOpen(t, tcp.Config{MinTSOSegs: 10}, "511")
	c.Write(strings.Repeat("x", 26000))
	outGroups(c, 0, 10, 5)
	c.NoOut()
	c.Advance(100 * time.Millisecond)
	c.In(". 1:1(0) ack 10001 win 511") // cwnd 20: packets of ten
	outGroups(c, 10, 16, 10)
	c.NoOut()
	c.Advance(100 * time.Millisecond)
	c.In(". 1:1(0) ack 26001 win 511")
	if got := c.Conn().Info(c.Now()).Cwnd; got != 36 {
		t.Fatalf("cwnd %d, want 36", got)
	}
	c.Advance(2 * time.Second)
	c.Write(strings.Repeat("x", 20000))
	outGroups(c, 26, 10, 5) // not packets of ten from a window of 36
	c.NoOut()
	if got := c.Conn().Info(c.Now()).Cwnd; got != 10 {
		t.Fatalf("cwnd %d after idle, want 10", got)
	}
}

// With cwnd 2 and nothing in flight each packet is one segment, so a
// write's first two segments carry no PSH; at cwnd 4 with two in flight
// the two that go are one packet, with PSH; and the write's buffers, cut
// at cwnd 2, bound its packets only as far as growing the head buffer
// from the next one reaches (cubic/cubic-rto-ss-ca-cwnd-bump.pkt of
// packetdrill's corpus).
func TestPushSmallWindowSingleSegments(t *testing.T) {
	// GSO packets of up to ten segments, so that only the window and
	// the write's buffers bound them.
	c := passiveOpen(t, tcp.Config{MinTSOSegs: 10}, "257")
	c.Write(strings.Repeat("x", 1000))
	c.Out("P. 1:1001(1000) ack 1")
	c.NoOut()
	// The RTO (after the tail loss probe) takes cwnd to one segment;
	// the ACK of the resend grows it to two.
	c.Advance(300 * time.Millisecond)
	c.Out("P. 1:1001(1000) ack 1")
	c.Advance(300 * time.Millisecond)
	c.Out("P. 1:1001(1000) ack 1")
	c.NoOut()
	c.Advance(100 * time.Millisecond)
	c.In(". 1:1(0) ack 1001 win 257")
	if got := c.Conn().Info(c.Now()).Cwnd; got != 2 {
		t.Fatalf("cwnd %d, want 2", got)
	}
	c.Write(strings.Repeat("x", 20000))
	c.Out(". 1001:2001(1000) ack 1")
	c.Out(". 2001:3001(1000) ack 1")
	c.NoOut()
	c.In(". 1:1(0) ack 2001 win 257") // cwnd 3, one in flight: one packet of one
	c.Out(". 3001:4001(1000) ack 1")
	c.Out(". 4001:5001(1000) ack 1")
	c.NoOut()
	c.In(". 1:1(0) ack 3001 win 257") // cwnd 4, two in flight: one of two
	c.Out(". 5001:6001(1000) ack 1")
	c.Out("P. 6001:7001(1000) ack 1")
	c.NoOut()
	// All acknowledged: cwnd 7 (ssthresh), half of it three. The write
	// was cut into buffers of two segments at cwnd 2, but Linux 6.10 on
	// grows the buffer at the head of the queue from the next one up to
	// the packet the window allows (tcp_grow_skb): two packets of three,
	// then the one segment the window has left. Checked on Linux 6.18
	// with tcp_min_tso_segs 10 (8001:11001, 11001:14001, 14001:15001).
	c.In(". 1:1(0) ack 7001 win 257")
	if got := c.Conn().Info(c.Now()).Cwnd; got != 7 {
		t.Fatalf("cwnd %d, want 7", got)
	}
	for _, want := range []string{". 7001:8001", ". 8001:9001", "P. 9001:10001", ". 10001:11001",
		". 11001:12001", "P. 12001:13001", ". 13001:14001"} {
		c.Out(want + "(1000) ack 1")
	}
	c.NoOut()
	// All acknowledged again: the head buffer is the one segment left of
	// [13001, 15001); it takes all of the next buffer, and the buffer
	// after that takes one segment across the PSH mark forced_push put
	// at 19001. Linux 6.18 sends the same packets (15001:18001,
	// 18001:21001 and 21001:22001 in the scratch copy, its data 1000
	// further on).
	c.In(". 1:1(0) ack 14001 win 257")
	for _, want := range []string{". 14001:15001", ". 15001:16001", "P. 16001:17001", ". 17001:18001",
		". 18001:19001", "P. 19001:20001", "P. 20001:21001"} { // the write ends at 21001
		c.Out(want + "(1000) ack 1")
	}
	c.NoOut()
}

// Linux checks forced_push each time a buffer of the write is full, and
// its buffers are the size goal (six segments here, half the peer's
// window of 12800): the mark lands at 12001, past the initial window, not
// at 7001, which would cut a packet of one segment out of the burst
// (testdata/scripts/sockopt/notsent-lowat-size-goal.pkt).
func TestPushForcedAtPacketBoundary(t *testing.T) {
	c := passiveOpen(t, tcp.Config{}, "100")
	c.Write(strings.Repeat("x", 16000))
	outPairs(c, 0, 10)
	c.NoOut()
}

// A lost packet of several segments goes again as one, with PSH, as
// Linux resends the buffer it sent; a SACK inside it cuts it, and what is
// left of it on either side goes as packets of their own
// (sack/sack-route-refresh-ip-tos.pkt of packetdrill's corpus).
func TestPushResentPacketKeepsItsShape(t *testing.T) {
	c := passiveOpen(t, tcp.Config{}, "257")
	c.Write(strings.Repeat("x", 10000))
	outPairs(c, 0, 10)
	c.Advance(100 * time.Millisecond)
	c.In(". 1:1(0) ack 1 win 257 <sack 3001:4001 6001:10001,nop,nop>")
	c.Out(". " + seg(0) + " ack 1")
	c.Out("P. " + seg(1) + " ack 1")
	c.Out(". " + seg(2) + " ack 1") // its packet's other half is SACKed
	c.Out(". " + seg(4) + " ack 1")
	c.Out("P. " + seg(5) + " ack 1")
	c.NoOut()
}
