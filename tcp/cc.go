package tcp

import (
	"math"
	"syscall"
	"time"
)

// Congestion control decides how much data may be in flight. Each algorithm
// sees the same events (an ACK of new data, a loss found by duplicate ACKs or
// SACK, a retransmission timeout) and adjusts Conn.cwnd and Conn.ssthresh,
// both in bytes. Slow start is common to all of them (RFC 5681 3.1, with
// Linux's growth by octets acknowledged); they differ in congestion
// avoidance and in how far they back off.
type congestionControl interface {
	// name is what TCP_CONGESTION reports.
	name() string
	// avoid grows cwnd in congestion avoidance for acked bytes.
	avoid(c *Conn, now instant, acked int)
	// ssthreshAfterLoss returns ssthresh when a loss is detected.
	ssthreshAfterLoss(c *Conn, now instant) int
	// reset forgets the algorithm's state (after a timeout).
	reset()
}

// Congestion-control algorithms by the name TCP_CONGESTION takes.
const (
	CongestionReno  = "reno"
	CongestionCubic = "cubic"
)

// DefaultCongestion is the algorithm of a new connection, as on Linux.
const DefaultCongestion = CongestionCubic

func newCongestion(name string) (congestionControl, error) {
	switch name {
	case "", CongestionCubic:
		return &cubic{}, nil
	case CongestionReno:
		return &reno{}, nil
	case CongestionBBR:
		return &bbr{}, nil
	}
	return nil, syscall.ENOENT // what Linux's setsockopt(TCP_CONGESTION) returns
}

// SetCongestion selects the congestion-control algorithm (TCP_CONGESTION):
// "cubic" (the default), "reno" or "bbr". An unknown name gives ENOENT.
//
// Setting the algorithm already in use keeps its state, as Linux does.
func (c *Conn) SetCongestion(name string) error {
	cc, err := newCongestion(name)
	if err != nil {
		return err
	}
	if c.cc.algo != nil && c.cc.algo.name() == cc.name() {
		return nil
	}
	c.cc.algo = cc
	return nil
}

// Congestion returns the name of the connection's congestion control.
func (c *Conn) Congestion() string { return c.cc.algo.name() }

// onAckGrow grows cwnd for acked new bytes: slow start below ssthresh, the
// algorithm's congestion avoidance above. The window grows only while the
// sender used it (RFC 7661; Linux's tcp_is_cwnd_limited), so an
// application-limited sender does not earn a window it never tested.
func (c *Conn) onAckGrow(now instant, acked, inflight int) {
	if c.cc.ssthresh == 0 || c.cc.cwnd < c.cc.ssthresh {
		if !c.cwndLimited(true) {
			return
		}
		if cu, ok := c.cc.algo.(*cubic); ok {
			if c.hyppActive() {
				cu.hyppRound(c)
				acked = cu.hyppGrowth(c, acked)
			} else {
				cu.onSlowStartAck(c, now)
			}
		}
		c.cc.cwnd += acked
		if c.cc.ssthresh == 0 || c.cc.cwnd <= c.cc.ssthresh {
			return
		}
		acked = c.cc.cwnd - c.cc.ssthresh
		c.cc.cwnd = c.cc.ssthresh
	}
	if !c.cwndLimited(false) {
		return
	}
	c.cc.algo.avoid(c, now, acked)
}

// sackMayGrow lets an ACK that only SACKs new data grow cwnd, by what it
// SACKed, once the connection has seen reordering beyond DupThresh
// segments: Linux's tcp_may_raise_cwnd takes any forward progress then,
// and only an advance of SND.UNA before. afterAck decides, after loss
// detection, as for an ACK that advances SND.UNA.
func (c *Conn) sackMayGrow() {
	if int(c.cc.reo.degree) <= dupThresh || c.rateControlled() {
		return
	}
	c.sc.rs.growAfter, c.sc.rs.growInflight = true, int(c.snd.nxt.Sub(c.snd.una))
}

// reno is RFC 5681's congestion avoidance: one segment per window of ACKs,
// and half the flight on loss.
type reno struct {
	acked int // bytes acked towards the next increase
}

func (*reno) name() string { return CongestionReno }
func (*reno) reset()       {}

func (r *reno) avoid(c *Conn, now instant, acked int) {
	r.acked += acked
	if r.acked >= c.cc.cwnd {
		r.acked -= c.cc.cwnd
		c.cc.cwnd += c.opt.sndMSS
	}
}

// ssthreshAfterLoss halves the data in flight, as RFC 5681 3.1 (equation
// 4) says ssthresh MUST be no more than; Linux's tcp_reno_ssthresh halves
// the congestion window instead (docs/linux-differences.md).
func (*reno) ssthreshAfterLoss(c *Conn, now instant) int {
	return max(c.flight()/2, 2*c.opt.sndMSS)
}

