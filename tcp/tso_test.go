package tcp_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/synstack/synstack/tcp"
	"github.com/synstack/synstack/tcp/tcptest"
)

// TSO (Config.SegmentOffload): on a link that cuts segments, what Linux
// sends as one GSO packet goes as one segment of several MSS, GSOSize
// telling the link the MSS; what recovery sends again is cut back to MSS
// pieces, as Linux's tcp_fragment does.

// tsoConn is an established connection on a link that cuts segments of up
// to limit octets, with a peer offering MSS 1000, SACK and window scale 7
// and an RTT of 1 ms (a pacing rate whose GSO packets fill the initial
// window). gso collects the GSOSize of every data segment sent.
func tsoConn(t *testing.T, limit int) (*tcptest.Conn, *[]uint16) {
	t.Helper()
	var gso []uint16
	cfg := tcp.Config{SegmentOffload: limit, Output: func(seg *tcp.Segment) {
		if len(seg.Payload) > 0 {
			gso = append(gso, seg.GSOSize)
		}
	}}
	c := tcptest.New(t, cfg)
	c.Listen()
	c.In("S 0:0(0) win 32792 <mss 1000,sackOK,nop,nop,nop,wscale 7>")
	c.Out("S. 0:0(0) ack 1")
	c.Advance(time.Millisecond)
	c.In(". 1:1(0) ack 1 win 257")
	c.State(tcp.Established)
	return c, &gso
}

// wantGSO checks the GSOSize of the data segments sent so far.
func wantGSO(t *testing.T, gso *[]uint16, want ...uint16) {
	t.Helper()
	if len(*gso) != len(want) {
		t.Fatalf("GSO sizes %v, want %v", *gso, want)
	}
	for i := range want {
		if (*gso)[i] != want[i] {
			t.Fatalf("GSO sizes %v, want %v", *gso, want)
		}
	}
}

// The initial window goes as two segments of five MSS (a GSO packet takes
// at most half the congestion window, as Linux's tcp_cwnd_test), with PSH
// as Linux's GSO packets carry it; the connection counts the ten segments
// the wire carries.
func TestTSOSendsOneLargeSegment(t *testing.T) {
	c, gso := tsoConn(t, 64000)
	before := c.Conn().Info(c.Now()).SegsOut
	c.Write(strings.Repeat("x", 20000))
	outInitialWindow(c)
	c.NoOut()
	wantGSO(t, gso, 1000, 1000)
	if got := c.Conn().Info(c.Now()).SegsOut - before; got != 10 {
		t.Fatalf("SegsOut grew by %d, want 10", got)
	}
	// Two segments acknowledged: slow start opens room for four, sent
	// as one segment.
	c.Advance(time.Millisecond)
	c.In(". 1:1(0) ack 2001 win 257")
	c.Out("P. 10001:14001(4000) ack 1")
	c.NoOut()
	wantGSO(t, gso, 1000, 1000, 1000)
}

// outInitialWindow expects the initial window of ten 1000-byte segments
// as two GSO packets of five: half the window each.
func outInitialWindow(c *tcptest.Conn) {
	c.Out("P. 1:5001(5000) ack 1")
	c.Out("P. 5001:10001(5000) ack 1")
}

// The link's ceiling bounds a segment: with room for three MSS, the
// initial window goes as segments of three, three, three and one.
func TestTSOBoundedByLink(t *testing.T) {
	c, gso := tsoConn(t, 3500)
	c.Write(strings.Repeat("x", 20000))
	c.Out("P. 1:3001(3000) ack 1")
	c.Out("P. 3001:6001(3000) ack 1")
	c.Out("P. 6001:9001(3000) ack 1")
	c.Out(". 9001:10001(1000) ack 1") // a GSO packet of one segment: no PSH
	c.NoOut()
	wantGSO(t, gso, 1000, 1000, 1000, 0)
}

// Without the offload nothing changes: MSS-sized segments, PSH on the
// last of each GSO packet.
func TestTSOOffSendsMSSSegments(t *testing.T) {
	c, gso := tsoConn(t, 0)
	c.Write(strings.Repeat("x", 3000))
	c.Out(". 1:1001(1000) ack 1")
	c.Out(". 1001:2001(1000) ack 1")
	c.Out("P. 2001:3001(1000) ack 1")
	c.NoOut()
	wantGSO(t, gso, 0, 0, 0)
}

// The peer SACKs all of a large segment but one MSS in its middle: only
// that MSS is sent again, on its own.
func TestTSOPartialLossResendsOnePiece(t *testing.T) {
	c, gso := tsoConn(t, 64000)
	c.Write(strings.Repeat("x", 10000))
	outInitialWindow(c)
	c.Advance(time.Millisecond)
	c.In(". 1:1(0) ack 3001 win 257 <sack 4001:10001>")
	c.Out(". 3001:4001(1000) ack 1")
	c.NoOut()
	wantGSO(t, gso, 1000, 1000, 0)
	c.In(". 1:1(0) ack 10001 win 257")
	c.NoOut()
}

