package tcptest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/synstack/synstack/tcp"
	"github.com/synstack/synstack/tcp/seq"
)

// fakeT is a testing.TB that records failures instead of ending the test.
type fakeT struct {
	testing.TB
	fails []string
}

func (f *fakeT) Helper() {}

func (f *fakeT) Fatalf(format string, args ...any) {
	f.fails = append(f.fails, fmt.Sprintf(format, args...))
}

const ourSYN = "S 0:0(0) win 64240 <mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 8>"

// Each wrong expectation fails once, with a message that says what was
// wanted and what happened.
func TestWrongExpectationsFail(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps func(c *Conn)
		want  []string // in the failure message, in order
	}{
		{"window", func(c *Conn) { c.Connect(); c.Out("S 0:0(0) win 1000") },
			[]string{"Out: the segment sent at +0.000 differs", "want S 0:0(0) win 1000", "got  S 0:0(0) win 64240 <mss 1460,",
				"win: want 1000, got 64240", "trace so far:", "call CONNECT", "> S 0:0(0) win 64240"}},
		{"flags and numbers", func(c *Conn) { c.Connect(); c.Out(". 1:2(1) ack 1") },
			[]string{"flags: want ., got S", "seq: want 1, got 0", "len: want 1, got 0"}},
		{"options", func(c *Conn) { c.Connect(); c.Out("S 0:0(0) <mss 536>") },
			[]string{"options: want <mss 536>, got <mss 1460,sackOK,TS val 1 ecr 0,wscale 8>"}},
		{"ack", func(c *Conn) {
			c.Listen()
			c.In("S 0:0(0) <mss 1460>")
			c.Out("S. 0:0(0) ack 2")
		}, []string{"ack: want 2, got 1"}},
		{"nothing sent", func(c *Conn) { c.Listen(); c.Out("S. 0:0(0) ack 1") },
			[]string{"Out: want S. 0:0(0) ack 1", "got nothing sent", "call LISTEN"}},
		{"something sent", func(c *Conn) { c.Connect(); c.NoOut() },
			[]string{"NoOut: the connection sent 1 segment(s):", "+0.000 > S 0:0(0) win 64240"}},
		{"state", func(c *Conn) { c.Connect(); c.State(tcp.Established) },
			[]string{"State: want ESTABLISHED, got SYN_SENT"}},
		{"timer early", func(c *Conn) { c.Connect(); c.Out(ourSYN); c.Fire(2 * time.Second) },
			[]string{"Fire(2s): the next timer is 1s from now"}},
		{"no timer", func(c *Conn) { c.Fire(time.Second) }, []string{"Fire(1s): no timer is armed"}},
		{"backwards", func(c *Conn) { c.Advance(-time.Second) }, []string{"Advance(-1s): time goes forward only"}},
		{"bad flags", func(c *Conn) { c.In("X 0:0(0)") }, []string{`In("X 0:0(0)"): flags "X": 'X' is not one of S F R P . E W U`}},
		{"bad range", func(c *Conn) { c.In("S 0:1(0)") }, []string{`"0:1(0)": END-SEQ is 1, LEN 0`}},
		{"bad option", func(c *Conn) { c.Out("S 0:0(0) <tcpao 1>") }, []string{`option "tcpao 1": want mss N`}},
		{"ack without flag", func(c *Conn) { c.In("S 0:0(0) ack 1") }, []string{"ack 1 without the ACK flag"}},
		{"write refused", func(c *Conn) { c.Write("x") }, []string{"Write of 1 bytes: 0 written, broken pipe"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeT{TB: t}
			tc.steps(New(f, tcp.Config{}))
			if len(f.fails) != 1 {
				t.Fatalf("%d failures, want 1: %q", len(f.fails), f.fails)
			}
			msg := f.fails[0]
			if !strings.HasPrefix(msg, "tcptest: ") {
				t.Errorf("message does not begin with tcptest: %q", msg)
			}
			rest := msg
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("message lacks %q (in order):\n%s", w, msg)
				}
				rest = rest[i+len(w):]
			}
		})
	}
}

