package tcp

import (
	"github.com/synstack/synstack/tcp/seq"
	"github.com/synstack/synstack/wire"
)

// Loss recovery: the SACK scoreboard and the choice of what to retransmit.
//
// SND.NXT only moves forward: it is the next new octet. What has to be sent
// again is decided here from the transmit records (txrec.go), each marked
// SACKed, lost or retransmitted, and three pieces of state:
//
//	sacked         ranges above SND.UNA the peer holds (RFC 2018)
//	loss           none, fast recovery (losses found by RACK, RFC 8985,
//	               or three duplicate ACKs without SACK: RFC 5681 3.2,
//	               RFC 6582), or the loss state after a retransmission
//	               timeout (RFC 6298 5.4)
//	recoveryPoint  SND.NXT when recovery began
//
// pipe() estimates the octets in the network; output sends while the
// congestion window exceeds it, lost segments first, then new data.

// congestion is congestion control (RFC 5681's cwnd and ssthresh, the
// algorithm's own state behind algo) and loss recovery (above), with what
// they learn from RACK (rack.go), the delivery rate (rate.go) and pacing
// (pacing.go) that outlasts a flight.
type congestion struct {
	algo     congestionControl // cubic, reno or bbr (cc.go)
	cwnd     int               // bytes
	ssthresh int               // bytes; 0 means not yet set (infinite)
	sacked   []seqRange        // SACKed ranges above SND.UNA, sorted
	reo      reoState
	rate     rateState
	paceNext instant // earliest start of the next burst (Linux's tcp_wstamp_ns)

	lastSend      uint32    // when data was last sent, msClock (Linux's lsndtime); 0: never
	dupAcks       int32     // duplicate ACKs in a row (RFC 5681 3.2)
	recoveryPoint seq.Value // SND.NXT when recovery began (RFC 6675 RecoveryPoint)

	loss lossState
	// rateAppLimited says whether rate.lastRate came from an
	// application-limited sample.
	rateAppLimited bool
}

type lossState uint8

const (
	lossNone lossState = iota
	lossRecovery
	lossRTO
	lossCWR // a window reduction for a congestion echo (ECN), no loss
)

// dupThresh is RFC 5681's and RFC 6675's DupThresh.
const dupThresh = 3

type seqRange struct{ l, r seq.Value }

// updateScoreboard records the SACK blocks of an ACK (RFC 2018) and marks
// the records they cover. A D-SACK (RFC 2883) is noted for RACK; blocks
// outside SND.UNA..SND.NXT are otherwise ignored. It reports whether the
// ACK told something new.
func (c *Conn) updateScoreboard(now instant, seg *Segment) bool {
	if !c.opt.sackOK {
		return false
	}
	news := false
	o := &seg.Options
	c.sc.rs.reordered = false
	defer c.countReordering()
	for i := 0; i < int(o.NumSACK); i++ {
		l, r := seq.Value(o.SACK[i].Left), seq.Value(o.SACK[i].Right)
		if i == 0 && isDSACK(seg) {
			c.noteDSACK()
			continue
		}
		if !l.LessThan(r) || l.LessThanEq(c.snd.una) || r.GreaterThan(c.snd.nxt) {
			continue
		}
		var ok bool
		if l, r, ok = c.sackWholeSegments(l, r); !ok {
			continue
		}
		if c.addSacked(l, r) {
			news = true
			c.markSackedRecords(now, l, r)
		}
	}
	return news
}

// isDSACK reports whether seg's first SACK block is a D-SACK (RFC 2883):
// below SEG.ACK, or inside the second block (Linux's tcp_check_dsack).
func isDSACK(seg *Segment) bool {
	o := &seg.Options
	if o.NumSACK == 0 {
		return false
	}
	l, r := seq.Value(o.SACK[0].Left), seq.Value(o.SACK[0].Right)
	if !l.LessThan(r) {
		return false
	}
	if l.LessThan(seg.ACK) {
		return true
	}
	if o.NumSACK > 1 {
		l2, r2 := seq.Value(o.SACK[1].Left), seq.Value(o.SACK[1].Right)
		return l2.LessThanEq(l) && r.LessThanEq(r2)
	}
	return false
}

