// Package sim is a simulated network link with virtual time: packets cross
// it after a fixed delay, scheduled on a clock.Clock. With a clock.Virtual the
// whole network is synchronous and deterministic: the same program gives the
// same packets at the same instants, whatever the machine.
//
// This is the first cut: a fixed delay, and a drop rule per direction
// (SetDrop) for loss and partitions. Seeded loss, reordering, duplication,
// corruption and bandwidth come with the simulated-network work.
package sim

import (
	"errors"
	"sync"
	"time"

	"github.com/synstack/synstack/clock"
	"github.com/synstack/synstack/link"
)

// Options describe one link. Zero values mean: the real clock, no delay, MTU 1500.
type Options struct {
	// Clock schedules deliveries. Share one clock.Virtual among every link
	// and stack of a simulation.
	Clock clock.Clock
	// Delay is the one-way latency.
	Delay time.Duration
	// MTU is the largest packet carried; larger ones are dropped.
	MTU int
}

// Endpoint is one end of a simulated link.
type Endpoint struct {
	opts Options
	peer *Endpoint

	mu     sync.Mutex
	d      link.Dispatcher
	closed bool
	stats  Stats
	drop   func(pkt []byte) bool
}

// Stats counts what an endpoint did.
type Stats struct {
	Sent, Delivered, Dropped uint64
}

// ErrClosed is returned by WritePacket after Close.
var ErrClosed = errors.New("sim: link closed")

// Pair returns the two ends of a link.
func Pair(opts Options) (a, b *Endpoint) {
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.MTU == 0 {
		opts.MTU = 1500
	}
	a = &Endpoint{opts: opts}
	b = &Endpoint{opts: opts}
	a.peer, b.peer = b, a
	return a, b
}

// MTU returns the link's MTU.
func (e *Endpoint) MTU() int { return e.opts.MTU }

// Attach starts delivery to d.
func (e *Endpoint) Attach(d link.Dispatcher) {
	e.mu.Lock()
	e.d = d
	e.mu.Unlock()
}

// WritePacket copies pkt and delivers it to the other end after the delay.
func (e *Endpoint) WritePacket(pkt []byte) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return ErrClosed
	}
	if len(pkt) > e.opts.MTU || e.drop != nil && e.drop(pkt) {
		e.stats.Dropped++
		e.mu.Unlock()
		return nil
	}
	e.stats.Sent++
	e.mu.Unlock()
	cp := append([]byte(nil), pkt...)
	p := e.peer
	e.opts.Clock.AfterFunc(e.opts.Delay, func() {
		p.mu.Lock()
		d, closed := p.d, p.closed
		if d == nil || closed {
			p.stats.Dropped++
			p.mu.Unlock()
			return
		}
		p.stats.Delivered++
		p.mu.Unlock()
		d.DeliverPacket(cp)
	})
	return nil
}

// SetDrop installs a drop rule on the packets this endpoint sends: drop is
// called (under the endpoint's lock, so it must not call back into the
// endpoint) with each packet written, and a packet for which it returns
// true is lost: never delivered, counted in Stats.Dropped, and WritePacket
// still returns nil, as a real link loses packets silently. A function
// that returns true for everything is a one-way partition; nil removes the
// rule. The decision is made at write time, so a rule installed later does
// not affect packets already in flight.
//
// This is the simulated network's one fault hook for now (demos and tests
// use it for loss, partitions and crashed hosts); seeded loss, reordering
// and the rest of fault injection are to come as Options.
func (e *Endpoint) SetDrop(drop func(pkt []byte) bool) {
	e.mu.Lock()
	e.drop = drop
	e.mu.Unlock()
}

// Close detaches the endpoint; packets in flight to it are dropped.
func (e *Endpoint) Close() error {
	e.mu.Lock()
	e.closed = true
	e.d = nil
	e.mu.Unlock()
	return nil
}

// Stats returns the endpoint's counters (Delivered counts packets it received).
func (e *Endpoint) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stats
}
