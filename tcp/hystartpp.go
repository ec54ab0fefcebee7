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
//     CSS, the one it began in counted, end slow start: ssthresh = cwnd, at
//     the first ACK of the sixth;
//   - as RFC 9406 4.2 orders each ACK's steps (grow cwnd, then take the RTT
//     sample, then decide), the ACK whose sample moves into CSS or back
//     out of it grows as in the phase it arrived in; the stack takes the
//     sample before the growth (Linux's order for its HyStart), so the
//     decision remembers that ACK (phaseAck).
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
	// phaseAck is the SND.UNA of the ACK whose RTT sample switched
	// between slow start and CSS, valid while switched: that ACK's own
	// growth is the old phase's.
	phaseAck seq.Value
	switched bool
}

// setCSS enters CSS or leaves it for slow start on the ACK being
// processed, whose growth stays the old phase's (hyppGrowth).
func (h *hystartPP) setCSS(c *Conn, css bool) {
	h.css, h.cssRounds = css, 0
	h.phaseAck, h.switched = c.snd.una, true
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
			h.setCSS(c, false) // spurious: back to slow start
		}
		return
	}
	if h.lastRoundMin < 0 {
		return
	}
	thresh := min(max(h.lastRoundMin/hyppMinRTTDiv, hyppMinRTTThresh), hyppMaxRTTThresh)
	if h.currRoundMin >= h.lastRoundMin+thresh {
		h.setCSS(c, true)
		h.cssBaseline = h.currRoundMin
	}
}

// hyppGrowth is what slow start adds for acked bytes under HyStart++: at
// most L segments, a quarter of that in CSS, the phase the ACK arrived in.
func (cu *cubic) hyppGrowth(c *Conn, acked int) int {
	h := &cu.hpp
	css := h.css
	if h.switched && h.phaseAck == c.snd.una {
		css = !css // this ACK's own sample switched the phase
	}
	h.switched = false
	acked = min(acked, hyppL*c.opt.sndMSS)
	if css {
		acked /= hyppCSSDivisor
	}
	return acked
}
