// Package pipe is an in-memory link: two endpoints joined back to back, each
// delivering what the other writes. It is the simplest way to connect two
// stacks in one process.
//
// Each direction has a bounded queue and one goroutine that hands queued
// packets to the receiving endpoint's Dispatcher, so a writer never runs the
// receiver's code and never blocks: when the queue is full the packet is
// dropped and counted, like a full NIC ring.
package pipe

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/synstack/synstack/link"
)

// QueueLen is the number of packets each direction holds before it drops.
const QueueLen = 1024

// ErrClosed is returned by WritePacket after Close.
var ErrClosed = errors.New("pipe: endpoint closed")

// Stats counts what an endpoint did with the packets written to it and
// delivered to it.
type Stats struct {
	Sent       uint64 // packets written and queued towards the peer
	Delivered  uint64 // packets handed to this endpoint's Dispatcher
	DropFull   uint64 // written packets dropped because the peer's queue was full
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

	in   chan *[]byte // packets written by the peer, waiting for delivery here
	done chan struct{}
	wg   sync.WaitGroup

	disp   atomic.Pointer[dispatcherBox]
	drop   atomic.Pointer[func([]byte) bool]
	closed atomic.Bool
	once   sync.Once

	sent, delivered, dropFull, dropMTU, dropFunc, dropClosed atomic.Uint64
}

type dispatcherBox struct{ d link.Dispatcher }

var _ link.Endpoint = (*Endpoint)(nil)

// New returns the two ends of an in-memory link carrying IP packets of at
// most mtu bytes. Each end starts one goroutine, which Close stops.
func New(mtu int) (a, b *Endpoint) { return NewWithOptions(Options{MTU: mtu}) }

// Options configure a pipe.
type Options struct {
	// MTU is the largest IP packet carried (required).
	MTU int
	// ChecksumOffload makes both ends implement link.ChecksumOffloader
	// (true, true): memory does not flip bits, so the stacks at the ends
	// skip TCP checksums as the kernel does over its loopback device.
	ChecksumOffload bool
}

// NewWithOptions is New with Options.
func NewWithOptions(o Options) (a, b *Endpoint) {
	mtu := o.MTU
	pool := &sync.Pool{New: func() any {
		buf := make([]byte, mtu)
		return &buf
	}}
	a = newEndpoint(mtu, pool)
	b = newEndpoint(mtu, pool)
	a.offload, b.offload = o.ChecksumOffload, o.ChecksumOffload
	a.peer, b.peer = b, a
	a.start()
	b.start()
	return a, b
}

func newEndpoint(mtu int, pool *sync.Pool) *Endpoint {
	return &Endpoint{
		mtu:  mtu,
		pool: pool,
		in:   make(chan *[]byte, QueueLen),
		done: make(chan struct{}),
	}
}

// ChecksumOffload implements link.ChecksumOffloader: both true when the
// pipe was made with Options.ChecksumOffload.
func (e *Endpoint) ChecksumOffload() (tx, rx bool) { return e.offload, e.offload }

// batchMax bounds how many waiting packets one delivery hands over.
const batchMax = 32

// start runs the goroutine that delivers packets arriving at e: one at a
// time, or, to a link.BatchDispatcher, all that are waiting (up to
// batchMax) in one call.
func (e *Endpoint) start() {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		var bufs [batchMax]*[]byte
		var pkts [batchMax][]byte
		for {
			select {
			case <-e.done:
				return
			case buf := <-e.in:
				n := 1
				bufs[0] = buf
			more:
				for n < batchMax {
					select {
					case b := <-e.in:
						bufs[n] = b
						n++
					default:
						break more
					}
				}
				e.deliver(bufs[:n], pkts[:n])
			}
		}
	}()
}

// deliver hands the packets in bufs to the dispatcher and releases them.
func (e *Endpoint) deliver(bufs []*[]byte, pkts [][]byte) {
	box := e.disp.Load()
	switch {
	case box == nil:
		e.dropClosed.Add(uint64(len(bufs)))
	case len(bufs) > 1:
		if bd, ok := box.d.(link.BatchDispatcher); ok {
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
			box.d.DeliverPacket(*b)
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

// MTU returns the largest packet the pipe carries.
func (e *Endpoint) MTU() int { return e.mtu }

// Attach sets the Dispatcher that receives the packets the peer writes.
// Packets arriving before Attach are dropped (counted in DropClosed).
func (e *Endpoint) Attach(d link.Dispatcher) {
	if d == nil {
		e.disp.Store(nil)
		return
	}
	e.disp.Store(&dispatcherBox{d})
}

// WritePacket copies pkt into the peer's queue. A packet larger than the MTU,
// one the drop function selects, or one that finds the queue full is dropped
// and counted; none of these is an error. It returns ErrClosed after Close.
func (e *Endpoint) WritePacket(pkt []byte) error { return e.WritePacketGather(pkt, nil) }

var _ link.GatherWriter = (*Endpoint)(nil)

// WritePacketGather implements link.GatherWriter: WritePacket of hdr
// followed by payload, copied once, straight into the queued buffer.
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
	select {
	case p.in <- buf:
		e.sent.Add(1)
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

// Close detaches the dispatcher, stops this end's delivery goroutine and
// waits for it to finish; packets still queued towards this end are
// discarded. Writes on this end then fail and writes from the peer are
// dropped. Close must not be called from inside this end's Dispatcher.
// Closing twice is harmless.
func (e *Endpoint) Close() error {
	e.once.Do(func() {
		e.closed.Store(true)
		close(e.done)
		e.wg.Wait()
		e.disp.Store(nil)
		// Drain what is left so the buffers go back to the pool.
		for {
			select {
			case buf := <-e.in:
				e.dropClosed.Add(1)
				e.release(buf)
			default:
				return
			}
		}
	})
	return nil
}
