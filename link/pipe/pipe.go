// Package pipe is an in-memory link: two endpoints joined back to back, each
// delivering what the other writes. It is the simplest way to connect two
// stacks in one process.
//
// Each direction has a bounded queue and one goroutine that hands queued
// packets to the receiving endpoint's Dispatcher, so a writer never runs the
// receiver's code and never blocks: when the queue is full the packet is
// dropped and counted, like a full NIC ring.
//
// With Options.Queues greater than one, each direction has that many
// queues, each with its own delivery goroutine, as a multi-queue NIC with
// receive-side scaling has: a packet is steered to a queue by a hash of its
// flow (addresses, protocol and ports), so the packets of one flow keep
// their order while different flows are delivered in parallel. A
// Dispatcher attached to a multi-queue pipe must be safe for concurrent
// delivery: its DeliverPacket and DeliverPackets are called from up to
// Queues goroutines at once.
package pipe

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/synstack/synstack/link"
)

// QueueLen is the number of packets each receive queue holds before it
// drops. A direction with several queues (Options.Queues) holds QueueLen
// packets in each, as each ring of a multi-queue NIC has its own size.
const QueueLen = 1024

// ErrClosed is returned by WritePacket after Close.
var ErrClosed = errors.New("pipe: endpoint closed")

// Stats counts what an endpoint did with the packets written to it and
// delivered to it.
type Stats struct {
	Sent       uint64 // packets written and queued towards the peer
	Delivered  uint64 // packets handed to this endpoint's Dispatcher
	DropFull   uint64 // written packets dropped because the peer's receive queue for them was full
	DropMTU    uint64 // written packets dropped for being larger than the MTU
	DropFunc   uint64 // written packets dropped by the drop function
	DropClosed uint64 // packets lost because the peer, or this end, was closed or detached
}

// Endpoint is one end of a pipe. It implements link.Endpoint.
type Endpoint struct {
	mtu     int
	offload bool // Options.ChecksumOffload
	peer    *Endpoint
	pool    *sync.Pool // shared by both ends: buffers travel from writer to reader

	in   []chan *[]byte // receive queues: packets written by the peer, waiting for delivery here
	done chan struct{}
	wg   sync.WaitGroup

	disp   link.Attachment
	drop   atomic.Pointer[func([]byte) bool]
	closed atomic.Bool
	once   sync.Once

	sent, delivered, dropFull, dropMTU, dropFunc, dropClosed atomic.Uint64
}

// An Endpoint is a link, and takes a packet in two pieces.
var (
	_ link.Endpoint     = (*Endpoint)(nil)
	_ link.GatherWriter = (*Endpoint)(nil)
)

// New returns the two ends of an in-memory link carrying IP packets of at
// most mtu bytes, with one receive queue each. Each end starts one
// goroutine, which Close stops.
func New(mtu int) (a, b *Endpoint) { return NewWithOptions(Options{MTU: mtu}) }

// Options configure a pipe.
type Options struct {
	// MTU is the largest IP packet carried (required).
	MTU int
	// ChecksumOffload makes both ends implement link.ChecksumOffloader
	// (true, true): memory does not flip bits, so the stacks at the ends
	// skip TCP checksums as the kernel does over its loopback device.
	ChecksumOffload bool
	// Queues is the number of receive queues, and of delivery goroutines,
	// of each end; 0 means 1. With one queue every packet is delivered in
	// the order written, from one goroutine. With more, a packet is
	// steered to a queue by a hash of its flow: for a TCP or UDP packet
	// over IPv4 or IPv6 that is not a fragment, its addresses, protocol
	// and ports; for any other IP packet (fragments, other protocols,
	// IPv6 extension headers, which are not walked), its two addresses;
	// anything else goes to the first queue. The packets of one flow thus
	// keep their order, but packets of different flows may be delivered
	// in another order than written, and at the same time: the attached
	// Dispatcher's DeliverPacket and DeliverPackets are then called from
	// up to Queues goroutines at once and must be safe for that. Each
	// queue holds QueueLen packets and drops (Stats.DropFull) when full,
	// even if the others have room.
	Queues int
}

// NewWithOptions is New with Options.
func NewWithOptions(o Options) (a, b *Endpoint) {
	mtu := o.MTU
	pool := &sync.Pool{New: func() any {
		buf := make([]byte, mtu)
		return &buf
	}}
	a = newEndpoint(mtu, o.Queues, pool)
	b = newEndpoint(mtu, o.Queues, pool)
	a.offload, b.offload = o.ChecksumOffload, o.ChecksumOffload
	a.peer, b.peer = b, a
	a.start()
	b.start()
	return a, b
}

func newEndpoint(mtu, queues int, pool *sync.Pool) *Endpoint {
	e := &Endpoint{
		mtu:  mtu,
		pool: pool,
		in:   make([]chan *[]byte, max(queues, 1)),
		done: make(chan struct{}),
	}
	for i := range e.in {
		e.in[i] = make(chan *[]byte, QueueLen)
	}
	return e
}

// ChecksumOffload implements link.ChecksumOffloader: both true when the
// pipe was made with Options.ChecksumOffload.
func (e *Endpoint) ChecksumOffload() (tx, rx bool) { return e.offload, e.offload }

// batchMax bounds how many waiting packets one delivery hands over.
const batchMax = 32

// start runs the goroutines, one per receive queue, that deliver packets
// arriving at e.
func (e *Endpoint) start() {
	e.wg.Add(len(e.in))
	for _, in := range e.in {
		go e.run(in)
	}
}

