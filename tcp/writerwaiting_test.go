package tcp_test

import (
	"syscall"
	"testing"
	"time"

	"github.com/synstack/synstack/tcp"
	"github.com/synstack/synstack/tcp/tcptest"
)

// synSentWithWriter opens a connection and, if waiting, marks a writer
// waiting for its handshake; then the peer's SYN,ACK arrives.
func synSentWithWriter(t *testing.T, waiting bool) *tcptest.Conn {
	c := tcptest.New(t, tcp.Config{})
	c.Connect()
	c.Out("S 0:0(0)")
	c.Conn().SetWriterWaiting(waiting)
	c.In("S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,nop,wscale 7>")
	c.State(tcp.Established)
	return c
}

// TestWriterWaitingDelaysHandshakeACK: as Linux's
// tcp_rcv_synsent_state_process with sk_write_pending, the handshake's
// ACK waits for the waiting writer's data, which carries it; without a
// writer it goes at once.
func TestWriterWaitingDelaysHandshakeACK(t *testing.T) {
	c := synSentWithWriter(t, true)
	c.NoOut()
	c.Conn().SetWriterWaiting(false) // the writer wakes and writes
	c.Write("hello")
	c.Out("P. 1:6(5) ack 1")
	c.NoOut()

	c = synSentWithWriter(t, false)
	c.Out(". 1:1(0) ack 1")
	c.NoOut()
}

// TestWriterWaitingACKFallsDue: a writer that waits on and writes nothing
// leaves the ACK to the delayed-ACK timer, TCP_DELACK_MAX after the
// SYN,ACK.
func TestWriterWaitingACKFallsDue(t *testing.T) {
	c := synSentWithWriter(t, true)
	c.NoOut()
	c.Fire(200 * time.Millisecond)
	c.Out(". 1:1(0) ack 1")
	c.NoOut()
}

// TestWriterReplyEntersPingpong: data sent within TCP_ATO_MIN of the
// SYN,ACK it answers is a reply (Linux's tcp_event_data_sent): the
// peer's next data is acknowledged by the delayed-ACK timer, not at once;
// a writer that comes later leaves quick-ACK mode on.
func TestWriterReplyEntersPingpong(t *testing.T) {
	c := synSentWithWriter(t, true)
	c.Conn().SetWriterWaiting(false)
	c.Write("hello")
	c.Out("P. 1:6(5) ack 1")
	c.In("P. 1:11(10) ack 6 win 512")
	c.NoOut()
	c.Fire(40 * time.Millisecond)
	c.Out(". 6:6(0) ack 11")

	c = synSentWithWriter(t, true)
	c.Conn().SetWriterWaiting(false)
	c.Advance(50 * time.Millisecond)
	c.Write("hello")
	c.Out("P. 1:6(5) ack 1")
	c.In("P. 1:11(10) ack 6 win 512")
	c.Out(". 6:6(0) ack 11")
	c.NoOut()
}

// TestSynAckBadEcrRefused: in SYN_SENT a SYN,ACK echoing a timestamp we
// never sent draws a RST and leaves the connection waiting (Linux's
// PAWSActiveRejected); the next, good one establishes it.
func TestSynAckBadEcrRefused(t *testing.T) {
	c := tcptest.New(t, tcp.Config{})
	c.Connect()
	c.Out("S 0:0(0) <mss 1460,sackOK,TS val 1 ecr 0,wscale 8>")
	c.Advance(10 * time.Millisecond)
	c.In("S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,TS val 500 ecr 9999,nop,wscale 7>")
	c.Out("R 1:1(0)")
	c.NoOut()
	c.State(tcp.SynSent)
	c.In("S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,TS val 500 ecr 1,nop,wscale 7>")
	c.Out(". 1:1(0) ack 1")
	c.State(tcp.Established)
}

// TestFastOpenICMPErrorOtherConns: on a connection that is not a Fast
// Open child in SYN_RCVD, FastOpenICMPError is ICMPError: an established
// connection ignores the (soft) error.
func TestFastOpenICMPErrorOtherConns(t *testing.T) {
	c := synSentWithWriter(t, false)
	c.Out(". 1:1(0) ack 1")
	if c.Conn().FastOpenICMPError(syscall.EHOSTUNREACH, "test") {
		t.Error("an established connection ended on an ICMP error")
	}
	c.State(tcp.Established)
}

// TestSetSynRetriesInSynSent: TCP_SYNCNT set while the SYN waits for its
// answer bounds the retransmissions still to come, as Linux reads it at
// each timeout: with 1, the SYN goes once more, then connect fails.
func TestSetSynRetriesInSynSent(t *testing.T) {
	c := tcptest.New(t, tcp.Config{})
	c.Connect()
	c.Out("S 0:0(0)")
	c.Conn().SetSynRetries(1)
	c.Fire(time.Second)
	c.Out("S 0:0(0)")
	c.Fire(2 * time.Second)
	c.NoOut()
	c.State(tcp.Closed)
	if _, err := c.Conn().Write(c.Now(), []byte("x")); err != syscall.ETIMEDOUT {
		t.Errorf("write after the SYN timed out: %v, want ETIMEDOUT", err)
	}
}