// cubic is RFC 9438 as Linux's tcp_cubic.c runs it: the window grows in
// whole segments, one for every cnt segments acknowledged, where cnt comes
// from the cubic curve or from the Reno-friendly estimate, whichever is
// faster, and is recomputed at most every cubicUpdateGap while the window
// stays the same (docs/linux-differences.md). cwnd is in bytes outside the
// algorithm; the curve is in segments and floating point.
type cubic struct {
	lastMax  int       // segments before the last reduction (Linux's last_max_cwnd); 0 after a timeout
	origin   float64   // segments: the curve's plateau in this epoch
	k        float64   // seconds from the epoch to reach origin
	epoch    instant   // start of the current congestion-avoidance epoch
	lastCwnd int       // segments when cnt was last computed
	lastTime instant   // when cnt was last computed
	cnt      int       // segments acknowledged per segment of growth
	ackCnt   int       // bytes acknowledged towards renoCwnd's next segment
	renoCwnd int       // segments: the Reno-friendly estimate (RFC 9438 4.3's W_est)
	cwndCnt  int       // bytes acknowledged towards cwnd's next segment (Linux's snd_cwnd_cnt)
	hy       hystart   // leaving slow start early (hystart.go)
	hpp      hystartPP // or by HyStart++ (hystartpp.go)
}

const (
	cubicC    = 0.4 // RFC 9438 5: C
	cubicBeta = 0.7 // RFC 9438 4.6: beta_cubic
	// cubicRenoScale is 8/alpha, with alpha = 3(1-beta)/(1+beta) (RFC 9438
	// 4.3) in Linux's integer arithmetic: the Reno estimate grows a segment
	// for every cwnd*cubicRenoScale/8 segments acknowledged.
	cubicRenoScale = 15
	// cubicUpdateGap: while cwnd stays the same, cnt is recomputed no more
	// often than this (Linux's HZ/32).
	cubicUpdateGap = time.Second / 32
	// cubicFirstCnt caps cnt while no loss has set a plateau (after a
	// timeout too): at least 5% growth per round trip.
	cubicFirstCnt = 20
)

func (*cubic) name() string { return CongestionCubic }

func (cu *cubic) reset() { *cu = cubic{} }

func (cu *cubic) avoid(c *Conn, now instant, acked int) {
	mss := max(c.opt.sndMSS, 1)
	cu.update(now, max(c.cc.cwnd/mss, 1), acked, mss)
	// One segment for every cnt acknowledged; credit earned at a larger
	// cnt gives one segment and starts again (Linux's tcp_cong_avoid_ai).
	w := cu.cnt * mss
	if cu.cwndCnt >= w {
		cu.cwndCnt = 0
		c.cc.cwnd += mss
	}
	cu.cwndCnt += acked
	if cu.cwndCnt >= w {
		n := cu.cwndCnt / w
		cu.cwndCnt -= n * w
		c.cc.cwnd += n * mss
	}
}

// update sets cnt for an ACK of acked bytes at a window of cwnd segments.
func (cu *cubic) update(now instant, cwnd, acked, mss int) {
	cu.ackCnt += acked
	if cu.lastCwnd == cwnd && now.Sub(cu.lastTime) < cubicUpdateGap {
		return
	}
	// The curve moves once per millisecond (Linux's jiffy) at most; the
	// Reno estimate follows every ACK.
	if cu.epoch.IsZero() || now.Sub(cu.lastTime) >= time.Millisecond {
		cu.lastCwnd, cu.lastTime = cwnd, now
		if cu.epoch.IsZero() {
			cu.epoch = now
			cu.ackCnt = acked
			cu.renoCwnd = cwnd
			if cu.lastMax <= cwnd {
				cu.k, cu.origin = 0, float64(cwnd)
			} else {
				cu.k = math.Cbrt(float64(cu.lastMax-cwnd) / cubicC)
				cu.origin = float64(cu.lastMax)
			}
		}
		// RFC 9438 4.2: aim for W_cubic one minimum RTT ahead.
		t := now.Sub(cu.epoch).Seconds() + cu.hy.delayMin.Seconds()
		d := t - cu.k
		target := cu.origin + math.Copysign(math.Floor(cubicC*math.Abs(d*d*d)), d)
		if target > float64(cwnd) {
			cu.cnt = int(float64(cwnd) / math.Floor(target-float64(cwnd)+0.5))
		} else {
			cu.cnt = 100 * cwnd // next to no growth
		}
		if cu.lastMax == 0 {
			cu.cnt = min(cu.cnt, cubicFirstCnt)
		}
	}
	// RFC 9438 4.3: the Reno-friendly region, where a Reno flow would be
	// faster. Linux keeps alpha when the estimate passes the plateau (the
	// RFC switches it to 1).
	if step := cwnd * cubicRenoScale / 8 * mss; step > 0 && cu.ackCnt > step {
		n := (cu.ackCnt - 1) / step // leaves 0 < ackCnt <= step
		cu.ackCnt -= n * step
		cu.renoCwnd += n
	}
	if cu.renoCwnd > cwnd {
		cu.cnt = min(cu.cnt, cwnd/(cu.renoCwnd-cwnd))
	}
	// RFC 9438 4.2: at most 1.5 times the window per round trip.
	cu.cnt = max(cu.cnt, 2)
}

func (cu *cubic) ssthreshAfterLoss(c *Conn, now instant) int {
	mss := max(c.opt.sndMSS, 1)
	segs := c.cc.cwnd / mss
	// RFC 9438 4.7, fast convergence: give up bandwidth to newer flows.
	if segs < cu.lastMax {
		cu.lastMax = int(float64(segs) * (1 + cubicBeta) / 2)
	} else {
		cu.lastMax = segs
	}
	cu.epoch = instant(0)
	cu.cwndCnt = 0 // Linux's tcp_init_cwnd_reduction
	return max(int(float64(c.cc.cwnd)/float64(mss)*cubicBeta*float64(mss)), 2*c.opt.sndMSS)
}