// addSacked merges [l, r) into the scoreboard, in place (no allocation
// once the scoreboard has grown); it reports whether it grew.
func (c *Conn) addSacked(l, r seq.Value) bool {
	sk := c.cc.sacked
	i := 0
	for i < len(sk) && sk[i].r.LessThan(l) {
		i++
	}
	j := i // sk[i:j] overlap or touch [l, r)
	for j < len(sk) && !r.LessThan(sk[j].l) {
		j++
	}
	if j-i == 1 && sk[i].l.LessThanEq(l) && r.LessThanEq(sk[i].r) {
		return false
	}
	if j > i {
		l, r = seq.Min(l, sk[i].l), seq.Max(r, sk[j-1].r)
		sk[i] = seqRange{l, r}
		sk = append(sk[:i+1], sk[j:]...)
	} else {
		sk = append(sk, seqRange{})
		copy(sk[i+1:], sk[i:])
		sk[i] = seqRange{l, r}
	}
	c.cc.sacked = sk
	return true
}

// pruneScoreboard forgets what SND.UNA has passed, keeping the memory.
func (c *Conn) pruneScoreboard() {
	i := 0
	for i < len(c.cc.sacked) && c.cc.sacked[i].r.LessThanEq(c.snd.una) {
		i++
	}
	c.cc.sacked = c.cc.sacked[:copy(c.cc.sacked, c.cc.sacked[i:])]
	if len(c.cc.sacked) > 0 && c.cc.sacked[0].l.LessThan(c.snd.una) {
		c.cc.sacked[0].l = c.snd.una
	}
}

// pipe is RFC 6675's estimate of the octets in the network: sent, not
// acknowledged, not SACKed, and not lost (or lost and sent again). Without
// SACK it is NewReno's: each duplicate ACK says a segment left the
// network, as Linux counts them in sacked_out. That is also what makes
// limited transmit (RFC 3042): the first two duplicate ACKs each let a new
// segment go, the congestion window unchanged.
func (c *Conn) pipe() int {
	if !c.opt.sackOK && c.cc.dupAcks > 0 && c.cc.loss != lossRTO {
		return max(0, c.flight()-int(c.cc.dupAcks)*c.opt.sndMSS)
	}
	if c.fl == nil || c.cc.loss == lossNone && len(c.cc.sacked) == 0 {
		return c.flight()
	}
	return c.fl.txq.bytes - c.fl.txq.sacked - c.fl.txq.lost
}

// lostPending reports whether a segment marked lost waits to be sent again.
func (c *Conn) lostPending() bool {
	if c.cc.loss == lossNone {
		return false
	}
	_, ok := c.nextLost()
	return ok
}

// nextLost returns the index of the first record marked lost and not yet
// sent again.
func (c *Conn) nextLost() (int, bool) {
	if c.fl == nil || c.fl.txq.lost == 0 {
		return 0, false
	}
	for i := 0; i < c.fl.txq.len(); i++ {
		if r := c.fl.txq.at(i); r.flags&(recLost|recSacked) == recLost {
			return i, true
		}
	}
	return 0, false
}

// markHeadLost marks the oldest unacknowledged segment lost: what three
// duplicate ACKs, or a partial ACK, say without SACK (RFC 6582).
func (c *Conn) markHeadLost() {
	if c.recs() > 0 {
		r := c.fl.txq.at(0)
		if !r.has(recSacked | recLost) {
			c.fl.txq.setFlags(r, r.flags&^recRetrans|recLost)
			c.sc.rs.losses += r.size()
		}
	}
}

