// Package tcptest drives one tcp.Conn as a trace, so that a unit test of
// the state machine reads like a packet script without the script runner:
//
//	c := tcptest.New(t, tcp.Config{})
//	c.Listen()
//	c.In("S 0:0(0) win 65535 <mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 7>")
//	c.Out("S. 0:0(0) ack 1 win 65160 <mss 1460,sackOK,TS val 1 ecr 100,nop,wscale 8>")
//	c.In(". 1:1(0) ack 1 win 512 <nop,nop,TS val 101 ecr 1>")
//	c.State(tcp.Established)
//
// The test plays the peer. Segments are written as packetdrill writes
// them: flags (S F R P, '.' for ACK), SEQ:END(LEN), then ack, win and
// <options>; sequence numbers are relative, SEQ to the sender's initial
// sequence number, ACK and SACK blocks to the receiver's. In sends a
// segment to the connection (its payload zeros, its window 65535 unless
// given); Out takes the next segment the connection sent and compares the
// fields the line gives (leave out win or <...> to ignore them), failing
// with the two segments and a line per field that differs. Time is
// virtual: Advance moves it and fires the timers due, Fire expects the
// next timer after an exact delay. Timestamps are absolute: the
// connection's clock reads 1 when its timestamps start.
package tcptest

import (
	"fmt"
	"strings"
	"time"

	"github.com/synstack/synstack/tcp"
	"github.com/synstack/synstack/tcp/seq"
)

// The initial sequence numbers of a trace: the connection's, and the
// peer's (what the test's SYN carries as sequence number 0). They are far
// apart and not zero, so that a relative number the helper failed to
// translate shows.
const (
	LocalISS seq.Value = 0x10000000
	PeerISS  seq.Value = 0x70000000
)

// T is what a trace needs of its test: *testing.T, *testing.B and any
// testing.TB have it.
type T interface {
	Helper()
	Fatalf(format string, args ...any)
}

// Conn is one tcp.Conn driven by a test, with the segments it sent that
// the test has not yet taken with Out, and the trace so far.
type Conn struct {
	t     T
	c     *tcp.Conn
	start time.Time
	now   time.Time
	out   []sent   // sent, not yet taken by Out
	trace []string // what happened, for failure messages and Trace
}

// sent is a segment the connection sent and when.
type sent struct {
	seg spec
	at  time.Duration
}

// New returns a connection in CLOSED made with cfg (tcp.NewConn) and
// initial sequence number LocalISS, on a virtual clock. cfg's Output and
// OnTransition, if set, are still called.
func New(t T, cfg tcp.Config) *Conn {
	t.Helper()
	tc := &Conn{t: t, start: time.Unix(1_000_000, 0)}
	tc.now = tc.start
	output, onTransition := cfg.Output, cfg.OnTransition
	cfg.Output = func(seg *tcp.Segment) {
		s := fromSegment(seg, LocalISS, PeerISS)
		tc.out = append(tc.out, sent{s, tc.elapsed()})
		tc.log("> " + s.String())
		if output != nil {
			output(seg)
		}
	}
	cfg.OnTransition = func(from, to tcp.State, cause tcp.Cause) {
		tc.log(fmt.Sprintf("  %s -> %s (%s)", from, to, cause))
		if onTransition != nil {
			onTransition(from, to, cause)
		}
	}
	tc.c = tcp.NewConn(cfg, LocalISS)
	return tc
}

// Conn returns the connection, for the calls the trace has no step for.
func (tc *Conn) Conn() *tcp.Conn { return tc.c }

// Now returns the virtual time.
func (tc *Conn) Now() time.Time { return tc.now }

// Trace returns what happened so far, a line per event: segments in
// (<) and out (>), transitions, calls and the passing of time.
func (tc *Conn) Trace() string { return strings.Join(tc.trace, "\n") + "\n" }

func (tc *Conn) elapsed() time.Duration { return tc.now.Sub(tc.start) }

func (tc *Conn) log(s string) {
	tc.trace = append(tc.trace, fmt.Sprintf("%+.3f %s", tc.elapsed().Seconds(), s))
}

// fatalf fails the test with the trace so far.
func (tc *Conn) fatalf(format string, args ...any) {
	tc.t.Helper()
	tc.t.Fatalf("tcptest: "+format+"\ntrace so far:\n%s", append(args, indent(tc.Trace()))...)
}

func indent(s string) string {
	return "\t" + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n\t")
}

