package tcp

import (
	"time"

	"github.com/synstack/synstack/tcp/seq"
)

// HyStart, CUBIC's way out of slow start before a loss, as Linux's
// tcp_cubic.c with its default hystart_detect = 3 (both detectors): once
// cwnd is 16 segments or more, slow start ends (ssthresh = cwnd) when,
// within one round trip,
//
//   - the ACK train (ACKs no more than 2 ms apart since the round began)
//     has lasted more than half the minimum delay (plus up to 1 ms of
//     pacing allowance): the window already fills the path; or
//   - the smallest of the round's RTT samples, after the first eight, is
//     above the minimum delay by an eighth of it, clamped to 4-16 ms: a
//     queue is building (the delay increase RFC 9406 also uses).
//
// A round ends when an ACK passes what was SND.NXT at its start.

// Linux's HyStart constants.
const (
	hystartLowWindow  = 16 // segments: below it HyStart does nothing
	hystartMinSamples = 8  // RTT samples before the delay detector decides
	hystartAckDelta   = 2 * time.Millisecond
	hystartDelayMin   = 4 * time.Millisecond
	hystartDelayMax   = 16 * time.Millisecond
	hystartSampleFree = time.Second // no samples this soon after a congestion avoidance epoch starts
	gsoMaxSize        = 65536       // Linux's default GSO size, for the ACK-train allowance
)

// hystart is HyStart's state within the cubic state.
type hystart struct {
	roundStart instant       // when the round began
	lastAck    instant       // the last ACK of the current train
	endSeq     seq.Value     // SND.NXT when the round began
	currRTT    time.Duration // the round's smallest RTT sample; -1: none yet
	delayMin   time.Duration // the smallest RTT sample ever (CUBIC's own delay_min)
	samples    uint8
	found      bool // slow start has been ended by HyStart
	started    bool // a round has begun
}

// reset begins a round (Linux's bictcp_hystart_reset).
func (h *hystart) reset(c *Conn, now instant) {
	h.roundStart, h.lastAck = now, now
	h.endSeq = c.snd.nxt
	h.currRTT = -1
	h.samples = 0
	h.started = true
}

// onRTT takes the ACK's RTT sample (Linux's cubictcp_acked and
// hystart_update); rtt < 0: the ACK gave none.
func (cu *cubic) onRTT(c *Conn, now instant, rtt time.Duration) {
	h := &cu.hy
	if rtt < 0 || !cu.epoch.IsZero() && now.Sub(cu.epoch) < hystartSampleFree {
		return
	}
	rtt = max(rtt, time.Microsecond)
	if c.hyppActive() {
		cu.hyppOnRTT(c, rtt)
		return
	}
	if h.delayMin == 0 || rtt < h.delayMin {
		h.delayMin = rtt
	}
	if h.found || !(c.cc.ssthresh == 0 || c.cc.cwnd < c.cc.ssthresh) {
		return
	}
	if !h.started || c.snd.una.GreaterThan(h.endSeq) {
		h.reset(c, now)
	}
	if c.cc.cwnd < hystartLowWindow*c.opt.sndMSS {
		return
	}
	if now.Sub(h.lastAck) <= hystartAckDelta {
		h.lastAck = now
		threshold := h.delayMin
		if rate := c.PacingRate(); rate > 0 {
			threshold += min(time.Millisecond, time.Duration(float64(4*gsoMaxSize)/float64(rate)*float64(time.Second)))
		}
		if !c.rateControlled() {
			threshold /= 2 // not paced (Linux: no fq), ACKs come as fast as sent
		}
		if now.Sub(h.roundStart) > threshold {
			cu.exitSlowStart(c)
			return
		}
	}
	if h.currRTT < 0 || rtt < h.currRTT {
		h.currRTT = rtt
	}
	if h.samples < hystartMinSamples {
		h.samples++
		return
	}
	if h.currRTT > h.delayMin+min(max(h.delayMin/8, hystartDelayMin), hystartDelayMax) {
		cu.exitSlowStart(c)
	}
}

// onSlowStartAck begins a new round when an ACK in slow start passes the
// current one (Linux's bictcp_cong_avoid).
func (cu *cubic) onSlowStartAck(c *Conn, now instant) {
	if !cu.hy.started || c.snd.una.GreaterThan(cu.hy.endSeq) {
		cu.hy.reset(c, now)
	}
}

// exitSlowStart ends slow start where the window is.
func (cu *cubic) exitSlowStart(c *Conn) {
	cu.hy.found = true
	c.cc.ssthresh = c.cc.cwnd
}
