package admin

import (
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/synstack/synstack/tcp"
)

// Transition is one state change of one connection, as the stack reports
// it to Config.OnTransition, with the wall-clock time the Observer saw it.
type Transition struct {
	Time          time.Time
	Local, Remote netip.AddrPort
	From, To      tcp.State
	Cause         tcp.Cause
}

// ObserverQueue is how many transitions an Observer holds for its fan-out
// goroutine; the ones arriving while it is full are lost to every
// subscriber, and counted (Observer.Dropped).
const ObserverQueue = 1024

// Observer fans the stack's transitions out to subscribers (the /events
// streams). Its OnTransition method is the stack's Config.OnTransition: it
// runs under a lock of the stack on the packet path, so it does O(1) work
// that never blocks: it puts the transition in the Observer's bounded
// queue (ObserverQueue). A goroutine of the Observer, running while it has
// subscribers, hands each transition to every subscriber's own bounded
// queue; a subscriber whose queue is full is dropped (its channel closed,
// counted in Evicted), so a slow one never holds back the others, the
// stack, or memory. With no subscriber OnTransition costs one atomic load.
//
// An Observer may serve several stacks; the zero Observer is not ready to
// use, NewObserver makes one.
type Observer struct {
	in   chan Transition // OnTransition's queue, read by the fan-out goroutine
	kick chan struct{}   // wakes the fan-out goroutine to see whether subscribers are left

	mu      sync.Mutex                      // serializes changes of subs and running
	subs    atomic.Pointer[[]*Subscription] // copy on write: read without a lock
	running bool                            // a fan-out goroutine runs (under mu)

	seen    atomic.Uint64
	dropped atomic.Uint64 // transitions lost: in was full
	evicted atomic.Uint64 // subscriptions dropped: their queue was full
}

// NewObserver returns an Observer with no subscriber.
func NewObserver() *Observer {
	o := &Observer{in: make(chan Transition, ObserverQueue), kick: make(chan struct{}, 1)}
	o.subs.Store(new([]*Subscription))
	return o
}

// OnTransition has the signature of synstack.Config.OnTransition: set it
// there.
func (o *Observer) OnTransition(local, remote netip.AddrPort, from, to tcp.State, cause tcp.Cause) {
	o.seen.Add(1)
	if len(*o.subs.Load()) == 0 {
		return
	}
	select {
	case o.in <- Transition{Time: time.Now(), Local: local, Remote: remote, From: from, To: to, Cause: cause}:
	default:
		o.dropped.Add(1)
	}
}

// fanOut is the Observer's goroutine: it hands each queued transition to
// every subscriber, and returns once none is left.
func (o *Observer) fanOut() {
	for {
		select {
		case ev := <-o.in:
			o.deliver(ev)
		case <-o.kick:
		}
		if len(*o.subs.Load()) == 0 && o.stop() {
			return
		}
	}
}

// deliver hands ev to every subscriber with room for it, and drops the
// others.
func (o *Observer) deliver(ev Transition) {
	var full []*Subscription
	for _, s := range *o.subs.Load() {
		select {
		case s.ch <- ev:
		default:
			full = append(full, s)
		}
	}
	if len(full) > 0 {
		o.evict(full)
	}
}

// evict drops the subscriptions, whose queues are full: they leave the
// subscribers, and their channels are closed (the fan-out goroutine is
// their only sender). A subscription its owner closed already is left
// alone.
func (o *Observer) evict(full []*Subscription) {
	o.mu.Lock()
	defer o.mu.Unlock()
	full = slices.DeleteFunc(full, func(s *Subscription) bool { return s.closed })
	for _, s := range full {
		s.closed = true
	}
	subs := slices.DeleteFunc(slices.Clone(*o.subs.Load()), func(x *Subscription) bool { return x.closed })
	o.subs.Store(&subs)
	// Counted once they are gone from Subscribers.
	for _, s := range full {
		s.evicted.Store(true)
		close(s.ch)
		o.evicted.Add(1)
	}
}

// stop ends the fan-out goroutine if no subscriber is left.
func (o *Observer) stop() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(*o.subs.Load()) > 0 {
		return false
	}
	o.running = false
	return true
}

// Subscription receives transitions from an Observer until Close, or
// until it is dropped for falling behind.
type Subscription struct {
	o       *Observer
	ch      chan Transition
	closed  bool // left the subscribers (under o.mu)
	evicted atomic.Bool
}

// Subscribe returns a subscription whose channel queues n transitions (at
// least 1). When a transition finds the queue full, the subscription is
// dropped: its channel is closed after the n queued, and Evicted reports
// true.
func (o *Observer) Subscribe(n int) *Subscription {
	s := &Subscription{o: o, ch: make(chan Transition, max(n, 1))}
	o.mu.Lock()
	defer o.mu.Unlock()
	subs := append(slices.Clone(*o.subs.Load()), s)
	o.subs.Store(&subs)
	if !o.running {
		// Transitions queued while nobody listened are stale.
		for len(o.in) > 0 {
			<-o.in
		}
		o.running = true
		go o.fanOut()
	}
	return s
}

// C returns the channel the transitions arrive on. It is closed when the
// subscription is dropped for falling behind (Evicted), not by Close.
func (s *Subscription) C() <-chan Transition { return s.ch }

// Evicted reports whether the subscription was dropped because its queue
// was full.
func (s *Subscription) Evicted() bool { return s.evicted.Load() }

// Close ends the subscription. It is safe to call more than once, and
// after the subscription was dropped.
func (s *Subscription) Close() {
	o := s.o
	o.mu.Lock()
	defer o.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	subs := slices.DeleteFunc(slices.Clone(*o.subs.Load()), func(x *Subscription) bool { return x == s })
	o.subs.Store(&subs)
	select {
	case o.kick <- struct{}{}:
	default:
	}
}

// Seen returns how many transitions the Observer has been told of.
func (o *Observer) Seen() uint64 { return o.seen.Load() }

// Dropped returns how many transitions no subscriber received because the
// Observer's own queue was full (the fan-out goroutine fell behind).
func (o *Observer) Dropped() uint64 { return o.dropped.Load() }

// Evicted returns how many subscriptions were dropped because their queue
// was full.
func (o *Observer) Evicted() uint64 { return o.evicted.Load() }

// Subscribers returns the number of open subscriptions.
func (o *Observer) Subscribers() int { return len(*o.subs.Load()) }
