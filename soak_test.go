package synstack

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/synstack/synstack/clock"
	"github.com/synstack/synstack/link/sim"
)

var soakSeeds = flag.Int("synstack.soak", 0, "seeds for TestSoakSim (default 1000, 100 under -race, 30 with -short; the long soak: -synstack.soak=100000)")

// soakConn is one connection of a soak run, seen from both ends.
type soakConn struct {
	cfd, sfd        int
	toSrv, toCli    []byte // what each side writes
	wroteC, wroteS  int
	gotC, gotS      []byte
	eofC, eofS      bool
	closedC, closed bool
	abort           int // 0 none, 1 client aborts, 2 server aborts, at the abort point
	abortAt         int
	aborted         bool
	errC, errS      error
}

// TestSoakSim runs two stacks over link/sim with random faults (loss,
// duplication, reordering, corruption, jitter, a bottleneck) and several
// connections per seed: random amounts both ways, a half-close before the
// full close, some aborted with RST. Every stream that was not aborted
// must arrive byte-exact (SHA-256), every connection must end, and after
// TIME_WAIT both stacks must hold no connection at all. A failure names its
// seed; go test -run 'TestSoakSim/seed=N' replays it exactly.
func TestSoakSim(t *testing.T) {
	// Under -race a seed costs about ten times as much: the default there
	// keeps the package well inside go test's 10-minute timeout on a
	// loaded two-core machine; -synstack.soak asks for any count.
	n := 1000
	switch {
	case *soakSeeds > 0:
		n = *soakSeeds
	case testing.Short():
		n = 30
	case soakRace:
		n = 100
	}
	for seed := uint64(1); seed <= uint64(n); seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { soakSim(t, seed) })
	}
}

