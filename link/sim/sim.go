// Package sim is a simulated network with faults: delay and jitter, loss,
// duplication, reordering, corruption, a bandwidth bottleneck with a
// bounded queue, and partitions that heal. Every random decision comes from
// one generator per direction of each link, seeded from Options.Seed, so a
// run replays exactly from its seed.
//
// Pair is one link between two endpoints; Network joins any number of
// endpoints like a switch, by destination IP address, with options per
// direction of every pair of nodes and partitions between chosen nodes;
// Bridge puts the same faults between two other links (two TUN devices,
// in synstack impair).
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
//
// On every clock, packets of one direction that fall due at the same
// instant arrive in the order they were sent: only Jitter and Reorder
// reorder them.
package sim

import (
	"container/heap"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/synstack/synstack/clock"
	"github.com/synstack/synstack/link"
)

// Options describe one direction of a link (Pair uses them for both;
// PairWith takes one per direction; a Network uses them for every
// direction SetLink does not set). Zero values mean: the real clock, no
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
	Dir  string // "a>b" or "b>a" for a Pair; "from>to" (node names) in a Network, "from>?" for no-route
	What string // sent, delivered, lost, corrupted, duplicated, reordered, queue-drop, mtu-drop, partitioned, rule-drop, closed-drop, no-route
	Len  int
}

// Stats counts what happened to the packets an endpoint sent (Delivered
// counts those it received, and Dropped also those that arrived after it
// was closed).
type Stats struct {
	Sent, Delivered, Dropped                           uint64
	Lost, Duplicated, Reordered, Corrupted, QueueDrops uint64
}

// ErrClosed is returned by WritePacket after Close.
var ErrClosed = errors.New("sim: link closed")

// Endpoint is one end of a simulated link, or one node of a Network. It
// implements link.Endpoint.
type Endpoint struct {
	name string
	mtu  int
	out  *path    // a Pair's endpoint: the direction it sends on
	net  *Network // a Network's node: routes by destination address

	// mu guards the fields below and the sending state (generator,
	// bottleneck, counters) of every path this endpoint sends on.
	mu     sync.Mutex
	d      link.Dispatcher
	closed bool
	stats  Stats // what it sent, summed over its paths, and what it received
	drop   func(pkt []byte) bool
}

var _ link.Endpoint = (*Endpoint)(nil)

// path is one direction between two endpoints: its options (fixed once
// made), its faults' generator and bottleneck (guarded by from.mu), and
// the packets in flight.
type path struct {
	from, to  *Endpoint
	dir       string
	opts      Options
	rng       *rand.Rand
	nextFree  time.Time // when the bottleneck is free again
	queued    int       // packets waiting for or on the bottleneck
	stats     Stats     // this direction's share of from.stats (but Delivered)
	delivered uint64    // packets delivered to to (guarded by to.mu)
	cut       *partition

	// Packets in flight, delivered in (due, seq) order: each timer
	// delivers every packet due no later than its own, so packets due at
	// the same instant keep their order even when the real clock's timer
	// goroutines run out of order. qmu guards q and seq; dmu is held while
	// delivering, so that deliveries of one direction never overlap.
	qmu sync.Mutex
	q   flightHeap
	seq uint64
	dmu sync.Mutex
}

// partition is the state the two directions between two endpoints share:
// a partition cuts both ways.
type partition struct {
	on    atomic.Bool
	mu    sync.Mutex
	timer clock.Timer
	gen   uint64
}

// cut partitions the link, for d if d > 0 (then it heals itself).
func (c *partition) cut(clk clock.Clock, d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setLocked(true)
	if d > 0 {
		gen := c.gen
		c.timer = clk.AfterFunc(d, func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.gen == gen {
				c.on.Store(false)
				c.timer = nil
			}
		})
	}
}

// heal ends the partition.
func (c *partition) heal() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setLocked(false)
}

// setLocked turns the partition on or off and cancels a pending self-heal
// (its generation is past). c.mu is held.
func (c *partition) setLocked(on bool) {
	c.on.Store(on)
	c.gen++
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
}

// Pair returns the two ends of a link with the same options both ways.
func Pair(opts Options) (a, b *Endpoint) { return PairWith(opts, opts) }

