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

// Observer fans the stack's transitions out to subscribers (the /events
// streams). Its OnTransition method is the stack's Config.OnTransition: it
// runs under the stack's lock, so it never blocks and starts no goroutine:
// a subscriber whose buffer is full misses the transition, which is
// counted. With no subscriber it costs one atomic load.
//
// An Observer may serve several stacks; the zero Observer is not ready to
// use, NewObserver makes one.
type Observer struct {
	mu   sync.Mutex                      // serializes changes of subs
	subs atomic.Pointer[[]*Subscription] // copy on write: OnTransition reads it without a lock

	seen    atomic.Uint64
	dropped atomic.Uint64
}

// NewObserver returns an Observer with no subscriber.
func NewObserver() *Observer {
	o := &Observer{}
	o.subs.Store(new([]*Subscription))
	return o
}

// OnTransition has the signature of synstack.Config.OnTransition: set it
// there.
func (o *Observer) OnTransition(local, remote netip.AddrPort, from, to tcp.State, cause tcp.Cause) {
	o.seen.Add(1)
	subs := *o.subs.Load()
	if len(subs) == 0 {
		return
	}
	ev := Transition{Time: time.Now(), Local: local, Remote: remote, From: from, To: to, Cause: cause}
	for _, s := range subs {
		select {
		case s.ch <- ev:
		default:
			s.dropped.Add(1)
			o.dropped.Add(1)
		}
	}
}

// Subscription receives transitions from an Observer until Close.
type Subscription struct {
	o       *Observer
	ch      chan Transition
	dropped atomic.Uint64
	once    sync.Once
}

// Subscribe returns a subscription whose channel buffers n transitions
// (at least 1); the ones arriving while it is full are dropped and
// counted.
func (o *Observer) Subscribe(n int) *Subscription {
	s := &Subscription{o: o, ch: make(chan Transition, max(n, 1))}
	o.mu.Lock()
	defer o.mu.Unlock()
	subs := append(slices.Clone(*o.subs.Load()), s)
	o.subs.Store(&subs)
	return s
}

// C returns the channel the transitions arrive on. It is never closed.
func (s *Subscription) C() <-chan Transition { return s.ch }

// Dropped returns how many transitions this subscription missed.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Close ends the subscription. It is safe to call more than once.
func (s *Subscription) Close() {
	s.once.Do(func() {
		o := s.o
		o.mu.Lock()
		defer o.mu.Unlock()
		subs := slices.DeleteFunc(slices.Clone(*o.subs.Load()), func(x *Subscription) bool { return x == s })
		o.subs.Store(&subs)
	})
}

// Seen returns how many transitions the Observer has been told of.
func (o *Observer) Seen() uint64 { return o.seen.Load() }

// Dropped returns how many transitions subscribers missed, all together.
func (o *Observer) Dropped() uint64 { return o.dropped.Load() }

// Subscribers returns the number of open subscriptions.
func (o *Observer) Subscribers() int { return len(*o.subs.Load()) }
