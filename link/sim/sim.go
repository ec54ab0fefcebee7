// Package sim is a simulated network link with faults: delay and jitter,
// loss, duplication, reordering, corruption, a bandwidth bottleneck with a
// bounded queue, and partitions that heal. Every random decision comes from
// one generator per direction seeded by Options.Seed, so a run replays
// exactly from its seed.
//
// Packets cross on a clock.Clock. With a clock.Virtual the whole network is
// synchronous and deterministic: the same program gives the same packets at
// the same instants, whatever the machine. With the real clock (the
// default) it runs in real time, and inside a testing/synctest bubble on the
// bubble's fake time, so a test of an HTTP client over a lossy link takes
// milliseconds:
//
//	a, b := sim.Pair(sim.Options{Seed: 7, Delay: 10 * time.Millisecond, Loss: 0.01,
//		Reorder: 0.02, Duplicate: 0.01, Corrupt: 0.001, MTU: 1500})
//	srv, err := synstack.New(synstack.Config{Link: a, Addrs: ...})
package sim

import (
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/synstack/synstack/clock"
	"github.com/synstack/synstack/link"
)

// Options describe one direction of a link (Pair uses them for both;
// PairWith takes one per direction). Zero values mean: the real clock, no
// delay, no faults, no bandwidth limit, MTU 1500.
type Options struct {
	// Clock schedules deliveries. Share one clock.Virtual among every link
	// and stack of a simulation for determinism.
	Clock clock.Clock
	// Seed seeds the fault decisions (each direction derives its own
	// generator from it).
	Seed uint64
	// Delay is the one-way latency; Jitter adds a uniform random extra
	// in [0, Jitter) to each packet (which can reorder packets too).
	Delay, Jitter time.Duration
	// Loss, Duplicate, Reorder and Corrupt are per-packet probabilities:
	// lost; delivered twice; held back by ReorderDelay so later packets
	// overtake it; one bit flipped (the receiver's checksum catches it).
	Loss, Duplicate, Reorder, Corrupt float64
	// ReorderDelay is how long a reordered packet is held back (default:
	// Delay, at least 1 ms).
	ReorderDelay time.Duration
	// Bandwidth, in bits per second, makes the link a bottleneck: packets
	// are serialized one after another; zero means unlimited.
	Bandwidth int64
	// QueueLen bounds the packets waiting for the bottleneck (tail drop);
	// zero means unbounded. Meaningful only with Bandwidth.
	QueueLen int
	// MTU is the largest packet carried; larger ones are dropped.
	MTU int
	// Trace, if set, hears of every packet's fate. It is called from
	// WritePacket and from the clock's timers; it must not block.
	Trace func(Event)
}

// Event is one thing the link did with a packet.
type Event struct {
	Time time.Time
	Dir  string // "a>b" or "b>a"
	What string // sent, delivered, lost, corrupted, duplicated, reordered, queue-drop, mtu-drop, partitioned, rule-drop, closed-drop
	Len  int
}

// Stats counts what happened to the packets an endpoint sent (Delivered
// counts those it received).
type Stats struct {
	Sent, Delivered, Dropped                           uint64
	Lost, Duplicated, Reordered, Corrupted, QueueDrops uint64
}

// ErrClosed is returned by WritePacket after Close.
var ErrClosed = errors.New("sim: link closed")

// Endpoint is one end of a simulated link.
type Endpoint struct {
	opts Options
	name string // direction of the packets it sends: "a>b" or "b>a"
	peer *Endpoint

	mu       sync.Mutex
	d        link.Dispatcher
	closed   bool
	stats    Stats
	drop     func(pkt []byte) bool
	rng      *rand.Rand
	nextFree time.Time // when the bottleneck is free again
	queued   int       // packets waiting for or on the bottleneck
	cut      *partition
}

// partition is the state both ends share: a partition cuts both ways.
type partition struct {
	on    atomic.Bool
	mu    sync.Mutex
	timer clock.Timer
	gen   uint64
}

// Pair returns the two ends of a link with the same options both ways.
func Pair(opts Options) (a, b *Endpoint) { return PairWith(opts, opts) }

// PairWith returns the two ends of a link: ab applies to what a sends, ba
// to what b sends. Their clocks must be the same one.
func PairWith(ab, ba Options) (a, b *Endpoint) {
	a = newEndpoint(ab, "a>b", 1)
	b = newEndpoint(ba, "b>a", 2)
	if b.opts.Clock != a.opts.Clock && ba.Clock == nil {
		b.opts.Clock = a.opts.Clock
	}
	a.peer, b.peer = b, a
	a.cut = &partition{}
	b.cut = a.cut
	return a, b
}

func newEndpoint(o Options, name string, stream uint64) *Endpoint {
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.MTU == 0 {
		o.MTU = 1500
	}
	if o.ReorderDelay <= 0 {
		o.ReorderDelay = max(o.Delay, time.Millisecond)
	}
	return &Endpoint{opts: o, name: name, rng: rand.New(rand.NewPCG(o.Seed, o.Seed^(0x9e3779b97f4a7c15*stream)))}
}

// MTU returns the link's MTU.
func (e *Endpoint) MTU() int { return e.opts.MTU }

// Attach starts delivery to d.
func (e *Endpoint) Attach(d link.Dispatcher) {
	e.mu.Lock()
	e.d = d
	e.mu.Unlock()
}

func (e *Endpoint) trace(now time.Time, what string, n int) {
	if e.opts.Trace != nil {
		e.opts.Trace(Event{Time: now, Dir: e.name, What: what, Len: n})
	}
}

