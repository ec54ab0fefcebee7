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

// rcvRTTSample folds one receiver-side round-trip sample in: falling at
// once, rising slowly, so the estimate stays near the path's minimum.
func (c *Conn) rcvRTTSample(r time.Duration) {
	if r <= 0 {
		return
	}
	if c.rcvRTT == 0 || r < c.rcvRTT {
		c.rcvRTT = r
		return
	}
	c.rcvRTT += (r - c.rcvRTT) / 8
}

// rcvRTTMeasure takes a receiver-side sample from an arriving data segment:
// from its echo of our timestamp, or, without timestamps, from the time a
// window's worth of data took to arrive (Linux's tcp_rcv_rtt_measure).
func (c *Conn) rcvRTTMeasure(now instant, seg *Segment) {
	if c.cfg.RcvBufLocked {
		return
	}
	if c.tsOK && seg.Options.HasTimestamp && seg.Options.TSEcr != 0 {
		if ms := int32(c.tsNow(now) - seg.Options.TSEcr); ms >= 0 {
			c.rcvRTTSample(time.Duration(max(ms, 1)) * time.Millisecond)
		}
		return
	}
	if c.rcvRTTAt.IsZero() {
		c.rcvRTTSeq = c.rcv.nxt.Add(seq.Size(max(c.rcv.wnd, uint32(c.rcvMSS))))
		c.rcvRTTAt = now
		return
	}
	if c.rcv.nxt.GreaterThanEq(c.rcvRTTSeq) {
		c.rcvRTTSample(now.Sub(c.rcvRTTAt))
		c.rcvRTTAt = instant(0)
	}
}

// rcvSpaceAdjust counts n octets read and, once per receiver round trip,
// grows the buffer if the application kept up with more than before.
func (c *Conn) rcvSpaceAdjust(now instant, n int) {
	if c.cfg.RcvBufLocked || c.rcvRTT == 0 {
		return
	}
	if c.cfg.Memory.UnderPressure() {
		// Linux's tcp_rcv_space_adjust grows nothing under pressure either.
		return
	}
	c.rcvqCopied = int32(min(int(c.rcvqCopied)+n, math.MaxInt32))
	if c.rcvqAt.IsZero() {
		c.rcvqAt = now
		if c.rcvqSpace == 0 {
			c.rcvqSpace = int32(min(c.rcvCapacity(), initialCwndSegs*int(c.rcvMSS)))
		}
		return
	}
	if now.Sub(c.rcvqAt) < c.rcvRTT {
		return
	}
	copied, space := int(c.rcvqCopied), int(c.rcvqSpace)
	c.rcvqCopied, c.rcvqAt = 0, now
	if copied <= space {
		return
	}
	// Linux: rcvwin = 2 * copied + 16 * advmss, and the buffer holds twice
	// the window (half of it is bookkeeping); grow more when the amount
	// read is itself growing fast.
	rcvwin := 2*copied + 16*int(c.rcvMSS)
	if grow := copied - space; grow > 0 {
		rcvwin += rcvwin * grow / space
	}
	c.rcvqSpace = int32(copied)
	if buf := min(2*rcvwin, c.cfg.RcvBufMax); buf > int(c.rcvBuf) {
		c.rcvBuf = int32(buf)
	}
}
