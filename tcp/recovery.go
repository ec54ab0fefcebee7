package tcp

import (
	"time"

	"github.com/synstack/synstack/tcp/seq"
)

// Loss recovery: the SACK scoreboard and the choice of what to retransmit.
//
// SND.NXT only moves forward: it is the next new octet. What has to be sent
// again is decided here, RFC 6675 style, from three pieces of state:
//
//	sacked         ranges above SND.UNA the peer holds (RFC 2018)
//	loss           none, fast recovery (three duplicate ACKs, or SACKs
//	               showing a hole: RFC 5681 3.2, RFC 6675 5), or the loss
//	               state after a retransmission timeout (RFC 6298 5.4)
//	rtxNext        HighRxt: retransmission resumes here
//
// pipe() estimates the octets in the network; output sends while the
// congestion window exceeds it, holes first, then new data.

type lossState uint8

const (
	lossNone lossState = iota
	lossRecovery
	lossRTO
)

// dupThresh is RFC 5681's and RFC 6675's DupThresh.
const dupThresh = 3

type seqRange struct{ l, r seq.Value }

// updateScoreboard records the SACK blocks of an ACK (RFC 2018). Blocks
// outside SND.UNA..SND.NXT, D-SACKs (RFC 2883) among them, are ignored. It
// reports whether the ACK told something new.
func (c *Conn) updateScoreboard(seg *Segment) bool {
	if !c.sackOK {
		return false
	}
	news := false
	o := &seg.Options
	for i := 0; i < int(o.NumSACK); i++ {
		l, r := seq.Value(o.SACK[i].Left), seq.Value(o.SACK[i].Right)
		if !l.LessThan(r) || l.LessThanEq(c.snd.una) || r.GreaterThan(c.snd.nxt) {
			continue
		}
		if c.addSacked(l, r) {
			news = true
		}
	}
	return news
}

// addSacked merges [l, r) into the scoreboard; it reports whether it grew.
func (c *Conn) addSacked(l, r seq.Value) bool {
	out := c.sacked[:0:0]
	grew := true
	for _, x := range c.sacked {
		switch {
		case x.r.LessThan(l) || r.LessThan(x.l):
			out = append(out, x)
		default:
			if x.l.LessThanEq(l) && r.LessThanEq(x.r) {
				grew = false
			}
			l, r = seq.Min(l, x.l), seq.Max(r, x.r)
		}
	}
	i := 0
	for i < len(out) && out[i].l.LessThan(l) {
		i++
	}
	out = append(out, seqRange{})
	copy(out[i+1:], out[i:])
	out[i] = seqRange{l, r}
	c.sacked = out
	return grew
}

// pruneScoreboard forgets what SND.UNA has passed.
func (c *Conn) pruneScoreboard() {
	i := 0
	for i < len(c.sacked) && c.sacked[i].r.LessThanEq(c.snd.una) {
		i++
	}
	c.sacked = c.sacked[i:]
	if len(c.sacked) > 0 && c.sacked[0].l.LessThan(c.snd.una) {
		c.sacked[0].l = c.snd.una
	}
	if len(c.sacked) == 0 {
		c.sacked = nil
	}
}

// lostEnd is the end of the region considered lost: below it every octet
// not SACKed is lost. In fast recovery that is RFC 6675's IsLost: DupThresh
// SACKed ranges or more than (DupThresh-1)*SMSS SACKed octets above; after a
// timeout, everything sent before it.
func (c *Conn) lostEnd() seq.Value {
	switch c.loss {
	case lossRTO:
		return c.recoveryPoint
	case lossRecovery:
		if !c.sackOK || len(c.sacked) == 0 {
			// NewReno: without SACK only the head is known lost.
			return seq.Min(c.snd.una.Add(seq.Size(c.sndMSS)), c.snd.nxt)
		}
	}
	above := 0
	for i := len(c.sacked) - 1; i >= 0; i-- {
		above += int(c.sacked[i].r.Sub(c.sacked[i].l))
		if above > (dupThresh-1)*c.sndMSS || len(c.sacked)-i >= dupThresh {
			return c.sacked[i].l
		}
	}
	return c.snd.una
}

