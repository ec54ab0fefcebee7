package tcp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/synstack/synstack/tcp/seq"
	"github.com/synstack/synstack/wire"
)

// end is one side of a test connection: its Conn, the transitions it made,
// and the segments it sent that the network has not delivered yet.
type end struct {
	name  string
	c     *Conn
	path  []State
	out   []Segment
	trace *[]string
}

// net joins two ends with virtual time; tests move segments by hand or let
// run deliver everything.
type testNet struct {
	t     *testing.T
	now   time.Time
	a, b  *end
	trace []string
}

func newEnd(n *testNet, name string, iss seq.Value, mod func(*Config)) *end {
	e := &end{name: name, trace: &n.trace}
	cfg := Config{}
	cfg.Output = func(s *Segment) {
		cp := *s
		cp.Payload = append([]byte(nil), s.Payload...)
		e.out = append(e.out, cp)
		*e.trace = append(*e.trace, fmt.Sprintf("%s > %s", name, fmtSeg(&cp)))
	}
	cfg.OnTransition = func(from, to State, cause Cause) {
		e.path = append(e.path, to)
		*e.trace = append(*e.trace, fmt.Sprintf("%s %s -> %s (%s)", name, from, to, cause))
	}
	if mod != nil {
		mod(&cfg)
	}
	e.c = NewConn(cfg, iss)
	e.path = []State{Closed}
	return e
}

func fmtSeg(s *Segment) string {
	return fmt.Sprintf("%s %d:%d(%d) ack %d win %d", s.Flags, s.SEQ, s.SEQ.Add(seq.Size(len(s.Payload))), len(s.Payload), s.ACK, s.WND)
}

func newNet(t *testing.T, mod func(*Config)) *testNet {
	n := &testNet{t: t, now: time.Unix(1000, 0)}
	n.a = newEnd(n, "A", 1000, mod)
	n.b = newEnd(n, "B", 5000, mod)
	return n
}

func (n *testNet) peer(e *end) *end {
	if e == n.a {
		return n.b
	}
	return n.a
}

// deliver moves every segment e sent to its peer, in order.
func (n *testNet) deliver(e *end) int {
	segs := e.out
	e.out = nil
	p := n.peer(e)
	for i := range segs {
		p.c.Input(n.now, &segs[i])
	}
	return len(segs)
}

// drop discards what e sent.
func (n *testNet) drop(e *end) int {
	k := len(e.out)
	e.out = nil
	return k
}

// settle delivers in both directions until nothing moves.
func (n *testNet) settle() {
	for i := 0; i < 1000; i++ {
		if n.deliver(n.a)+n.deliver(n.b) == 0 {
			return
		}
	}
	n.t.Fatal("segments never stopped flowing")
}

// advance moves time to the earliest deadline of either end (if before
// limit) and ticks it; it reports whether something fired.
func (n *testNet) advance(limit time.Time) bool {
	var next time.Time
	for _, e := range []*end{n.a, n.b} {
		if d := e.c.Deadline(); !d.IsZero() && (next.IsZero() || d.Before(next)) {
			next = d
		}
	}
	if next.IsZero() || next.After(limit) {
		n.now = limit
		return false
	}
	n.now = next
	n.a.c.Tick(n.now)
	n.b.c.Tick(n.now)
	return true
}

// wait lets d pass, firing timers and delivering what they send.
func (n *testNet) wait(d time.Duration) {
	limit := n.now.Add(d)
	for n.advance(limit) {
		n.settle()
	}
	n.settle()
}

func (n *testNet) handshake() {
	n.b.c.Listen()
	if err := n.a.c.Connect(n.now); err != nil {
		n.t.Fatal(err)
	}
	n.settle()
	if n.a.c.State() != Established || n.b.c.State() != Established {
		n.t.Fatalf("after handshake: A %s, B %s\n%s", n.a.c.State(), n.b.c.State(), n.dump())
	}
}

func (n *testNet) dump() string { return strings.Join(n.trace, "\n") }

func (n *testNet) wantPath(e *end, want ...State) {
	n.t.Helper()
	if fmt.Sprint(e.path) != fmt.Sprint(want) {
		n.t.Fatalf("%s went %v, want %v\n%s", e.name, e.path, want, n.dump())
	}
}

func readAll(t *testing.T, n *testNet, e *end) []byte {
	var got []byte
	buf := make([]byte, 4096)
	for {
		k, err := e.c.Read(n.now, buf)
		got = append(got, buf[:k]...)
		if err != nil {
			return got
		}
	}
}

