package script

import (
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
}

var _ link.Endpoint = (*testLink)(nil)

// MTU returns the link MTU.
func (l *testLink) MTU() int { return l.mtu }

// Attach stores the stack's dispatcher.
func (l *testLink) Attach(d link.Dispatcher) { l.d = d }

// WritePacket records a copy of pkt with the virtual time.
func (l *testLink) WritePacket(pkt []byte) error {
	if l.closed {
		return syscall.EPIPE
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