// A right trace passes, and the numbers it writes are relative: the
// segments the connection takes and sends carry the absolute ones.
func TestRightTracePasses(t *testing.T) {
	f := &fakeT{TB: t}
	var raw []tcp.Segment
	c := New(f, tcp.Config{Output: func(s *tcp.Segment) { raw = append(raw, *s) }})
	c.Listen()
	c.In("S 0:0(0) win 65535 <mss 1460,sackOK,nop,wscale 7>")
	c.Out("S. 0:0(0) ack 1 win 64240 <mss 1460,nop,nop,sackOK,nop,wscale 8>")
	c.In(". 1:1(0) ack 1 win 512")
	c.State(tcp.Established)
	c.In("P. 1:1001(1000) ack 1 win 512")
	c.Out(". 1:1(0) ack 1001")
	c.In("P. 2001:3001(1000) ack 1 win 512") // a hole: the ACK SACKs the data beyond it
	c.Out(". 1:1(0) ack 1001 <sack 2001:3001>")
	c.Write("hello")
	c.Out("P. 1:6(5) ack 1001")
	c.In(". 1001:1001(0) ack 6 win 512")
	c.NoOut()
	c.Advance(time.Hour)
	c.NoOut()
	if len(f.fails) > 0 {
		t.Fatalf("a right trace failed: %q", f.fails)
	}
	if len(raw) != 4 {
		t.Fatalf("%d segments sent, want 4", len(raw))
	}
	synAck, sack := raw[0], raw[2]
	if synAck.SEQ != LocalISS || synAck.ACK != PeerISS.Add(1) {
		t.Errorf("SYN,ACK sent %d ack %d, want %d ack %d", synAck.SEQ, synAck.ACK, LocalISS, PeerISS.Add(1))
	}
	if b := sack.Options.SACK[0]; seq.Value(b.Left) != PeerISS.Add(2001) || seq.Value(b.Right) != PeerISS.Add(3001) {
		t.Errorf("SACK block %d:%d, want %d:%d", b.Left, b.Right, PeerISS.Add(2001), PeerISS.Add(3001))
	}
	if got := c.Conn().Readable(); got != 1000 {
		t.Errorf("%d bytes readable, want 1000", got)
	}
}

// Advance fires each timer at its own time, in order.
func TestAdvanceFiresTimersInOrder(t *testing.T) {
	c := New(t, tcp.Config{})
	c.Connect()
	c.Advance(4 * time.Second)
	for _, at := range []string{"+0.000", "+1.000", "+3.000"} {
		if len(c.out) == 0 || fmt.Sprintf("%+.3f", c.out[0].at.Seconds()) != at {
			t.Fatalf("want a SYN sent at %s; trace:\n%s", at, c.Trace())
		}
		c.Out(ourSYN[:len("S 0:0(0)")])
	}
	c.NoOut()
	if got := c.Now().Sub(c.start); got != 4*time.Second {
		t.Fatalf("Advance(4s) moved the clock %v", got)
	}
}

// What String writes, parse reads back the same.
func TestSegmentSyntaxRoundTrip(t *testing.T) {
	for _, line := range []string{
		"S 0:0(0) win 65535 <mss 1460,sackOK,TS val 1 ecr 0,wscale 8>",
		"S. 0:0(0) ack 1 win 65535 <mss 536>",
		". 1:1(0) ack 1001 win 256 <TS val 4294967295 ecr 7,sack 2001:3001 4001:5001>",
		"FP. 4294960000:4294960296(296) ack 1",
		"R 5:5(0) <>",
		"- 0:0(0)",
	} {
		s, err := parse(line)
		if err != nil {
			t.Errorf("parse(%q): %v", line, err)
			continue
		}
		if got := s.String(); got != line {
			t.Errorf("parse(%q).String() = %q", line, got)
		}
	}
}