func TestDataBothWaysAndFourWayClose(t *testing.T) {
	n := newNet(t, nil)
	n.handshake()
	msg := bytes.Repeat([]byte("synstack"), 5000) // 40000 bytes: several windows of segments
	written := 0
	for written < len(msg) {
		k, err := n.a.c.Write(n.now, msg[written:])
		if err != nil && !errors.Is(err, syscall.EAGAIN) {
			t.Fatal(err)
		}
		written += k
		n.settle()
	}
	if got := readAll(t, n, n.b); !bytes.Equal(got, msg) {
		t.Fatalf("B read %d bytes, want %d identical", len(got), len(msg))
	}
	if _, err := n.b.c.Write(n.now, []byte("reply")); err != nil {
		t.Fatal(err)
	}
	n.settle()
	if got := readAll(t, n, n.a); string(got) != "reply" {
		t.Fatalf("A read %q", got)
	}
	// Active close by A. B's ACK of the FIN is delayed (Linux's pingpong
	// mode after a FIN), so let 40 ms pass.
	n.a.c.Close(n.now)
	n.settle()
	n.wait(50 * time.Millisecond)
	if n.a.c.State() != FinWait2 || n.b.c.State() != CloseWait {
		t.Fatalf("A %s B %s", n.a.c.State(), n.b.c.State())
	}
	if _, err := n.b.c.Read(n.now, make([]byte, 1)); err != io.EOF {
		t.Fatalf("B read after FIN: %v, want EOF", err)
	}
	n.b.c.Close(n.now)
	n.settle()
	n.wantPath(n.a, Closed, SynSent, Established, FinWait1, FinWait2, TimeWait)
	n.wantPath(n.b, Closed, Listen, SynRcvd, Established, CloseWait, LastAck, Closed)
	start := n.now
	for n.advance(start.Add(time.Hour)) {
	}
	n.wantPath(n.a, Closed, SynSent, Established, FinWait1, FinWait2, TimeWait, Closed)
	_ = start
}

func TestSimultaneousClose(t *testing.T) {
	n := newNet(t, nil)
	n.handshake()
	n.a.c.Close(n.now)
	n.b.c.Close(n.now)
	n.settle()
	n.wantPath(n.a, Closed, SynSent, Established, FinWait1, Closing, TimeWait)
	n.wantPath(n.b, Closed, Listen, SynRcvd, Established, FinWait1, Closing, TimeWait)
}

func TestConnectRefused(t *testing.T) {
	n := newNet(t, nil)
	n.a.c.Connect(n.now)
	syn := n.a.out[0]
	n.drop(n.a)
	// Nobody listens: the peer's stack answers <SEQ=0><ACK=SEG.SEQ+1><CTL=RST,ACK>.
	rst := Segment{SEQ: 0, ACK: syn.SEQ.Add(1), Flags: flagRST | flagACK}
	n.a.c.Input(n.now, &rst)
	n.wantPath(n.a, Closed, SynSent, Closed)
	if err := n.a.c.TakeErr(); err != syscall.ECONNREFUSED {
		t.Fatalf("error %v, want ECONNREFUSED", err)
	}
}

func TestRSTInSynRcvdReturnsToListen(t *testing.T) {
	n := newNet(t, nil)
	n.b.c.Listen()
	n.a.c.Connect(n.now)
	n.deliver(n.a) // SYN -> B, B sends SYN,ACK
	n.drop(n.b)
	rst := Segment{SEQ: n.a.c.snd.iss.Add(1), Flags: flagRST}
	n.b.c.Input(n.now, &rst)
	n.wantPath(n.b, Closed, Listen, SynRcvd, Listen)
}

