package tcp

import (
	"time"

	"github.com/synstack/synstack/tcp/seq"
)

// HyStart++ (RFC 9406), CUBIC's alternative to Linux's HyStart when
// Config.HyStartPlusPlus is set (Linux has no HyStart++). In the first
// slow start only (ssthresh still infinite):
//
//   - each ACK grows cwnd by at most L = 8 segments (no pacing);
//   - a round ends when an ACK passes what was SND.NXT at its start; once a
//     round has eight RTT samples, if its minimum exceeds the last round's
//     by an eighth of that (clamped to 4-16 ms), slow start gives way to
//     Conservative Slow Start (CSS): growth divided by 4;
//   - in CSS, a round whose minimum falls back below the one that started
//     it returns to slow start (the increase was spurious); five rounds of
//     CSS end slow start: ssthresh = cwnd.
//
// A loss ends it all, as the algorithm's own response sets ssthresh.

// RFC 9406 4.3's constants.
const (
	hyppMinRTTThresh = 4 * time.Millisecond
	hyppMaxRTTThresh = 16 * time.Millisecond
	hyppMinRTTDiv    = 8
	hyppNRTTSample   = 8
	hyppCSSDivisor   = 4
	hyppCSSRounds    = 5
	hyppL            = 8 // segments per ACK, without pacing
)

// hystartPP is HyStart++'s state within the cubic state.
type hystartPP struct {
	windowEnd    seq.Value
	lastRoundMin time.Duration // -1: none
	currRoundMin time.Duration // -1: none
	cssBaseline  time.Duration
	samples      int
	cssRounds    int
	started      bool
	css          bool
}

// hyppActive reports whether HyStart++ governs this slow start: it is on
// and this is the first slow start.
func (c *Conn) hyppActive() bool {
	return c.cfg.HyStartPlusPlus && c.cc.ssthresh == 0
}

// hyppRound starts a new round if the ACK passed the current one's end
// (RFC 9406 4.2), counting CSS rounds; the fifth ends slow start.
func (cu *cubic) hyppRound(c *Conn) {
	h := &cu.hpp
	if h.started && !c.snd.una.GreaterThan(h.windowEnd) {
		return
	}
	if !h.started {
		h.lastRoundMin, h.currRoundMin = -1, -1
	}
	h.started = true
	h.windowEnd = c.snd.nxt
	h.lastRoundMin, h.currRoundMin = h.currRoundMin, -1
	h.samples = 0
	if h.css {
		h.cssRounds++
		if h.cssRounds >= hyppCSSRounds {
			h.css = false
			c.cc.ssthresh = c.cc.cwnd // into congestion avoidance
		}
	}
}

// hyppOnRTT takes an RTT sample: the round's minimum, and the decisions
// to enter CSS or leave it (RFC 9406 4.2).
func (cu *cubic) hyppOnRTT(c *Conn, rtt time.Duration) {
	h := &cu.hpp
	cu.hyppRound(c)
	if !c.hyppActive() {
		return
	}
	if h.currRoundMin < 0 || rtt < h.currRoundMin {
		h.currRoundMin = rtt
	}
	h.samples++
	if h.samples < hyppNRTTSample || h.currRoundMin < 0 {
		return
	}
	if h.css {
		if h.currRoundMin < h.cssBaseline {
			h.css, h.cssRounds = false, 0 // spurious: back to slow start
		}
		return
	}
	if h.lastRoundMin < 0 {
		return
	}
	thresh := min(max(h.lastRoundMin/hyppMinRTTDiv, hyppMinRTTThresh), hyppMaxRTTThresh)
	if h.currRoundMin >= h.lastRoundMin+thresh {
		h.css, h.cssRounds, h.cssBaseline = true, 0, h.currRoundMin
	}
}

// hyppGrowth is what slow start adds for acked bytes under HyStart++: at
// most L segments, a quarter of that in CSS.
func (cu *cubic) hyppGrowth(c *Conn, acked int) int {
	acked = min(acked, hyppL*c.opt.sndMSS)
	if cu.hpp.css {
		acked /= hyppCSSDivisor
	}
	return acked
}
