package tcp

import (
	"bytes"
	"crypto/sha256"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/synstack/synstack/tcp/seq"
)

var soakSeeds = flag.Int("tcp.soak", 200, "number of seeds for TestSoakLossyNetwork (the long soak uses 100000)")

// lossyNet carries segments between two connections with delay, jitter,
// loss, duplication and reordering drawn from one seeded generator, on
// virtual time.
type lossyNet struct {
	rng               *rand.Rand
	now               time.Time
	loss, dup, jitter float64
	delay             time.Duration
	q                 []flight
	seq               int
	// bw, when positive, makes each direction a bottleneck of bw bytes per
	// second: segments (with 40 bytes of headers) leave one after another.
	bw   float64
	busy [2]time.Time
}

type flight struct {
	at  time.Time
	n   int // tie-break: send order
	dst int
	seg Segment
}

// step moves the simulation on by one event: the next segment in flight is
// delivered (after onDeliver, if set, has seen it), or, when a timer falls
// due first, time jumps to it and the connections whose deadline has come
// tick. It reports false when nothing is left to happen.
func (n *lossyNet) step(conns [2]*Conn, onDeliver func(f *flight)) bool {
	sort.Slice(n.q, func(i, j int) bool {
		if n.q[i].at.Equal(n.q[j].at) {
			return n.q[i].n < n.q[j].n
		}
		return n.q[i].at.Before(n.q[j].at)
	})
	var next time.Time
	for _, c := range conns {
		if d := c.Deadline(); !d.IsZero() && (next.IsZero() || d.Before(next)) {
			next = d
		}
	}
	if len(n.q) > 0 && (next.IsZero() || !n.q[0].at.After(next)) {
		f := n.q[0]
		n.q = n.q[1:]
		if f.at.After(n.now) {
			n.now = f.at
		}
		if onDeliver != nil {
			onDeliver(&f)
		}
		conns[f.dst].Input(n.now, &f.seg)
		return true
	}
	if next.IsZero() {
		return false
	}
	if next.After(n.now) {
		n.now = next
	}
	for _, c := range conns {
		if d := c.Deadline(); !d.IsZero() && !n.now.Before(d) {
			c.Tick(n.now)
		}
	}
	return true
}

// send puts s on the network; a segment for the link to cut (GSOSize) goes
// as its MSS-sized pieces, as a TSO device sends it, each lost, duplicated
// and delayed on its own.
func (n *lossyNet) send(dst int, s *Segment) {
	cutGSO(s, func(p *Segment) { n.sendOne(dst, p) })
}

// cutGSO passes s to put as the link would send it: a segment for the
// link to cut (GSOSize) as its pieces, with the sequence number advanced
// and FIN and PSH on the last only; any other as it is.
func cutGSO(s *Segment, put func(*Segment)) {
	size := int(s.GSOSize)
	if size == 0 || len(s.Payload) <= size {
		put(s)
		return
	}
	for off := 0; off < len(s.Payload); off += size {
		p := *s
		p.GSOSize = 0
		p.SEQ = s.SEQ.Add(seq.Size(off))
		p.Payload = s.Payload[off:min(off+size, len(s.Payload))]
		if off+size < len(s.Payload) {
			p.Flags &^= flagFIN | flagPSH
		}
		put(&p)
	}
}

func (n *lossyNet) sendOne(dst int, s *Segment) {
	if n.rng.Float64() < n.loss {
		return
	}
	copies := 1
	if n.rng.Float64() < n.dup {
		copies = 2
	}
	for range copies {
		cp := *s
		cp.Payload = append([]byte(nil), s.Payload...)
		d := n.delay + time.Duration(n.rng.Float64()*n.jitter*float64(n.delay))
		at := n.now
		if n.bw > 0 {
			if n.busy[dst].After(at) {
				at = n.busy[dst]
			}
			at = at.Add(time.Duration(float64(len(s.Payload)+40) / n.bw * float64(time.Second)))
			n.busy[dst] = at
		}
		n.seq++
		n.q = append(n.q, flight{at: at.Add(d), n: n.seq, dst: dst, seg: cp})
	}
}