func TestResetInEstablishedAndBlindResetChallenged(t *testing.T) {
	n := newNet(t, nil)
	n.handshake()
	// A RST in the window but not at RCV.NXT draws a challenge ACK (RFC 5961).
	blind := Segment{SEQ: n.b.c.rcv.nxt.Add(100), Flags: flagRST}
	n.b.c.Input(n.now, &blind)
	if n.b.c.State() != Established || len(n.b.out) != 1 || n.b.out[0].Flags != flagACK {
		t.Fatalf("blind RST: state %s, sent %v", n.b.c.State(), n.b.out)
	}
	n.drop(n.b)
	exact := Segment{SEQ: n.b.c.rcv.nxt, Flags: flagRST}
	n.b.c.Input(n.now, &exact)
	if n.b.c.State() != Closed {
		t.Fatalf("exact RST left %s", n.b.c.State())
	}
	if _, err := n.b.c.Read(n.now, make([]byte, 10)); err != syscall.ECONNRESET {
		t.Fatalf("read after reset: %v, want ECONNRESET", err)
	}
	if _, err := n.b.c.Read(n.now, make([]byte, 10)); err != io.EOF {
		t.Fatalf("second read after reset: %v, want EOF", err)
	}
	if _, err := n.b.c.Write(n.now, []byte("x")); err != syscall.EPIPE {
		t.Fatalf("write after reset: %v, want EPIPE", err)
	}
}

func TestHalfCloseStillReceives(t *testing.T) {
	n := newNet(t, nil)
	n.handshake()
	if err := n.a.c.Shutdown(n.now, ShutWr); err != nil {
		t.Fatal(err)
	}
	n.settle()
	n.wait(50 * time.Millisecond)
	if n.a.c.State() != FinWait2 {
		t.Fatalf("A %s", n.a.c.State())
	}
	if _, err := n.a.c.Write(n.now, []byte("x")); err != syscall.EPIPE {
		t.Fatalf("write after SHUT_WR: %v", err)
	}
	n.b.c.Write(n.now, []byte("still flowing"))
	n.settle()
	if got := readAll(t, n, n.a); string(got) != "still flowing" {
		t.Fatalf("A read %q after its own half-close", got)
	}
	// Not orphaned: FIN_WAIT_2 has no timeout.
	if !n.a.c.Deadline().IsZero() {
		t.Fatal("a half-closed (not closed) socket must not time out in FIN_WAIT_2")
	}
}

func TestCloseWithUnreadDataResets(t *testing.T) {
	n := newNet(t, nil)
	n.handshake()
	n.a.c.Write(n.now, []byte("unread"))
	n.settle()
	n.b.c.Close(n.now)
	if len(n.b.out) != 1 || n.b.out[0].Flags&flagRST == 0 {
		t.Fatalf("close with unread data sent %v, want RST", n.b.out)
	}
	n.settle()
	if n.a.c.State() != Closed || n.a.c.Err() != syscall.ECONNRESET {
		t.Fatalf("A %s err %v", n.a.c.State(), n.a.c.Err())
	}
}

func TestLostDataIsRetransmitted(t *testing.T) {
	n := newNet(t, nil)
	n.handshake()
	n.a.c.Write(n.now, []byte("hello"))
	n.drop(n.a)
	for n.b.c.Readable() == 0 {
		if !n.advance(n.now.Add(time.Minute)) {
			t.Fatal("no retransmission")
		}
		n.settle()
	}
	if got := readAll(t, n, n.b); string(got) != "hello" {
		t.Fatalf("read %q", got)
	}
	if n.a.c.Info(n.now).TotalRetrans != 1 {
		t.Fatalf("retransmissions %d", n.a.c.Info(n.now).TotalRetrans)
	}
}

func TestRetransmissionLimitTimesOut(t *testing.T) {
	n := newNet(t, nil)
	n.handshake()
	n.a.c.Write(n.now, []byte("into the void"))
	for n.advance(n.now.Add(time.Hour)) {
		n.drop(n.a)
	}
	if n.a.c.State() != Closed || n.a.c.Err() != syscall.ETIMEDOUT {
		t.Fatalf("A %s err %v, want CLOSED ETIMEDOUT", n.a.c.State(), n.a.c.Err())
	}
}

func TestOrphanFinWait2TimesOut(t *testing.T) {
	n := newNet(t, nil)
	n.handshake()
	n.a.c.Close(n.now)
	n.settle()
	if n.a.c.State() != FinWait2 { // no data was received: B's ACK is not delayed
		t.Fatal(n.a.c.State())
	}
	t0 := n.now
	n.advance(t0.Add(2 * time.Minute))
	if n.a.c.State() != Closed || n.now.Sub(t0) != 60*time.Second {
		t.Fatalf("orphan FIN_WAIT_2: %s after %v", n.a.c.State(), n.now.Sub(t0))
	}
}

