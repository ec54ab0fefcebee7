package tcp

// The send and receive queues are rings over memory lent by Config.Buffers.
// A queue holds a buffer only while it holds data: an idle connection has
// none, and a busy one borrows a buffer of the size it last needed, so a
// pooling provider hands the same memory round without allocating.
//
// Each octet is copied once into a queue and once out of it: a write copies
// the user's bytes into the send ring and the segment that carries them
// reads them from there (the Output callback sees a view of the ring); an
// arriving segment's payload is copied into the receive ring at its place
// in the sequence space, in order or not, and a read copies it out.

// Buffers lends the memory of the send and receive queues. Get returns a
// buffer of at least n bytes (its length is what the queue uses); Put takes
// it back once the queue no longer refers to it. A connection calls them
// only from its own methods, so a provider shared by connections that run
// on different goroutines must be safe for concurrent use. The default,
// when Config.Buffers is nil, allocates with make and leaves freed buffers
// to the garbage collector.
type Buffers interface {
	Get(n int) []byte
	Put(b []byte)
}

type heapBuffers struct{}

func (heapBuffers) Get(n int) []byte { return make([]byte, n) }
func (heapBuffers) Put([]byte)       {}

// minRing is the smallest buffer a queue asks for.
const minRing = 2048

// ring is a byte queue over one borrowed buffer: n octets from head on,
// wrapping at the end of buf. Data may also be placed beyond the queued
// octets (the receive queue's out-of-order data) with writeAt; grow keeps
// whatever lies within the extent it is told to keep.
type ring struct {
	buf  []byte
	head int    // index in buf of the first queued octet
	n    int    // octets queued
	peak uint32 // the most octets the buffer has been asked to hold since borrowed
	// hintLog is the size to borrow next time, minRing<<hintLog: the most
	// the recent buffers needed. calm counts the buffers since that
	// needed less than half of it; after ringHintCalm of them the hint
	// halves.
	hintLog, calm uint8
}

// ringHintCalm is how many buffers in a row needing less than half the
// hint halve it. A reader that drains the queue as fast as it fills gives
// its buffer back at every drain, often between two bursts that need
// several times what the last buffer did; a hint that followed only the
// last buffer had the next burst grow from small by doubling, copying the
// queued data at every step: half again as many bytes as were received,
// in a 1 GiB upload over TUN. Memory still goes with the data: the buffer
// is borrowed only while data is queued, and under memory pressure the
// hint is not used.
const ringHintCalm = 8

// sizeFor is the size of the buffer ensure borrows for extent octets: at
// least twice the one held, and, with hint, at least what the last buffer
// needed; a power of two times minRing.
func (r *ring) sizeFor(extent int, hint bool) int {
	size := max(minRing, 2*len(r.buf))
	if hint {
		size = max(size, minRing<<r.hintLog)
	}
	for size < extent {
		size *= 2
	}
	return size
}

// ensure makes room for extent octets from head on, keeping the first keep
// of them: a bigger buffer is borrowed (sizeFor) and the old one given
// back, and m is charged the difference.
func (r *ring) ensure(b Buffers, m *Memory, extent, keep int) {
	r.peak = max(r.peak, uint32(extent))
	if extent <= len(r.buf) {
		return
	}
	size, _ := ringMayHold(r, m, extent)
	if size < extent {
		size = r.sizeFor(extent, false)
	}
	r.resize(b, m, size, keep)
}

// resize moves the first keep octets into a buffer of size octets and
// gives the old one back, charging m the difference.
func (r *ring) resize(b Buffers, m *Memory, size, keep int) {
	nb := b.Get(size)
	m.charge(int64(len(nb) - len(r.buf)))
	if r.buf != nil {
		r.copyOut(nb[:keep], 0)
		b.Put(r.buf)
	}
	r.buf, r.head = nb, 0
}

// shrink moves the first extent octets into the smallest buffer that holds
// them, when that gives at least half of the buffer back.
func (r *ring) shrink(b Buffers, m *Memory, extent int) {
	size := minRing
	for size < extent {
		size *= 2
	}
	if size <= len(r.buf)/2 {
		r.resize(b, m, size, extent)
	}
}

// release returns the buffer when the queue is empty and nothing beyond it
// is kept, remembering how much it needed (hintLog), and gives its charge
// back to m.
func (r *ring) release(b Buffers, m *Memory) {
	if r.buf == nil {
		return
	}
	var need uint8
	for minRing<<need < int(r.peak) {
		need++
	}
	switch {
	case need >= r.hintLog:
		r.hintLog, r.calm = need, 0
	case need < r.hintLog-1:
		if r.calm++; r.calm >= ringHintCalm {
			r.hintLog, r.calm = r.hintLog-1, 0
		}
	default:
		r.calm = 0
	}
	m.charge(-int64(len(r.buf)))
	b.Put(r.buf)
	r.buf, r.head, r.n, r.peak = nil, 0, 0, 0
}

// pos returns the index in buf of the octet off octets after head.
func (r *ring) pos(off int) int {
	i := r.head + off
	if i >= len(r.buf) {
		i -= len(r.buf)
	}
	return i
}

// writeAt copies p to the octets off.. after head (the buffer must reach).
func (r *ring) writeAt(off int, p []byte) {
	i := r.pos(off)
	k := copy(r.buf[i:], p)
	copy(r.buf, p[k:])
}

// copyOut copies the octets off.. after head into p.
func (r *ring) copyOut(p []byte, off int) {
	if len(p) == 0 {
		return
	}
	i := r.pos(off)
	k := copy(p, r.buf[i:])
	copy(p[k:], r.buf)
}

// view returns the octets off..off+k after head as one slice when they are
// contiguous in the buffer, or nil when they wrap.
func (r *ring) view(off, k int) []byte {
	i := r.pos(off)
	if i+k <= len(r.buf) {
		return r.buf[i : i+k : i+k]
	}
	return nil
}

// consume drops k octets from the front.
func (r *ring) consume(k int) {
	r.n -= k
	r.head = r.pos(k)
}
