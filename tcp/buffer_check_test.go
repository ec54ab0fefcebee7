package tcp

import (
	"fmt"

	"github.com/synstack/synstack/tcp/seq"
)

// checkQueues verifies the queues' invariants: the rings hold what they
// count within their buffers, an empty queue holds no buffer, and the
// out-of-order ranges are sorted, disjoint, not adjacent, beyond RCV.NXT,
// within the buffer, and add up to oooLen.
func (c *Conn) checkQueues() error {
	for _, q := range []struct {
		name string
		r    *ring
	}{{"send", &c.sq.ring}, {"receive", &c.rq.ring}} {
		r := q.r
		if r.n < 0 || r.n > len(r.buf) || (len(r.buf) > 0 && (r.head < 0 || r.head >= len(r.buf))) {
			return fmt.Errorf("%s ring: %d octets from %d in a buffer of %d", q.name, r.n, r.head, len(r.buf))
		}
	}
	if c.sq.n == 0 && c.sq.buf != nil {
		return fmt.Errorf("empty send queue holds a buffer of %d", len(c.sq.buf))
	}
	if c.rq.n == 0 && c.rq.oooLen == 0 && c.rq.buf != nil {
		return fmt.Errorf("empty receive queue holds a buffer of %d", len(c.rq.buf))
	}
	sum := 0
	prev := c.rcv.nxt
	for i, x := range c.rq.ooo {
		if !prev.LessThan(x.l) || !x.l.LessThan(x.r) {
			return fmt.Errorf("out-of-order range %d [%d,%d) after %d", i, x.l, x.r, prev)
		}
		if c.rq.n+int(x.r.Sub(c.rcv.nxt)) > len(c.rq.buf) {
			return fmt.Errorf("out-of-order range %d [%d,%d) beyond the buffer of %d", i, x.l, x.r, len(c.rq.buf))
		}
		sum += int(x.r.Sub(x.l))
		prev = x.r
	}
	if sum != int(c.rq.oooLen) {
		return fmt.Errorf("out-of-order ranges hold %d octets, oooLen says %d", sum, c.rq.oooLen)
	}
	// The bounds of memory.go: whatever the window said, the receive
	// ring's contents reach no further than rq.bufSize octets, and neither ring
	// borrows more than the power of two that holds its bound.
	if e := c.rqExtent(); e > int(c.rq.bufSize) {
		return fmt.Errorf("receive queue reaches %d octets, over its bound %d", e, c.rq.bufSize)
	}
	// A write may pass SO_SNDBUF by one size goal, as Linux's (sndmem.go).
	if b := int(c.sq.bufSize) + sizeGoalMax; c.sq.n > b {
		return fmt.Errorf("send queue holds %d octets, over its bound %d", c.sq.n, b)
	}
	if b := ringBound(int(c.rq.bufSize)); len(c.rq.buf) > b {
		return fmt.Errorf("receive ring of %d bytes, over %d", len(c.rq.buf), b)
	}
	if b := ringBound(int(c.sq.bufSize) + sizeGoalMax); len(c.sq.buf) > b {
		return fmt.Errorf("send ring of %d bytes, over %d", len(c.sq.buf), b)
	}
	if len(c.rq.ooo) > maxOOORanges {
		return fmt.Errorf("%d out-of-order ranges, over %d", len(c.rq.ooo), maxOOORanges)
	}
	return nil
}

// ringBound is the largest buffer a ring bounded to n octets borrows.
func ringBound(n int) int {
	b := minRing
	for b < n {
		b *= 2
	}
	return b
}

// holdsOOO reports whether the receiver holds [l, r): the part above
// RCV.NXT inside one out-of-order range (they are merged, so a stretch
// held is one range), its last octet possibly the FIN held after it. A
// sender's SACK scoreboard must never claim more: this receiver does not
// renege on out-of-order data while the connection lives.
func (c *Conn) holdsOOO(l, r seq.Value) bool {
	if !c.rcv.nxt.LessThan(r) {
		return true
	}
	l = seq.Max(l, c.rcv.nxt)
	for _, x := range c.rq.ooo {
		end := x.r
		if c.rq.oooFin && c.rq.oooFinSeq == x.r {
			end++
		}
		if x.l.LessThanEq(l) && r.LessThanEq(end) {
			return true
		}
	}
	return c.rq.oooFin && l == c.rq.oooFinSeq && r == l+1
}
