package trace

import (
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/synstack/synstack/clock"
)

// Subscriber receives events. Event is called synchronously from the code
// that produced the event (for a stack hook: under the stack's lock), so it
// must be quick and must not call back into the producer. The event and its
// Packet belong to the subscriber.
type Subscriber interface {
	Event(ev Event)
}

// Func adapts a function to a Subscriber.
type Func func(ev Event)

// Event calls f(ev).
func (f Func) Event(ev Event) { f(ev) }

// Tracer hands events to its subscribers. With no subscriber every method
// returns after one atomic load: no clock read, no copy, no allocation (see
// BenchmarkHookIdle), so hooks can stay installed in production. The zero
// value is ready to use (timestamps then come from the real clock); a nil
// *Tracer is a tracer without subscribers. It is safe for concurrent use.
type Tracer struct {
	// Clock stamps events emitted without a time. Default clock.Real{}.
	Clock clock.Clock

	mu   sync.Mutex             // serializes Subscribe and cancel
	subs atomic.Pointer[[]*sub] // the subscribers; nil when nobody listens
}

type sub struct{ s Subscriber }

// NewTracer returns a tracer stamping events with clk.
func NewTracer(clk clock.Clock) *Tracer { return &Tracer{Clock: clk} }

// Enabled reports whether anybody listens. Producers check it before
// building an event that costs something to build.
func (t *Tracer) Enabled() bool { return t != nil && t.subs.Load() != nil }

// Subscribe adds s; the returned function removes it.
func (t *Tracer) Subscribe(s Subscriber) (cancel func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	entry := &sub{s}
	var list []*sub
	if p := t.subs.Load(); p != nil {
		list = append(list, *p...)
	}
	list = append(list, entry)
	t.subs.Store(&list)
	return func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		p := t.subs.Load()
		if p == nil {
			return
		}
		var rest []*sub
		for _, e := range *p {
			if e != entry {
				rest = append(rest, e)
			}
		}
		if len(rest) == 0 {
			t.subs.Store(nil)
		} else {
			t.subs.Store(&rest)
		}
	}
}

// Emit hands ev to every subscriber, stamping it with the clock's time if
// ev.Time is zero.
func (t *Tracer) Emit(ev Event) {
	if t == nil {
		return
	}
	p := t.subs.Load()
	if p == nil {
		return
	}
	if ev.Time.IsZero() {
		ev.Time = t.now()
	}
	for _, e := range *p {
		e.s.Event(ev)
	}
}

func (t *Tracer) now() time.Time {
	if t.Clock == nil {
		return time.Now()
	}
	return t.Clock.Now()
}

// Packet emits a PacketOut (dir "out") or PacketIn (any other dir) event
// for host, with a copy of pkt. Its signature is that of a stack's
// OnPacket hook less the host: see PacketHook.
func (t *Tracer) Packet(host, dir string, pkt []byte) {
	if !t.Enabled() {
		return
	}
	k := PacketIn
	if dir == "out" {
		k = PacketOut
	}
	t.Emit(Event{Host: host, Kind: k, Packet: append([]byte(nil), pkt...)})
}

// PacketHook returns a function for a stack's packet hook
// (synstack.Config.OnPacket) that emits host's packets.
func (t *Tracer) PacketHook(host string) func(dir string, pkt []byte) {
	return func(dir string, pkt []byte) { t.Packet(host, dir, pkt) }
}

// Transition emits a Transition event. from and to are states (any
// fmt.Stringer, such as tcp.State); their names are only computed when
// somebody listens.
func (t *Tracer) Transition(host string, local, remote netip.AddrPort, from, to fmt.Stringer, cause string) {
	if !t.Enabled() {
		return
	}
	t.Emit(Event{Host: host, Kind: Transition, From: from.String(), To: to.String(),
		Cause: cause, Local: local, Remote: remote})
}

// TransitionHook returns a function for a stack's transition hook: with S
// and C the stack's state and cause types,
//
//	cfg.OnTransition = trace.TransitionHook[tcp.State, tcp.Cause](tr, "server")
func TransitionHook[S fmt.Stringer, C ~string](t *Tracer, host string) func(local, remote netip.AddrPort, from, to S, cause C) {
	return func(local, remote netip.AddrPort, from, to S, cause C) {
		if !t.Enabled() {
			return
		}
		t.Emit(Event{Host: host, Kind: Transition, From: from.String(), To: to.String(),
			Cause: string(cause), Local: local, Remote: remote})
	}
}
