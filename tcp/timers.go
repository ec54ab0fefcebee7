package tcp

import (
	"syscall"
	"time"

	"github.com/synstack/synstack/tcp/seq"
)

// The connection's timers are deadlines, not goroutines: the owner asks
// Deadline and calls Tick. There are seven: retransmission (or persist),
// the tail loss probe, RACK's reordering timer, pacing, delayed ACK,
// keepalive, and the close timer (TIME_WAIT's 2MSL or an orphan's
// FIN_WAIT_2 timeout).

// backedOff is the current RTO doubled once per consecutive timeout.
func (c *Conn) backedOff() time.Duration {
	d := c.rto
	for i := int32(0); i < c.backoff && d < c.cfg.RTOMax; i++ {
		d *= 2
	}
	return min(d, c.cfg.RTOMax)
}

// armRTO (re)starts the retransmission timer (RFC 6298 5.1, 5.3), never
// past the moment TCP_USER_TIMEOUT runs out (Linux's
// tcp_clamp_rto_to_user_timeout).
func (c *Conn) armRTO(now instant) {
	c.persist = false
	c.rtoAt = c.clampToUserTimeout(now, now.Add(c.backedOff()))
}

// clampToUserTimeout brings a deadline forward to when TCP_USER_TIMEOUT
// expires, if that is sooner.
func (c *Conn) clampToUserTimeout(now, t instant) instant {
	if c.cfg.UserTimeout <= 0 || c.stallSince.IsZero() {
		return t
	}
	if limit := c.stallSince.Add(c.cfg.UserTimeout); limit.Before(t) {
		if limit.Before(now) {
			return now
		}
		return limit
	}
	return t
}

// userTimedOut reports whether TCP_USER_TIMEOUT has run out.
func (c *Conn) userTimedOut(now instant) bool {
	return c.cfg.UserTimeout > 0 && !c.stallSince.IsZero() && now.Sub(c.stallSince) >= c.cfg.UserTimeout
}

