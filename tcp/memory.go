package tcp

import (
	"sync/atomic"

	"github.com/synstack/synstack/tcp/seq"
)

// Memory accounting, as Linux's sk_rmem_alloc against sk_rcvbuf and
// tcp_memory_allocated against tcp_mem.
//
// What a connection holds is the buffers its two rings borrow (buffer.go):
// the bytes Buffers.Get handed them, whatever they hold. Linux charges a
// socket each buffer's truesize, payload and bookkeeping alike, and when
// the charge would pass the receive buffer it first collapses its queues
// (copies the data into fewer, fuller buffers) and then prunes out-of-order
// data, and only then drops. A ring is always collapsed: every octet sits
// once, at its place in the sequence space, with no per-segment overhead.
// So here the bounds are:
//
//   - Per connection: the receive ring's contents (the queued octets, and
//     the out-of-order data beyond them, gaps included) reach at most
//     rq.bufSize octets from its head, whatever window was advertised. The
//     window promises half of that (rcvCapacity), but it is rounded up to
//     the window scale, and a peer that forces an ACK after every few
//     octets can creep the right edge forward by up to one scale unit per
//     ACK without the application reading (issue 14's forced-ACK attack):
//     data past rq.bufSize is dropped and counted (TCPRcvQDrop, TCPOFODrop).
//     The send ring holds at most sq.bufSize octets and one size goal
//     (sizeGoalMax): a write stops once the queue's memory, payload and
//     skbOverhead a buffer, reaches sq.bufSize, as Linux's (sndmem.go).
//   - Per stack: a Memory budget that every connection of the stack
//     charges for the buffers it borrows. Above its Pressure mark buffers
//     stop growing (autotuning backs off) and the advertised window is held
//     to four segments beyond what is queued; a ring may not grow past its
//     High mark: a connection that needs more first gives back what its
//     out-of-order data holds (OfoPruned) and then drops (TCPRcvQDrop,
//     TCPOFODrop), and a writer gets no more room until its ACKs free
//     some. A connection may always hold one buffer of minRing octets, so
//     that every connection still makes progress, as Linux always admits
//     a segment to an empty receive queue.

// MemoryLimits are the marks of a Memory budget, in bytes (Linux's tcp_mem
// holds the same three marks in pages).
type MemoryLimits struct {
	// Low: a budget under pressure leaves it when its use falls below Low.
	Low int64
	// Pressure: a budget whose use rises above Pressure is under
	// pressure: receive and send buffers stop growing and connections
	// advertise at most four segments of window beyond what they hold.
	Pressure int64
	// High: the most the buffers charged to the budget may hold, beyond
	// one buffer of minRing octets per connection. Data that would need
	// more is dropped and counted; writers wait.
	High int64
}

// Memory is a budget of queue memory shared by connections (Config.Memory),
// as Linux's tcp_memory_allocated is shared by the sockets of a host. Its
// methods are safe for concurrent use; a nil *Memory is no budget at all.
type Memory struct {
	limits    MemoryLimits
	used      atomic.Int64
	pressure  atomic.Bool
	pressures atomic.Uint64
}

// NewMemory returns a budget with the given marks. Marks out of order are
// put in order: Low <= Pressure <= High.
func NewMemory(l MemoryLimits) *Memory {
	l.Pressure = min(l.Pressure, l.High)
	l.Low = min(l.Low, l.Pressure)
	return &Memory{limits: l}
}

// Limits returns the budget's marks.
func (m *Memory) Limits() MemoryLimits {
	if m == nil {
		return MemoryLimits{}
	}
	return m.limits
}

// Used returns the bytes charged to the budget now.
func (m *Memory) Used() int64 {
	if m == nil {
		return 0
	}
	return m.used.Load()
}

// UnderPressure reports whether the budget is under pressure: its use rose
// above Pressure and has not since fallen below Low.
func (m *Memory) UnderPressure() bool { return m != nil && m.pressure.Load() }

// Pressures returns how many times the budget entered pressure
// (TcpExtTCPMemoryPressures).
func (m *Memory) Pressures() uint64 {
	if m == nil {
		return 0
	}
	return m.pressures.Load()
}