// retransmitOne sends the next lost segment again, if any: the parts of
// its record the peer has not SACKed, each within the current MSS; gsoEnd
// puts PSH on the last, which ends a GSO packet of several segments
// (rtxPacketRecs). It reports whether it sent one. The congestion window
// is the caller's business.
func (c *Conn) retransmitOne(now instant, gsoEnd bool) bool {
	i, ok := c.nextLost()
	if !ok {
		return false
	}
	r := c.fl.txq.at(i)
	dataEnd := r.end
	fin := c.sq.finSent && r.end == c.sq.finSeq.Add(1)
	if fin {
		dataEnd = c.sq.finSeq
	}
	mss := c.currentMSS()
	s := r.start
	for {
		// Skip what the peer holds.
		for _, x := range c.cc.sacked {
			if x.l.LessThanEq(s) && s.LessThan(x.r) {
				s = x.r
			}
		}
		if !s.LessThan(dataEnd) {
			break
		}
		end := seq.Min(dataEnd, s.Add(seq.Size(mss)))
		for _, x := range c.cc.sacked {
			if s.LessThan(x.l) && x.l.LessThan(end) {
				end = x.l
			}
		}
		n := min(int(end.Sub(s)), c.queuedFrom(s))
		if n <= 0 {
			break
		}
		last := fin && s.Add(seq.Size(n)) == dataEnd
		c.sendSegment(now, s, n, last, c.pushMarked(s, n) || gsoEnd && s.Add(seq.Size(n)) == dataEnd)
		c.countRetrans(1, n)
		s = s.Add(seq.Size(n))
		if last {
			fin = false
		}
	}
	if fin && !c.isSacked(c.sq.finSeq, c.sq.finSeq.Add(1)) {
		c.sendSegment(now, c.sq.finSeq, 0, true, false)
		c.countRetrans(1, 0)
	}
	c.recordRetransmit(now, i)
	c.rtx.rttTiming = false // Karn: never time a retransmission
	return true
}

// retransmitSize is how much retransmitOne would send now, or -1.
func (c *Conn) retransmitSize() int {
	i, ok := c.nextLost()
	if !ok {
		return -1
	}
	return c.fl.txq.at(i).size()
}

// rateControlled reports whether the congestion control sets cwnd itself
// on every ACK (BBR): loss recovery then leaves cwnd alone.
func (c *Conn) rateControlled() bool {
	_, ok := c.cc.algo.(rateControl)
	return ok
}

// enterRecovery starts fast recovery (RFC 5681 3.2 and RFC 6675 5):
// ssthresh falls, and Proportional Rate Reduction (prrOnAck) brings the
// congestion window down to it over the round trip that follows, the
// first lost segment going out on the ACK that started it (Linux's
// tcp_enter_recovery and tcp_init_cwnd_reduction).
func (c *Conn) enterRecovery(now instant) {
	if c.cc.loss == lossCWR {
		// Already reducing (ECN): the reduction goes on, with nothing
		// an undo could restore (Linux's tcp_enter_recovery).
		c.initUndo(0)
	} else {
		prior := c.currentSsthresh()
		if c.sc.rs.ece {
			prior = 0 // congestion was signalled: no undo
		}
		c.initUndo(prior)
		c.initCwndReduction(now)
	}
	c.cc.loss = lossRecovery
	if !c.opt.sackOK || len(c.cc.sacked) == 0 {
		c.markHeadLost()
	}
}

// initCwndReduction starts a reduction of the congestion window: ssthresh
// from the algorithm, and PRR's counters from zero (Linux's
// tcp_init_cwnd_reduction). c.fl is held: data is in flight.
func (c *Conn) initCwndReduction(now instant) {
	c.cc.recoveryPoint = c.snd.nxt
	c.rtx.tlp = tlpNone // the reduction covers the probe's loss too
	ep := &c.borrowFlight().ep
	ep.priorCwnd = int32(c.cc.cwnd)
	ep.prrDelivered, ep.prrOut = 0, 0
	c.cc.ssthresh = c.cc.algo.ssthreshAfterLoss(c, now)
	c.ecnQueueCWR()
}

