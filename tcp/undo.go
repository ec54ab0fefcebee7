package tcp

import (
	"math"

	"github.com/synstack/synstack/tcp/seq"
)

// Undo of a needless reduction of the congestion window, as Linux
// (tcp_input.c's tcp_try_undo_*): a recovery or a timeout reduces cwnd and
// ssthresh because segments looked lost; when the peer shows they were
// not, the reduction is taken back and counted (TcpExtTCPFullUndo,
// TCPPartialUndo, TCPDSACKUndo, TCPLossUndo). The evidence is of two
// kinds:
//
//   - timestamps (RFC 7323; the Eifel detection of RFC 3522): an ACK whose
//     echoed timestamp predates the first retransmission of the episode
//     was sent for an original, so that segment was only delayed
//     (packetDelayed);
//   - D-SACK (RFC 2883, the reasoning of RFC 3708): each retransmission
//     the peer reports as a duplicate was needless; when every one of
//     them is (undoRetrans reaches zero), the whole episode was.
//
// The state lives in the episode (recovery.go), in the flight state: a
// D-SACK that comes after everything was acknowledged and the flight given
// back no longer undoes anything (Linux keeps undo_marker for longer).

// ssthreshInfinite stands for an infinite ssthresh (the zero value of
// congestion.ssthresh) in episode.priorSsthresh, where 0 means none.
const ssthreshInfinite = math.MaxInt32

// currentSsthresh is the ssthresh an undo restores (Linux's
// tcp_current_ssthresh): during a reduction the reduced one, else the
// larger of ssthresh and three quarters of cwnd.
func (c *Conn) currentSsthresh() int32 {
	if c.cc.loss == lossRecovery || c.cc.ssthresh == 0 {
		if c.cc.ssthresh == 0 {
			return ssthreshInfinite
		}
		return int32(min(c.cc.ssthresh, ssthreshInfinite))
	}
	return int32(min(max(c.cc.ssthresh, c.cc.cwnd/4*3), ssthreshInfinite))
}

// initUndo starts the undo state of an episode (Linux's tcp_init_undo):
// the marker at SND.UNA, ssthresh to restore, and the retransmissions
// already out (a tail loss probe's) as ones a D-SACK must clear.
func (c *Conn) initUndo(priorSsthresh int32) {
	ep := &c.borrowFlight().ep
	ep.undoOn = true
	ep.undoHold = instant(0)
	ep.undoMarker = c.snd.una
	ep.priorSsthresh = priorSsthresh
	ep.stamped = false
	ep.undoRetrans = -1
	if n := c.retransOut(); n > 0 {
		ep.undoRetrans = int32(n)
	}
}

// retransOut is the number of retransmitted segments still in flight
// (Linux's retrans_out).
func (c *Conn) retransOut() int {
	n := 0
	for i := 0; i < c.recs(); i++ {
		if r := c.fl.txq.at(i); r.flags&(recRetrans|recSacked) == recRetrans {
			n++
		}
	}
	return n
}

// undoNoteRetransmit counts a retransmission, and stamps the episode's
// first one with its timestamp.
func (c *Conn) undoNoteRetransmit(now instant) {
	ep := &c.fl.ep
	if !ep.stamped {
		ep.retransStamp, ep.stamped = c.tsNow(now), true
	}
	if ep.undoRetrans < 0 {
		ep.undoRetrans = 0
	}
	ep.undoRetrans++
	if c.cc.loss == lossRecovery {
		ep.undoHold = now.Add(c.rtx.rto)
	}
}

// undoWaiting reports whether a fast recovery waits for a D-SACK that may
// yet undo it: undoHold is then a deadline (Conn.deadline), an RTO after
// its last retransmission, the time the duplicate takes to be reported.
// The flight state stays until then, even with nothing in flight. (After a
// timeout the flight is not held for it: a D-SACK undoes that only while
// data is still in flight.)
func (ep *episode) undoWaiting() bool {
	return ep.undoOn && ep.undoRetrans > 0 && !ep.undoHold.IsZero()
}

// undoPending reports whether the wait for a D-SACK still runs at now.
func (ep *episode) undoPending(now instant) bool {
	return ep.undoWaiting() && now.Before(ep.undoHold)
}

// undoOnAckArrival takes from an arriving ACK what undo needs before the
// ACK is processed: its echoed timestamp, and a D-SACK of data above the
// marker, which clears as many retransmissions as it covers segments.
func (c *Conn) undoOnAckArrival(seg *Segment) {
	rs := &c.sc.rs
	rs.ecr, rs.hasEcr = seg.Options.TSEcr, c.opt.tsOK && seg.Options.HasTimestamp
	if c.fl == nil || !c.fl.ep.undoOn || c.fl.ep.undoRetrans <= 0 || !c.opt.sackOK || !isDSACK(seg) {
		return
	}
	ep := &c.fl.ep
	l, r := seq.Value(seg.Options.SACK[0].Left), seq.Value(seg.Options.SACK[0].Right)
	if !r.GreaterThan(ep.undoMarker) {
		return
	}
	mss := max(c.opt.sndMSS, 1)
	segs := (int(r.Sub(l)) + mss - 1) / mss
	ep.undoRetrans = int32(max(int(ep.undoRetrans)-segs, 0))
}