// armXmitTimer arms what watches data in flight after a send or an ACK:
// the tail loss probe when it may be used, else the retransmission timer;
// nothing when nothing is in flight.
func (c *Conn) armXmitTimer(now instant) {
	c.tlpAt = instant(0)
	if c.flight() == 0 {
		if !c.persist {
			c.rtoAt = instant(0)
		}
		return
	}
	if pto, ok := c.probeTimeout(); ok {
		c.rtoAt = instant(0)
		c.persist = false
		c.tlpAt = now.Add(pto)
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
	if !c.sackOK || c.loss != lossNone || c.tlpOut || c.backoff > 0 {
		return 0, false
	}
	switch c.state {
	case Established, CloseWait, FinWait1, Closing, LastAck:
	default:
		return 0, false
	}
	pto := rtoFallback / 3 // TCP_TIMEOUT_INIT, 1 s, before any RTT sample
	if c.hasRTT {
		pto = 2 * c.srtt
		if c.flight() <= c.sndMSS {
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
	mss := c.currentMSS()
	queued := c.queuedFrom(c.snd.nxt)
	room := int(c.snd.una.Add(seq.Size(c.snd.wnd)).Sub(c.snd.nxt))
	if n := min(queued, mss, room); n > 0 {
		fin := c.finQueued && !c.finSent && n == queued
		c.transmitNew(now, n, fin, mss)
	} else {
		// The last segment sent, again (Linux resends the last buffer of
		// its retransmission queue: a FIN sent on its own goes alone).
		dataEnd := c.sndData.Add(seq.Size(c.sq.n))
		if c.finSent {
			dataEnd = c.finSeq
		}
		// Only what was sent: data beyond SND.NXT waits for the window.
		dataEnd = seq.Min(dataEnd, c.snd.nxt)
		start := seq.Max(c.snd.una, seq.Max(c.lastSegStart, dataEnd-seq.Value(mss)))
		if start.GreaterThan(dataEnd) {
			start = dataEnd
		}
		k := int(dataEnd.Sub(start))
		fin := c.finSent && c.finSeq == dataEnd
		if k == 0 && !fin {
			c.armRTO(now)
			return
		}
		c.sendSegment(now, start, k, fin, true)
		c.recordProbe(now, start)
		c.countRetrans()
		c.rttTiming = false
	}
	c.tlpOut = true
	c.tlpHigh = c.snd.nxt
	c.armRTO(now)
}

// armPersist starts the persist timer: the peer's window is zero and we
// have data (RFC 9293 3.8.6.1).
func (c *Conn) armPersist(now instant) {
	c.persist = true
	c.rtoAt = now.Add(max(c.backedOff(), c.cfg.RTOMin))
}

// armKeepalive restarts the keepalive timer from the last segment received.
func (c *Conn) armKeepalive(now instant) {
	if !c.cfg.KeepAlive || !(c.state == Established || c.state == CloseWait || c.state == FinWait2) {
		c.keepAt = instant(0)
		return
	}
	if c.keepProbes > 0 {
		c.keepAt = now.Add(c.cfg.KeepIntvl)
		return
	}
	c.keepAt = c.lastRcv.Add(c.cfg.KeepIdle)
}

// Deadline is when Tick must next be called; the zero time means never.
func (c *Conn) Deadline() time.Time {
	return c.timeOf(c.deadline())
}

// deadline is Deadline on the connection's clock.
func (c *Conn) deadline() instant {
	var d instant
	var rackAt, paceAt instant
	if c.fl != nil {
		rackAt, paceAt = c.fl.rack.at, c.fl.pace.at
	}
	for _, t := range [...]instant{c.rtoAt, c.delAckAt, c.keepAt, c.closeAt, c.tlpAt, c.corkAt, rackAt, paceAt} {
		if !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	return d
}

// Tick runs the timers that are due at now.
func (c *Conn) Tick(t time.Time) {
	now := c.at(t)
	if c.state == Closed || c.state == Listen {
		c.rtoAt, c.delAckAt, c.keepAt, c.closeAt, c.tlpAt, c.corkAt = instant(0), instant(0), instant(0), instant(0), instant(0), instant(0)
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
	if !c.corkAt.IsZero() && !now.Before(c.corkAt) {
		c.corkAt = instant(0)
		c.corkExpired = true
		c.output(now)
	}
	if !c.tlpAt.IsZero() && !now.Before(c.tlpAt) {
		c.tlpAt = instant(0)
		c.tailLossProbe(now)
	}
	if !c.closeAt.IsZero() && !now.Before(c.closeAt) {
		c.closeAt = instant(0)
		switch {
		case c.state == TimeWait:
			c.setState(Closed, "timer 2MSL")
			return
		case c.state == FinWait2 && c.orphan:
			c.setState(Closed, "timer FIN_WAIT_2")
			return
		}
	}
	if !c.delAckAt.IsZero() && !now.Before(c.delAckAt) {
		c.delAckAt = instant(0)
		if c.state.Synchronized() && c.state != TimeWait {
			c.sendAck(now)
		}
	}
	if !c.rtoAt.IsZero() && !now.Before(c.rtoAt) {
		c.rtoAt = instant(0)
		if c.persist {
			c.persistTimeout(now)
		} else {
			c.retransmitTimeout(now)
		}
		if c.state == Closed {
			return
		}
	}
	if !c.keepAt.IsZero() && !now.Before(c.keepAt) {
		c.keepAt = instant(0)
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
		if int(c.backoff) >= c.cfg.SynRetries {
			c.fail(syscall.ETIMEDOUT, "timer SYN retries")
			return
		}
		c.backoff++
		c.countRetrans()
		c.countTimeout()
		c.sendSYN(now, false)
		c.armRTO(now)
		return
	case SynRcvd:
		if int(c.backoff) >= c.cfg.SynAckRetries {
			// Linux drops the request silently; a simultaneous open
			// times out like a connect.
			if c.passive {
				c.setState(Closed, "timer SYN,ACK retries")
			} else {
				c.fail(syscall.ETIMEDOUT, "timer SYN,ACK retries")
			}
			return
		}
		c.backoff++
		c.countRetrans()
		c.countTimeout()
		c.sendSYN(now, true)
		c.armRTO(now)
		return
	}
	if c.flight() == 0 {
		return
	}
	if int(c.backoff) >= c.cfg.Retries2 {
		c.fail(syscall.ETIMEDOUT, "timer retransmission limit")
		return
	}
	c.backoff++
	c.countTimeout()
	c.rtoTSval = c.tsNow(now)
	c.enterLoss(now)
	c.armRTO(now)
}

// persistTimeout sends a zero-window probe and backs off (RFC 9293 3.8.6.1).
func (c *Conn) persistTimeout(now instant) {
	c.persist = false
	if c.snd.wnd > 0 {
		c.output(now)
		return
	}
	if (int(c.backoff) >= c.cfg.Retries2 && c.orphan) || c.userTimedOut(now) {
		c.fail(syscall.ETIMEDOUT, "timer persist limit")
		return
	}
	c.sendProbe(now)
	if c.backoff < 30 {
		c.backoff++
	}
	c.armPersist(now)
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
		c.sendRST(now, c.snd.max, true)
		c.fail(syscall.ETIMEDOUT, "timer keepalive")
		return
	}
	c.keepProbes++
	c.sendProbe(now)
	c.keepAt = now.Add(c.cfg.KeepIntvl)
}