// WritePacket copies pkt and sends it towards the other end through the
// link's faults. It never blocks and never fails but after Close: a packet
// the link loses is lost silently, as on a real network.
func (e *Endpoint) WritePacket(pkt []byte) error {
	o := &e.opts
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return ErrClosed
	}
	now := o.Clock.Now()
	fate := ""
	switch {
	case len(pkt) > o.MTU:
		fate = "mtu-drop"
	case e.cut.on.Load():
		fate = "partitioned"
	case e.drop != nil && e.drop(pkt):
		fate = "rule-drop"
	}
	if fate != "" {
		e.stats.Dropped++
		e.mu.Unlock()
		e.trace(now, fate, len(pkt))
		return nil
	}
	e.stats.Sent++
	// Every packet draws the same numbers in the same order, so a seed
	// replays a run even when the options differ only in probabilities.
	rLoss, rDup, rReorder, rCorrupt, rJitter := e.rng.Float64(), e.rng.Float64(), e.rng.Float64(), e.rng.Float64(), e.rng.Float64()
	if rLoss < o.Loss {
		e.stats.Lost++
		e.mu.Unlock()
		e.trace(now, "lost", len(pkt))
		return nil
	}
	// The bottleneck: serialize after what is already queued.
	depart := now
	if o.Bandwidth > 0 {
		if o.QueueLen > 0 && e.queued >= o.QueueLen {
			e.stats.QueueDrops++
			e.mu.Unlock()
			e.trace(now, "queue-drop", len(pkt))
			return nil
		}
		start := now
		if e.nextFree.After(start) {
			start = e.nextFree
		}
		e.nextFree = start.Add(time.Duration(int64(len(pkt)) * 8 * int64(time.Second) / o.Bandwidth))
		depart = e.nextFree
		e.queued++
	}
	delay := depart.Sub(now) + o.Delay + time.Duration(rJitter*float64(o.Jitter))
	reordered := rReorder < o.Reorder
	if reordered {
		delay += o.ReorderDelay
		e.stats.Reordered++
	}
	cp := append([]byte(nil), pkt...)
	corrupted := rCorrupt < o.Corrupt && len(cp) > 0
	if corrupted {
		bit := e.rng.IntN(len(cp) * 8)
		cp[bit/8] ^= 1 << (bit % 8)
		e.stats.Corrupted++
	}
	dup := rDup < o.Duplicate
	if dup {
		e.stats.Duplicated++
	}
	bottleneck := o.Bandwidth > 0
	e.mu.Unlock()

	if reordered {
		e.trace(now, "reordered", len(cp))
	}
	if corrupted {
		e.trace(now, "corrupted", len(cp))
	}
	e.trace(now, "sent", len(cp))
	if bottleneck {
		o.Clock.AfterFunc(depart.Sub(now), func() {
			e.mu.Lock()
			e.queued--
			e.mu.Unlock()
		})
	}
	e.schedule(delay, cp)
	if dup {
		e.trace(now, "duplicated", len(cp))
		e.schedule(delay+time.Duration(len(cp))*time.Nanosecond+time.Microsecond, append([]byte(nil), cp...))
	}
	return nil
}

// schedule delivers pkt to the peer after d.
func (e *Endpoint) schedule(d time.Duration, pkt []byte) {
	p := e.peer
	e.opts.Clock.AfterFunc(d, func() {
		p.mu.Lock()
		disp, closed := p.d, p.closed
		if disp == nil || closed {
			p.stats.Dropped++
			p.mu.Unlock()
			e.trace(e.opts.Clock.Now(), "closed-drop", len(pkt))
			return
		}
		p.stats.Delivered++
		p.mu.Unlock()
		e.trace(e.opts.Clock.Now(), "delivered", len(pkt))
		disp.DeliverPacket(pkt)
	})
}

// SetDrop installs a drop rule on the packets this endpoint sends: drop is
// called (under the endpoint's lock, so it must not call back into the
// endpoint) with each packet written, and a packet for which it returns
// true is lost: never delivered, counted in Stats.Dropped, and WritePacket
// still returns nil, as a real link loses packets silently. A function
// that returns true for everything is a one-way partition; nil removes the
// rule. The decision is made at write time, so a rule installed later does
// not affect packets already in flight.
func (e *Endpoint) SetDrop(drop func(pkt []byte) bool) {
	e.mu.Lock()
	e.drop = drop
	e.mu.Unlock()
}

// Partition cuts the link both ways for d, after which it heals by itself;
// d <= 0 cuts it until Heal. Packets already in flight still arrive.
func (e *Endpoint) Partition(d time.Duration) {
	c := e.cut
	c.mu.Lock()
	defer c.mu.Unlock()
	c.on.Store(true)
	c.gen++
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	if d > 0 {
		gen := c.gen
		c.timer = e.opts.Clock.AfterFunc(d, func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.gen == gen {
				c.on.Store(false)
				c.timer = nil
			}
		})
	}
}

// Heal ends a partition.
func (e *Endpoint) Heal() {
	c := e.cut
	c.mu.Lock()
	defer c.mu.Unlock()
	c.on.Store(false)
	c.gen++
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
}

// Close detaches the endpoint; packets in flight to it are dropped.
func (e *Endpoint) Close() error {
	e.mu.Lock()
	e.closed = true
	e.d = nil
	e.mu.Unlock()
	return nil
}

// Stats returns the endpoint's counters.
func (e *Endpoint) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stats
}
