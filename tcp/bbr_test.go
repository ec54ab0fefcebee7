package tcp

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/synstack/synstack/tcp/seq"
)

// bulkRun is one bulk transfer from a to b over a lossyNet, watched at
// every step.
type bulkRun struct {
	net      *lossyNet
	a, b     *Conn
	start    time.Time
	got      int
	modes    []bbrMode // BBR's modes, in the order entered
	dataSent []time.Time
	segSizes []int
}

// bulkOver sends size bytes from a connection using cc over a path of the
// given bottleneck (bytes per second), one-way delay and loss each way,
// and calls watch after every step.
func bulkOver(t *testing.T, cc string, bw float64, delay time.Duration, loss float64, size int, watch func(r *bulkRun), mods ...func(*Config)) *bulkRun {
	t.Helper()
	r := &bulkRun{net: &lossyNet{rng: rand.New(rand.NewPCG(1, 2)), now: time.Unix(1000, 0), loss: loss, delay: delay, bw: bw}}
	var conns [2]*Conn
	for i := range conns {
		i := i
		cfg := Config{
			Output: func(s *Segment) {
				if i == 0 && len(s.Payload) > 0 {
					r.dataSent = append(r.dataSent, r.net.now)
					r.segSizes = append(r.segSizes, len(s.Payload))
				}
				r.net.send(1-i, s)
			},
			SndBuf:     4 << 20,
			RcvBuf:     4 << 20,
			Congestion: cc,
		}
		for _, m := range mods {
			m(&cfg)
		}
		conns[i] = NewConn(cfg, seq.Value(1000*(i+1)))
	}
	r.a, r.b = conns[0], conns[1]
	r.b.Listen()
	r.a.Connect(r.net.now)
	payload := make([]byte, 1<<20)
	buf := make([]byte, 1<<20)
	written := 0
	for step := 0; r.got < size; step++ {
		if step > 20_000_000 {
			t.Fatalf("%s: stuck after %d of %d bytes", cc, r.got, size)
		}
		if r.start.IsZero() && r.a.State() == Established {
			r.start = r.net.now
		}
		if written < size {
			n, _ := r.a.Write(r.net.now, payload[:min(len(payload), size-written)])
			written += n
		}
		n, _ := r.b.Read(r.net.now, buf)
		r.got += n
		if b, ok := r.a.cc.algo.(*bbr); ok && b.inited && (len(r.modes) == 0 || r.modes[len(r.modes)-1] != b.mode) {
			r.modes = append(r.modes, b.mode)
		}
		if watch != nil {
			watch(r)
		}
		if !r.net.step(conns, nil) {
			t.Fatalf("%s: nothing left to happen after %d of %d bytes", cc, r.got, size)
		}
	}
	return r
}

func (r *bulkRun) goodput() float64 {
	return float64(r.got) / r.net.now.Sub(r.start).Seconds()
}

// BBR finds the bottleneck's bandwidth and keeps it under 1 % random loss
// each way, and its model goes STARTUP -> DRAIN -> PROBE_BW. (CUBIC is
// logged for comparison only: with this path's unbounded queue it does
// well too; the root package's TestGoodputLossyPath has a real queue.)
func TestBBRReachesBottleneckWithLoss(t *testing.T) {
	const bw = 1.25e6 // 10 Mbit/s
	size := 6 << 20
	if testing.Short() {
		size = 2 << 20
	}
	r := bulkOver(t, CongestionBBR, bw, 10*time.Millisecond, 0.01, size, nil)
	b := r.a.cc.algo.(*bbr)
	payloadBW := bw * 1448 / 1488 // what the bottleneck carries of data
	if est := b.maxBW(); est < 0.9*payloadBW || est > 1.1*payloadBW {
		t.Errorf("bandwidth estimate %.0f B/s, bottleneck carries %.0f", est, payloadBW)
	}
	if g := r.goodput(); g < 0.85*payloadBW {
		t.Errorf("goodput %.0f B/s, want at least 85%% of %.0f", g, payloadBW)
	}
	if len(r.modes) < 3 || r.modes[0] != bbrStartup || r.modes[1] != bbrDrain || r.modes[2] != bbrProbeBW {
		t.Errorf("modes %v, want STARTUP, DRAIN, PROBE_BW", r.modes)
	}
	inf := r.a.Info(r.net.now)
	if inf.BBR == nil || inf.BBR.Bandwidth != uint64(b.maxBW()) || inf.BBR.MinRTT != b.minRTT || inf.PacingRate != uint64(b.pacing) {
		t.Errorf("TCP_INFO %+v, BBR %+v: not the model's bandwidth %.0f, min RTT %v, pacing %.0f", inf, inf.BBR, b.maxBW(), b.minRTT, b.pacing)
	}
	if inf.MinRTT < 20*time.Millisecond || inf.MinRTT > 21*time.Millisecond || inf.DeliveryRate == 0 {
		t.Errorf("tcpi_min_rtt %v (path: 20 ms plus serialization), tcpi_delivery_rate %d", inf.MinRTT, inf.DeliveryRate)
	}
	if _, rto := r.a.Retransmissions(); rto != 0 {
		t.Errorf("%d retransmission timeouts: RACK and SACK should repair random loss", rto)
	}
	c := bulkOver(t, CongestionCubic, bw, 10*time.Millisecond, 0.01, size/4, nil)
	t.Logf("10 Mbit/s, 10 ms + 1%% loss each way: bbr %.0f B/s, cubic %.0f B/s (bottleneck %.0f)", r.goodput(), c.goodput(), payloadBW)
}