func TestZeroWindowProbe(t *testing.T) {
	n := newNet(t, func(c *Config) { c.RcvBuf = 4096; c.NoWindowScale = true })
	n.handshake()
	big := make([]byte, 10000)
	n.a.c.Write(n.now, big)
	n.settle()
	// The room left, 600 octets, is less than a segment and less than
	// half the buffer: B closes its window rather than offer a sliver
	// (Linux's __tcp_select_window), and A waits.
	if n.b.c.Readable() != 1448 || n.a.c.snd.wnd != 0 {
		t.Fatalf("B holds %d, A sees window %d", n.b.c.Readable(), n.a.c.snd.wnd)
	}
	// The persist timer probes the closed window.
	n.advance(n.now.Add(time.Minute))
	if len(n.a.out) != 1 || n.a.out[0].SEQ != n.a.c.snd.una-1 {
		t.Fatalf("probe %v", n.a.out)
	}
	n.settle()
	readAll(t, n, n.b) // opens the window: B sends an update
	n.settle()
	if n.b.c.Readable() == 0 {
		t.Fatal("window update did not restart the sender")
	}
}

func TestOutOfOrderReassembly(t *testing.T) {
	n := newNet(t, func(c *Config) { c.NoDelay = true })
	n.handshake()
	n.a.c.Write(n.now, []byte("first"))
	first := n.a.out
	n.a.out = nil
	n.a.c.Write(n.now, []byte("second"))
	n.deliver(n.a) // "second" arrives first
	if len(n.b.out) != 1 || n.b.out[0].Options.NumSACK != 1 {
		t.Fatalf("out-of-order segment should draw an immediate ACK with SACK, got %v", n.b.out)
	}
	for i := range first {
		n.b.c.Input(n.now, &first[i])
	}
	n.settle()
	if got := readAll(t, n, n.b); string(got) != "firstsecond" {
		t.Fatalf("read %q", got)
	}
}

func TestKeepaliveDetectsDeadPeer(t *testing.T) {
	n := newNet(t, nil)
	n.handshake()
	n.a.c.SetKeepAlive(n.now, true, 10*time.Second, 2*time.Second, 3)
	t0 := n.now
	probes := 0
	for n.advance(t0.Add(time.Hour)) {
		for _, s := range n.a.out {
			if s.Flags&flagRST == 0 {
				probes++
			}
		}
		n.drop(n.a) // B has crashed: nothing answers
	}
	if probes != 3 || n.a.c.Err() != syscall.ETIMEDOUT {
		t.Fatalf("probes %d err %v", probes, n.a.c.Err())
	}
}

func TestStateNames(t *testing.T) {
	want := "CLOSED LISTEN SYN_SENT SYN_RCVD ESTABLISHED FIN_WAIT_1 FIN_WAIT_2 CLOSE_WAIT CLOSING LAST_ACK TIME_WAIT"
	var got []string
	for s := Closed; s <= TimeWait; s++ {
		got = append(got, s.String())
	}
	if strings.Join(got, " ") != want {
		t.Fatal(got)
	}
	_ = wire.FlagACK
}

// A single segment lost from a window is repaired by fast retransmit within
// the round trip, without a timeout, and only that segment is sent again:
// with SACK (RFC 6675) and without (NewReno, RFC 6582).
func TestFastRetransmitRepairsOneLoss(t *testing.T) {
	for _, tc := range []struct {
		sack bool
		lost []int
	}{{true, []int{2}}, {false, []int{2}}, {true, []int{2, 5, 7}}, {false, []int{2, 5, 7}}} {
		sack := tc.sack
		t.Run(fmt.Sprintf("sack=%v/lost=%v", tc.sack, tc.lost), func(t *testing.T) {
			n := newNet(t, func(c *Config) { c.NoSACK = !sack; c.MSS = 1000 })
			n.handshake()
			msg := bytes.Repeat([]byte("0123456789"), 1000) // 10 segments of 1000-12
			if k, _ := n.a.c.Write(n.now, msg); k != len(msg) {
				t.Fatalf("wrote %d", k)
			}
			segs := n.a.out
			n.a.out = nil
			if len(segs) < 8 {
				t.Fatalf("only %d segments in the first window", len(segs))
			}
			for i := range segs {
				if slices.Contains(tc.lost, i) {
					continue
				}
				n.b.c.Input(n.now, &segs[i])
			}
			if sack && n.b.out[len(n.b.out)-1].Options.NumSACK == 0 {
				t.Fatal("duplicate ACKs carry no SACK block")
			}
			n.settle() // dup ACKs reach A, which retransmits; then the rest
			if got := readAll(t, n, n.b); !bytes.Equal(got, msg) {
				t.Fatalf("B read %d bytes, want %d", len(got), len(msg))
			}
			inf := n.a.c.Info(n.now)
			if inf.TotalRetrans != len(tc.lost) {
				t.Fatalf("%d retransmissions, want exactly the %d lost segments", inf.TotalRetrans, len(tc.lost))
			}
			// Without SACK the recovery holds while the ACK is at its
			// recovery point: all data sent when it began (Linux's
			// tcp_try_undo_recovery).
			want := lossNone
			if !sack {
				want = lossRecovery
			}
			if n.a.c.cc.loss != want || n.a.c.rtx.backoff != 0 {
				t.Fatalf("recovery state %d (want %d), backed off %d", n.a.c.cc.loss, want, n.a.c.rtx.backoff)
			}
		})
	}
}

