package tcp_test

import (
	"testing"
	"time"

	"github.com/synstack/synstack/tcp"
	"github.com/synstack/synstack/tcp/tcptest"
)

// The receive window as Linux 6.18 chooses it (rcvwnd.go), each figure
// measured with packetdrill on Linux: a buffer of 131,072 octets offers a
// room of 65,536.

// passive brings a passive open with cfg to ESTABLISHED from the peer's
// SYN and checks the window of our SYN,ACK.
func passive(t *testing.T, cfg tcp.Config, syn, synAck string) *tcptest.Conn {
	c := tcptest.New(t, cfg)
	c.Listen()
	c.In(syn)
	c.Out(synAck)
	c.In(". 1:1(0) ack 1 win 1024")
	c.State(tcp.Established)
	return c
}

// tenOctets is passive followed by 10 octets from the peer, left unread,
// and time for their ACK.
func tenOctets(t *testing.T, cfg tcp.Config, syn, synAck string) *tcptest.Conn {
	c := passive(t, cfg, syn, synAck)
	c.In("P. 1:11(10) ack 1 win 1024")
	c.Advance(200 * time.Millisecond)
	return c
}

// A SYN,ACK offers the room in whole segments of the MSS it advertises,
// less the timestamp option when the peer offered timestamps: 44 segments
// of 1460 (64,240), or 45 of 1448 (65,160).
func TestRcvWindowSYNOffersWholeSegments(t *testing.T) {
	passive(t, tcp.Config{},
		"S 0:0(0) win 32792 <mss 1000,sackOK,nop,nop,nop,wscale 7>",
		"S. 0:0(0) ack 1 win 64240 <mss 1460,nop,nop,sackOK,nop,wscale 8>")
	passive(t, tcp.Config{},
		"S 0:0(0) win 32792 <mss 1000,sackOK,TS val 1 ecr 0,nop,wscale 7>",
		"S. 0:0(0) ack 1 win 65160 <mss 1460,sackOK,TS val 1 ecr 1,nop,wscale 8>")
}

// A window larger than the SYN's field is kept whole: with packetdrill's
// buffer of 540,000 octets the SYN,ACK says 65,535 of 268,640 (184
// segments), and the first scaled window is all of it, rounded up to the
// scale's unit: 1050 << 8, not the 1049 the clamp (the room less one
// segment) would give.
func TestRcvWindowFirstAfterSYNKeepsItsEdge(t *testing.T) {
	c := passive(t, tcp.Config{RcvBuf: 540000},
		"S 0:0(0) win 32792 <mss 1000,sackOK,nop,nop,nop,wscale 7>",
		"S. 0:0(0) ack 1 win 65535 <mss 1460,nop,nop,sackOK,nop,wscale 8>")
	c.Write("x")
	c.Out("P. 1:2(1) ack 1 win 1050")
}

// Without window scaling, data that waits unread does not pull the window
// in: the threshold holds the window near the SYN's, and a window within
// a segment of it is kept (Linux's fastopen/server scripts: 65,535 after
// 10 octets, where the free room minus 10 would say 65,525).
func TestRcvWindowUnscaledKeepsTheSYNWindow(t *testing.T) {
	c := tenOctets(t, tcp.Config{RcvBuf: 540000},
		"S 0:0(0) win 32792 <mss 1000,sackOK,nop,nop>",
		"S. 0:0(0) ack 1 win 65535 <mss 1460,nop,nop,sackOK>")
	c.Out(". 1:1(0) ack 11 win 65535")
	c.NoOut()
}

// Without window scaling, a window that would move the right edge left
// keeps it: 64,240 less the 10 octets received, where the room held to
// the clamp (65,536 - 1460) in whole segments would be less. Reading
// them sends no update (the window is far from half closed). Measured on
// Linux 6.18 (testdata/scripts/options/rcv-window-unscaled.pkt).
func TestRcvWindowUnscaledKeepsItsEdge(t *testing.T) {
	c := tenOctets(t, tcp.Config{},
		"S 0:0(0) win 32792 <mss 1000,sackOK,nop,nop>",
		"S. 0:0(0) ack 1 win 64240 <mss 1460,nop,nop,sackOK>")
	c.Out(". 1:1(0) ack 11 win 64230")
	read(t, c, 10)
	c.NoOut()
	// 300 more: the edge would be 63,930 away, the room (64,076) is more
	// than a segment from the 64,230 offered: whole segments of the guess
	// of the peer's size, 512 (536, bounded to half the 1024 the peer's
	// ACK offered), make 64,000.
	c.In("P. 11:311(300) ack 1 win 1024")
	c.Advance(200 * time.Millisecond)
	c.Out(". 1:1(0) ack 311 win 64000")
	read(t, c, 300)
	c.Write("x")
	c.Out("P. 1:2(1) ack 311 win 64000")
}

// With window scaling the window is the room, held to the clamp, rounded
// up to the scale's unit: 64,256 (251 << 8) once the SYN's 64,240 less 10
// octets would be smaller.
func TestRcvWindowScaledRoundsUpToTheScale(t *testing.T) {
	c := tenOctets(t, tcp.Config{},
		"S 0:0(0) win 32792 <mss 1000,sackOK,nop,nop,nop,wscale 7>",
		"S. 0:0(0) ack 1 win 64240 <mss 1460,nop,nop,sackOK,nop,wscale 8>")
	c.Out(". 1:1(0) ack 11 win 251")
	c.NoOut()
}

// read reads n octets from c's connection, failing on anything else.
func read(t *testing.T, c *tcptest.Conn, n int) {
	t.Helper()
	buf := make([]byte, n+1)
	if got, err := c.Conn().Read(c.Now(), buf); got != n || err != nil {
		t.Fatalf("read %d octets (%v), want %d", got, err, n)
	}
}