// ecnQueueCWR has the next new data carry CWR, telling an ECN peer that
// the window was reduced (Linux's tcp_ecn_queue_cwr).
func (c *Conn) ecnQueueCWR() {
	if c.opt.ecn&ecnOK != 0 {
		c.opt.ecn |= ecnQueueCWR
	}
}

// inCwndReduction reports whether PRR sets the congestion window (Linux's
// tcp_in_cwnd_reduction): in fast recovery, unless the algorithm sets it
// itself.
func (c *Conn) inCwndReduction() bool {
	return (c.cc.loss == lossRecovery || c.cc.loss == lossCWR) && !c.rateControlled() && c.fl != nil && c.fl.ep.priorCwnd > 0
}

// prrOnAck is Proportional Rate Reduction with slow start reduction bound
// (RFC 6937, PRR-SSRB, as Linux's tcp_cwnd_reduction), in segments as
// Linux counts: while the pipe is above ssthresh, send in proportion
// ssthresh/priorCwnd of what is delivered; below it, grow back towards
// ssthresh no faster than slow start, by what was delivered (one more on
// an ACK that advanced SND.UNA and found no new loss). The congestion
// window becomes the pipe plus what may be sent, at least one segment
// while nothing has been sent in the recovery: the fast retransmit.
func (c *Conn) prrOnAck(delivered int, newlyLost, unaAdvanced bool) {
	ep := &c.fl.ep
	if delivered <= 0 {
		return
	}
	mss := max(c.opt.sndMSS, 1)
	pipe := c.pipe()
	inflight := (pipe + mss - 1) / mss
	ssthresh := c.cc.ssthresh / mss
	if c.cc.ssthresh == 0 {
		ssthresh = ssthreshInfinite // an undo restored the initial one
	}
	prior := max(int(ep.priorCwnd)/mss, 1)
	ep.prrDelivered += int32(delivered)
	var sndcnt int
	if delta := ssthresh - inflight; delta < 0 {
		sndcnt = (ssthresh*int(ep.prrDelivered)+prior-1)/prior - int(ep.prrOut)
	} else {
		sndcnt = max(int(ep.prrDelivered-ep.prrOut), delivered)
		if unaAdvanced && !newlyLost {
			sndcnt++
		}
		sndcnt = min(delta, sndcnt)
	}
	if ep.prrOut == 0 {
		sndcnt = max(sndcnt, 1)
	}
	// Never below a segment: a window of nothing with nothing in flight
	// would stall the connection.
	c.cc.cwnd = max(pipe+max(sndcnt, 0)*mss, mss)
}

// prrSent counts a segment of n octets sent during a reduction (prr_out).
func (c *Conn) prrSent(n int) {
	if c.inCwndReduction() {
		mss := max(c.opt.sndMSS, 1)
		c.fl.ep.prrOut += int32(max((n+mss-1)/mss, 1))
	}
}

// deliveredSegs is how many segments the ACK being processed delivered,
// as Linux's acked_sacked: without SACK a duplicate ACK stands for one,
// and a cumulative ACK counts only the segments the duplicates before it
// had not (renoAcked).
func (c *Conn) deliveredSegs() int {
	rs := &c.sc.rs
	mss := max(c.opt.sndMSS, 1)
	n := (rs.ackedSacked - rs.renoCounted + mss - 1) / mss
	if rs.dupAck && !c.opt.sackOK {
		n++
	}
	return n
}

