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
	next   instant       // earliest start of the next burst (Linux's tcp_wstamp_ns)
	budget int           // bytes the current burst may still send
	credit time.Duration // how late the current burst started: partly forgiven
	late   time.Duration // how late the pacing timer fired (during its output)
	segs   int           // data segments sent under pacing (Linux's data_segs_out)
	at     instant       // the pacing timer: output stopped for pacing; zero: not armed
}

// paceUnpaced is how many data segments go out before pacing starts
// (Linux's tcp_update_skb_after_send: "original sch_fq does not pace
// first 10 MSS").
const paceUnpaced = 10

// pacingRate is the rate segments leave at, in bytes per second; 0: no
// pacing.
func (c *Conn) pacingRate(now instant) float64 {
	if rc, ok := c.cc.(rateControl); ok {
		return rc.pacingRate(c, now)
	}
	return 0
}

// paceAllows reports whether pacing lets a segment leave now; when it does
// not, it arms the pacing timer.
func (c *Conn) paceAllows(now instant) bool {
	rate := c.pacingRate(now)
	if rate <= 0 || c.pace.budget > 0 {
		return true
	}
	if now.Before(c.pace.next) {
		c.pace.at = c.pace.next
		return false
	}
	c.pace.credit = 0
	if !c.pace.next.IsZero() {
		c.pace.credit = now.Sub(c.pace.next)
	}
	quantum := paceQuantum(rate, c.sndMSS) * max(c.sndMSS, 1)
	c.pace.next = now
	c.pace.budget = quantum
	if c.pace.late > 0 {
		// The timer fired late (a coarse clock): send what the missed
		// time would have carried too, up to one more burst, and charge
		// it from when the timer was due, so the rate holds.
		late := min(c.pace.late, time.Duration(float64(quantum)/rate*float64(time.Second)))
		c.pace.budget += int(late.Seconds() * rate)
		c.pace.next = now.Add(-late)
		c.pace.credit = 0
		c.pace.late = 0
	}
	return true
}

// pacingTimeout is the pacing timer: output resumes. On a precise clock it
// fires when due; the lateness of a coarse one is made up (paceAllows).
func (c *Conn) pacingTimeout(now instant) {
	c.pace.late = now.Sub(c.pace.at)
	c.pace.at = instant(0)
	c.output(now)
	c.pace.late = 0
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
	c.pace.budget = max(c.pace.budget-n, 0)
	c.pace.segs++
	if c.pace.segs < paceUnpaced {
		return
	}
	d := time.Duration(float64(n) / rate * float64(time.Second))
	f := min(d/2, c.pace.credit)
	c.pace.credit -= f
	c.pace.next = c.pace.next.Add(d - f)
}

// afterAck finishes the processing of an ACK: RACK loss detection, the
// delivery-rate sample, a rate-based congestion control (BBR), which sees
// every ACK (Linux's cong_control), and send-buffer autotuning.
func (c *Conn) afterAck(now instant) {
	if c.loss != lossNone || len(c.sacked) > 0 || !c.rack.at.IsZero() || c.rack.dsackSeen {
		c.lossDetect(now)
	}
	c.rateEnd(now)
	if rc, ok := c.cc.(rateControl); ok {
		rc.onAck(c, now, &c.sc.rs)
	}
	if c.sc.rs.ackedSacked > 0 {
		c.sndBufExpand()
	}
}

// txStart tells a rate-based congestion control that sending restarts with
// nothing in flight (Linux's CA_EVENT_TX_START).
func (c *Conn) txStart(now instant) {
	if rc, ok := c.cc.(rateControl); ok && c.flight() == 0 {
		rc.onTxStart(c, now)
	}
}

// PacingRate returns the pacing rate in bytes per second (tcpi_pacing_rate):
// BBR's, or for other algorithms what Linux computes for the fq qdisc (twice
// cwnd per SRTT in slow start, 1.2 times after); 0 before any RTT sample.
func (c *Conn) PacingRate() uint64 {
	if b, ok := c.cc.(*bbr); ok && b.inited {
		return uint64(b.pacing)
	}
	if !c.hasRTT || c.srtt <= 0 {
		return 0
	}
	ratio := 1.2
	if c.ssthresh == 0 || c.cwnd < c.ssthresh/2 {
		ratio = 2
	}
	return uint64(ratio * float64(max(c.cwnd, c.flight())) / c.srtt.Seconds())
}
