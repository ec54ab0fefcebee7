package tcp

import (
	"math"
	"syscall"
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

// cubic is RFC 9438. Windows are in segments (float64) inside the
// algorithm, bytes outside it.
type cubic struct {
	wMax       float64   // window before the last reduction
	k          float64   // seconds from the epoch to reach wMax again
	epoch      instant   // start of the current congestion-avoidance epoch
	cwndEpoch  float64   // cwnd at the epoch's start
	wEst       float64   // the Reno-friendly estimate (RFC 9438 4.3)
	ackedCount float64   // fractional segment accounting for wEst
	hy         hystart   // leaving slow start early (hystart.go)
	hpp        hystartPP // or by HyStart++ (hystartpp.go)
}

const (
	cubicC    = 0.4 // RFC 9438 5: C
	cubicBeta = 0.7 // RFC 9438 4.6: beta_cubic
)

func (*cubic) name() string { return CongestionCubic }

func (cu *cubic) reset() { *cu = cubic{} }

func (cu *cubic) avoid(c *Conn, now instant, acked int) {
	mss := float64(max(c.opt.sndMSS, 1))
	cwnd := float64(c.cc.cwnd) / mss
	if cu.epoch.IsZero() {
		cu.epoch = now
		cu.cwndEpoch = cwnd
		if cu.wMax < cwnd {
			// No loss yet (or we are past wMax): start a new curve here.
			cu.k = 0
			cu.wMax = cwnd
		} else {
			cu.k = math.Cbrt((cu.wMax - cwnd) / cubicC)
		}
		cu.wEst = cwnd
	}
	rtt := c.rtx.srtt
	if rtt == 0 {
		rtt = c.cfg.RTOMin
	}
	// RFC 9438 4.2: aim for W_cubic(t + RTT).
	t := now.Sub(cu.epoch).Seconds() + rtt.Seconds()
	d := t - cu.k
	target := cubicC*d*d*d + cu.wMax
	target = max(min(target, 1.5*cwnd), cwnd)
	// RFC 9438 4.3: the Reno-friendly region, alpha = 3(1-beta)/(1+beta).
	segs := float64(acked) / mss
	alpha := 3 * (1 - cubicBeta) / (1 + cubicBeta)
	if cu.wEst >= cu.wMax {
		alpha = 1
	}
	cu.wEst += alpha * segs / cwnd
	next := cwnd
	if cu.wEst > target {
		next = cwnd + (cu.wEst-cwnd)*segs/cwnd
		if cu.wEst < next {
			next = cu.wEst
		}
	} else {
		// RFC 9438 4.4: grow by (target - cwnd)/cwnd per segment acked.
		next = cwnd + (target-cwnd)*segs/cwnd
	}
	cu.ackedCount += (next - cwnd) * mss
	if cu.ackedCount >= 1 {
		grow := int(cu.ackedCount)
		cu.ackedCount -= float64(grow)
		c.cc.cwnd += grow
	}
}

func (cu *cubic) ssthreshAfterLoss(c *Conn, now instant) int {
	mss := float64(max(c.opt.sndMSS, 1))
	cwnd := float64(c.cc.cwnd) / mss
	// RFC 9438 4.7, fast convergence: give up bandwidth to newer flows.
	if cwnd < cu.wMax {
		cu.wMax = cwnd * (1 + cubicBeta) / 2
	} else {
		cu.wMax = cwnd
	}
	cu.epoch = instant(0)
	return max(int(cwnd*cubicBeta*mss), 2*c.opt.sndMSS)
}