// PairWith returns the two ends of a link: ab applies to what a sends, ba
// to what b sends. Their clocks must be the same one.
func PairWith(ab, ba Options) (a, b *Endpoint) {
	ab = withDefaults(ab)
	if ba.Clock == nil {
		ba.Clock = ab.Clock
	}
	ba = withDefaults(ba)
	a = &Endpoint{name: "a", mtu: ab.MTU}
	b = &Endpoint{name: "b", mtu: ba.MTU}
	cut := &partition{}
	a.out = newPath(a, b, ab, 1, cut)
	b.out = newPath(b, a, ba, 2, cut)
	return a, b
}

func withDefaults(o Options) Options {
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.MTU == 0 {
		o.MTU = 1500
	}
	if o.ReorderDelay <= 0 {
		o.ReorderDelay = max(o.Delay, time.Millisecond)
	}
	return o
}

func newPath(from, to *Endpoint, o Options, stream uint64, cut *partition) *path {
	return &path{from: from, to: to, dir: from.name + ">" + to.name, opts: o, cut: cut,
		rng: rand.New(rand.NewPCG(o.Seed, o.Seed^(0x9e3779b97f4a7c15*stream)))}
}

// MTU returns the link's MTU.
func (e *Endpoint) MTU() int { return e.mtu }

// Name returns the endpoint's name: "a" or "b" for a Pair, the node's name
// in a Network.
func (e *Endpoint) Name() string { return e.name }

// Attach starts delivery to d.
func (e *Endpoint) Attach(d link.Dispatcher) {
	e.mu.Lock()
	e.d = d
	e.mu.Unlock()
}

func (p *path) trace(now time.Time, what string, n int) {
	if p.opts.Trace != nil {
		p.opts.Trace(Event{Time: now, Dir: p.dir, What: what, Len: n})
	}
}

// WritePacket copies pkt and sends it towards the other end (in a
// Network: the node that has its destination address) through the link's
// faults. It never blocks and never fails but after Close: a packet the
// link loses is lost silently, as on a real network.
func (e *Endpoint) WritePacket(pkt []byte) error {
	p := e.out
	if p == nil {
		p = e.net.route(e, pkt)
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return ErrClosed
	}
	if p == nil {
		e.stats.Dropped++
		clk, tr := e.net.opts.Clock, e.net.opts.Trace
		e.mu.Unlock()
		if tr != nil {
			tr(Event{Time: clk.Now(), Dir: e.name + ">?", What: "no-route", Len: len(pkt)})
		}
		return nil
	}
	o := &p.opts
	now := o.Clock.Now()
	fate := ""
	switch {
	case len(pkt) > o.MTU:
		fate = "mtu-drop"
	case p.cut.on.Load():
		fate = "partitioned"
	case e.drop != nil && e.drop(pkt):
		fate = "rule-drop"
	}
	if fate != "" {
		return e.dropUnlock(p, now, fate, len(pkt), func(s *Stats) { s.Dropped++ })
	}
	e.stats.Sent++
	p.stats.Sent++
	// Every packet draws the same numbers in the same order, so a seed
	// replays a run even when the options differ only in probabilities.
	rLoss, rDup, rReorder, rCorrupt, rJitter := p.rng.Float64(), p.rng.Float64(), p.rng.Float64(), p.rng.Float64(), p.rng.Float64()
	if rLoss < o.Loss {
		return e.dropUnlock(p, now, "lost", len(pkt), func(s *Stats) { s.Lost++ })
	}
	// The bottleneck: serialize after what is already queued.
	depart := now
	if o.Bandwidth > 0 {
		if o.QueueLen > 0 && p.queued >= o.QueueLen {
			return e.dropUnlock(p, now, "queue-drop", len(pkt), func(s *Stats) { s.QueueDrops++ })
		}
		start := now
		if p.nextFree.After(start) {
			start = p.nextFree
		}
		p.nextFree = start.Add(time.Duration(int64(len(pkt)) * 8 * int64(time.Second) / o.Bandwidth))
		depart = p.nextFree
		p.queued++
	}
	delay := depart.Sub(now) + o.Delay + time.Duration(rJitter*float64(o.Jitter))
	reordered := rReorder < o.Reorder
	if reordered {
		delay += o.ReorderDelay
		e.stats.Reordered++
		p.stats.Reordered++
	}
	cp := append([]byte(nil), pkt...)
	corrupted := rCorrupt < o.Corrupt && len(cp) > 0
	if corrupted {
		bit := p.rng.IntN(len(cp) * 8)
		cp[bit/8] ^= 1 << (bit % 8)
		e.stats.Corrupted++
		p.stats.Corrupted++
	}
	dup := rDup < o.Duplicate
	if dup {
		e.stats.Duplicated++
		p.stats.Duplicated++
	}
	bottleneck := o.Bandwidth > 0
	clk := o.Clock
	e.mu.Unlock()

	if reordered {
		p.trace(now, "reordered", len(cp))
	}
	if corrupted {
		p.trace(now, "corrupted", len(cp))
	}
	p.trace(now, "sent", len(cp))
	if bottleneck {
		clk.AfterFunc(depart.Sub(now), func() {
			e.mu.Lock()
			p.queued--
			e.mu.Unlock()
		})
	}
	p.schedule(clk, now, delay, cp)
	if dup {
		p.trace(now, "duplicated", len(cp))
		p.schedule(clk, now, delay+time.Duration(len(cp))*time.Nanosecond+time.Microsecond, append([]byte(nil), cp...))
	}
	return nil
}

