package tcp_test

import (
	"testing"
	"time"

	"github.com/synstack/synstack/tcp"
	"github.com/synstack/synstack/tcp/tcptest"
)

// TCP MD5 signatures (md5.go): the option on every segment, the SYN's
// option space shared as Linux shares it, the payload shrunk by the
// option's room, SACK blocks only where they fit.

// TestMD5ActiveOpen: a client with a key sends its SYN without
// timestamps, signs its ACKs and data, and takes 20 bytes off each
// segment's payload.
func TestMD5ActiveOpen(t *testing.T) {
	c := tcptest.New(t, tcp.Config{NoDelay: true})
	c.Conn().SetMD5Key([]byte("secret"))
	c.Connect()
	c.Out("S 0:0(0) <md5,mss 1460,sackOK,wscale 8>")
	c.In("S. 0:0(0) ack 1 win 65535 <md5,mss 1460,sackOK,wscale 7>")
	c.Out(". 1:1(0) ack 1 <md5>")
	c.State(tcp.Established)
	c.Write(string(make([]byte, 3000)))
	c.Out(". 1:1441(1440) ack 1 <md5>")
	c.Out(". 1441:2881(1440) ack 1 <md5>")
	c.Out("P. 2881:3001(120) ack 1 <md5>")
	if got := c.Conn().Info(c.Now()).SndMSS; got != 1440 {
		t.Errorf("SndMSS %d, want 1440", got)
	}
}

// TestMD5PassiveOpen: a listener's child with a key answers a SYN that
// permits SACK and offers timestamps without timestamps (no room beside
// the signature), and the connection goes on without them.
func TestMD5PassiveOpen(t *testing.T) {
	c := tcptest.New(t, tcp.Config{})
	c.Conn().SetMD5Key([]byte("secret"))
	c.Listen()
	c.In("S 0:0(0) win 65535 <md5,mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 7>")
	c.Out("S. 0:0(0) ack 1 <md5,mss 1460,sackOK,wscale 8>")
	c.In(". 1:1(0) ack 1 win 512 <md5>")
	c.State(tcp.Established)
	// Out of order: the ACK carries two SACK blocks at most.
	c.In(". 101:201(100) ack 1 win 512 <md5>")
	c.Out(". 1:1(0) ack 1 <md5,sack 101:201>")
	c.In(". 301:401(100) ack 1 win 512 <md5>")
	c.Out(". 1:1(0) ack 1 <md5,sack 301:401 101:201>")
	c.In(". 501:601(100) ack 1 win 512 <md5>")
	c.Out(". 1:1(0) ack 1 <md5,sack 501:601 301:401>")
}

// TestMD5PassiveTimestamps: without SACK the SYN,ACK has room for
// timestamps, and beside signature and timestamps an ACK has none for
// SACK blocks.
func TestMD5PassiveTimestamps(t *testing.T) {
	c := tcptest.New(t, tcp.Config{})
	c.Conn().SetMD5Key([]byte("secret"))
	c.Listen()
	c.In("S 0:0(0) win 65535 <md5,mss 1460,TS val 100 ecr 0,nop,wscale 7>")
	c.Out("S. 0:0(0) ack 1 <md5,mss 1460,TS val 1 ecr 100,wscale 8>")
	c.In(". 1:1(0) ack 1 win 512 <md5,TS val 101 ecr 1>")
	c.State(tcp.Established)
	if got := c.Conn().Info(c.Now()).SndMSS; got != 1460-12-20 {
		t.Errorf("SndMSS %d, want %d", got, 1460-12-20)
	}
	c.Advance(10 * time.Millisecond)
	c.In(". 101:201(100) ack 1 win 512 <md5,TS val 102 ecr 1>")
	c.Out(". 1:1(0) ack 1 <md5,TS val 11 ecr 101>")
}

// TestMD5KeyOnEstablished: a key set, then removed, on an established
// connection signs from then on and changes the payload per segment.
func TestMD5KeyOnEstablished(t *testing.T) {
	c := tcptest.New(t, tcp.Config{NoDelay: true})
	c.Connect()
	c.Out("S 0:0(0) <mss 1460,sackOK,TS val 1 ecr 0,wscale 8>")
	c.In("S. 0:0(0) ack 1 win 65535 <mss 1460,wscale 7>")
	c.Out(". 1:1(0) ack 1 <>")
	c.Conn().SetMD5Key([]byte("k"))
	c.Write(string(make([]byte, 1500)))
	c.Out(". 1:1441(1440) ack 1 <md5>")
	c.Out("P. 1441:1501(60) ack 1 <md5>")
	c.Conn().SetMD5Key(nil)
	c.In(". 1:1(0) ack 1501 win 65535")
	c.Write(string(make([]byte, 1500)))
	c.Out(". 1501:2961(1460) ack 1 <>")
}