// enterLoss is the timeout's recovery (RFC 6298 5.4-5.6, RFC 5681 3.1):
// SACK information is dropped (RFC 2018 8: the receiver may have reneged),
// everything outstanding is considered lost, and it is resent from SND.UNA
// in slow start from one segment.
func (c *Conn) enterLoss(now instant) {
	// ssthresh falls once per episode: not again on a timeout during a
	// recovery, or a timeout after a timeout of the same flight (Linux's
	// tcp_enter_loss), so that undo can still restore what was before.
	if c.cc.loss == lossNone || c.snd.una.GreaterThanEq(c.cc.recoveryPoint) {
		c.initUndo(c.currentSsthresh())
		c.fl.ep.priorCwnd = int32(c.cc.cwnd)
		c.cc.ssthresh = c.cc.algo.ssthreshAfterLoss(c, now)
	}
	c.lossStarts()
	c.ecnQueueCWR()
	c.rtx.tlp = tlpNone // a probe's episode ends with the timeout (tcp_enter_loss)
	c.cc.cwnd = c.opt.sndMSS
	c.cc.sacked = nil
	for i := 0; i < c.recs(); i++ {
		r := c.fl.txq.at(i)
		c.fl.txq.setFlags(r, r.flags&^(recSacked|recRetrans)|recLost)
	}
	c.cc.loss = lossRTO
	c.cc.recoveryPoint = c.snd.nxt
	c.cc.dupAcks = 0
	if c.fl != nil {
		c.fl.rack.at = instant(0)
	}
	c.retransmitOne(now, false)
}

// lossStarts tells the congestion control that the loss state begins
// (Linux's set_state hook on TCP_CA_Loss): CUBIC starts afresh, HyStart
// included (cubictcp_state), and BBR ends its round (bbr_set_state).
func (c *Conn) lossStarts() {
	c.cc.algo.reset()
	if rc, ok := c.cc.algo.(rateControl); ok {
		rc.onLossTimeout(c)
	}
}

// enterLossResend enters the loss state to send again data lost for
// a reason other than congestion, the SYN's data a Fast Open SYN,ACK did
// not acknowledge (Linux's tcp_non_congestion_loss_retransmit): the
// congestion window stays, ssthresh is at least three quarters of it
// (infinite stays infinite), nothing can be undone, and the state ends as
// a timeout's does, once end (the highest octet sent) is acknowledged, or
// turns into fast recovery when a retransmission is found lost
// (lossDetect). Already in the loss state, nothing changes.
func (c *Conn) enterLossResend(end seq.Value) {
	if c.cc.loss == lossRTO {
		return
	}
	if c.cc.ssthresh != 0 {
		c.cc.ssthresh = int(c.currentSsthresh())
	}
	if c.fl != nil {
		c.fl.ep.undoOn = false
		c.fl.ep.priorSsthresh = 0
	}
	c.lossStarts()
	c.cc.loss = lossRTO
	c.cc.recoveryPoint = end
}

// recoveryOnAck updates loss recovery for an ACK that advanced SND.UNA; it
// reports whether the congestion window may grow (not in fast recovery).
func (c *Conn) recoveryOnAck(now instant) bool {
	switch c.cc.loss {
	case lossRecovery:
		if !c.opt.sackOK && c.snd.una == c.cc.recoveryPoint {
			// Without SACK, recovery lasts until something above the
			// recovery point is acknowledged, so that duplicate ACKs
			// for data the retransmissions duplicated start no new
			// fast retransmit (RFC 6582 4.1; Linux's
			// tcp_try_undo_recovery holds the state for Reno).
			c.tryUndoRecovery(lossRecovery)
			return false
		}
		if c.snd.una.GreaterThanEq(c.cc.recoveryPoint) {
			c.cc.loss = lossNone
			c.cc.dupAcks = 0
			if !c.tryUndoRecovery(lossRecovery) {
				c.endCwndReduction()
				c.rackRecoveryEnded()
			}
			// Open again: this ACK may grow the window it set, as
			// Linux's tcp_cong_control after tcp_fastretrans_alert.
			return true
		}
		if c.tryUndoPartial() {
			return false
		}
		if !c.opt.sackOK {
			// NewReno partial ACK (RFC 6582 3.2): the next hole is at
			// SND.UNA; it goes as PRR allows, which is at once.
			c.markHeadLost()
		}
		return false
	case lossCWR:
		// The reduction ends once something sent after it began is
		// acknowledged (Linux holds CWR until the CWR flag can have
		// reached the peer), or nothing is left in flight.
		if c.snd.una.GreaterThan(c.cc.recoveryPoint) || c.flight() == 0 {
			c.cc.loss = lossNone
			if !c.rateControlled() && c.cc.ssthresh != 0 {
				c.cc.cwnd = c.cc.ssthresh
			}
			return true
		}
		return false
	case lossRTO:
		if c.tryUndoLoss() {
			return true
		}
		if c.snd.una.GreaterThanEq(c.cc.recoveryPoint) {
			c.cc.loss = lossNone
			c.cc.dupAcks = 0
			if !c.tryUndoRecovery(lossRTO) {
				c.rackRecoveryEnded()
			}
		}
	}
	return true
}

