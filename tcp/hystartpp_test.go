package tcp

import (
	"testing"
	"time"

	"github.com/synstack/synstack/tcp/seq"
)

// hyppRun is a CUBIC connection in its first slow start with HyStart++ on
// and a full window always in flight.
type hyppRun struct {
	c   *Conn
	cu  *cubic
	now instant
}

func newHyppRun(t *testing.T) *hyppRun {
	cu := &cubic{}
	c := &Conn{opt: options{sndMSS: 1000}, cc: congestion{algo: cu, cwnd: 10000}}
	c.cfg = PrepareConfig(Config{HyStartPlusPlus: true})
	c.sc = c.cfg.Scratch
	c.fl = &flightState{use: cwndUse{limited: true}}
	c.snd.nxt = c.snd.una.Add(seq.Size(c.cc.cwnd))
	return &hyppRun{c: c, cu: cu, now: c.at(time.Unix(0, 0))}
}

// round acknowledges the last round's window and takes n ACKs of one
// segment each, every one with an RTT sample of rtt.
func (r *hyppRun) round(n int, rtt time.Duration) {
	c := r.c
	c.snd.una = c.snd.nxt.Add(1)
	c.snd.nxt = c.snd.una.Add(seq.Size(c.cc.cwnd))
	for range n {
		r.now = r.now.Add(time.Millisecond)
		r.cu.onRTT(c, r.now, rtt)
		c.onAckGrow(r.now, 1000, c.flight())
	}
}

// grew runs a round and returns by how much cwnd grew in it.
func (r *hyppRun) grew(n int, rtt time.Duration) int {
	before := r.c.cc.cwnd
	r.round(n, rtt)
	return r.c.cc.cwnd - before
}

// A rise of the round's minimum RTT by more than an eighth (4-16 ms)
// turns slow start into CSS, a quarter of the growth, without setting
// ssthresh; five rounds of it end slow start (RFC 9406 4.2).
func TestHyStartPPConservativeSlowStart(t *testing.T) {
	r := newHyppRun(t)
	r.round(8, 100*time.Millisecond)
	r.round(8, 100*time.Millisecond)
	grew := r.grew(8, 120*time.Millisecond) // 100 + 12.5 ms exceeded after 8 samples
	if !r.cu.hpp.css || r.c.cc.ssthresh != 0 {
		t.Fatalf("css %v, ssthresh %d after the RTT rose; want CSS, ssthresh still infinite", r.cu.hpp.css, r.c.cc.ssthresh)
	}
	if grew != 8*1000 {
		// Eight ACKs of slow start (one segment each): the eighth grows
		// before its sample moves into CSS (RFC 9406 4.2's order).
		t.Fatalf("cwnd grew %d in the round, want %d", grew, 8*1000)
	}
	if grew := r.grew(8, 120*time.Millisecond); grew != 8*250 {
		t.Fatalf("cwnd grew %d in a CSS round, want a quarter of slow start's, %d", grew, 8*250)
	}
	for range 4 {
		r.round(8, 120*time.Millisecond)
	}
	if r.cu.hpp.css || r.c.cc.ssthresh == 0 || r.c.cc.ssthresh > r.c.cc.cwnd {
		t.Fatalf("ssthresh %d, cwnd %d after five CSS rounds; want slow start ended at the window", r.c.cc.ssthresh, r.c.cc.cwnd)
	}
}

// In CSS, a round whose minimum RTT falls below the one that started it
// says the rise was spurious: back to slow start.
func TestHyStartPPSpuriousCSS(t *testing.T) {
	r := newHyppRun(t)
	r.round(8, 100*time.Millisecond)
	r.round(8, 100*time.Millisecond)
	r.round(8, 120*time.Millisecond)
	if !r.cu.hpp.css {
		t.Fatal("no CSS after the RTT rose")
	}
	grew := r.grew(8, 105*time.Millisecond)
	if r.cu.hpp.css || r.c.cc.ssthresh != 0 {
		t.Fatalf("css %v, ssthresh %d after the RTT fell back; want slow start again", r.cu.hpp.css, r.c.cc.ssthresh)
	}
	if grew != 8*250 {
		// The eighth ACK, whose sample ends CSS, still grows as CSS.
		t.Fatalf("cwnd grew %d in the round that left CSS, want %d", grew, 8*250)
	}
	if grew := r.grew(8, 105*time.Millisecond); grew != 8*1000 {
		t.Fatalf("cwnd grew %d in the round after CSS, want slow start's %d", grew, 8*1000)
	}
}

// An ACK whose growth was not taken (the sender was not using its window)
// leaves no phase switch behind for the next ACK: that one grows as the
// phase now is.
func TestHyStartPPSwitchIsPerAck(t *testing.T) {
	r := newHyppRun(t)
	r.round(8, 100*time.Millisecond)
	r.round(8, 100*time.Millisecond)
	r.round(7, 120*time.Millisecond)
	r.now = r.now.Add(time.Millisecond)
	r.cu.onRTT(r.c, r.now, 120*time.Millisecond) // the eighth sample: CSS, with no growth after it
	if !r.cu.hpp.css {
		t.Fatal("no CSS after the eighth sample")
	}
	r.c.snd.una = r.c.snd.una.Add(1000)
	before := r.c.cc.cwnd
	r.c.onAckGrow(r.now, 1000, r.c.flight())
	if grew := r.c.cc.cwnd - before; grew != 250 {
		t.Fatalf("the next ACK grew cwnd %d, want CSS's %d", grew, 250)
	}
}

// An ACK grows slow start by at most eight segments under HyStart++
// (RFC 9406 4.2, L without pacing); without it, by all it acknowledged.
func TestHyStartPPLimitsGrowthPerAck(t *testing.T) {
	for _, on := range []bool{true, false} {
		r := newHyppRun(t)
		r.c.cfg.HyStartPlusPlus = on
		r.c.onAckGrow(r.now, 20000, r.c.flight())
		want := 10000 + 8000
		if !on {
			want = 10000 + 20000
		}
		if r.c.cc.cwnd != want {
			t.Errorf("HyStart++ %v: cwnd %d after an ACK of 20 segments, want %d", on, r.c.cc.cwnd, want)
		}
	}
}
