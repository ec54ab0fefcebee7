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
	head int // index in buf of the first queued octet
	n    int // octets queued
	peak int // the most octets the buffer has been asked to hold since borrowed
	hint int // the size to borrow next time: what the last buffer needed
}

// ensure makes room for extent octets from head on, keeping the first keep
// of them: a bigger buffer is borrowed (at least twice the old one) and the
// old one given back.
func (r *ring) ensure(b Buffers, extent, keep int) {
	r.peak = max(r.peak, extent)
	if extent <= len(r.buf) {
		return
	}
	size := max(minRing, r.hint, 2*len(r.buf))
	for size < extent {
		size *= 2
	}
	nb := b.Get(size)
	if r.buf != nil {
		r.copyOut(nb[:keep], 0)
		b.Put(r.buf)
	}
	r.buf, r.head = nb, 0
}

// release returns the buffer when the queue is empty and nothing beyond it
// is kept, remembering how much it needed.
func (r *ring) release(b Buffers) {
	if r.buf == nil {
		return
	}
	r.hint = minRing
	for r.hint < r.peak {
		r.hint *= 2
	}
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
