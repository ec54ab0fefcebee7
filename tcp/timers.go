package tcp

import (
	"syscall"
	"time"

	"github.com/synstack/synstack/tcp/seq"
)

// The connection's timers are deadlines, not goroutines: the owner asks
// Deadline and calls Tick. There are nine: the six of timerSet, and
// RACK's reordering timer, the pacing timer and the wait for a D-SACK that
// may undo a recovery (undo.go), which live in the flight state
// (flight.go) because they run only while data is, or was just, in flight.

// timerSet is the connection's deadlines, one per timer; the zero instant
// is a timer not armed.
type timerSet struct {
	rto    instant // retransmission (RFC 6298), or persist when rtxState.persist
	tlp    instant // tail loss probe (RFC 8985 7); armed instead of rto
	delAck instant // delayed ACK
	keep   instant // keepalive
	close  instant // TIME_WAIT's 2MSL, or an orphan's FIN_WAIT_2 timeout
	cork   instant // when corked data must go out anyway (TCP_CORK's 200 ms)
}

// earliest is the soonest armed deadline; zero when none is.
func (t *timerSet) earliest() instant {
	return earlier(earlier(earlier(t.rto, t.tlp), earlier(t.delAck, t.keep)), earlier(t.close, t.cork))
}

// stopAll disarms every timer.
func (t *timerSet) stopAll() { *t = timerSet{} }