// soak runs one seeded bulk transfer both ways with a half-close in the
// middle and a full close at the end, and checks every byte arrived in order
// and both ends finished.
func soak(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	net := &lossyNet{
		rng:    rng,
		now:    time.Unix(10000, 0),
		loss:   []float64{0, 0.01, 0.05, 0.15}[rng.IntN(4)],
		dup:    []float64{0, 0.02}[rng.IntN(2)],
		jitter: []float64{0, 0.5, 2}[rng.IntN(3)],
		delay:  time.Duration(1+rng.IntN(50)) * time.Millisecond,
	}
	var conns [2]*Conn
	for i := range conns {
		i := i
		cfg := Config{
			Output: func(s *Segment) {
				// Nothing past what was sent may be retransmitted: a
				// retransmission never carries new data.
				c := conns[i]
				if end := s.SEQ.Add(seq.Size(len(s.Payload))); c != nil && s.SEQ.LessThan(c.snd.nxt) && end.GreaterThan(c.snd.nxt) {
					t.Fatalf("seed %d: side %d resent %d+%d past SND.NXT %d", seed, i, s.SEQ, len(s.Payload), c.snd.nxt)
				}
				net.send(1-i, s)
			},
			OnTransition: func(from, to State, cause Cause) {
				if testing.Verbose() {
					t.Logf("%v side %d: %s -> %s (%s)", net.now.Sub(time.Unix(10000, 0)), i, from, to, cause)
				}
			},
			RcvBuf: []int{4096, 65536, 262144}[rng.IntN(3)],
			SndBuf: []int{8192, 65536}[rng.IntN(2)],
			MSS:    uint16([]int{536, 1460}[rng.IntN(2)]),
		}
		if rng.IntN(4) == 0 {
			cfg.NoTimestamps = true
		}
		cfg.Congestion = []string{CongestionCubic, CongestionReno, CongestionBBR}[rng.IntN(3)]
		if rng.IntN(4) == 0 {
			cfg.NoSACK = true
		}
		if rng.IntN(4) == 0 {
			cfg.NoWindowScale = true
		}
		cfg.Retries2 = 30 // lossy paths must not time out within the run
		if seed%2 == 0 {
			cfg.SegmentOffload = 65000 // the link cuts (TSO): lossyNet.send
		}
		conns[i] = NewConn(cfg, seq.Value(rng.Uint32()))
	}
	a, b := conns[0], conns[1]
	b.Listen()
	a.Connect(net.now)

	sizes := [2]int{rng.IntN(300000), rng.IntN(300000)}
	var payload [2][]byte
	for i := range payload {
		payload[i] = make([]byte, sizes[i])
		for j := range payload[i] {
			payload[i][j] = byte(rng.Uint32())
		}
	}
	var written, got [2]int
	var recv [2][]byte
	var eof [2]bool
	closed := [2]bool{}
	buf := make([]byte, 8192)
	deadline := net.now.Add(2 * time.Hour)
	for step := 0; ; step++ {
		if net.now.After(deadline) || step > 5_000_000 {
			t.Fatalf("seed %d: no progress: A %s B %s, wrote %v got %v (loss %.2f dup %.2f delay %v)",
				seed, a.State(), b.State(), written, got, net.loss, net.dup, net.delay)
		}
		// The applications: write what fits, read what is there, close
		// when done writing and reading.
		for i, c := range conns {
			if written[i] < len(payload[i]) {
				n, _ := c.Write(net.now, payload[i][written[i]:])
				written[i] += n
			} else if !closed[i] && c.State() >= Established {
				if eof[i] {
					c.Close(net.now)
					closed[i] = true
				} else if c.State() == Established {
					c.Shutdown(net.now, ShutWr) // half-close: keep reading
				}
			}
			for {
				n, err := c.Read(net.now, buf)
				recv[i] = append(recv[i], buf[:n]...)
				got[i] += n
				if err != nil {
					if err.Error() == "EOF" {
						eof[i] = true
					}
					break
				}
			}
		}
		for i, c := range conns {
			if err := c.checkQueues(); err != nil {
				t.Fatalf("seed %d: side %d: %v", seed, i, err)
			}
			if w := c.rcvWindowNow(); c.state.Synchronized() && int(w) > c.rcvCapacity()+(1<<c.opt.rcvShift) {
				t.Fatalf("seed %d: side %d advertises %d, beyond its capacity %d", seed, i, w, c.rcvCapacity())
			}
			if err := checkRecords(c); err != nil {
				t.Fatalf("seed %d: side %d: %v", seed, i, err)
			}
			p := conns[1-i]
			if p.state.Synchronized() && c.state.Synchronized() && p.rcv.nxt.GreaterThan(c.snd.max) {
				t.Fatalf("seed %d: side %d received up to %d but side %d only sent up to %d (%s/%s)", seed, 1-i, p.rcv.nxt, i, c.snd.max, p.state, c.state)
			}
			if p.state.Synchronized() && c.state.Synchronized() && !p.rq.finRcvd {
				for _, x := range c.cc.sacked {
					if !p.holdsOOO(x.l, x.r) {
						t.Fatalf("seed %d: side %d's scoreboard says [%d,%d) is SACKed, but side %d holds %v beyond RCV.NXT %d (FIN %v at %d)",
							seed, i, x.l, x.r, 1-i, p.rq.ooo, p.rcv.nxt, p.rq.oooFin, p.rq.oooFinSeq)
					}
				}
			}
		}
		doneA := a.State() == Closed || a.State() == TimeWait
		doneB := b.State() == Closed || b.State() == TimeWait
		if doneA && doneB && len(net.q) == 0 {
			break
		}
		// The network: deliver the next segment, or fire the next timer.
		if !net.step(conns, func(f *flight) {
			if testing.Verbose() && os.Getenv("SOAKLOG") != "" {
				c := conns[f.dst]
				t.Logf("%v -> %d: %s %d:%d(%d) ack %d win %d sack %v | dst una %d nxt %d rcvnxt %d wnd %d st %s rto %v srtt %v bo %d", net.now.Sub(time.Unix(10000, 0)), f.dst, f.seg.Flags, f.seg.SEQ, f.seg.SEQ.Add(seq.Size(len(f.seg.Payload))), len(f.seg.Payload), f.seg.ACK, f.seg.WND, f.seg.Options.SACK[:f.seg.Options.NumSACK], c.snd.una, c.snd.nxt, c.rcv.nxt, c.rcvWindowNow(), c.state, c.rtx.rto, c.rtx.srtt, c.rtx.backoff)
			}
		}) {
			if doneA && doneB {
				break
			}
			t.Fatalf("seed %d: stuck with no timer: A %s B %s wrote %v got %v", seed, a.State(), b.State(), written, got)
		}
	}
	for i := range conns {
		want := payload[1-i]
		if !bytes.Equal(recv[i], want) {
			t.Fatalf("seed %d: side %d received %d bytes (sha %x), want %d (sha %x)", seed, i,
				len(recv[i]), sha256.Sum256(recv[i]), len(want), sha256.Sum256(want))
		}
		if conns[i].Err() != 0 {
			t.Fatalf("seed %d: side %d ended with %v", seed, i, conns[i].Err())
		}
	}
}

// TestSoakLossyNetwork moves random amounts of data both ways over a
// network that loses, duplicates, delays and reorders segments, with a
// half-close and a close, and checks every stream byte-exact. A failure
// prints the seed; -run 'TestSoakLossyNetwork/seed=N' replays it.
func TestSoakLossyNetwork(t *testing.T) {
	n := *soakSeeds
	if testing.Short() {
		n = 20
	}
	for seed := uint64(1); seed <= uint64(n); seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { soak(t, seed) })
	}
}