// SACK of part of a large segment: the rest of it, and only the rest, is
// sent again, one MSS at a time as the congestion window allows, and the
// SACKed pieces never. The four lost pieces were one packet and go again
// as one, with PSH (Linux resends what is left of the buffer it sent).
func TestTSOSackOfPartResendsTheRest(t *testing.T) {
	c, gso := tsoConn(t, 64000)
	c.Write(strings.Repeat("x", 10000))
	outInitialWindow(c)
	c.Advance(time.Millisecond)
	// The first four pieces are lost, the last six arrive.
	c.In(". 1:1(0) ack 1 win 257 <sack 4001:10001>")
	c.Out(". 1:1001(1000) ack 1")
	c.Out(". 1001:2001(1000) ack 1")
	c.Out(". 2001:3001(1000) ack 1")
	c.Out("P. 3001:4001(1000) ack 1")
	c.NoOut()
	wantGSO(t, gso, 1000, 1000, 0, 0, 0, 0)
	c.In(". 1:1(0) ack 10001 win 257")
	c.NoOut()
}

// A retransmission timeout sends the first MSS of a large segment again,
// not the whole of it (the tail loss probe before it, the last MSS), and
// slow start then resends the rest piece by piece, two at a time as one
// packet with PSH.
func TestTSORetransmissionTimeoutResendsOnePiece(t *testing.T) {
	c, gso := tsoConn(t, 64000)
	c.Write(strings.Repeat("x", 10000))
	outInitialWindow(c)
	c.NoOut()
	c.Advance(10 * time.Millisecond)
	c.Out("P. 9001:10001(1000) ack 1") // the tail loss probe
	c.NoOut()
	c.Advance(300 * time.Millisecond)
	c.Out(". 1:1001(1000) ack 1")
	c.NoOut()
	if n := c.Conn().Info(c.Now()).TotalRTO; n != 1 {
		t.Fatalf("TotalRTO %d, want 1", n)
	}
	c.In(". 1:1(0) ack 1001 win 257")
	c.Out(". 1001:2001(1000) ack 1")
	c.Out("P. 2001:3001(1000) ack 1")
	c.NoOut()
	wantGSO(t, gso, 1000, 1000, 0, 0, 0, 0)
}

// burst is data sent at one instant: [start, end) relative to the ISN,
// the segments that carried it merged.
type burst struct {
	at         time.Duration
	start, end uint32
}

// sendTimeline runs a bulk transfer to a peer 10 ms away that ACKs all it
// has every millisecond, for 200 ms, and returns what was sent when and
// in how many segments.
func sendTimeline(t *testing.T, congestion string, limit int) (out []burst, segs int) {
	t.Helper()
	var c *tcptest.Conn
	cfg := tcp.Config{Congestion: congestion, SegmentOffload: limit, Output: func(seg *tcp.Segment) {
		n := uint32(len(seg.Payload))
		if n == 0 || c == nil {
			return
		}
		segs++
		start := uint32(seg.SEQ - tcptest.LocalISS)
		at := c.Now().Sub(time.Unix(1_000_000, 0))
		if k := len(out); k > 0 && out[k-1].at == at && out[k-1].end == start {
			out[k-1].end += n
		} else {
			out = append(out, burst{at, start, start + n})
		}
	}}
	c = tcptest.New(t, cfg)
	c.Listen()
	c.In("S 0:0(0) win 65535 <mss 1000,sackOK,nop,nop,nop,wscale 7>")
	c.Advance(10 * time.Millisecond)
	c.In(". 1:1(0) ack 1 win 2000")
	chunk := make([]byte, 64<<10)
	acked := uint32(1)
	for range 200 {
		c.Conn().Write(c.Now(), chunk) // keep the queue full; EAGAIN when it is
		c.Advance(time.Millisecond)
		// What was sent 10 ms ago has arrived: ACK up to it.
		was := acked
		for _, b := range out {
			if c.Now().Sub(time.Unix(1_000_000, 0))-b.at >= 10*time.Millisecond && b.end > acked {
				acked = b.end
			}
		}
		if acked > was {
			c.In(". 1:1(0) ack " + strconv.Itoa(int(acked)) + " win 2000")
		}
	}
	return out, segs
}

// TSO changes how data is packaged, never what is sent when: under CUBIC
// and under BBR (which paces), the bytes sent at each instant are the same
// with and without it, and with it they go in fewer, larger segments.
func TestTSOSendsTheSameBytesAtTheSameTimes(t *testing.T) {
	for _, cc := range []string{tcp.CongestionCubic, tcp.CongestionBBR} {
		plain, plainSegs := sendTimeline(t, cc, 0)
		tso, tsoSegs := sendTimeline(t, cc, 64000)
		if len(plain) < 20 || tsoSegs*4 > plainSegs {
			t.Fatalf("%s: %d bursts; %d segments without TSO, %d with", cc, len(plain), plainSegs, tsoSegs)
		}
		t.Logf("%s: %d bursts; %d segments without TSO, %d with", cc, len(plain), plainSegs, tsoSegs)
		if len(plain) != len(tso) {
			t.Fatalf("%s: %d bursts without TSO, %d with", cc, len(plain), len(tso))
		}
		for i := range plain {
			if plain[i] != tso[i] {
				t.Fatalf("%s: burst %d: %+v without TSO, %+v with", cc, i, plain[i], tso[i])
			}
		}
	}
}