// charge adds delta bytes (negative: gives them back) and moves in or out
// of pressure.
func (m *Memory) charge(delta int64) {
	if m == nil || delta == 0 {
		return
	}
	used := m.used.Add(delta)
	switch {
	case used > m.limits.Pressure && !m.pressure.Load():
		if m.pressure.CompareAndSwap(false, true) {
			m.pressures.Add(1)
		}
	case used < m.limits.Low && m.pressure.Load():
		m.pressure.Store(false)
	}
}

// allows reports whether delta more bytes stay within High.
func (m *Memory) allows(delta int64) bool {
	return m == nil || delta <= 0 || m.used.Load()+delta <= m.limits.High
}

// ringMayHold reports whether r may hold extent octets: it already does, or
// it may borrow the buffer that does (always the first one of minRing
// octets). It returns the size to borrow.
func ringMayHold(r *ring, m *Memory, extent int) (int, bool) {
	if extent <= len(r.buf) {
		return len(r.buf), true
	}
	size := r.sizeFor(extent, !m.UnderPressure())
	if m.allows(int64(size - len(r.buf))) {
		return size, true
	}
	if size = r.sizeFor(extent, false); m.allows(int64(size-len(r.buf))) || (r.buf == nil && size <= minRing) {
		return size, true
	}
	return 0, false
}

// rcvLimit is how far from its head the receive ring's contents may reach
// for data that would reach end: rq.bufSize octets, and no more than the ring
// holds when the budget will not let it grow to end.
func (c *Conn) rcvLimit(end int) int {
	limit := int(c.rq.bufSize)
	if end <= len(c.rq.buf) {
		return limit
	}
	if _, ok := ringMayHold(&c.rq.ring, c.cfg.Memory, min(end, limit)); ok {
		return limit
	}
	return min(limit, max(len(c.rq.buf), minRing))
}

// rcvAdmit trims the data of an arriving segment, s.., already trimmed to
// the window, to what the receive queue may hold (see above), and says
// whether any of it, or its FIN, is left to take.
func (c *Conn) rcvAdmit(s seq.Value, data []byte, fin bool) ([]byte, bool, bool) {
	off := int(s.Sub(c.rcv.nxt))
	end := c.rq.n + off + len(data)
	limit := c.rcvLimit(end)
	if end <= limit {
		return data, fin, true
	}
	cnt := c.cfg.Counters
	cnt.PruneCalled++
	if limit < int(c.rq.bufSize) && c.pruneOOO(s) {
		// The budget is what stopped it: what the out-of-order data held
		// went back to it, and the ring may grow now.
		cnt.OfoPruned++
		if limit = c.rcvLimit(end); end <= limit {
			return data, fin, true
		}
	}
	cnt.RcvPruned++
	if off == 0 {
		cnt.RcvQDrop++
	} else {
		cnt.OFODrop++
	}
	// end > limit: some of the data goes, and the FIN after it.
	data = data[:max(0, limit-c.rq.n-off)]
	return data, false, len(data) > 0
}

// pruneOOO gives back what the out-of-order data beyond s holds (all of it
// when s is RCV.NXT): the ranges are forgotten, to be sent again, and the
// ring shrinks to the queued data. It reports whether anything was pruned.
func (c *Conn) pruneOOO(s seq.Value) bool {
	if len(c.rq.ooo) == 0 && !c.rq.oooFin {
		return false
	}
	k := len(c.rq.ooo)
	for k > 0 && s.LessThan(c.rq.ooo[k-1].r) {
		k--
		c.rq.oooLen -= int32(c.rq.ooo[k].r.Sub(c.rq.ooo[k].l))
	}
	if k == len(c.rq.ooo) && !c.rq.oooFin {
		return false
	}
	// A FIN lies beyond all the data: it goes too. The peer learns of
	// the reneging from the SACK blocks that no longer cover the ranges
	// (RFC 2018 8), and sends them again.
	c.rq.ooo = c.rq.ooo[:k]
	c.rq.oooFin = false
	if c.rq.n == 0 && c.rq.oooLen == 0 {
		c.rq.release(c.cfg.Buffers, c.cfg.Memory)
	} else {
		c.rq.shrink(c.cfg.Buffers, c.cfg.Memory, c.rqExtent())
	}
	return true
}