// run delivers the packets arriving in queue in until Close: one at a
// time, or, to a link.BatchDispatcher, all that are waiting (up to
// batchMax) in one call.
func (e *Endpoint) run(in <-chan *[]byte) {
	defer e.wg.Done()
	var bufs [batchMax]*[]byte
	var pkts [batchMax][]byte
	for {
		select {
		case <-e.done:
			return
		case buf := <-in:
			n := 1
			bufs[0] = buf
		more:
			for n < batchMax {
				select {
				case b := <-in:
					bufs[n] = b
					n++
				default:
					break more
				}
			}
			e.deliver(bufs[:n], pkts[:n])
		}
	}
}

// deliver hands the packets in bufs to the dispatcher and releases them.
func (e *Endpoint) deliver(bufs []*[]byte, pkts [][]byte) {
	d := e.disp.Get()
	switch {
	case d == nil:
		e.dropClosed.Add(uint64(len(bufs)))
	case len(bufs) > 1:
		if bd, ok := d.(link.BatchDispatcher); ok {
			for i, b := range bufs {
				pkts[i] = *b
			}
			e.delivered.Add(uint64(len(bufs)))
			bd.DeliverPackets(pkts)
			clear(pkts)
			break
		}
		fallthrough
	default:
		for _, b := range bufs {
			e.delivered.Add(1)
			d.DeliverPacket(*b)
		}
	}
	for i, b := range bufs {
		e.release(b)
		bufs[i] = nil
	}
}

func (e *Endpoint) release(buf *[]byte) {
	*buf = (*buf)[:cap(*buf)]
	e.pool.Put(buf)
}

// drain discards the packets waiting in e's queue in, counting them as
// dropped on close and putting their buffers back.
func (e *Endpoint) drain(in chan *[]byte) {
	for {
		select {
		case buf := <-in:
			e.dropClosed.Add(1)
			e.release(buf)
		default:
			return
		}
	}
}

// MTU returns the largest packet the pipe carries.
func (e *Endpoint) MTU() int { return e.mtu }

// Attach sets the Dispatcher that receives the packets the peer writes.
// Packets arriving before Attach are dropped (counted in DropClosed).
func (e *Endpoint) Attach(d link.Dispatcher) { e.disp.Set(d) }

// WritePacket copies pkt into the peer's queue. A packet larger than the MTU,
// one the drop function selects, or one that finds the queue full is dropped
// and counted; none of these is an error. It returns ErrClosed after Close.
func (e *Endpoint) WritePacket(pkt []byte) error { return e.WritePacketGather(pkt, nil) }

// WritePacketGather implements link.GatherWriter: WritePacket of hdr
// followed by payload, copied once, straight into the queued buffer. With
// several queues, the buffer goes to the queue its flow hashes to
// (Options.Queues).
func (e *Endpoint) WritePacketGather(hdr, payload []byte) error {
	if e.closed.Load() {
		return ErrClosed
	}
	n := len(hdr) + len(payload)
	if n > e.mtu {
		e.dropMTU.Add(1)
		return nil
	}
	p := e.peer
	if p.closed.Load() {
		e.dropClosed.Add(1)
		return nil
	}
	buf := e.pool.Get().(*[]byte)
	*buf = (*buf)[:n]
	copy((*buf)[copy(*buf, hdr):], payload)
	if f := e.drop.Load(); f != nil && (*f)(*buf) {
		e.release(buf)
		e.dropFunc.Add(1)
		return nil
	}
	in := p.in[link.FlowQueue(*buf, len(p.in))]
	select {
	case in <- buf:
		e.sent.Add(1)
		// If the peer closed since the check above, its Close may have
		// drained this queue already: drain it again, or buf would be
		// stranded there, counted as sent but never delivered or dropped.
		// Close sets closed before draining, so one of the two finds it.
		if p.closed.Load() {
			p.drain(in)
		}
	default:
		e.release(buf)
		e.dropFull.Add(1)
	}
	return nil
}

// SetDropFunc installs f to decide, for each packet written on this end,
// whether to drop it (true) instead of delivering it: a way to simulate loss
// or a crashed peer in tests. f runs on the writer's goroutine and must not
// keep pkt. A nil f removes the function.
func (e *Endpoint) SetDropFunc(f func(pkt []byte) bool) {
	if f == nil {
		e.drop.Store(nil)
		return
	}
	e.drop.Store(&f)
}

// Stats returns the endpoint's counters.
func (e *Endpoint) Stats() Stats {
	return Stats{
		Sent:       e.sent.Load(),
		Delivered:  e.delivered.Load(),
		DropFull:   e.dropFull.Load(),
		DropMTU:    e.dropMTU.Load(),
		DropFunc:   e.dropFunc.Load(),
		DropClosed: e.dropClosed.Load(),
	}
}

// Close detaches the dispatcher, stops this end's delivery goroutines and
// waits for them to finish; packets still queued towards this end are
// discarded (counted in DropClosed). Writes on this end then fail and
// writes from the peer are dropped. Close must not be called from inside
// this end's Dispatcher. Closing twice is harmless.
func (e *Endpoint) Close() error {
	e.once.Do(func() {
		e.closed.Store(true)
		close(e.done)
		e.wg.Wait()
		e.disp.Set(nil)
		// Drain what is left so the buffers go back to the pool.
		for _, in := range e.in {
			e.drain(in)
		}
	})
	return nil
}