// pipe is RFC 6675's estimate of the octets in the network: sent, not
// acknowledged, not SACKed, and either not lost or retransmitted since.
func (c *Conn) pipe() int {
	if c.loss == lossRecovery && (!c.sackOK || len(c.sacked) == 0) {
		// NewReno: each duplicate ACK says a segment left the network.
		return max(0, c.flight()-c.dupAcks*c.sndMSS)
	}
	if c.loss == lossNone && len(c.sacked) == 0 {
		return c.flight()
	}
	lost := c.lostEnd()
	if c.loss == lossNone {
		lost = c.snd.una
	}
	total := 0
	pos := c.snd.una
	count := func(a, b seq.Value) {
		// [a, b) is not SACKed: in the network below rtxNext (sent again)
		// and from lostEnd on (not yet known lost).
		if b.LessThanEq(a) {
			return
		}
		n := int(b.Sub(a))
		// The part in [max(a, rtxNext), min(b, lost)) is lost and not resent.
		lo, hi := seq.Max(a, c.rtxNext), seq.Min(b, lost)
		if lo.LessThan(hi) {
			n -= int(hi.Sub(lo))
		}
		total += n
	}
	for _, x := range c.sacked {
		count(pos, x.l)
		pos = x.r
	}
	count(pos, c.snd.nxt)
	return total
}

// nextRetransmit finds the next lost segment to send again: the first
// octet at or after rtxNext that is below lostEnd and not SACKed, up to one
// MSS and not into a SACKed range.
func (c *Conn) nextRetransmit() (s seq.Value, n int, fin bool, ok bool) {
	if c.loss == lossNone {
		return 0, 0, false, false
	}
	lost := seq.Min(c.lostEnd(), c.snd.nxt)
	s = seq.Max(c.snd.una, c.rtxNext)
	for _, x := range c.sacked {
		if s.LessThan(x.l) {
			break
		}
		if s.LessThan(x.r) {
			s = x.r
		}
	}
	if !s.LessThan(lost) {
		return 0, 0, false, false
	}
	end := seq.Min(lost, s.Add(seq.Size(c.currentMSS())))
	for _, x := range c.sacked {
		if s.LessThan(x.l) {
			end = seq.Min(end, x.l)
			break
		}
	}
	n = min(max(0, int(end.Sub(s))), c.queuedFrom(s))
	fin = c.finSent && s.Add(seq.Size(n)) == c.finSeq && c.finSeq.LessThan(lost)
	if n == 0 && !fin {
		return 0, 0, false, false
	}
	return s, n, fin, true
}

// retransmitOne sends the next lost segment, if any; it reports whether it
// sent one. The congestion window is the caller's business.
func (c *Conn) retransmitOne(now time.Time) bool {
	s, n, fin, ok := c.nextRetransmit()
	if !ok {
		return false
	}
	c.sendSegment(now, s, n, fin, c.pushMarked(s, n))
	c.rtxNext = s.Add(seq.Size(n))
	if fin {
		c.rtxNext++
	}
	c.totalRetrans++
	c.rttTiming = false // Karn: never time a retransmission
	return true
}

// enterRecovery starts fast recovery (RFC 5681 3.2 and RFC 6675 5): the
// congestion window falls to ssthresh, and the first lost segment is sent
// again at once.
func (c *Conn) enterRecovery(now time.Time) {
	c.ssthresh = c.cc.ssthreshAfterLoss(c, now)
	c.cwnd = c.ssthresh
	c.loss = lossRecovery
	c.recoveryPoint = c.snd.nxt
	c.rtxNext = c.snd.una
	c.retransmitOne(now)
}

// enterLoss is the timeout's recovery (RFC 6298 5.4-5.6, RFC 5681 3.1):
// SACK information is dropped (RFC 2018 8: the receiver may have reneged),
// everything outstanding is considered lost, and it is resent from SND.UNA
// in slow start from one segment.
func (c *Conn) enterLoss(now time.Time) {
	c.ssthresh = c.cc.ssthreshAfterLoss(c, now)
	c.cwnd = c.sndMSS
	c.sacked = nil
	c.loss = lossRTO
	c.recoveryPoint = c.snd.nxt
	c.rtxNext = c.snd.una
	c.dupAcks = 0
	c.retransmitOne(now)
}

// recoveryOnAck updates loss recovery for an ACK that advanced SND.UNA; it
// reports whether the congestion window may grow (not in fast recovery).
func (c *Conn) recoveryOnAck(now time.Time) bool {
	if c.rtxNext.LessThan(c.snd.una) {
		c.rtxNext = c.snd.una
	}
	switch c.loss {
	case lossRecovery:
		if c.snd.una.GreaterThanEq(c.recoveryPoint) {
			c.loss = lossNone
			c.cwnd = c.ssthresh
			return false
		}
		if !c.sackOK || len(c.sacked) == 0 {
			// NewReno partial ACK (RFC 6582 3.2): the next hole is at
			// SND.UNA; resend it at once.
			c.rtxNext = c.snd.una
			c.retransmitOne(now)
		}
		return false
	case lossRTO:
		if c.snd.una.GreaterThanEq(c.recoveryPoint) {
			c.loss = lossNone
		}
	}
	return true
}
