package tcp

import (
	"math"
	"time"

	"github.com/synstack/synstack/tcp/seq"
)

// Receive-buffer autotuning, as Linux's dynamic right-sizing
// (tcp_rcv_space_adjust): once per round trip, if the application read
// more than it ever did in one before, the buffer grows to hold twice that
// plus sixteen segments of slack, so the window we advertise keeps ahead of
// the bandwidth-delay product. A buffer set with SO_RCVBUF is left alone.

// rcvTune is autotuning's state: what the application read in the
// current round trip against the most it read in any (space), and the
// receiver's estimate of the round trip (rtt; without timestamps it times
// a window's worth of data, up to recvSpace.rttSeq).
type rcvTune struct {
	at     instant       // when the current round trip's count began
	rtt    time.Duration // the receiver's RTT estimate
	rttAt  instant       // when the window being timed began
	space  int32         // the most read in one round trip (Linux's rcvq_space.space)
	copied int32         // read in the current round trip
}

// rcvRTTSample folds one receiver-side round-trip sample in: falling at
// once, rising slowly, so the estimate stays near the path's minimum.
func (c *Conn) rcvRTTSample(r time.Duration) {
	if r <= 0 {
		return
	}
	if c.tune.rtt == 0 || r < c.tune.rtt {
		c.tune.rtt = r
		return
	}
	c.tune.rtt += (r - c.tune.rtt) / 8
}

// rcvRTTMeasure takes a receiver-side sample from an arriving data segment:
// from its echo of our timestamp, or, without timestamps, from the time a
// window's worth of data took to arrive (Linux's tcp_rcv_rtt_measure).
func (c *Conn) rcvRTTMeasure(now instant, seg *Segment) {
	if c.cfg.RcvBufLocked {
		return
	}
	if c.opt.tsOK && seg.Options.HasTimestamp && seg.Options.TSEcr != 0 {
		if ms := int32(c.tsNow(now) - seg.Options.TSEcr); ms >= 0 {
			c.rcvRTTSample(time.Duration(max(ms, 1)) * time.Millisecond)
		}
		return
	}
	if c.tune.rttAt.IsZero() {
		c.rcv.rttSeq = c.rcv.nxt.Add(seq.Size(max(c.rcv.wnd, uint32(c.opt.rcvMSS))))
		c.tune.rttAt = now
		return
	}
	if c.rcv.nxt.GreaterThanEq(c.rcv.rttSeq) {
		c.rcvRTTSample(now.Sub(c.tune.rttAt))
		c.tune.rttAt = instant(0)
	}
}

// rcvSpaceAdjust counts n octets read and, once per receiver round trip,
// grows the buffer if the application kept up with more than before.
func (c *Conn) rcvSpaceAdjust(now instant, n int) {
	if c.cfg.RcvBufLocked || c.tune.rtt == 0 {
		return
	}
	if c.cfg.Memory.UnderPressure() {
		// Linux's tcp_rcv_space_adjust grows nothing under pressure either.
		return
	}
	c.tune.copied = int32(min(int(c.tune.copied)+n, math.MaxInt32))
	if c.tune.at.IsZero() {
		c.tune.at = now
		if c.tune.space == 0 {
			c.tune.space = int32(min(c.rcvCapacity(), initialCwndSegs*int(c.opt.rcvMSS)))
		}
		return
	}
	if now.Sub(c.tune.at) < c.tune.rtt {
		return
	}
	copied, space := int(c.tune.copied), int(c.tune.space)
	c.tune.copied, c.tune.at = 0, now
	if copied <= space {
		return
	}
	// Linux: rcvwin = 2 * copied + 16 * advmss, and the buffer holds twice
	// the window (half of it is bookkeeping); grow more when the amount
	// read is itself growing fast.
	rcvwin := 2*copied + 16*int(c.opt.rcvMSS)
	if grow := copied - space; grow > 0 {
		rcvwin += rcvwin * grow / space
	}
	c.tune.space = int32(copied)
	if buf := min(2*rcvwin, c.cfg.RcvBufMax); buf > int(c.rq.bufSize) {
		c.rq.bufSize = int32(buf)
		c.rcvClampGrown()
	}
}
