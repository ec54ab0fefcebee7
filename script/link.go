package script

import (
	"errors"
	"syscall"
	"time"

	"github.com/synstack/synstack/clock"
	"github.com/synstack/synstack/link"
)

// testLink is the synchronous link between the runner and the stack.
type testLink struct {
	mtu    int
	clock  *clock.Virtual
	out    func(pkt []byte, at time.Time)
	d      link.Dispatcher
	closed bool

	// full models a queue that takes nothing (tc qdisc ... pfifo limit
	// 0): the link has no room for data (link.Backpressure) and drops
	// whatever is written. roomDue: TxRoom said no, so the stack waits
	// for onRoom.
	full, roomDue bool
	onRoom        func()
	dropped       int
}

var (
	_ link.Endpoint     = (*testLink)(nil)
	_ link.Backpressure = (*testLink)(nil)
)

// TxRoom reports whether the link takes data (link.Backpressure).
func (l *testLink) TxRoom() bool {
	if l.full {
		l.roomDue = true
	}
	return !l.full
}

// OnTxRoom stores the stack's call back for when room returns.
func (l *testLink) OnTxRoom(f func()) { l.onRoom = f }

// setFull starts or ends the queue that takes nothing. Ending it while
// the stack waits for room is refused: the stack resumes on a goroutine
// of its own, which the virtual clock cannot order.
func (l *testLink) setFull(full bool) error {
	if !full && l.full && l.roomDue {
		return errors.New("a queue that took nothing while data waited cannot be removed (the stack's resume is not on the virtual clock)")
	}
	l.full = full
	return nil
}

// MTU returns the link MTU.
func (l *testLink) MTU() int { return l.mtu }

// Attach stores the stack's dispatcher.
func (l *testLink) Attach(d link.Dispatcher) { l.d = d }

// WritePacket records a copy of pkt with the virtual time.
func (l *testLink) WritePacket(pkt []byte) error {
	if l.closed {
		return syscall.EPIPE
	}
	if l.full {
		l.dropped++
		return nil
	}
	l.out(append([]byte(nil), pkt...), l.clock.Now())
	return nil
}

// Close detaches the dispatcher.
func (l *testLink) Close() error {
	l.closed = true
	l.d = nil
	return nil
}

// deliver hands an inbound packet to the stack, synchronously.
func (l *testLink) deliver(pkt []byte) {
	if l.d != nil && !l.closed {
		l.d.DeliverPacket(pkt)
	}
}

// deliverBatch hands inbound packets to the stack together, as a link that
// found several waiting does (link.BatchDispatcher), or one by one to a
// stack that takes them singly.
func (l *testLink) deliverBatch(pkts [][]byte) {
	if l.d == nil || l.closed {
		return
	}
	if bd, ok := l.d.(link.BatchDispatcher); ok {
		bd.DeliverPackets(pkts)
		return
	}
	for _, p := range pkts {
		l.d.DeliverPacket(p)
	}
}
