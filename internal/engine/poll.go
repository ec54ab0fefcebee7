package engine

import "github.com/synstack/synstack/tcp"

// Events are poll(2)'s event bits, with Linux's values.
type Events int16

// The events a socket reports (tcp_poll's).
const (
	EventIn    Events = 1 << 0  // POLLIN
	EventPri   Events = 1 << 1  // POLLPRI: urgent data to read out of band
	EventOut   Events = 1 << 2  // POLLOUT
	EventErr   Events = 1 << 3  // POLLERR
	EventHup   Events = 1 << 4  // POLLHUP
	EventRdHup Events = 1 << 13 // POLLRDHUP
)

// Events returns the socket's events now (0 once it is closed).
func (sk *Socket) Events() Events {
	if u := sk.udp; u != nil {
		return u.events()
	}
	var l locks
	defer sk.h.releaseCtl(&l)
	if err := sk.lock(sockLocks, &l); err != nil {
		return 0
	}
	return sk.pollLocked()
}

// PollNotify returns a channel that is closed at the host's next socket
// event, or when it closes: a Poll takes it before it looks at its
// sockets, then waits on it if none has an event.
func (s *Host) PollNotify() <-chan struct{} {
	s.ctl.Lock()
	defer s.ctl.Unlock()
	if s.closed {
		return s.done
	}
	wake := s.pollCh.Load()
	if wake == nil {
		ch := make(chan struct{})
		wake = &ch
		s.pollCh.Store(wake)
	}
	return *wake
}

// Closed reports whether the host is closed.
func (s *Host) Closed() bool {
	s.ctl.Lock()
	defer s.ctl.Unlock()
	return s.closed
}

// pollLocked returns the events of a socket, as Linux's tcp_poll.
//
// +checklocks:sk.h.ctl
func (sk *Socket) pollLocked() Events {
	if l := sk.l; l != nil {
		if len(l.acceptQ) > 0 {
			return EventIn
		}
		return 0
	}
	var mask Events
	ep := sk.ep
	if ep == nil && sk.foDefer {
		return EventOut // a deferred Fast Open connect: the first write connects
	}
	if ep == nil {
		// TCP_CLOSE: hang-up, and "writable" since not connecting.
		mask = EventHup | EventOut
		if sk.errQueueLen() > 0 {
			mask |= EventErr
		}
		if sk.shutRd {
			mask |= EventIn | EventRdHup
		}
		return mask
	}
	c := &ep.conn
	st := c.State()
	closed := st == tcp.Closed
	rdShut := closed || c.ReadClosed() || finReceived(st)
	// In CLOSE_WAIT the writing side is open whatever WriteClosed says
	// (shutting it moves the connection to LAST_ACK).
	wrShut := closed || c.WriteClosed() && st != tcp.CloseWait
	if closed || rdShut && wrShut {
		mask |= EventHup
	}
	if rdShut {
		mask |= EventIn | EventRdHup
	}
	if st != tcp.SynSent && st != tcp.SynRcvd {
		if c.PollReadable() > 0 || sk.peekLen() > 0 {
			mask |= EventIn
		}
		if wrShut || c.WriteReady() {
			mask |= EventOut
		}
		if c.UrgentPending() {
			mask |= EventPri
		}
	}
	if c.Err() != 0 || sk.errQueueLen() > 0 {
		mask |= EventErr
	}
	return mask
}

// finReceived reports whether the state implies the peer's FIN arrived.
func finReceived(st tcp.State) bool {
	switch st {
	case tcp.CloseWait, tcp.Closing, tcp.LastAck, tcp.TimeWait:
		return true
	}
	return false
}
