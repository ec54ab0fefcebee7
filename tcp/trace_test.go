package tcp_test

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/synstack/synstack/tcp"
	"github.com/synstack/synstack/tcp/tcptest"
)

// The state machine's basic arrows, written as traces (tcptest): the test
// plays the peer, segment by segment, on virtual time.

// synFromPeer is a Linux SYN: MSS 1460, SACK, timestamps, window scale 7.
const synFromPeer = "S 0:0(0) win 65535 <mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 7>"

// established returns a connection that reached ESTABLISHED by a passive
// open, its SYN,ACK and the final ACK carrying timestamps.
func established(t *testing.T) *tcptest.Conn {
	c := tcptest.New(t, tcp.Config{})
	c.Listen()
	c.In(synFromPeer)
	c.Out("S. 0:0(0) ack 1 win 65160 <mss 1460,sackOK,TS val 1 ecr 100,nop,wscale 8>")
	c.In(". 1:1(0) ack 1 win 512 <nop,nop,TS val 101 ecr 1>")
	c.State(tcp.Established)
	return c
}

// Passive open: LISTEN -> SYN_RCVD -> ESTABLISHED (RFC 9293 figure 6),
// every option offered and taken.
func TestThreeWayHandshakePassive(t *testing.T) {
	c := established(t)
	c.NoOut()
	inf := c.Conn().Info(c.Now())
	if inf.Options != 1|2|4 || inf.SndWScale != 7 || inf.RcvWScale != 8 {
		t.Fatalf("options %b, window scales %d/%d; want timestamps, SACK, window scale 7/8", inf.Options, inf.SndWScale, inf.RcvWScale)
	}
	if inf.SndMSS != 1460-12 {
		t.Fatalf("snd MSS with timestamps = %d, want 1448", inf.SndMSS)
	}
}

// Active open: CLOSED -> SYN_SENT -> ESTABLISHED, the ACK of the SYN,ACK
// sent at once.
func TestThreeWayHandshakeActive(t *testing.T) {
	c := tcptest.New(t, tcp.Config{})
	c.Connect()
	c.State(tcp.SynSent)
	c.Out("S 0:0(0) win 64240 <mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 8>")
	c.Advance(10 * time.Millisecond)
	c.In("S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,TS val 100 ecr 1,nop,wscale 7>")
	c.Out(". 1:1(0) ack 1 win 251 <nop,nop,TS val 11 ecr 100>")
	c.State(tcp.Established)
	if rtt := c.Conn().Info(c.Now()).RTT; rtt != 10*time.Millisecond {
		t.Fatalf("RTT from the SYN's timing = %v, want 10ms", rtt)
	}
}

// Simultaneous open (RFC 9293 figure 7): SYN_SENT -> SYN_RCVD on the
// peer's SYN, answered with a SYN,ACK; ESTABLISHED on its SYN,ACK, whose
// SYN, a duplicate, draws an ACK with a D-SACK block for it (Linux 6.18;
// testdata/scripts/handshake/simultaneous-open-synack.pkt).
func TestSimultaneousOpen(t *testing.T) {
	c := tcptest.New(t, tcp.Config{})
	c.Connect()
	c.Out("S 0:0(0) win 64240 <mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 8>")
	c.In(synFromPeer)
	c.State(tcp.SynRcvd)
	c.Out("S. 0:0(0) ack 1 win 64240 <mss 1460,sackOK,TS val 1 ecr 100,nop,wscale 8>")
	c.In("S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,TS val 101 ecr 1,nop,wscale 7>")
	c.State(tcp.Established)
	c.Out(". 1:1(0) ack 1 win 251 <nop,nop,TS val 1 ecr 101,nop,nop,sack 0:1>")
	c.NoOut()
}

// Without SACK the crossed SYN,ACK's duplicate SYN draws a plain ACK.
func TestSimultaneousOpenNoSACK(t *testing.T) {
	c := tcptest.New(t, tcp.Config{NoSACK: true, NoTimestamps: true})
	c.Connect()
	c.Out("S 0:0(0) win 64240 <mss 1460,nop,wscale 8>")
	c.In("S 0:0(0) win 65535 <mss 1460,nop,wscale 7>")
	c.Out("S. 0:0(0) ack 1 win 64240 <mss 1460,nop,wscale 8>")
	c.In("S. 0:0(0) ack 1 win 512")
	c.State(tcp.Established)
	c.Out(". 1:1(0) ack 1")
	c.NoOut()
}

