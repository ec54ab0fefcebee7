// Package clock gives the stack its time: the real clock, or a virtual one that
// only moves when a test or a packet script moves it, so that a 60 s TIME_WAIT
// passes in microseconds.
package clock

import (
	"container/heap"
	"sync"
	"time"
)

// Clock tells the time and runs a function after a delay.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// AfterFunc calls f in its own goroutine (real clock) or from Advance
	// (virtual clock) once d has passed.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending AfterFunc call.
type Timer interface {
	// Stop prevents the call if it has not happened yet and reports whether it did so.
	Stop() bool
	// Reset schedules the call again for d from now, whether or not it
	// has happened (as time.Timer.Reset for an AfterFunc timer), and
	// reports whether it was still pending. A stack re-arms one timer
	// this way instead of allocating a new one.
	Reset(d time.Duration) bool
}

// Real is the wall clock, through package time (and so also the fake clock of
// a testing/synctest bubble).
type Real struct{}

// Now returns time.Now().
func (Real) Now() time.Time { return time.Now() }

// AfterFunc is time.AfterFunc.
func (Real) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// Virtual is a clock that moves only when Advance or AdvanceTo is called.
// Timer functions run synchronously inside those calls, in deadline order, with
// Now reporting each timer's own deadline while it runs. It is safe for
// concurrent use, but timer functions must not call Advance themselves.
type Virtual struct {
	mu     sync.Mutex
	now    time.Time
	timers timerHeap
	seq    uint64
}

// NewVirtual returns a virtual clock that reads start.
func NewVirtual(start time.Time) *Virtual { return &Virtual{now: start} }

// Now returns the virtual time.
func (v *Virtual) Now() time.Time {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.now
}

// AfterFunc schedules f at Now()+d. A d <= 0 runs at the next Advance.
func (v *Virtual) AfterFunc(d time.Duration, f func()) Timer {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.seq++
	t := &vtimer{clock: v, when: v.now.Add(d), f: f, seq: v.seq, index: -1}
	heap.Push(&v.timers, t)
	return t
}

// Advance moves the clock forward by d, running every timer that falls due.
func (v *Virtual) Advance(d time.Duration) { v.AdvanceTo(v.Now().Add(d)) }

// AdvanceTo moves the clock to t (never backwards), running every timer due at
// or before t in deadline order, including timers those functions schedule.
func (v *Virtual) AdvanceTo(t time.Time) {
	for {
		v.mu.Lock()
		if len(v.timers) == 0 || v.timers[0].when.After(t) {
			if t.After(v.now) {
				v.now = t
			}
			v.mu.Unlock()
			return
		}
		next := heap.Pop(&v.timers).(*vtimer)
		if next.when.After(v.now) {
			v.now = next.when
		}
		v.mu.Unlock()
		next.f()
	}
}

// Next returns the deadline of the earliest pending timer, if any.
func (v *Virtual) Next() (time.Time, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.timers) == 0 {
		return time.Time{}, false
	}
	return v.timers[0].when, true
}

type vtimer struct {
	clock *Virtual
	when  time.Time
	f     func()
	seq   uint64
	index int
}

func (t *vtimer) Stop() bool {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	if t.index < 0 {
		return false
	}
	heap.Remove(&t.clock.timers, t.index)
	return true
}

func (t *vtimer) Reset(d time.Duration) bool {
	v := t.clock
	v.mu.Lock()
	defer v.mu.Unlock()
	pending := t.index >= 0
	if pending {
		heap.Remove(&v.timers, t.index)
	}
	v.seq++
	t.when, t.seq = v.now.Add(d), v.seq
	heap.Push(&v.timers, t)
	return pending
}

type timerHeap []*vtimer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if h[i].when.Equal(h[j].when) {
		return h[i].seq < h[j].seq
	}
	return h[i].when.Before(h[j].when)
}
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *timerHeap) Push(x any) {
	t := x.(*vtimer)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	t.index = -1
	*h = old[:len(old)-1]
	return t
}
