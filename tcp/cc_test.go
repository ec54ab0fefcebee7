package tcp

import (
	"math"
	"testing"
	"time"

	"github.com/synstack/synstack/tcp/seq"
)

// ccConn is a connection in congestion avoidance with a fixed RTT: every
// RTT a full window is acknowledged, one segment per ACK.
func ccRun(t *testing.T, cc congestionControl, cwndSegs int, rtts int, rtt time.Duration) []float64 {
	c := &Conn{opt: options{sndMSS: 1000}, rtx: rtxState{srtt: rtt}, cc: congestion{algo: cc, cwnd: cwndSegs * 1000}}
	c.cfg = PrepareConfig(Config{RTOMin: 200 * time.Millisecond})
	c.sc = c.cfg.Scratch
	now := c.at(time.Unix(0, 0))
	c.snd.una = 0
	c.snd.nxt = c.snd.una.Add(seq.Size(c.cc.cwnd)) // a full window in flight
	c.cc.ssthresh = cc.ssthreshAfterLoss(c, now)   // a loss at this window
	c.cc.cwnd = c.cc.ssthresh
	c.fl = &flightState{use: cwndUse{limited: true}} // the sender fills every window
	if cu, ok := cc.(*cubic); ok {
		cu.hy.delayMin = rtt // the curve looks one minimum RTT ahead
	}
	var out []float64
	for r := 0; r < rtts; r++ {
		segs := c.cc.cwnd / c.opt.sndMSS
		for i := 0; i < segs; i++ {
			now = now.Add(rtt / time.Duration(segs))
			c.snd.nxt = c.snd.una.Add(seq.Size(c.cc.cwnd)) // cwnd-limited
			c.onAckGrow(now, c.opt.sndMSS, c.cc.cwnd)
		}
		out = append(out, float64(c.cc.cwnd)/1000)
	}
	return out
}

func TestRenoGrowsOneSegmentPerRTT(t *testing.T) {
	w := ccRun(t, &reno{}, 100, 10, 100*time.Millisecond)
	// After the loss: 50 segments, then +1 per RTT.
	for i, v := range w {
		if want := 51 + float64(i); math.Abs(v-want) > 1 {
			t.Fatalf("RTT %d: cwnd %.1f segments, want about %.0f (all: %v)", i, v, want, w)
		}
	}
}

func TestCubicReturnsToWmaxAfterK(t *testing.T) {
	// RFC 9438: after a loss at W_max = 100, cwnd = 70 and the curve
	// reaches W_max again after K = cbrt(W_max(1-beta)/C) = 4.22 s; it is
	// concave before and convex after.
	rtt := 100 * time.Millisecond
	w := ccRun(t, &cubic{}, 100, 80, rtt)
	k := math.Cbrt(100 * (1 - cubicBeta) / cubicC)
	at := func(sec float64) float64 { return w[int(sec/rtt.Seconds())-1] }
	if v := at(k / 2); v < 85 || v > 100 {
		t.Errorf("half way to K: cwnd %.1f, want between 85 and 100", v)
	}
	if v := at(k); math.Abs(v-100) > 5 {
		t.Errorf("at K: cwnd %.1f, want about 100", v)
	}
	if v := at(k + 2); v < 103 {
		t.Errorf("2 s after K: cwnd %.1f, want above W_max (convex probing)", v)
	}
	// Concave: growth slows as W_max nears.
	if at(1)-at(0.5) <= at(k)-at(k-0.5) {
		t.Errorf("not concave before K: %v", w[:50])
	}
}

// TestCubicAfterTimeoutGrowsAsLinux follows Linux through congestion
// avoidance after a timeout (packetdrill's cubic-rto-ss-ca-cwnd-bump): no
// plateau is known, so cwnd grows one segment per 20 acknowledged until the
// Reno estimate passes it; that estimate is looked at only when cnt is
// recomputed, every 1/32 s at most while cwnd is unchanged, so a train of
// ACKs 2 ms apart does not move it. Linux's cwnd stays 7 for 15 ACKs and
// becomes 8 on the 16th.
func TestCubicAfterTimeoutGrowsAsLinux(t *testing.T) {
	cu := &cubic{}
	cu.hy.delayMin = 100 * time.Millisecond
	c := &Conn{opt: options{sndMSS: 1000}, rtx: rtxState{srtt: 100 * time.Millisecond}, cc: congestion{algo: cu, cwnd: 7000, ssthresh: 7000}}
	c.cfg = PrepareConfig(Config{RTOMin: 200 * time.Millisecond})
	c.sc = c.cfg.Scratch
	c.fl = &flightState{use: cwndUse{limited: true}}
	now := c.at(time.Unix(0, 0))
	// Milliseconds before each ACK of one segment, as in the script.
	gaps := []time.Duration{0, 98, 2, 2, 2, 2, 2, 2, 98, 2, 2, 2, 2, 2, 2, 98}
	for i, g := range gaps {
		now = now.Add(g * time.Millisecond)
		c.snd.nxt = c.snd.una.Add(seq.Size(c.cc.cwnd)) // cwnd-limited
		c.onAckGrow(now, 1000, c.cc.cwnd)
		want := 7000
		if i == len(gaps)-1 {
			want = 8000
		}
		if c.cc.cwnd != want {
			t.Fatalf("ACK %d: cwnd %d, want %d", i+1, c.cc.cwnd, want)
		}
	}
}

func TestSetCongestion(t *testing.T) {
	c := NewConn(Config{}, 1)
	if c.Congestion() != "cubic" {
		t.Fatalf("default %q, want cubic", c.Congestion())
	}
	if err := c.SetCongestion("reno"); err != nil || c.Congestion() != "reno" {
		t.Fatalf("SetCongestion(reno): %v, now %q", err, c.Congestion())
	}
	if err := c.SetCongestion("bbr"); err != nil || c.Congestion() != "bbr" {
		t.Fatalf("SetCongestion(bbr): %v, now %q", err, c.Congestion())
	}
	b := c.cc.algo
	if err := c.SetCongestion("bbr"); err != nil || c.cc.algo != b {
		t.Fatal("setting the algorithm in use again must keep its state")
	}
	if err := c.SetCongestion("vegas"); err == nil {
		t.Fatal("an unknown algorithm must be refused (ENOENT)")
	}
}