// packetDelayed reports whether the ACK being processed shows that a
// segment thought lost was only delayed (Linux's tcp_packet_delayed): it
// echoes a timestamp older than the episode's first retransmission, or
// nothing was retransmitted yet.
func (c *Conn) packetDelayed() bool {
	ep := &c.fl.ep
	if ep.stamped {
		rs := &c.sc.rs
		return rs.hasEcr && rs.ecr != 0 && int32(rs.ecr-ep.retransStamp) < 0
	}
	if !c.opt.sackOK && c.snd.una.GreaterThanEq(c.cc.recoveryPoint) {
		return false
	}
	return c.cc.loss != lossRTO
}

// mayUndo reports whether the episode proved needless: every
// retransmission was reported a duplicate, or an original was only delayed
// (Linux's tcp_may_undo).
func (c *Conn) mayUndo() bool {
	if c.fl == nil || !c.fl.ep.undoOn {
		return false
	}
	return c.fl.ep.undoRetrans == 0 || c.packetDelayed()
}

// undoCwndReduction takes the reduction back: cwnd to at least what it was
// (the algorithms' undo_cwnd, Reno's for CUBIC as on Linux), ssthresh to
// what it was if that was more; with unmark, segments marked lost are no
// longer (Linux's tcp_undo_cwnd_reduction).
func (c *Conn) undoCwndReduction(unmark bool) {
	ep := &c.fl.ep
	if unmark {
		for i := 0; i < c.fl.txq.len(); i++ {
			if r := c.fl.txq.at(i); r.has(recLost) {
				c.fl.txq.setFlags(r, r.flags&^recLost)
			}
		}
	}
	if ep.priorSsthresh != 0 {
		if !c.rateControlled() {
			c.cc.cwnd = max(c.cc.cwnd, int(ep.priorCwnd))
		}
		cur := int32(ssthreshInfinite)
		if c.cc.ssthresh != 0 {
			cur = int32(min(c.cc.ssthresh, ssthreshInfinite))
		}
		if ep.priorSsthresh > cur {
			c.cc.ssthresh = int(ep.priorSsthresh)
			if ep.priorSsthresh == ssthreshInfinite {
				c.cc.ssthresh = 0
			}
		}
	}
	ep.undoOn = false
}

// endCwndReduction ends a recovery that was not undone: cwnd is ssthresh
// (Linux's tcp_end_cwnd_reduction), unless the algorithm sets cwnd itself.
func (c *Conn) endCwndReduction() {
	if c.rateControlled() || c.cc.ssthresh == 0 || c.fl == nil || !c.fl.ep.undoOn {
		return
	}
	c.cc.cwnd = c.cc.ssthresh
}

// tryUndoRecovery undoes the episode that SND.UNA passing the recovery
// point ends, if it proved needless (Linux's tcp_try_undo_recovery);
// from is the state it ends.
func (c *Conn) tryUndoRecovery(from lossState) bool {
	if !c.mayUndo() {
		return false
	}
	c.undoCwndReduction(false)
	if from == lossRTO {
		c.cfg.Counters.LossUndo++
	} else {
		c.cfg.Counters.FullUndo++
	}
	return true
}

// tryUndoPartial handles a partial ACK in fast recovery that shows the
// hole was filled by a delayed original, not a retransmission (Linux's
// tcp_try_undo_partial): that is reordering; with no retransmission still
// out the recovery is undone and ends, else it holds (nothing more is
// marked lost on this ACK). It reports whether it took the ACK.
func (c *Conn) tryUndoPartial() bool {
	if c.fl == nil || !c.fl.ep.undoOn || !c.packetDelayed() {
		return false
	}
	c.cc.reo.reord = true
	c.more().reordSeen++ // Linux's tcp_check_sack_reordering, timestamp-based
	if c.retransOut() > 0 {
		return true
	}
	c.undoCwndReduction(true)
	c.cfg.Counters.PartialUndo++
	c.cc.loss = lossNone
	return true
}

// tryUndoLoss undoes a timeout's reduction on an ACK that shows it
// needless (Linux's tcp_try_undo_loss): with SACK the connection is open
// again at once; without it, the Loss state lasts to its recovery point.
func (c *Conn) tryUndoLoss() bool {
	if !c.mayUndo() {
		return false
	}
	c.undoCwndReduction(true)
	c.cfg.Counters.LossUndo++
	if c.opt.sackOK {
		c.cc.loss = lossNone
		c.cc.dupAcks = 0
	}
	return true
}

// tryUndoDSACK undoes a reduction once D-SACKs have shown every
// retransmission of it needless (Linux's tcp_try_undo_dsack), in or after
// the recovery; RACK's widened reordering window lasts one recovery more.
func (c *Conn) tryUndoDSACK() {
	if c.fl == nil || !c.fl.ep.undoOn || c.fl.ep.undoRetrans != 0 {
		return
	}
	c.cc.reo.persist = min(c.cc.reo.persist+1, rackRecoveryThresh)
	c.undoCwndReduction(false)
	c.cfg.Counters.DSACKUndo++
	if c.cc.loss == lossRecovery {
		c.cc.loss = lossNone
	}
}