// Ten seconds without a new minimum RTT send BBR to PROBE_RTT: four
// packets in flight for 200 ms and a round trip, then back to PROBE_BW.
func TestBBRProbeRTTAfter10s(t *testing.T) {
	const bw = 625e3 // 5 Mbit/s
	var entered, left time.Time
	minCwnd := 1 << 30
	r := bulkOver(t, CongestionBBR, bw, 20*time.Millisecond, 0, 8<<20, func(r *bulkRun) {
		b, ok := r.a.cc.algo.(*bbr)
		if !ok || !b.inited {
			return
		}
		now := r.net.now
		if b.mode == bbrProbeRTT {
			if entered.IsZero() {
				entered = now
			}
			minCwnd = min(minCwnd, r.a.cc.cwnd/r.a.opt.sndMSS)
		} else if !entered.IsZero() && left.IsZero() {
			left = now
		}
	})
	if entered.IsZero() {
		t.Fatalf("no PROBE_RTT in %v (modes %v)", r.net.now.Sub(r.start), r.modes)
	}
	if d := entered.Sub(r.start); d < 10*time.Second || d > 12*time.Second {
		t.Errorf("PROBE_RTT began %v after the start, want just after 10 s", d)
	}
	if minCwnd != bbrCwndMinTarget {
		t.Errorf("cwnd in PROBE_RTT fell to %d packets, want %d", minCwnd, bbrCwndMinTarget)
	}
	if left.IsZero() || left.Sub(entered) < bbrProbeRTTTime {
		t.Errorf("PROBE_RTT from %v to %v: want at least %v", entered.Sub(r.start), left.Sub(r.start), bbrProbeRTTTime)
	}
	if last := r.modes[len(r.modes)-1]; !left.IsZero() && last != bbrProbeBW {
		t.Errorf("after PROBE_RTT: %v, want PROBE_BW", last)
	}
}

// BBR's pacing spreads segments: once the model runs, no more than its
// burst (two segments at these rates) leaves at one instant, and bursts
// follow one another at many instants. CUBIC, unpaced, sends a whole
// window's growth at once.
func TestBBRPacingSpreadsSegments(t *testing.T) {
	const bw = 1.25e6
	burst := func(r *bulkRun, from time.Time) int {
		most, run := 0, 0
		for i, at := range r.dataSent {
			if at.Before(from) {
				continue
			}
			if i > 0 && at.Equal(r.dataSent[i-1]) {
				run++
			} else {
				run = 1
			}
			most = max(most, run)
		}
		return most
	}
	r := bulkOver(t, CongestionBBR, bw, 10*time.Millisecond, 0, 1<<20, nil)
	if r.modes[len(r.modes)-1] != bbrProbeBW {
		t.Fatalf("modes %v: never reached PROBE_BW", r.modes)
	}
	start := r.dataSent[0].Add(time.Second / 10)
	if m := burst(r, start); m > 3 {
		t.Errorf("bbr sent %d segments at one instant, want its burst of 2 (3 with a fast retransmit)", m)
	}
	c := bulkOver(t, CongestionCubic, bw, 10*time.Millisecond, 0, 1<<20, nil)
	if m := burst(c, c.dataSent[0]); m <= 3 {
		t.Errorf("cubic's largest burst is %d segments: the test does not tell paced from unpaced", m)
	}
	// Spread out: the data left at many instants, about a burst each.
	instants := 1
	for i := 1; i < len(r.dataSent); i++ {
		if !r.dataSent[i].Equal(r.dataSent[i-1]) {
			instants++
		}
	}
	if instants < len(r.dataSent)/3 {
		t.Errorf("bbr sent %d segments at only %d instants", len(r.dataSent), instants)
	}
}

