package tcp_test

import (
	"strings"
	"testing"
	"time"

	"github.com/synstack/synstack/tcp"
	"github.com/synstack/synstack/tcp/tcptest"
)

// ecnConn returns a connection with mode whose sent segments' ECN
// codepoints are recorded in order.
func ecnConn(t *testing.T, mode tcp.ECNMode) (*tcptest.Conn, *[]uint8) {
	var marks []uint8
	c := tcptest.New(t, tcp.Config{ECN: mode, Output: func(seg *tcp.Segment) { marks = append(marks, seg.ECN) }})
	return c, &marks
}

// A client with ECNOn asks in its SYN; a SYN,ACK with ECE agrees, and new
// data goes out ECT(0), the SYN and pure ACKs Not-ECT (RFC 3168 6.1.1).
func TestECNClient(t *testing.T) {
	c, marks := ecnConn(t, tcp.ECNOn)
	c.Connect()
	c.Out("SEW 0:0(0)")
	c.Advance(100 * time.Millisecond)
	c.In("SE. 0:0(0) ack 1 win 65535 <mss 1000,sackOK,nop,nop,nop,wscale 7>")
	c.Out(". 1:1(0) ack 1")
	c.Write(strings.Repeat("x", 1000))
	c.Out("P. 1:1001(1000) ack 1")
	if want := []uint8{tcp.ECNNotECT, tcp.ECNNotECT, tcp.ECNECT0}; string(*marks) != string(want) {
		t.Fatalf("ECN codepoints %v, want %v", *marks, want)
	}
	if o := c.Conn().Info(c.Now()).Options; o&8 == 0 {
		t.Fatalf("tcpi_options %#x without TCPI_OPT_ECN", o)
	}
}

// A SYN,ACK that does not agree (no ECE, or ECE with CWR) leaves ECN off,
// and a retransmitted SYN no longer asks (Linux's tcp_ecn_fallback).
func TestECNClientNotAgreed(t *testing.T) {
	for _, synAck := range []string{"S.", "SEW."} {
		c, marks := ecnConn(t, tcp.ECNOn)
		c.Connect()
		c.Out("SEW 0:0(0)")
		c.In(synAck + " 0:0(0) ack 1 win 65535 <mss 1000>")
		c.Out(". 1:1(0) ack 1")
		c.Write("x")
		c.Out("P. 1:2(1) ack 1")
		if got := (*marks)[len(*marks)-1]; got != tcp.ECNNotECT {
			t.Errorf("SYN,ACK %s: data sent with ECN %d, want Not-ECT", synAck, got)
		}
	}
	c, _ := ecnConn(t, tcp.ECNOn)
	c.Connect()
	c.Out("SEW 0:0(0)")
	c.Fire(time.Second)
	c.Out("S 0:0(0)")
}

// The server agrees to a SYN that asks unless ECNOff; ECNPassive, the
// default, does not ask in its own SYNs.
func TestECNServerModes(t *testing.T) {
	for _, tc := range []struct {
		mode   tcp.ECNMode
		synAck string
	}{{tcp.ECNPassive, "SE."}, {tcp.ECNOn, "SE."}, {tcp.ECNOff, "S."}} {
		c, _ := ecnConn(t, tc.mode)
		c.Listen()
		c.In("SEW 0:0(0) win 65535 <mss 1000>")
		c.Out(tc.synAck + " 0:0(0) ack 1")
	}
	c, _ := ecnConn(t, tcp.ECNPassive)
	c.Connect()
	c.Out("S 0:0(0)")
}

// Congestion echoed twice in one window reduces it once: the CWR state
// lasts until data sent after it is acknowledged, and the first new data
// carries CWR, once.
func TestECNEchoReducesOncePerWindow(t *testing.T) {
	c, _ := ecnConn(t, tcp.ECNPassive)
	c.Listen()
	c.In("SEW 0:0(0) win 65535 <mss 1000,sackOK,nop,nop,nop,wscale 7>")
	c.Out("SE. 0:0(0) ack 1")
	c.Advance(100 * time.Millisecond)
	c.In(". 1:1(0) ack 1 win 320")
	c.Write(strings.Repeat("x", 10000)) // ten segments out, left unread
	c.Advance(100 * time.Millisecond)
	c.In("E. 1:1(0) ack 1001 win 320")
	inf := c.Conn().Info(c.Now())
	if inf.CAState != 2 || inf.Ssthresh != 7 {
		t.Fatalf("state %d, ssthresh %d after ECE; want CWR (2), 7", inf.CAState, inf.Ssthresh)
	}
	c.In("E. 1:1(0) ack 2001 win 320")
	if inf := c.Conn().Info(c.Now()); inf.Ssthresh != 7 || inf.CAState != 2 {
		t.Fatalf("a second ECE in the window: state %d, ssthresh %d; want CWR, 7 still", inf.CAState, inf.Ssthresh)
	}
}