// parse parses the segment line given to the method call, or fails the
// test.
func (tc *Conn) parse(call, line string) (spec, bool) {
	tc.t.Helper()
	s, err := parse(line)
	if err != nil {
		tc.fatalf("%s(%q): %v", call, line, err)
		return spec{}, false
	}
	return s, true
}

// In hands the connection a segment from the peer, written as the
// package doc says, e.g. "P. 1:6(5) ack 1".
func (tc *Conn) In(line string) {
	tc.t.Helper()
	s, ok := tc.parse("In", line)
	if !ok {
		return
	}
	seg := s.toSegment(PeerISS, LocalISS)
	tc.log("< " + line)
	tc.c.Input(tc.now, &seg)
}

// Out takes the next segment the connection sent and fails unless it
// matches line in every field line gives.
func (tc *Conn) Out(line string) {
	tc.t.Helper()
	want, ok := tc.parse("Out", line)
	if !ok {
		return
	}
	if len(tc.out) == 0 {
		tc.fatalf("Out: want %s\n  got nothing sent", line)
		return
	}
	got := tc.out[0]
	tc.out = tc.out[1:]
	if d := diff(want, got.seg); len(d) > 0 {
		tc.fatalf("Out: the segment sent at %+.3f differs:\n  want %s\n  got  %s\n  %s",
			got.at.Seconds(), line, got.seg, strings.Join(d, "\n  "))
	}
}

// NoOut fails if the connection sent a segment that Out has not taken.
func (tc *Conn) NoOut() {
	tc.t.Helper()
	if len(tc.out) > 0 {
		lines := make([]string, len(tc.out))
		for i, s := range tc.out {
			lines[i] = fmt.Sprintf("%+.3f > %s", s.at.Seconds(), s.seg)
		}
		tc.fatalf("NoOut: the connection sent %d segment(s):\n  %s", len(tc.out), strings.Join(lines, "\n  "))
	}
}

// Advance moves the virtual time on by d, firing every timer that falls
// due on the way, at its time.
func (tc *Conn) Advance(d time.Duration) {
	tc.t.Helper()
	if d < 0 {
		tc.fatalf("Advance(%v): time goes forward only", d)
		return
	}
	end := tc.now.Add(d)
	tc.log(fmt.Sprintf("  advance %v", d))
	for same := 0; ; same++ {
		next := tc.c.Deadline()
		if next.IsZero() || next.After(end) {
			break
		}
		if next.After(tc.now) {
			tc.now, same = next, 0
		}
		if same == maxTicksAtOnce {
			tc.fatalf("Advance: the deadline stays at %+.3f after %d ticks", tc.elapsed().Seconds(), same)
			return
		}
		tc.c.Tick(tc.now)
	}
	tc.now = end
}

// maxTicksAtOnce bounds the ticks Advance makes at one instant: a
// connection whose deadline does not move past a tick would hang it.
const maxTicksAtOnce = 100

// Fire expects the connection's next timer exactly d from now, moves the
// time there and fires it.
func (tc *Conn) Fire(d time.Duration) {
	tc.t.Helper()
	next := tc.c.Deadline()
	if next.IsZero() {
		tc.fatalf("Fire(%v): no timer is armed", d)
		return
	}
	if got := next.Sub(tc.now); got != d {
		tc.fatalf("Fire(%v): the next timer is %v from now", d, got)
		return
	}
	tc.Advance(d)
}

// State fails unless the connection is in state want.
func (tc *Conn) State(want tcp.State) {
	tc.t.Helper()
	if got := tc.c.State(); got != want {
		tc.fatalf("State: want %s, got %s", want, got)
	}
}

// Connect is the active OPEN call (CLOSED -> SYN_SENT).
func (tc *Conn) Connect() {
	tc.t.Helper()
	tc.log("  call CONNECT")
	if err := tc.c.Connect(tc.now); err != nil {
		tc.fatalf("Connect: %v", err)
	}
}

// Listen is the passive OPEN call (CLOSED -> LISTEN).
func (tc *Conn) Listen() {
	tc.log("  call LISTEN")
	tc.c.Listen()
}

// Write queues p and fails unless all of it was taken.
func (tc *Conn) Write(p string) {
	tc.t.Helper()
	tc.log(fmt.Sprintf("  call WRITE %d bytes", len(p)))
	if n, err := tc.c.Write(tc.now, []byte(p)); n != len(p) || err != nil {
		tc.fatalf("Write of %d bytes: %d written, %v", len(p), n, err)
	}
}

// Close is the user CLOSE call.
func (tc *Conn) Close() {
	tc.log("  call CLOSE")
	tc.c.Close(tc.now)
}