func soakSim(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x50a4))
	vc := clock.NewVirtual(time.Unix(1_800_000_000, 0))
	opts := sim.Options{
		Clock:     vc,
		Seed:      seed,
		Delay:     time.Duration(1+rng.IntN(40)) * time.Millisecond,
		Jitter:    time.Duration(rng.IntN(5)) * time.Millisecond,
		Loss:      []float64{0, 0.005, 0.02, 0.05}[rng.IntN(4)],
		Duplicate: []float64{0, 0.01}[rng.IntN(2)],
		Reorder:   []float64{0, 0.02}[rng.IntN(2)],
		Corrupt:   []float64{0, 0.001}[rng.IntN(2)],
		MTU:       []int{1280, 1500, 9000}[rng.IntN(3)],
	}
	if rng.IntN(3) == 0 {
		opts.Bandwidth = int64(10+rng.IntN(90)) * 1_000_000
		opts.QueueLen = 20 + rng.IntN(100)
	}
	// The congestion control of every connection of the run (the server's
	// accepted sockets inherit the listener's).
	cc := []string{"cubic", "reno", "bbr"}[rng.IntN(3)]
	cli, srv, _, _ := simStacks(t, opts, vc, seed, "10.9.0")
	cs, ss := cli.Sockets(), srv.Sockets()
	addr := netip.MustParseAddrPort("10.9.0.1:7000")
	lfd, err := ss.Socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := ss.Bind(lfd, addr); err != nil {
		t.Fatal(err)
	}
	if err := ss.SetsockoptString(lfd, IPPROTO_TCP, TCP_CONGESTION, cc); err != nil {
		t.Fatal(err)
	}
	if err := ss.Listen(lfd, 16); err != nil {
		t.Fatal(err)
	}
	conns := make([]*soakConn, 1+rng.IntN(4))
	for i := range conns {
		c := &soakConn{sfd: -1}
		c.toSrv = randBytes(rng, rng.IntN(200_000))
		c.toCli = randBytes(rng, rng.IntN(200_000))
		if rng.IntN(6) == 0 {
			c.abort = 1 + rng.IntN(2)
			c.abortAt = rng.IntN(max(len(c.toSrv), 1))
		}
		fd, err := cs.Socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK, 0)
		if err != nil {
			t.Fatal(err)
		}
		c.cfd = fd
		if err := cs.SetsockoptString(fd, IPPROTO_TCP, TCP_CONGESTION, cc); err != nil {
			t.Fatal(err)
		}
		if err := cs.Connect(fd, addr); !errors.Is(err, syscall.EINPROGRESS) {
			t.Fatalf("seed %d: connect: %v", seed, err)
		}
		conns[i] = c
	}
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("seed %d (%s, %+v): %s", seed, cc, opts, fmt.Sprintf(format, args...))
	}
	buf := make([]byte, 64<<10)
	// pump moves data for one side of one connection: write what fits,
	// read what is there; it returns true at EOF or on an error.
	pump := func(s *Sockets, fd int, out []byte, wrote *int, in *[]byte, eof *bool, errp *error) {
		if *wrote < len(out) && *errp == nil {
			n, err := s.Send(fd, out[*wrote:], MSG_DONTWAIT)
			*wrote += n
			if err != nil && !errors.Is(err, syscall.EAGAIN) {
				*errp = fmt.Errorf("send: %w", err)
			}
		}
		for !*eof && *errp == nil {
			n, err := s.Recv(fd, buf, MSG_DONTWAIT)
			*in = append(*in, buf[:n]...)
			switch {
			case err == nil && n == 0, errors.Is(err, io.EOF):
				*eof = true
			case errors.Is(err, syscall.EAGAIN):
				return
			case err != nil:
				*errp = fmt.Errorf("recv after %d bytes: %w", len(*in), err)
			}
		}
	}
	deadline := vc.Now().Add(30 * time.Minute)
	for {
		if vc.Now().After(deadline) {
			for i, c := range conns {
				t.Logf("conn %d: sfd %d wrote %d/%d and %d/%d got %d %d eof %v %v err %v %v", i, c.sfd,
					c.wroteC, len(c.toSrv), c.wroteS, len(c.toCli), len(c.gotS), len(c.gotC), c.eofC, c.eofS, c.errC, c.errS)
			}
			for name, st := range map[string]*Stack{"client": cli, "server": srv} {
				st.lock()
				for ep := range st.allConns() {
					inf := ep.Conn.Info(vc.Now())
					t.Logf("%s %v: %s retrans %d backoff %d rto %v sndwnd %d unacked %d orphan %v", name, connKey{ep.Local, ep.Remote}, inf.State, inf.TotalRetrans, inf.Backoff, inf.RTO, inf.SndWnd, inf.Unacked, ep.Orphan)
				}
				st.unlock()
			}
			fail("connections did not finish in 30 minutes")
		}
		// Accept whatever has arrived, in order.
		for {
			fd, peer, err := ss.Accept(lfd)
			if err != nil {
				break
			}
			// Pair by 4-tuple: handshakes complete in any order. A
			// connection whose client already aborted is closed at once.
			paired := false
			for _, c := range conns {
				if local, _ := cs.Getsockname(c.cfd); local.Port() == peer.Port() && !c.aborted {
					c.sfd = fd
					paired = true
					break
				}
			}
			if !paired {
				ss.Close(fd)
			}
		}
		done := true
		for _, c := range conns {
			if c.aborted {
				// The survivor of an abort runs until the reset (or, if
				// the RST was lost, until its own data draws another),
				// then closes.
				fd, s, out, wrote, in, eof, errp, closed := c.sfd, ss, c.toCli, &c.wroteS, &c.gotS, &c.eofS, &c.errS, &c.closed
				if c.abort == 2 {
					fd, s, out, wrote, in, eof, errp, closed = c.cfd, cs, c.toSrv, &c.wroteC, &c.gotC, &c.eofC, &c.errC, &c.closedC
				}
				if fd >= 0 && !*closed {
					pump(s, fd, out, wrote, in, eof, errp)
					if *eof || *errp != nil || *wrote == len(out) {
						// Done, or nothing left to say: if the RST was
						// lost, only an orphan's timers would ever learn
						// of the abort (a half-open connection), so close.
						s.Close(fd)
						*closed = true
					}
				}
				if fd >= 0 && !*closed {
					done = false
				}
				continue
			}
			pump(cs, c.cfd, c.toSrv, &c.wroteC, &c.gotC, &c.eofC, &c.errC)
			if c.sfd >= 0 {
				pump(ss, c.sfd, c.toCli, &c.wroteS, &c.gotS, &c.eofS, &c.errS)
			}
			if c.abort != 0 && c.wroteC >= c.abortAt && c.sfd >= 0 {
				fd, s := c.cfd, cs
				if c.abort == 2 {
					fd, s = c.sfd, ss
				}
				s.SetsockoptLinger(fd, syscall.Linger{Onoff: 1, Linger: 0})
				s.Close(fd)
				c.aborted = true
				done = false // the survivor has yet to learn of it and close
				continue
			}
			// Half-close once everything is written; close once the
			// other side's stream has ended.
			// (Not before the server has accepted, so not in SYN_SENT: a
			// shutdown there ends the attempt, as Linux's tcp_shutdown,
			// and a stream with nothing to send would never connect.)
			if c.wroteC == len(c.toSrv) && !c.closedC && c.sfd >= 0 {
				cs.Shutdown(c.cfd, SHUT_WR)
				if c.eofC {
					cs.Close(c.cfd)
					c.closedC = true
				}
			}
			if c.sfd >= 0 && c.wroteS == len(c.toCli) && !c.closed {
				ss.Shutdown(c.sfd, SHUT_WR)
				if c.eofS {
					ss.Close(c.sfd)
					c.closed = true
				}
			}
			if c.errC != nil || c.errS != nil {
				fail("unexpected error: client %v, server %v", c.errC, c.errS)
			}
			if !c.closedC || !c.closed {
				done = false
			}
		}
		if done {
			break
		}
		vc.Advance(time.Millisecond)
	}
	for i, c := range conns {
		if c.aborted {
			continue
		}
		if !bytes.Equal(c.gotS, c.toSrv) {
			fail("conn %d: server received %d bytes (sha %x), client sent %d (sha %x)", i, len(c.gotS), sha256.Sum256(c.gotS), len(c.toSrv), sha256.Sum256(c.toSrv))
		}
		if !bytes.Equal(c.gotC, c.toCli) {
			fail("conn %d: client received %d bytes (sha %x), server sent %d (sha %x)", i, len(c.gotC), sha256.Sum256(c.gotC), len(c.toCli), sha256.Sum256(c.toCli))
		}
	}
	// Every connection ends: orphans finish, TIME_WAIT expires.
	ss.Close(lfd)
	vc.Advance(5 * time.Minute)
	for name, st := range map[string]*Stack{"client": cli, "server": srv} {
		st.lock()
		left, orphans := st.connCount(), st.orphanCount()
		st.unlock()
		if left != 0 || orphans != 0 {
			st.lock()
			var which []string
			for ep := range st.allConns() {
				which = append(which, fmt.Sprintf("%v-%v %s deadline %v sock %v", ep.Local, ep.Remote, ep.Conn.State(), ep.Conn.Deadline(), ep.Socket))
			}
			st.unlock()
			fail("%s still holds %d connections (%d orphans) after every close and TIME_WAIT: %v", name, left, orphans, which)
		}
	}
}

func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}
