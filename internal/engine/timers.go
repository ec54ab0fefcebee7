package engine

import (
	"container/heap"
	"time"
)

// Each shard drives its connections' timers with a single clock timer:
// connections with a deadline sit in the shard's min-heap, and one
// clock.AfterFunc is armed for the earliest. When it fires, every due
// connection is ticked and the timer re-armed. With a clock.Virtual this
// all runs inside Advance.

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
func (s *Host) timerNanos(t time.Time) int64 { return int64(t.Sub(s.timerEpoch)) }

// scheduleLocked re-reads ep's deadline and updates its shard's heap and
// clock timer. It needs ep's shard's lock.
//
// +checklocks:ep.sh.mu
func (s *Host) scheduleLocked(ep *endpoint) {
	sh := ep.sh
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
		heap.Fix(&sh.timers, int(ep.heapIndex))
	default:
		ep.deadline = d
		heap.Push(&sh.timers, ep)
	}
	sh.armLocked()
}

// unscheduleLocked takes ep out of its shard's heap.
//
// +checklocks:ep.sh.mu
func (s *Host) unscheduleLocked(ep *endpoint) {
	if ep.heapIndex >= 0 {
		heap.Remove(&ep.sh.timers, int(ep.heapIndex))
	}
	if sh := ep.sh; len(sh.timers) == 0 && sh.timerArmed {
		// Nothing left to wait for: a clock timer that would fire to
		// find nothing due is stopped (a virtual clock, as the
		// playground's, would show it pending). One armed early for a
		// deadline that moved later is still kept (armLocked).
		sh.timer.Stop()
		sh.timerArmed = false
	}
}

// armLocked makes sure the clock timer fires no later than the earliest
// deadline. A timer armed for a later time is replaced; one armed earlier
// is kept (it re-arms when it fires).
//
// +checklocks:sh.mu
func (sh *shard) armLocked() {
	s := sh.s
	if s.closed || len(sh.timers) == 0 {
		return
	}
	next := s.timerEpoch.Add(time.Duration(sh.timers[0].deadline))
	if sh.timerArmed && !sh.timerAt.After(next) {
		return
	}
	sh.timerArmed, sh.timerAt = true, next
	d := max(next.Sub(s.clock.Now()), 0)
	if sh.timer == nil {
		sh.timer = s.clock.AfterFunc(d, sh.onTimer)
		return
	}
	sh.timer.Reset(d)
}

// stopTimersLocked stops the shard's clock timer and forgets its
// deadlines, for good (Host.Close).
//
// +checklocks:sh.mu
func (sh *shard) stopTimersLocked() {
	if sh.timer != nil {
		sh.timer.Stop()
		sh.timerArmed = false
	}
	sh.timers = nil
}

// onTimer ticks every connection of the shard whose deadline has come
// and re-arms. A call the timer made before a Reset moved it may still
// come: it finds nothing due, and re-arms. A child connection still in
// its listener's SYN queue is ticked afterwards under ctl too, since what
// happens to it changes the listener's queues.
func (sh *shard) onTimer() {
	s := sh.s
	sh.mu.Lock()
	if s.closed {
		sh.mu.Unlock()
		return
	}
	sh.timerArmed = false
	now := s.clock.Now()
	nowNs := s.timerNanos(now)
	due := sh.due[:0]
	for len(sh.timers) > 0 && sh.timers[0].deadline <= nowNs {
		due = append(due, heap.Pop(&sh.timers).(*endpoint))
	}
	embryos := 0
	for _, ep := range due {
		if !ep.hashed {
			continue
		}
		if ep.embryonic() {
			due[embryos] = ep
			embryos++
			continue
		}
		s.tickLocked(ep, now, nowNs)
	}
	sh.armLocked()
	if embryos == 0 {
		clear(due)
		sh.due = due[:0]
		sh.mu.Unlock()
		return
	}
	// Take the embryonic ones out of sh.due: another onTimer may run as
	// soon as the lock is released. They are ticked under ctl (and sh).
	sh.due = nil
	sh.mu.Unlock()
	s.ctl.Lock()
	sh.mu.Lock()
	if !s.closed {
		for _, ep := range due[:embryos] {
			if ep.hashed {
				s.tickLocked(ep, now, nowNs)
			}
		}
	}
	clear(due)
	if sh.due == nil {
		sh.due = due[:0]
	}
	sh.mu.Unlock()
	s.ctl.Unlock()
}

// tickLocked ticks ep at now (nowNs from the timer epoch).
func (s *Host) tickLocked(ep *endpoint, now time.Time, nowNs int64) {
	ep.conn.Tick(now)
	if d := ep.conn.Deadline(); !d.IsZero() && !d.After(now) {
		// A connection must move its deadline past now when
		// ticked; never spin on one that does not.
		ep.notBefore = nowNs + int64(time.Millisecond)
	}
	s.afterLocked(ep)
}
