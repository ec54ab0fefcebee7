package tcp

import "time"

// Pacing: when the congestion control asks for it (BBR does; Linux paces
// other algorithms only under the fq qdisc), segments leave at the pacing
// rate instead of in bursts as ACKs open the window. As Linux's internal
// pacing with TSO autosizing, a burst of about a millisecond's worth (at
// least two segments) goes out at once, and the next burst waits until
// the previous one has been paid for at the rate; the first ten segments
// of a connection are not paced. The connection exports
// the moment it may send again as one of its deadlines, so the owner's
// timer wakes it; on a virtual clock the spacing is exact.

// paceState is the pacing clock.
type paceState struct {
	budget int           // bytes the current burst may still send
	credit time.Duration // how late the current burst started: partly forgiven
	late   time.Duration // how late the pacing timer fired (during its output)
	at     instant       // the pacing timer: output stopped for pacing; zero: not armed
}

// paceUnpaced is how many data segments go out before pacing starts
// (Linux's tcp_update_skb_after_send: "original sch_fq does not pace
// first 10 MSS").
const paceUnpaced = 10

// pacingRate is the rate segments leave at, in bytes per second; 0: no
// pacing.
func (c *Conn) pacingRate(now instant) float64 {
	if rc, ok := c.cc.algo.(rateControl); ok {
		return rc.pacingRate(c, now)
	}
	if c.cfg.Pacing {
		return float64(c.PacingRate())
	}
	return 0
}

// paceAllows reports whether pacing lets a segment leave now; when it does
// not, it arms the pacing timer.
func (c *Conn) paceAllows(now instant) bool {
	rate := c.pacingRate(now)
	if rate <= 0 {
		return true
	}
	p := &c.borrowFlight().pace
	if p.budget > 0 {
		return true
	}
	if now.Before(c.cc.paceNext) {
		p.at = c.cc.paceNext
		return false
	}
	p.credit = 0
	if !c.cc.paceNext.IsZero() {
		p.credit = now.Sub(c.cc.paceNext)
	}
	quantum := paceQuantum(rate, c.opt.sndMSS) * max(c.opt.sndMSS, 1)
	c.cc.paceNext = now
	p.budget = quantum
	if p.late > 0 {
		// The timer fired late (a coarse clock): send what the missed
		// time would have carried too, up to one more burst, and charge
		// it from when the timer was due, so the rate holds.
		late := min(p.late, time.Duration(float64(quantum)/rate*float64(time.Second)))
		p.budget += int(late.Seconds() * rate)
		c.cc.paceNext = now.Add(-late)
		p.credit = 0
		p.late = 0
	}
	return true
}

// pacingTimeout is the pacing timer: output resumes. On a precise clock it
// fires when due; the lateness of a coarse one is made up (paceAllows).
func (c *Conn) pacingTimeout(now instant) {
	p := &c.fl.pace // armed: the flight is there, and stays until Tick returns
	p.late = now.Sub(p.at)
	p.at = instant(0)
	c.output(now)
	p.late = 0
}

// paceSent charges n bytes sent to the pacing clock: the next burst waits
// n/rate longer, less up to half of that for the lateness of this burst's
// start (Linux's allowance for OS jitter), so a late timer does not lower
// the rate.
func (c *Conn) paceSent(now instant, n int) {
	rate := c.pacingRate(now)
	if rate <= 0 || n <= 0 {
		return
	}
	p := &c.borrowFlight().pace
	p.budget = max(p.budget-n, 0)
	c.stats.paceSegs++
	if c.stats.paceSegs < paceUnpaced {
		return
	}
	d := time.Duration(float64(n) / rate * float64(time.Second))
	f := min(d/2, p.credit)
	p.credit -= f
	c.cc.paceNext = c.cc.paceNext.Add(d - f)
}

// afterAck finishes the processing of an ACK: RACK loss detection, the
// delivery-rate sample, a rate-based congestion control (BBR), which sees
// every ACK (Linux's cong_control), and send-buffer autotuning.
func (c *Conn) afterAck(now instant) {
	if c.cc.loss != lossRTO {
		c.tryUndoDSACK()
	}
	if c.cc.loss != lossNone || len(c.cc.sacked) > 0 || c.fl != nil && !c.fl.rack.at.IsZero() || c.cc.reo.dsackSeen {
		c.lossDetect(now)
	}
	if c.sc.rs.ece {
		switch c.cc.loss {
		case lossNone:
			c.enterCWR(now)
		case lossRecovery:
			c.fl.ep.priorSsthresh = 0 // signalled congestion: no undo
		}
	}
	if cu, ok := c.cc.algo.(*cubic); ok {
		cu.onRTT(c, now, c.sc.rs.rtt)
	}
	if rs := &c.sc.rs; c.inCwndReduction() {
		c.prrOnAck(c.deliveredSegs(), rs.losses > 0, rs.unaAdvanced)
	} else if rs.growAfter && c.cc.loss != lossRecovery {
		// As Linux's tcp_cong_control: after loss detection (an ACK that
		// starts a recovery grows nothing), by what the ACK delivered,
		// newly SACKed segments included (tcp_cong_avoid's acked_sacked).
		c.onAckGrow(now, max(rs.ackedSacked-rs.renoCounted, 1), rs.growInflight)
	}
	c.rateEnd(now)
	if rc, ok := c.cc.algo.(rateControl); ok {
		rc.onAck(c, now, &c.sc.rs)
	}
	if c.sc.rs.ackedSacked > 0 {
		c.sndBufExpand()
	}
}

// txStart tells a rate-based congestion control that sending restarts with
// nothing in flight (Linux's CA_EVENT_TX_START).
func (c *Conn) txStart(now instant) {
	if rc, ok := c.cc.algo.(rateControl); ok && c.flight() == 0 {
		rc.onTxStart(c, now)
	}
}

// PacingRate returns the pacing rate in bytes per second (tcpi_pacing_rate):
// BBR's, or for other algorithms what Linux computes for the fq qdisc (twice
// cwnd per SRTT in slow start, 1.2 times after); 0 before any RTT sample.
func (c *Conn) PacingRate() uint64 {
	if b, ok := c.cc.algo.(*bbr); ok && b.inited {
		return uint64(b.pacing)
	}
	if !c.rtx.hasRTT || c.rtx.srtt <= 0 {
		return 0
	}
	ratio := 1.2
	if c.cc.ssthresh == 0 || c.cc.cwnd < c.cc.ssthresh/2 {
		ratio = 2
	}
	return uint64(ratio * float64(max(c.cc.cwnd, c.flight())) / c.rtx.srtt.Seconds())
}
