package tcp

import (
	"time"

	"github.com/synstack/synstack/tcp/seq"
)

// RACK-TLP time-based loss detection (RFC 8985, Linux's tcp_recovery.c).
// A segment is lost when a segment sent after it has been delivered and
// more than a round trip plus a reordering window has passed since it was
// sent. The reordering window is a quarter of the minimum RTT, zero while
// no reordering has been seen and three segments are SACKed (or recovery
// is under way: the DupThresh-like behaviour), and, once reordering has
// been seen, it widens by a quarter RTT for each round trip in which a
// D-SACK showed a retransmission was spurious (RFC 8985 6.2 step 4), for
// sixteen recoveries.

// rackRecoveryThresh is how many recoveries a widened window lasts
// (Linux's TCP_RACK_RECOVERY_THRESH).
const rackRecoveryThresh = 16

// timeoutMin is Linux's TCP_TIMEOUT_MIN (2 jiffies at HZ=1000), added to
// the RACK reordering timer.
const timeoutMin = 2 * time.Millisecond

// rackState is RFC 8985's RACK variables.
type rackState struct {
	xmit   instant       // RACK.xmit_ts: send time of the newest segment delivered
	order  uint64        // its txrec.order: breaks ties of xmit time
	rtt    time.Duration // RACK.rtt: its RTT
	endSeq seq.Value     // RACK.end_seq: its end
	fack   seq.Value     // RACK.fack: the highest end delivered
	valid  bool          // a segment was delivered in this flight (flight.go)

	at instant // the reordering timer; zero: not armed
}

// reoState is RACK's reordering window, which outlasts a flight.
type reoState struct {
	reord         bool   // RACK.reord: reordering was seen
	dsackSeen     bool   // a D-SACK arrived and is not yet taken into account
	steps         uint8  // RACK.reo_wnd_mult, from 1
	degree        uint8  // the largest reordering seen, segments (Linux's tp->reordering beyond 3; tcpi_reordering)
	persist       int32  // RACK.reo_wnd_persist
	lastDelivered uint64 // delivered when the window last widened
}

// sentAfter is RFC 8985's RACK_sent_after: record r was sent after the
// newest delivered one. Ties of time (one instant on a virtual clock) are
// broken by the order of transmission rather than by sequence number, so
// that a retransmission counts as sent after originals sent at the same
// instant.
func (rk *rackState) sentAfter(r *txrec) bool {
	return r.xmit.After(rk.xmit) || (r.xmit.Equal(rk.xmit) && r.order > rk.order)
}

// rackOnDelivered updates RACK for a record delivered now, by SACK when
// sacked (RFC 8985 6.2 steps 2 and 3).
func (c *Conn) rackOnDelivered(now instant, r *txrec, sacked bool) {
	rk := &c.fl.rack
	rtt := now.Sub(r.xmit)
	if !r.has(recEverRetrans) {
		if rk.valid && r.end.LessThan(rk.fack) {
			c.cc.reo.reord = true // delivered below a segment delivered before
			c.sc.rs.reordered = true
			if mss := c.opt.sndMSS; mss > 0 {
				d := (int(rk.fack.Sub(r.start)) + mss - 1) / mss
				c.cc.reo.degree = uint8(min(max(d, int(c.cc.reo.degree)), 255))
			}
		}
	} else if !sacked || rtt < c.rtx.minRTT {
		// Ambiguous: the ACK may be for the original, not the
		// retransmission. Linux takes a retransmitted segment's send
		// time only from a SACK that comes at least a minimum RTT
		// after it (tcp_rack_advance); a cumulative ACK of one never
		// moves RACK (tcp_clean_rtx_queue).
		return
	}
	if !rk.valid || r.end.GreaterThan(rk.fack) {
		rk.fack = r.end
	}
	if !rk.valid || rk.sentAfter(r) {
		rk.xmit, rk.endSeq, rk.order, rk.rtt = r.xmit, r.end, r.order, rtt
		rk.valid = true
	}
}

// countReordering counts in tcpi_reord_seen the reordering the records
// delivered since the last call showed, once: Linux counts it once for
// an ACK's SACK blocks (tcp_sacktag_write_queue) and once for what its
// cumulative acknowledgment delivered (tcp_clean_rtx_queue), through
// tcp_check_sack_reordering.
func (c *Conn) countReordering() {
	if c.sc.rs.reordered {
		c.sc.rs.reordered = false
		c.more().reordSeen++
	}
}

// rackReoWnd is the reordering window (Linux's tcp_rack_reo_wnd).
func (c *Conn) rackReoWnd() time.Duration {
	if !c.cc.reo.reord {
		if c.cc.loss == lossRecovery || c.cc.loss == lossRTO {
			return 0
		}
		if c.fl != nil && c.fl.txq.sackedRecs >= dupThresh {
			return 0
		}
	}
	w := c.rtx.minRTT / 4 * time.Duration(max(c.cc.reo.steps, 1))
	if c.rtx.hasRTT {
		w = min(w, c.rtx.srtt)
	}
	return w
}