// checkRecords verifies the transmit records against the connection: they
// tile SND.UNA..SND.NXT once data has flowed, and the running sums match
// the flags.
func checkRecords(c *Conn) error {
	if c.fl == nil {
		return nil
	}
	if c.fl.txq.n == 0 && c.cc.loss == lossNone && c.fl.rack.at.IsZero() && c.fl.pace.at.IsZero() && !c.fl.ep.undoWaiting() &&
		(len(c.fl.bufRuns) == 0 || c.queuedFrom(c.snd.nxt) == 0) {
		return fmt.Errorf("nothing in flight, no timer, and the flight state is still held")
	}
	q := &c.fl.txq
	var bytes, sacked, lost, recs int
	for i := 0; i < q.len(); i++ {
		r := q.at(i)
		if i > 0 && q.at(i-1).end != r.start {
			return fmt.Errorf("record %d starts at %d, the one before ends at %d", i, r.start, q.at(i-1).end)
		}
		bytes += r.size()
		switch {
		case r.has(recSacked):
			sacked += r.size()
			recs++
		case r.has(recLost):
			lost += r.size()
		}
	}
	if bytes != q.bytes || sacked != q.sacked || lost != q.lost || recs != q.sackedRecs {
		return fmt.Errorf("sums %d/%d/%d/%d, records say %d/%d/%d/%d", q.bytes, q.sacked, q.lost, q.sackedRecs, bytes, sacked, lost, recs)
	}
	if q.len() > 0 && (q.at(0).start != c.snd.una || q.at(q.len()-1).end != c.snd.nxt) {
		return fmt.Errorf("records cover %d..%d, in flight %d..%d", q.at(0).start, q.at(q.len()-1).end, c.snd.una, c.snd.nxt)
	}
	return nil
}

// The record ring reuses its memory: in a steady state (one record
// acknowledged for each sent) it does not allocate, and neither do RACK,
// the rate sampler and BBR on an ACK (design principle 4).
func TestRecordsAndBBRDoNotAllocate(t *testing.T) {
	var q txQueue
	for i := 0; i < 100; i++ {
		q.push(txrec{start: seq.Value(i * 10), end: seq.Value(i*10 + 10)})
	}
	n := 100
	if a := testing.AllocsPerRun(1000, func() {
		q.popFront()
		q.push(txrec{start: seq.Value(n * 10), end: seq.Value(n*10 + 10)})
		n++
	}); a != 0 {
		t.Errorf("record ring: %v allocations per send and ACK", a)
	}

	r := bulkOver(t, CongestionBBR, 1.25e6, 10*time.Millisecond, 0.01, 1<<20, nil)
	c := r.a
	now := c.at(r.net.now)
	if a := testing.AllocsPerRun(1000, func() {
		now = now.Add(time.Millisecond)
		c.rateBegin()
		c.lossDetect(now)
		c.rateEnd(now)
		c.cc.algo.(rateControl).onAck(c, now, &c.sc.rs)
		c.paceAllows(now)
		c.paceSent(now, 1000)
	}); a != 0 {
		t.Errorf("RACK, rate sample, BBR and pacing: %v allocations per ACK", a)
	}
}

// An unlocked send buffer grows with the congestion window (Linux's
// tcp_sndbuf_expand), so a path's bandwidth-delay product is not capped by
// the initial 64 KiB; one set with SO_SNDBUF keeps its size.
func TestSendBufferGrowsWithCwnd(t *testing.T) {
	for _, locked := range []bool{false, true} {
		r := bulkOver(t, CongestionBBR, 1.25e6, 20*time.Millisecond, 0, 2<<20, nil, func(c *Config) {
			c.SndBuf, c.SndBufLocked = 0, locked
		})
		got := int(r.a.sq.bufSize)
		switch {
		case locked && got != defaultSndBuf:
			t.Errorf("locked send buffer changed to %d", got)
		case !locked && got < 3*r.a.cc.cwnd:
			t.Errorf("send buffer %d, want at least three BBR windows (%d)", got, 3*r.a.cc.cwnd)
		}
		t.Logf("locked %v: send buffer %d, goodput %.0f B/s", locked, got, r.goodput())
	}
}