// earlier is the sooner of two deadlines, a zero one being never.
func earlier(a, b instant) instant {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// backedOff is the current RTO doubled once per consecutive timeout.
func (c *Conn) backedOff() time.Duration {
	d := c.rtx.rto
	for i := int32(0); i < c.rtx.backoff && d < c.cfg.RTOMax; i++ {
		d *= 2
	}
	return min(d, c.cfg.RTOMax)
}

// armRTO (re)starts the retransmission timer (RFC 6298 5.1, 5.3), never
// past the moment TCP_USER_TIMEOUT runs out (Linux's
// tcp_clamp_rto_to_user_timeout).
func (c *Conn) armRTO(now instant) {
	c.rtx.persist = false
	c.timer.rto = c.clampToUserTimeout(now, now.Add(c.backedOff()))
}

// clampToUserTimeout brings a deadline forward to when TCP_USER_TIMEOUT
// expires, if that is sooner.
func (c *Conn) clampToUserTimeout(now, t instant) instant {
	if c.cfg.UserTimeout <= 0 || c.rtx.stallSince.IsZero() {
		return t
	}
	if limit := c.rtx.stallSince.Add(c.cfg.UserTimeout); limit.Before(t) {
		if limit.Before(now) {
			return now
		}
		return limit
	}
	return t
}

// userTimedOut reports whether TCP_USER_TIMEOUT has run out.
func (c *Conn) userTimedOut(now instant) bool {
	return c.cfg.UserTimeout > 0 && !c.rtx.stallSince.IsZero() && now.Sub(c.rtx.stallSince) >= c.cfg.UserTimeout
}

// armXmitTimer arms what watches data in flight after a send or an ACK:
// the tail loss probe when it may be used, else the retransmission timer;
// nothing when nothing is in flight.
func (c *Conn) armXmitTimer(now instant) {
	c.timer.tlp = instant(0)
	if c.flight() == 0 {
		if !c.rtx.persist {
			c.timer.rto = instant(0)
		}
		return
	}
	if pto, ok := c.probeTimeout(); ok {
		c.timer.rto = instant(0)
		c.rtx.persist = false
		c.timer.tlp = now.Add(pto)
		return
	}
	c.armRTO(now)
}

// probeTimeout is the tail loss probe's timeout (RFC 8985 7.2, with Linux's
// values): two smoothed RTTs, plus the 200 ms a delayed ACK may take when a
// single segment is in flight (2 ms otherwise), never beyond the RTO.
// Probing needs SACK, so that the probe's ACK can show what is missing,
// and is off during recovery and while a probe is out.
func (c *Conn) probeTimeout() (time.Duration, bool) {
	if !c.opt.sackOK || c.cc.loss != lossNone && c.cc.loss != lossCWR || c.rtx.tlp != tlpNone || c.rtx.backoff > 0 {
		return 0, false
	}
	switch c.state {
	case Established, CloseWait, FinWait1, Closing, LastAck:
	default:
		return 0, false
	}
	pto := rtoFallback / 3 // TCP_TIMEOUT_INIT, 1 s, before any RTT sample
	if c.rtx.hasRTT {
		pto = 2 * c.rtx.srtt
		if c.flight() <= c.opt.sndMSS {
			pto += c.cfg.RTOMin
		} else {
			pto += 2 * time.Millisecond
		}
	}
	return min(pto, c.backedOff()), true
}

// tailLossProbe sends one segment to make the peer ACK (RFC 8985 7.3): new
// data if the peer's window allows, else the last segment again. Its ACK
// (with SACK) lets fast recovery repair a lost tail without waiting for the
// retransmission timeout, which is armed behind it.
func (c *Conn) tailLossProbe(now instant) {
	if c.flight() == 0 {
		return
	}
	if !c.hostRoom() {
		// The link's queue is full (RoomHost): what the probe would
		// chase may still be in it. Linux skips the probe then
		// (skb_still_in_host_queue) and leaves the RTO to watch.
		c.armRTO(now)
		return
	}
	mss := c.currentMSS()
	queued := c.queuedFrom(c.snd.nxt)
	room := int(c.snd.una.Add(seq.Size(c.snd.wnd)).Sub(c.snd.nxt))
	probe := tlpNewData
	if n := min(queued, mss, room); n > 0 {
		fin := c.sq.finQueued && !c.sq.finSent && n == queued
		var u txUnit
		c.transmitNew(now, n, fin, mss, segAlone, &u) // one segment: no GSO packet
		c.flushUnit(now, &u)
	} else {
		probe = tlpRetrans
		// The last segment sent, again (Linux resends the last buffer of
		// its retransmission queue: a FIN sent on its own goes alone).
		dataEnd := c.sq.start.Add(seq.Size(c.sq.n))
		if c.sq.finSent {
			dataEnd = c.sq.finSeq
		}
		// Only what was sent: data beyond SND.NXT waits for the window.
		dataEnd = seq.Min(dataEnd, c.snd.nxt)
		start := seq.Max(c.snd.una, seq.Max(c.rtx.lastSegStart, dataEnd-seq.Value(mss)))
		if start.GreaterThan(dataEnd) {
			start = dataEnd
		}
		k := int(dataEnd.Sub(start))
		fin := c.sq.finSent && c.sq.finSeq == dataEnd
		if k == 0 && !fin {
			c.armRTO(now)
			return
		}
		c.sendSegment(now, start, k, fin, true)
		c.recordProbe(now, start)
		c.countRetrans(1, k)
		c.rtx.rttTiming = false
	}
	c.rtx.tlp = probe
	c.rtx.tlpHigh = c.snd.nxt
	c.armRTO(now)
}

// Tail loss probe episodes (rtxState.tlp).
const (
	tlpNone    uint8 = iota
	tlpNewData       // the probe sent new data
	tlpRetrans       // the probe sent the last segment again
)

// tlpOnAck ends the probe's episode, and tells whether the probe repaired
// a loss (RFC 8985 7.4, as Linux's tcp_process_tlp_ack): once the ACK
// reaches what was sent when the probe went, a probe of new data just
// ends; a D-SACK of the resent segment says both copies arrived, so
// nothing was lost; an ACK beyond it with no such D-SACK says the original
// was lost and the probe repaired it: the window is reduced as for a loss
// (ssthresh from the algorithm, cwnd to it at once) without a recovery; a
// plain duplicate ACK of the point says both copies arrived too.
func (c *Conn) tlpOnAck(now instant, seg *Segment, newSACK bool) {
	if c.rtx.tlp == tlpNone || seg.ACK.LessThan(c.rtx.tlpHigh) {
		return
	}
	dsack := isDSACK(seg) && !seq.Value(seg.Options.SACK[0].Right).GreaterThan(c.rtx.tlpHigh)
	switch {
	case c.rtx.tlp == tlpNewData, dsack:
		c.rtx.tlp = tlpNone
	case seg.ACK.GreaterThan(c.rtx.tlpHigh):
		c.rtx.tlp = tlpNone
		if c.cc.loss != lossNone || c.rateControlled() {
			return
		}
		c.cc.ssthresh = c.cc.algo.ssthreshAfterLoss(c, now)
		c.cc.cwnd = max(c.cc.ssthresh, 2*c.opt.sndMSS)
		c.ecnQueueCWR()
		c.cfg.Counters.LossProbeRecovery++
	case !c.sc.rs.unaAdvanced && !newSACK && len(seg.Payload) == 0:
		c.rtx.tlp = tlpNone
	}
}

// armPersist starts the persist timer: the peer's window is zero and we
// have data (RFC 9293 3.8.6.1).
func (c *Conn) armPersist(now instant) {
	c.rtx.persist = true
	c.timer.rto = now.Add(max(c.backedOff(), c.cfg.RTOMin))
}

// armKeepalive restarts the keepalive timer from the last segment received.
func (c *Conn) armKeepalive(now instant) {
	if !c.cfg.KeepAlive || !(c.state == Established || c.state == CloseWait || c.state == FinWait2) {
		c.timer.keep = instant(0)
		return
	}
	if c.keepProbes > 0 {
		c.timer.keep = now.Add(c.cfg.KeepIntvl)
		return
	}
	c.timer.keep = c.lastRcv.Add(c.cfg.KeepIdle)
}

// Deadline is when Tick must next be called; the zero time means never.
func (c *Conn) Deadline() time.Time {
	return c.timeOf(c.deadline())
}

// deadline is Deadline on the connection's clock.
func (c *Conn) deadline() instant {
	d := c.timer.earliest()
	if c.fl != nil {
		d = earlier(d, earlier(c.fl.rack.at, c.fl.pace.at))
		if c.fl.ep.undoWaiting() && c.fl.txq.n == 0 {
			d = earlier(d, c.fl.ep.undoHold)
		}
	}
	return d
}

// Tick runs the timers that are due at now.
func (c *Conn) Tick(t time.Time) {
	now := c.at(t)
	if c.state == Closed || c.state == Listen {
		c.timer.stopAll()
		c.returnFlight(now)
		return
	}
	defer c.returnFlight(now)
	if c.fl != nil && !c.fl.rack.at.IsZero() && !now.Before(c.fl.rack.at) {
		c.rackTimeout(now)
	}
	if c.fl != nil && !c.fl.pace.at.IsZero() && !now.Before(c.fl.pace.at) {
		c.pacingTimeout(now)
	}
	if c.fl != nil && !c.fl.ep.undoHold.IsZero() && !now.Before(c.fl.ep.undoHold) {
		c.fl.ep.undoHold = instant(0) // no D-SACK came: the undo is off
	}
	if !c.timer.cork.IsZero() && !now.Before(c.timer.cork) {
		c.timer.cork = instant(0)
		c.sq.corkExpired = true
		c.moreTimeout()
		c.output(now)
	}
	if !c.timer.tlp.IsZero() && !now.Before(c.timer.tlp) {
		c.timer.tlp = instant(0)
		c.tailLossProbe(now)
	}
	if !c.timer.close.IsZero() && !now.Before(c.timer.close) {
		c.timer.close = instant(0)
		switch {
		case c.state == TimeWait:
			c.setState(Closed, "timer 2MSL")
			return
		case c.state == FinWait2 && c.orphan:
			c.setState(Closed, "timer FIN_WAIT_2")
			return
		}
	}
	if !c.timer.delAck.IsZero() && !now.Before(c.timer.delAck) {
		c.timer.delAck = instant(0)
		if c.state.Synchronized() && c.state != TimeWait {
			c.atoOnDelAck()
			c.sendAck(now)
		}
	}
	if !c.timer.rto.IsZero() && !now.Before(c.timer.rto) {
		c.timer.rto = instant(0)
		if c.rtx.persist {
			c.persistTimeout(now)
		} else {
			c.retransmitTimeout(now)
		}
		if c.state == Closed {
			return
		}
	}
	if !c.timer.keep.IsZero() && !now.Before(c.timer.keep) {
		c.timer.keep = instant(0)
		c.keepaliveTimeout(now)
	}
}

// retransmitTimeout is RFC 6298 5.4-5.7: resend the earliest unacknowledged
// segment, double the timer, and give up after the retry limit.
func (c *Conn) retransmitTimeout(now instant) {
	if c.userTimedOut(now) && (c.flight() > 0 || c.state == SynSent || c.state == SynRcvd) {
		if c.state == SynRcvd && c.passive {
			c.setState(Closed, "timer user timeout")
			return
		}
		c.fail(syscall.ETIMEDOUT, "timer user timeout")
		return
	}
	switch c.state {
	case SynSent:
		if int(c.rtx.backoff) >= c.cfg.SynRetries {
			c.fail(syscall.ETIMEDOUT, "timer SYN retries")
			return
		}
		c.resendSYN(now, false)
		return
	case SynRcvd:
		if int(c.rtx.backoff) >= c.cfg.SynAckRetries {
			// Linux drops the request silently; a simultaneous open
			// times out like a connect.
			if c.passive {
				c.setState(Closed, "timer SYN,ACK retries")
			} else {
				c.fail(syscall.ETIMEDOUT, "timer SYN,ACK retries")
			}
			return
		}
		c.resendSYN(now, true)
		return
	}
	if c.flight() == 0 {
		return
	}
	if !c.hostRoom() {
		// The link's queue is full (RoomHost): the segment may not have
		// left the host. As Linux on local congestion (a retransmission
		// refused with EBUSY), try again in half a second, without
		// backing off or entering loss recovery.
		c.timer.rto = now.Add(resourceProbeInterval)
		return
	}
	if int(c.rtx.backoff) >= c.cfg.Retries2 {
		c.fail(syscall.ETIMEDOUT, "timer retransmission limit")
		return
	}
	c.countTimeout(now)
	c.rtx.backoff++
	c.rtx.rtoTSval = c.tsNow(now)
	c.enterLoss(now)
	c.armRTO(now)
}

// resendSYN retransmits our SYN (synAck: our SYN,ACK) when its timer
// expires, and re-arms the timer backed off once more.
func (c *Conn) resendSYN(now instant, synAck bool) {
	c.countTimeout(now)
	c.rtx.backoff++
	c.countRetrans(1, 0)
	if !synAck {
		c.fastOpenSynTimeout() // the SYN goes again without its data
	}
	c.sendSYN(now, synAck)
	c.armRTO(now)
}

// persistTimeout sends a zero-window probe and backs off (RFC 9293 3.8.6.1).
func (c *Conn) persistTimeout(now instant) {
	c.rtx.persist = false
	if c.snd.wnd > 0 {
		if c.flight() == 0 && c.queuedFrom(c.snd.nxt) > 0 && !c.hostRoom() {
			c.hostProbe(now)
			return
		}
		c.output(now)
		c.writeWakeup(now)
		return
	}
	if (int(c.rtx.backoff) >= c.cfg.Retries2 && c.orphan) || c.userTimedOut(now) {
		c.fail(syscall.ETIMEDOUT, "timer persist limit")
		return
	}
	c.sendProbe(now)
	if c.rtx.backoff < 30 {
		c.rtx.backoff++
	}
	c.armPersist(now)
}

// writeWakeup sends, when nothing is in flight, what of the next segment
// fits a peer's window smaller than it, with PSH, as Linux's
// tcp_write_wakeup from the probe timer; output sends only segments that
// fit whole.
func (c *Conn) writeWakeup(now instant) {
	queued := c.queuedFrom(c.snd.nxt)
	if c.flight() > 0 || queued == 0 {
		return
	}
	mss := c.currentMSS()
	usable := int(c.snd.una.Add(seq.Size(c.snd.wnd)).Sub(c.snd.nxt))
	n := c.eorLimit(c.snd.nxt, min(queued, mss, usable))
	if n <= 0 {
		return
	}
	var u txUnit
	c.transmitNew(now, n, false, mss, segLast, &u)
	c.flushUnit(now, &u)
	c.armXmitTimer(now)
}

// keepaliveTimeout sends a keepalive probe, or gives up after KeepCnt
// unanswered ones (RFC 1122 4.2.3.6; Linux then resets the connection).
func (c *Conn) keepaliveTimeout(now instant) {
	if !c.cfg.KeepAlive {
		return
	}
	if c.flight() > 0 || c.sq.n > 0 {
		// Data is outstanding: the retransmission timer watches the peer.
		c.armKeepalive(now)
		return
	}
	idle := c.cfg.UserTimeout > 0 && c.keepProbes > 0 && now.Sub(c.lastRcv) >= c.cfg.UserTimeout
	if (c.cfg.UserTimeout == 0 && int(c.keepProbes) >= c.cfg.KeepCnt) || idle {
		c.sendActiveRST(now)
		c.fail(syscall.ETIMEDOUT, "timer keepalive")
		return
	}
	c.keepProbes++
	c.sendProbe(now)
	c.timer.keep = now.Add(c.cfg.KeepIntvl)
}

// heldByHost is called when the host's link had no room for new data
// (RoomHost). With nothing in flight no ACK will bring the connection back
// to its queue, so the probe timer watches it, as Linux's
// tcp_check_probe_timer after a transmit that failed locally.
func (c *Conn) heldByHost(now instant) {
	if c.flight() == 0 && c.timer.rto.IsZero() {
		c.armPersist(now)
	}
}

// hostProbe is the probe timer finding the link still without room and
// nothing in flight, as Linux's tcp_probe_timer when its probe cannot
// leave the host (local congestion): count the probe and try again in
// half a second, without backing off; give up, with ETIMEDOUT, after
// Retries2 such probes, or once TCP_USER_TIMEOUT has passed since the
// first (Linux's icsk_probes_tstamp; here the tries are counted, and come
// half a second apart, but for the last, which the timeout cuts short).
func (c *Conn) hostProbe(now instant) {
	elapsed := time.Duration(c.keepProbes) * resourceProbeInterval // since the first try
	if c.cfg.UserTimeout > 0 && c.keepProbes > 0 && elapsed >= c.cfg.UserTimeout {
		c.fail(syscall.ETIMEDOUT, "timer user timeout")
		return
	}
	if int(c.keepProbes) >= c.cfg.Retries2 {
		c.fail(syscall.ETIMEDOUT, "timer probe limit")
		return
	}
	c.keepProbes++
	next := resourceProbeInterval
	if c.cfg.UserTimeout > 0 {
		// Linux's tcp_clamp_probe0_to_user_timeout.
		next = min(next, c.cfg.UserTimeout-elapsed)
	}
	c.rtx.persist = true
	c.timer.rto = now.Add(next)
}

// probesOut is tcpi_probes: the probes sent and not yet answered, zero
// window (counted by the backoff), keepalive, or those the host's link had
// no room for (keepProbes, as Linux counts both in icsk_probes_out).
func (c *Conn) probesOut() int {
	n := int(c.keepProbes)
	if c.rtx.persist {
		n += int(c.rtx.backoff)
	}
	return n
}