// An unanswered SYN is sent again after 1, 3, 7, 15, 31 and 63 s (RTO
// 1 s doubling, tcp_syn_retries 6), then connect fails with ETIMEDOUT.
func TestConnectTimeoutBacksOff(t *testing.T) {
	c := tcptest.New(t, tcp.Config{})
	c.Connect()
	c.Out("S 0:0(0) win 64240 <mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 8>")
	elapsed := time.Duration(0)
	for rto := time.Second; rto <= 32*time.Second; rto *= 2 {
		c.Fire(rto)
		elapsed += rto
		c.Out(fmt.Sprintf("S 0:0(0) win 64240 <mss 1460,sackOK,TS val %d ecr 0,nop,wscale 8>", 1+elapsed.Milliseconds()))
	}
	c.State(tcp.SynSent)
	c.Fire(64 * time.Second)
	c.NoOut()
	c.State(tcp.Closed)
	if err := c.Conn().Err(); err != syscall.ETIMEDOUT {
		t.Fatalf("error %v, want ETIMEDOUT", err)
	}
}

// Lost data is sent again: first as the tail loss probe, 2·SRTT+200 ms
// after it was sent (RFC 8985 7.2; the handshake measured no delay), then
// by the retransmission timer, at RTO's 200 ms floor and doubling (RFC
// 6298 5.5), until the ACK comes.
func TestDataRetransmissionTimeout(t *testing.T) {
	c := established(t)
	c.Write("hello")
	c.Out("P. 1:6(5) ack 1 win 255 <nop,nop,TS val 1 ecr 101>")
	c.Fire(200 * time.Millisecond) // the probe
	c.Out("P. 1:6(5) ack 1 win 255 <nop,nop,TS val 201 ecr 101>")
	c.Fire(200 * time.Millisecond) // the RTO
	c.Out("P. 1:6(5) ack 1 win 255 <nop,nop,TS val 401 ecr 101>")
	c.Fire(400 * time.Millisecond) // backed off
	c.Out("P. 1:6(5) ack 1 win 255 <nop,nop,TS val 801 ecr 101>")
	c.In(". 1:1(0) ack 6 win 512 <nop,nop,TS val 102 ecr 801>")
	c.NoOut()
	if d := c.Conn().Deadline(); !d.IsZero() {
		t.Fatalf("a timer is still armed %v after everything was acknowledged", d.Sub(c.Now()))
	}
	if segs, timeouts := c.Conn().Retransmissions(); segs != 3 || timeouts != 2 {
		t.Fatalf("retransmissions %d, timeouts %d; want 3 (the probe, two timeouts) and 2", segs, timeouts)
	}
}

// Active close (RFC 9293 figure 12): FIN_WAIT_1 -> FIN_WAIT_2 ->
// TIME_WAIT, which re-ACKs a retransmitted FIN and starts its 2MSL (60 s)
// again, then CLOSED.
func TestFINExchangeAndTimeWait(t *testing.T) {
	c := established(t)
	c.Close()
	c.State(tcp.FinWait1)
	c.Out("F. 1:1(0) ack 1 win 255 <nop,nop,TS val 1 ecr 101>")
	c.In(". 1:1(0) ack 2 win 512 <nop,nop,TS val 102 ecr 1>")
	c.State(tcp.FinWait2)
	c.In("F. 1:1(0) ack 2 win 512 <nop,nop,TS val 103 ecr 1>")
	c.State(tcp.TimeWait)
	c.Out(". 2:2(0) ack 2 win 255 <nop,nop,TS val 1 ecr 103>")
	c.Advance(30 * time.Second)
	c.In("F. 1:1(0) ack 2 win 512 <nop,nop,TS val 30103 ecr 1>") // our ACK was lost
	c.Out(". 2:2(0) ack 2 win 255 <nop,nop,TS val 30001 ecr 30103>")
	c.State(tcp.TimeWait)
	c.Fire(60 * time.Second)
	c.State(tcp.Closed)
	c.NoOut()
}