// putSACKBlocks writes up to limit SACK blocks for our out-of-order data
// (RFC 2018 4): first the block holding the segment that arrived last,
// then the others from the highest down, so that with more holes than
// blocks the sender still hears of each new block as it grows (its
// scoreboard keeps what earlier ACKs said), as Linux's receiver does.
func (c *Conn) putSACKBlocks(o *wire.TCPOptions, limit int) {
	var blocks [maxOOORanges + 1]seqRange
	n := c.oooBlocks(&blocks)
	first := -1
	for i, b := range blocks[:n] {
		if b.l.LessThanEq(c.ack.sackRecent) && c.ack.sackRecent.LessThan(b.r) {
			first = i
			break
		}
	}
	put := func(b seqRange) {
		if int(o.NumSACK) < limit {
			o.SACK[o.NumSACK] = wire.SACKBlock{Left: uint32(b.l), Right: uint32(b.r)}
			o.NumSACK++
		}
	}
	if first >= 0 {
		put(blocks[first])
	}
	for i := n - 1; i >= 0; i-- {
		if i != first {
			put(blocks[i])
		}
	}
}

// renoAcked settles the duplicate-ACK count when an ACK advances SND.UNA
// by acked octets. With SACK the count starts again. Without it, each
// duplicate ACK stood for a segment the peer holds, and Linux keeps them
// so (tcp_remove_reno_sacks): the first segment acknowledged fills the
// hole, the others are ones the duplicates already counted, and only what
// they did not count is delivered anew, for the congestion window to grow
// by.
func (c *Conn) renoAcked(acked int) {
	if c.opt.sackOK || c.cc.dupAcks == 0 {
		c.cc.dupAcks = 0
		return
	}
	mss := max(c.opt.sndMSS, 1)
	segs := int32((acked + mss - 1) / mss)
	counted := min(c.cc.dupAcks, max(segs-1, 0))
	c.sc.rs.renoCounted = int(counted) * mss
	c.cc.dupAcks -= counted
}

// episode is what a reduction of the congestion window keeps while it
// lasts: PRR's counters (RFC 6937), in segments as Linux keeps them. It
// lives in the flight state, which a recovery holds.
type episode struct {
	priorCwnd    int32 // cwnd when the reduction began, bytes (RecoverFS)
	prrDelivered int32 // segments delivered since (prr_delivered)
	prrOut       int32 // segments sent since (prr_out)

	// Undo (undo.go): SND.UNA when the episode began (undoMarker, valid
	// while undoOn), ssthresh before it (0: none to restore), the
	// retransmissions no D-SACK has yet shown needless (-1: none sent),
	// and the timestamp of the first retransmission (valid when stamped).
	undoMarker    seq.Value
	priorSsthresh int32
	undoRetrans   int32
	retransStamp  uint32
	undoHold      instant // until when a D-SACK may still come for an undo
	undoOn        bool
	stamped       bool
}