// A D-SACK (RFC 2883) is a first SACK block below the cumulative ACK, or
// inside the second block; it is counted (tcpi_dsack_dups) and not taken
// for new SACK information.
func TestDSACKDetection(t *testing.T) {
	for _, tc := range []struct {
		blocks [][2]uint32
		dsack  bool
	}{
		{[][2]uint32{{500, 900}}, true},
		{[][2]uint32{{900, 1100}}, true},
		{[][2]uint32{{2000, 3000}, {1500, 3500}}, true},
		{[][2]uint32{{2000, 3000}}, false},
		{[][2]uint32{{2000, 3000}, {3500, 4000}}, false},
	} {
		c := NewConn(Config{}, 0)
		c.opt.sackOK = true
		c.snd.una, c.snd.nxt = 1000, 5000
		seg := &Segment{ACK: 1000, Flags: flagACK}
		for i, b := range tc.blocks {
			seg.Options.SACK[i].Left, seg.Options.SACK[i].Right = b[0], b[1]
			seg.Options.NumSACK++
		}
		c.updateScoreboard(c.at(time.Unix(1, 0)), seg)
		if got := c.stats.dsackDups == 1; got != tc.dsack {
			t.Errorf("blocks %v: D-SACK %v, want %v", tc.blocks, got, tc.dsack)
		}
		if tc.dsack && len(tc.blocks) == 2 && (len(c.cc.sacked) != 1 || c.cc.sacked[0] != (seqRange{1500, 3500})) {
			t.Errorf("blocks %v: scoreboard %v, want the second block alone", tc.blocks, c.cc.sacked)
		}
	}
}

// On a coarse clock the pacing timer fires late; the time it missed is
// made up at the next wake-up (up to a burst more), so the rate holds: a
// paced sender woken 1 ms late every time still sends at its pacing rate.
func TestPacingMakesUpLateTimer(t *testing.T) {
	run := func(lateBy time.Duration) (rate, sent float64) {
		n := newNet(t, func(c *Config) { c.Congestion = CongestionBBR; c.SndBuf = 8 << 20 })
		n.handshake()
		c := n.a.c
		b := c.cc.algo.(*bbr)
		c.Write(n.now, make([]byte, 4<<20))
		c.cc.cwnd = 1 << 30 // window wide open: only pacing holds the sender
		c.snd.wnd = 1 << 30
		b.pacing = 5e6 // no ACK comes to change it
		rate = b.pacing
		start := n.now
		bytes := 0
		for n.now.Sub(start) < 200*time.Millisecond {
			for _, s := range n.a.out {
				bytes += len(s.Payload)
			}
			n.a.out = nil
			if c.fl == nil || c.fl.pace.at.IsZero() {
				if c.queuedFrom(c.snd.nxt) == 0 {
					t.Fatal("ran out of data")
				}
				c.output(c.at(n.now))
				if c.fl == nil || c.fl.pace.at.IsZero() {
					t.Fatal("output neither sent nor armed the pacing timer")
				}
				continue
			}
			n.now = c.timeOf(c.fl.pace.at.Add(lateBy))
			c.Tick(n.now)
		}
		return rate, float64(bytes) / n.now.Sub(start).Seconds()
	}
	rate, exact := run(0)
	_, late := run(time.Millisecond)
	t.Logf("pacing rate %.0f B/s: sent %.0f B/s with an exact timer, %.0f B/s with one 1 ms late", rate, exact, late)
	if exact < 0.95*rate || exact > 1.1*rate {
		t.Errorf("exact timer: %.0f B/s for a pacing rate of %.0f", exact, rate)
	}
	if late < 0.9*rate {
		t.Errorf("late timer: %.0f B/s for a pacing rate of %.0f", late, rate)
	}
}

// The SACK scoreboard merges blocks in place: overlapping and touching
// blocks join, a block inside another adds nothing.
func TestScoreboardMerge(t *testing.T) {
	c := &Conn{}
	add := func(l, r seq.Value, grew bool) {
		t.Helper()
		if g := c.addSacked(l, r); g != grew {
			t.Fatalf("add [%d,%d): grew %v, want %v (now %v)", l, r, g, grew, c.cc.sacked)
		}
	}
	add(100, 200, true)
	add(300, 400, true)
	add(500, 600, true)
	add(150, 180, false)
	add(200, 300, true) // touches both neighbours
	if fmt.Sprint(c.cc.sacked) != "[{100 400} {500 600}]" {
		t.Fatalf("scoreboard %v", c.cc.sacked)
	}
	add(50, 700, true)
	add(10, 20, true)
	add(800, 900, true)
	if fmt.Sprint(c.cc.sacked) != "[{10 20} {50 700} {800 900}]" {
		t.Fatalf("scoreboard %v", c.cc.sacked)
	}
	c.snd.una = 60
	c.pruneScoreboard()
	if fmt.Sprint(c.cc.sacked) != "[{60 700} {800 900}]" {
		t.Fatalf("after pruning to 60: %v", c.cc.sacked)
	}
	if a := testing.AllocsPerRun(100, func() {
		c.addSacked(1000, 1100)
		c.addSacked(1100, 1200)
		c.snd.una = 1300
		c.pruneScoreboard()
		c.snd.una = 60
	}); a != 0 {
		t.Errorf("%v allocations per SACK update", a)
	}
}
