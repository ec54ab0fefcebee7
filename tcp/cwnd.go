package tcp

import "github.com/synstack/synstack/tcp/seq"

// Congestion window validation, as Linux (RFC 7661's aim, RFC 2861's
// method): the window grows only while the sender uses it, shrinks while
// the application leaves it unused for an RTO, and restarts from the
// initial window after an idle period longer than an RTO (Linux's
// tcp_slow_start_after_idle, on unless Config.NoSlowStartAfterIdle).
//
// What a flight used (cwndUse) lives in the flight state: Linux's
// max_packets_out and cwnd_usage_seq start again with each window, and a
// flight starts with one. When data was last sent outlasts flights
// (congestion.lastSend).

// cwndUse is how the current window is used (Linux's is_cwnd_limited,
// max_packets_out, cwnd_usage_seq, snd_cwnd_used, snd_cwnd_stamp).
type cwndUse struct {
	usageSeq seq.Value // SND.NXT when the window's use was last taken
	maxOut   int32     // the most in flight in this window, bytes
	used     int32     // the most in flight while not cwnd-limited, bytes
	stamp    instant   // when the window was last full, or last reduced for want of use
	limited  bool      // the window was full in this window
}

// msClock is now in milliseconds, never 0: the clock of congestion.lastSend.
func msClock(now instant) uint32 { return uint32(int64(now)/1e6) | 1 }

// cwndLimited reports whether the congestion window, not the application
// or the peer's window, held the sender back in the current window
// (Linux's tcp_is_cwnd_limited); in slow start, whether cwnd is below
// twice the most that was in flight, so that slow start doubles what
// was sent.
func (c *Conn) cwndLimited(slowStart bool) bool {
	if c.fl == nil {
		return false
	}
	u := &c.fl.use
	if u.limited {
		return true
	}
	return slowStart && c.cc.cwnd < 2*int(u.maxOut)
}

// cwndValidate takes the window's use after a send (Linux's
// tcp_cwnd_validate): limited says the window was full. While it is not,
// an RTO of it unused halves the unused part (tcp_cwnd_application_limited).
func (c *Conn) cwndValidate(now instant, limited bool) {
	if c.fl == nil {
		return
	}
	u := &c.fl.use
	inflight := int32(c.flight())
	if !c.snd.una.LessThan(u.usageSeq) || limited || (!u.limited && inflight > u.maxOut) {
		u.limited = limited
		u.maxOut = inflight
		u.usageSeq = c.snd.nxt
	}
	if u.stamp.IsZero() || c.cwndLimited(c.cc.ssthresh == 0 || c.cc.cwnd < c.cc.ssthresh) {
		u.used = 0
		u.stamp = now
		return
	}
	u.used = max(u.used, inflight)
	if !c.cfg.NoSlowStartAfterIdle && now.Sub(u.stamp) >= c.rtx.rto && !c.rateControlled() {
		c.cwndApplicationLimited(now)
	}
}

// cwndApplicationLimited brings cwnd halfway down to what was used (never
// below the initial window) after an RTO in which the application, or the
// peer's window, left it unused (RFC 2861, Linux's
// tcp_cwnd_application_limited); not during a recovery, nor while the
// application waits for room in the send buffer.
func (c *Conn) cwndApplicationLimited(now instant) {
	u := &c.fl.use
	if c.cc.loss == lossNone && c.sq.n < int(c.sq.bufSize) {
		used := max(int(u.used), initialCwndSegs*c.opt.sndMSS)
		if used < c.cc.cwnd {
			c.cc.ssthresh = c.ssthreshBeforeReduction()
			c.cc.cwnd = (c.cc.cwnd + used) / 2
		}
		u.used = 0
	}
	u.stamp = now
}

// ssthreshBeforeReduction is ssthresh when cwnd is about to shrink for a
// reason other than loss: ssthresh stays at least three quarters of the
// window it had (Linux's tcp_current_ssthresh), an infinite one stays.
func (c *Conn) ssthreshBeforeReduction() int {
	if p := c.currentSsthresh(); p != ssthreshInfinite {
		return int(p)
	}
	return 0
}

// cwndRestartAfterIdle restarts the window before new data is sent after
// nothing was in flight for more than an RTO (RFC 5681 4.1, as Linux's
// tcp_cwnd_restart): cwnd halves for each RTO of idleness, down to the
// initial window, and ssthresh keeps three quarters of the old window.
// Algorithms that set cwnd themselves (BBR) are left alone, as on Linux.
func (c *Conn) cwndRestartAfterIdle(now instant) {
	if c.cfg.NoSlowStartAfterIdle || c.cc.lastSend == 0 || c.flight() > 0 || c.rateControlled() {
		return
	}
	rto := c.rtx.rto.Milliseconds()
	idle := int64(msClock(now) - c.cc.lastSend)
	if rto <= 0 || idle <= rto {
		return
	}
	mss := max(c.opt.sndMSS, 1)
	restart := min(initialCwndSegs*mss, c.cc.cwnd)
	c.cc.ssthresh = c.ssthreshBeforeReduction()
	cwnd := c.cc.cwnd / mss
	for idle -= rto; idle > 0 && cwnd*mss > restart; idle -= rto {
		cwnd >>= 1
	}
	c.cc.cwnd = max(cwnd*mss, restart)
	if c.fl != nil {
		c.fl.use.used, c.fl.use.stamp = 0, now
	}
}