// TCP_USER_TIMEOUT: unacknowledged data gives up after the user's limit,
// not after the retry count, and the RTO is clamped to end exactly then.
func TestUserTimeout(t *testing.T) {
	n := newNet(t, nil)
	n.handshake()
	n.a.c.SetUserTimeout(3 * time.Second)
	t0 := n.now
	n.a.c.Write(n.now, []byte("into the void"))
	for n.advance(t0.Add(time.Hour)) {
		n.drop(n.a)
		if n.a.c.State() == Closed {
			break
		}
	}
	if n.a.c.Err() != syscall.ETIMEDOUT || n.now.Sub(t0) != 3*time.Second {
		t.Fatalf("gave up with %v after %v, want ETIMEDOUT after 3s", n.a.c.Err(), n.now.Sub(t0))
	}
}

// TCP_CORK holds partial segments until the cork comes off, or for 200 ms.
func TestCork(t *testing.T) {
	n := newNet(t, nil)
	n.handshake()
	n.a.c.SetCork(n.now, true)
	n.a.c.Write(n.now, []byte("head"))
	n.a.c.Write(n.now, []byte("er"))
	if len(n.a.out) != 0 {
		t.Fatalf("corked connection sent %v", n.a.out)
	}
	n.a.c.SetCork(n.now, false)
	if len(n.a.out) != 1 || string(n.a.out[0].Payload) != "header" {
		t.Fatalf("uncorking sent %v, want one segment \"header\"", n.a.out)
	}
	n.settle()
	n.a.c.SetCork(n.now, true)
	n.a.c.Write(n.now, []byte("late"))
	t0 := n.now
	n.advance(t0.Add(time.Second))
	if len(n.a.out) != 1 || n.now.Sub(t0) != 200*time.Millisecond {
		t.Fatalf("cork ceiling: sent %v at %v, want one segment at 200ms", n.a.out, n.now.Sub(t0))
	}
}

// A blind attacker flooding in-window RSTs and SYNs neither resets the
// connection nor makes it answer at the flood's rate: challenge ACKs are
// limited to one per 500 ms (RFC 5961 7, Linux's tcp_invalid_ratelimit).
func TestChallengeACKRateLimit(t *testing.T) {
	n := newNet(t, nil)
	n.handshake()
	t0 := n.now
	for i := 0; i < 200; i++ {
		n.now = t0.Add(time.Duration(i) * 5 * time.Millisecond) // one second of flood
		rst := Segment{SEQ: n.b.c.rcv.nxt.Add(seq.Size(1 + i)), Flags: flagRST}
		syn := Segment{SEQ: n.b.c.rcv.nxt.Add(seq.Size(1000 + i)), Flags: flagSYN}
		n.b.c.Input(n.now, &rst)
		n.b.c.Input(n.now, &syn)
	}
	if n.b.c.State() != Established {
		t.Fatalf("blind flood moved B to %s", n.b.c.State())
	}
	sent, skipped, _ := n.b.c.Challenges()
	if len(n.b.out) != 2 || sent != 2 || skipped != 398 {
		t.Fatalf("%d segments out, %d challenges, %d skipped; want 2 challenge ACKs in one second and 398 skipped", len(n.b.out), sent, skipped)
	}
	n.drop(n.b)
	// The connection still works.
	n.a.c.Write(n.now, []byte("still here"))
	n.settle()
	if got := readAll(t, n, n.b); string(got) != "still here" {
		t.Fatalf("read %q after the flood", got)
	}
}
