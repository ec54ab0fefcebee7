package synstack

import (
	"iter"
	"net/netip"

	"github.com/synstack/synstack/internal/engine"
)

// What the internal tests look at in the engine under a Stack.

// connKey is a connection's 4-tuple, for messages.
type connKey struct {
	local, remote netip.AddrPort
}

func (s *Stack) lock()            { s.h.Freeze() }
func (s *Stack) unlock()          { s.h.Thaw() }
func (s *Stack) connCount() int   { return s.h.ConnCount() }
func (s *Stack) orphanCount() int { return s.h.OrphanCount() }
func (s *Stack) portCount() int   { return s.h.PortCount() }

// testConn is a connection of the engine's tables, as a test sees it.
type testConn struct {
	engine.ConnView
}

// allConns yields the stack's connections. Under lock.
func (s *Stack) allConns() iter.Seq[testConn] {
	return func(yield func(testConn) bool) {
		s.h.Conns(func(v engine.ConnView) bool { return yield(testConn{v}) })
	}
}

// queues returns the SYN and accept queue lengths of listening fd.
func (s *Stack) queues(fd int) (syn, accept int) {
	sk, _, err := s.sockets.get(fd)
	if err != nil {
		return -1, -1
	}
	return sk.QueueLens()
}