// dropUnlock ends WritePacket for a packet of n bytes that p does not
// carry: count adds it to the endpoint's and the path's Stats, e.mu (held)
// is unlocked, and the drop is traced as fate. Like every drop, it is no
// error.
func (e *Endpoint) dropUnlock(p *path, now time.Time, fate string, n int, count func(*Stats)) error {
	count(&e.stats)
	count(&p.stats)
	e.mu.Unlock()
	p.trace(now, fate, n)
	return nil
}

// inFlight is a packet on its way.
type inFlight struct {
	due time.Time
	seq uint64
	pkt []byte
}

func (f *inFlight) before(o *inFlight) bool {
	if f.due.Equal(o.due) {
		return f.seq < o.seq
	}
	return f.due.Before(o.due)
}

type flightHeap []*inFlight

func (h flightHeap) Len() int           { return len(h) }
func (h flightHeap) Less(i, j int) bool { return h[i].before(h[j]) }
func (h flightHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *flightHeap) Push(x any)        { *h = append(*h, x.(*inFlight)) }
func (h *flightHeap) Pop() any {
	old := *h
	f := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return f
}

// schedule delivers pkt to the far end d after now.
func (p *path) schedule(clk clock.Clock, now time.Time, d time.Duration, pkt []byte) {
	p.qmu.Lock()
	p.seq++
	f := &inFlight{due: now.Add(d), seq: p.seq, pkt: pkt}
	heap.Push(&p.q, f)
	p.qmu.Unlock()
	clk.AfterFunc(d, func() { p.deliverUpTo(clk, f) })
}

// deliverUpTo delivers, in order, every packet in flight due no later
// than last (last itself included, unless an earlier call took it).
func (p *path) deliverUpTo(clk clock.Clock, last *inFlight) {
	p.dmu.Lock()
	defer p.dmu.Unlock()
	for {
		p.qmu.Lock()
		if len(p.q) == 0 || last.before(p.q[0]) {
			p.qmu.Unlock()
			return
		}
		f := heap.Pop(&p.q).(*inFlight)
		p.qmu.Unlock()
		p.deliver(clk, f.pkt)
	}
}

func (p *path) deliver(clk clock.Clock, pkt []byte) {
	to := p.to
	to.mu.Lock()
	disp, closed := to.d, to.closed
	if disp == nil || closed {
		to.stats.Dropped++
		to.mu.Unlock()
		p.trace(clk.Now(), "closed-drop", len(pkt))
		return
	}
	to.stats.Delivered++
	p.delivered++
	to.mu.Unlock()
	p.trace(clk.Now(), "delivered", len(pkt))
	disp.DeliverPacket(pkt)
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

// cuts returns the partitions of every direction the endpoint is on.
func (e *Endpoint) cuts() []*partition {
	if e.out != nil {
		return []*partition{e.out.cut}
	}
	return e.net.cutsOf(e)
}

func (e *Endpoint) clock() clock.Clock {
	if e.out != nil {
		return e.out.opts.Clock
	}
	return e.net.opts.Clock
}

// Partition cuts the link both ways for d, after which it heals by itself;
// d <= 0 cuts it until Heal. In a Network it cuts this node from every
// node the network has now (not from nodes added later). Packets already
// in flight still arrive.
func (e *Endpoint) Partition(d time.Duration) {
	for _, c := range e.cuts() {
		c.cut(e.clock(), d)
	}
}

// Heal ends a partition (in a Network: every partition between this node
// and the others).
func (e *Endpoint) Heal() {
	for _, c := range e.cuts() {
		c.heal()
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