// rackUpdateReoWnd widens the window after a D-SACK, at most once per
// round trip, and narrows it again when the widening has lasted its
// recoveries (RFC 8985 6.2 step 4, Linux's tcp_rack_update_reo_wnd).
func (c *Conn) rackUpdateReoWnd() {
	rs := &c.sc.rs
	if rs.priorAt.IsZero() {
		return
	}
	if rs.priorDelivered < c.cc.reo.lastDelivered {
		c.cc.reo.dsackSeen = false // within the round trip of the last widening
	}
	switch {
	case c.cc.reo.dsackSeen:
		c.cc.reo.steps = uint8(min(int(max(c.cc.reo.steps, 1))+1, 255))
		c.cc.reo.dsackSeen = false
		c.cc.reo.lastDelivered = c.cc.rate.delivered
		c.cc.reo.persist = rackRecoveryThresh
	case c.cc.reo.persist == 0:
		c.cc.reo.steps = 1
	}
}

// rackDetectLoss marks lost every segment sent before the newest one
// delivered, by more than the reordering window, a round trip ago (RFC
// 8985 6.2 step 5). It returns the bytes it marked, whether one of them
// was a retransmission (Linux's FLAG_LOST_RETRANS) and, when some segment
// may yet be found lost, how long until then.
func (c *Conn) rackDetectLoss(now instant) (lost int, lostRetrans bool, wait time.Duration) {
	if c.fl == nil || !c.fl.rack.valid || !c.opt.sackOK {
		return 0, false, 0
	}
	rk := &c.fl.rack
	reo := c.rackReoWnd()
	for i := 0; i < c.fl.txq.len(); i++ {
		r := c.fl.txq.at(i)
		if r.order == rk.order || rk.sentAfter(r) {
			if !r.has(recEverRetrans) {
				// Sent once, after the newest delivered: so was every
				// record above it (originals go out in sequence order,
				// and a retransmission is later than its original).
				break
			}
			continue
		}
		if r.has(recSacked | recLost) {
			continue
		}
		if remaining := r.xmit.Add(rk.rtt + reo).Sub(now); remaining > 0 {
			wait = max(wait, remaining)
			continue
		}
		lostRetrans = lostRetrans || r.has(recRetrans)
		c.fl.txq.setFlags(r, r.flags&^recRetrans|recLost)
		lost += r.size()
	}
	return lost, lostRetrans, wait
}

// lossDetect runs RACK after an ACK: it marks losses, enters fast recovery
// when it found one (in the loss state, when it found a retransmission
// lost, as Linux's tcp_fastretrans_alert leaves TCP_CA_Loss on
// FLAG_LOST_RETRANS), and arms the reordering timer for segments that are
// not yet late enough.
func (c *Conn) lossDetect(now instant) {
	if !c.opt.sackOK {
		return
	}
	c.rackUpdateReoWnd()
	lost, lostRetrans, wait := c.rackDetectLoss(now)
	c.sc.rs.losses += lost
	if c.fl != nil {
		c.fl.rack.at = instant(0)
		if wait > 0 {
			c.fl.rack.at = now.Add(wait + timeoutMin)
		}
	}
	if lost > 0 && (c.cc.loss == lossNone || c.cc.loss == lossCWR || c.cc.loss == lossRTO && lostRetrans) {
		c.enterRecovery(now)
	}
}

// rackTimeout is the reordering timer (Linux's tcp_rack_reo_timeout):
// segments that were waiting out the window are lost now.
func (c *Conn) rackTimeout(now instant) {
	c.fl.rack.at = instant(0)
	lost, _, wait := c.rackDetectLoss(now)
	if wait > 0 {
		c.fl.rack.at = now.Add(wait + timeoutMin)
	}
	if lost == 0 {
		return
	}
	if c.cc.loss == lossNone || c.cc.loss == lossCWR {
		c.enterRecovery(now)
		if c.inCwndReduction() {
			// No ACK brought this: PRR counts one segment delivered,
			// for the fast retransmit (Linux's tcp_rack_reo_timeout).
			c.prrOnAck(1, false, false)
		}
	}
	c.output(now)
	if c.timer.rto.IsZero() && c.flight() > 0 {
		c.armRTO(now)
	}
}

// noteDSACK takes a D-SACK (RFC 2883): the first SACK block lies below
// SND.UNA, or inside the second block. It widens the reordering window
// (at the next ACK that delivers, rackUpdateReoWnd) only once reordering
// has been seen, as Linux's tcp_dsack_seen: a D-SACK without it says a
// retransmission was spurious, not that RACK's window was too narrow.
func (c *Conn) noteDSACK() {
	if c.cc.reo.reord {
		c.cc.reo.dsackSeen = true
	}
	c.stats.dsackDups++
}

// rackRecoveryEnded counts down the recoveries a widened window lasts.
func (c *Conn) rackRecoveryEnded() {
	if c.cc.reo.persist > 0 {
		c.cc.reo.persist--
	}
}
