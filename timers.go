package synstack

import (
	"container/heap"
	"time"
)

// The stack drives every connection's timers with a single clock timer:
// connections with a deadline sit in a min-heap, and one clock.AfterFunc is
// armed for the earliest. When it fires, every due connection is ticked and
// the timer re-armed. With a clock.Virtual this all runs inside Advance.

// timerHeap is a min-heap of connections by deadline.
type timerHeap []*endpoint

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].deadline < h[j].deadline }
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIndex, h[j].heapIndex = int32(i), int32(j)
}
func (h *timerHeap) Push(x any) {
	ep := x.(*endpoint)
	ep.heapIndex = int32(len(*h))
	*h = append(*h, ep)
}
func (h *timerHeap) Pop() any {
	old := *h
	ep := old[len(old)-1]
	old[len(old)-1] = nil
	ep.heapIndex = -1
	*h = old[:len(old)-1]
	return ep
}

// timerNanos is t in nanoseconds from the stack's timer epoch: the heap
// holds 8-byte deadlines rather than 24-byte times.
func (s *Stack) timerNanos(t time.Time) int64 { return int64(t.Sub(s.timerEpoch)) }

// scheduleLocked re-reads ep's deadline and updates the heap and the
// clock timer.
func (s *Stack) scheduleLocked(ep *endpoint) {
	if s.closed {
		return
	}
	t := ep.conn.Deadline()
	if t.IsZero() {
		s.unscheduleLocked(ep)
		return
	}
	d := s.timerNanos(t)
	if ep.notBefore != 0 && d < ep.notBefore {
		d = ep.notBefore
	}
	switch {
	case ep.heapIndex >= 0:
		if d == ep.deadline {
			return
		}
		ep.deadline = d
		heap.Fix(&s.timers, int(ep.heapIndex))
	default:
		ep.deadline = d
		heap.Push(&s.timers, ep)
	}
	s.armLocked()
}

// unscheduleLocked takes ep out of the heap.
func (s *Stack) unscheduleLocked(ep *endpoint) {
	if ep.heapIndex >= 0 {
		heap.Remove(&s.timers, int(ep.heapIndex))
	}
}

// armLocked makes sure the clock timer fires no later than the earliest
// deadline. A timer armed for a later time is replaced; one armed earlier
// is kept (it re-arms when it fires).
func (s *Stack) armLocked() {
	if s.closed || len(s.timers) == 0 {
		return
	}
	next := s.timerEpoch.Add(time.Duration(s.timers[0].deadline))
	if s.timerArmed && !s.timerAt.After(next) {
		return
	}
	s.timerArmed, s.timerAt = true, next
	d := max(next.Sub(s.clock.Now()), 0)
	if s.timer == nil {
		s.timer = s.clock.AfterFunc(d, s.onTimer)
		return
	}
	s.timer.Reset(d)
}

// onTimer ticks every connection whose deadline has come and re-arms.
// A call the timer made before a Reset moved it may still come: it finds
// nothing due, and re-arms.
func (s *Stack) onTimer() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.timerArmed = false
	now := s.clock.Now()
	nowNs := s.timerNanos(now)
	due := s.due[:0]
	for len(s.timers) > 0 && s.timers[0].deadline <= nowNs {
		due = append(due, heap.Pop(&s.timers).(*endpoint))
	}
	defer func() { clear(due); s.due = due[:0] }()
	for _, ep := range due {
		if !ep.hashed {
			continue
		}
		ep.conn.Tick(now)
		if d := ep.conn.Deadline(); !d.IsZero() && !d.After(now) {
			// A connection must move its deadline past now when
			// ticked; never spin on one that does not.
			ep.notBefore = nowNs + int64(time.Millisecond)
		}
		s.afterLocked(ep)
	}
	s.armLocked()
}
