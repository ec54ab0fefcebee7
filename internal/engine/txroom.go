package engine

import (
	"sync"
	"sync/atomic"

	"github.com/synstack/synstack/link"
	"github.com/synstack/synstack/tcp"
)

// Room in the link (link.Backpressure), as Linux's TCP Small Queues keep a
// socket's data out of a full qdisc: a connection asks before each data
// segment whether the link's transmit queue takes more (endpoint.Room,
// tcp.RoomHost). When it does not, the host closes its gate: every
// connection that then wants to send data waits in one list, in the order
// it came, and holds its data in its send queue, where it costs nothing,
// instead of having the link drop it and retransmitting it a round trip
// later. The link calls back once its queue has drained
// (resumeThrottled), and the waiting connections send in turn until the
// queue is full again; one that sent and filled it goes to the back of the
// list, behind those that did not get to send, so that connections clocked
// by their ACKs cannot starve one that waits.
//
// The gate is closed only while a call back is due (the link said it had
// no room) or a resume runs, so a waiting connection is always resumed.

var _ tcp.RoomHost = (*endpoint)(nil)

// txWait is the host's gate and list of connections waiting for room in
// the link.
type txWait struct {
	closed atomic.Bool // the gate: data waits, whatever the link says
	// refilled is set by Room when a connection being resumed filled the
	// link again (only the resuming goroutine reads it).
	refilled atomic.Bool

	// resumeMu serializes resumes; it is taken before any shard's lock.
	resumeMu sync.Mutex

	// mu guards list, a leaf taken under a shard's lock (Room).
	mu sync.Mutex
	// +checklocks:mu
	list []*endpoint
}

// Room implements tcp.RoomHost. It is called under ep's shard's lock.
func (ep *endpoint) Room() bool {
	s := ep.sh.s
	bp := s.backpressure
	if bp == nil {
		return true
	}
	t := &s.tx
	// asked: the link was asked, and said it has no room (a call back
	// is then due).
	asked := false
	if ep.resuming || !t.closed.Load() {
		// Its turn, or the gate is open: the link's room decides.
		if bp.TxRoom() {
			return true
		}
		asked = true
		if ep.resuming {
			t.refilled.Store(true)
		}
	}
	// The gate is closed, or the link full. Whether to wait is decided
	// under t.mu, where a resume opens the gate once nobody waits, so a
	// connection never waits behind an open gate with no call back due.
	t.mu.Lock()
	defer t.mu.Unlock()
	if !asked && !t.closed.Load() && bp.TxRoom() {
		return true // the gate opened meanwhile, with room
	}
	// The link said no just now (a call back is due), or the gate is
	// closed (a call back is due, or a resume runs).
	t.closed.Store(true)
	if !ep.throttled {
		ep.throttled = true
		ep.sh.stats.SynstackTxThrottled++ // +checklocksignore: Room runs under ep.sh.mu, held by tcp's caller
		t.list = append(t.list, ep)
	}
	return false
}

// watchBackpressure has l call the host back when its transmit queue has
// room again, if l can say when it has none.
func (s *Host) watchBackpressure(l link.Endpoint) {
	bp, ok := l.(link.Backpressure)
	if !ok {
		return
	}
	s.backpressure = bp
	// The link calls from its writer: resume on another goroutine, so the
	// writer goes on draining while the connections refill the queue.
	bp.OnTxRoom(func() { go s.resumeThrottled() })
}

// resumeThrottled gives the waiting connections their turns, in order,
// until the link is full again or none waits; then it opens the gate.
func (s *Host) resumeThrottled() {
	t := &s.tx
	t.resumeMu.Lock()
	defer t.resumeMu.Unlock()
	for {
		t.mu.Lock()
		waiting := t.list
		t.list = nil
		if len(waiting) == 0 {
			// Nobody waits: open the gate. A connection that closed it
			// since was told no by the link, which will call back.
			t.closed.Store(false)
			t.mu.Unlock()
			return
		}
		t.mu.Unlock()
		t.refilled.Store(false)
		for i, ep := range waiting {
			sent := s.resumeOne(ep)
			if !t.refilled.Load() {
				continue
			}
			// Full again: the rest keep their places at the front,
			// ahead of those that came meanwhile; ep, if it waits
			// again, goes last if it sent, first if it did not.
			rest := waiting[:copy(waiting, waiting[i:])]
			if sent {
				rest = rest[:copy(rest, rest[1:])]
			}
			t.mu.Lock()
			again := false
			for _, w := range t.list {
				if w == ep {
					again = true
					continue
				}
				rest = append(rest, w)
			}
			if again && sent {
				rest = append(rest, ep)
			}
			t.list = rest
			t.mu.Unlock()
			return
		}
	}
}

// resumeOne lets ep send what its windows allow, under its shard's lock
// (and ctl, if it is still in its listener's SYN queue, as its timers are
// ticked: onTimer), and reports whether it sent anything.
func (s *Host) resumeOne(ep *endpoint) (sent bool) {
	sh := ep.sh
	sh.mu.Lock()
	if ep.embryonic() {
		sh.mu.Unlock()
		s.ctl.Lock()
		defer s.ctl.Unlock()
		sh.mu.Lock()
	}
	defer sh.mu.Unlock()
	ep.throttled = false
	if !ep.hashed || s.closed {
		return false
	}
	before := sh.stats.TcpOutSegs
	ep.resuming = true
	ep.conn.Push(s.clock.Now())
	ep.resuming = false
	s.afterLocked(ep)
	return sh.stats.TcpOutSegs != before
}
