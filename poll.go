package synstack

import (
	"time"

	"github.com/synstack/synstack/clock"
	"github.com/synstack/synstack/tcp"
)

// PollFd is one entry of Poll's array, as struct pollfd.
type PollFd struct {
	Fd      int   // descriptor; negative entries are ignored (Revents 0)
	Events  int16 // requested events (POLLIN, POLLOUT, POLLRDHUP...)
	Revents int16 // returned events: requested ones, plus POLLERR, POLLHUP, POLLNVAL always
}

// Poll waits until one of the descriptors has an event, as poll(2), and
// returns the number of entries with a non-zero Revents. A zero timeout
// polls once; a negative one waits without limit; a positive one is
// measured on the stack's clock. Events, as Linux's tcp_poll:
//   - POLLIN: data to read, end of stream, or (listener) a connection to accept;
//   - POLLOUT: room in the send buffer, or a connect has ended (also on failure),
//     or the writing side is shut;
//   - POLLERR: a pending error (SO_ERROR);
//   - POLLHUP: both directions shut, or the connection closed or reset,
//     or a socket never connected;
//   - POLLRDHUP: the peer's FIN arrived, or SHUT_RD;
//   - POLLNVAL: not an open descriptor.
func (t *Sockets) Poll(fds []PollFd, timeout time.Duration) (int, error) {
	s := t.s
	s.lock()
	defer s.unlock()
	var (
		expired chan struct{}
		timer   clock.Timer
	)
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		n := 0
		for i := range fds {
			f := &fds[i]
			f.Revents = 0
			if f.Fd < 0 {
				continue
			}
			sk, err := t.getLocked(f.Fd)
			if err != nil {
				f.Revents = POLLNVAL
			} else {
				f.Revents = s.pollLocked(sk) & (f.Events | POLLERR | POLLHUP)
			}
			if f.Revents != 0 {
				n++
			}
		}
		if n > 0 || timeout == 0 || s.closed {
			return n, nil
		}
		if expired != nil {
			select {
			case <-expired:
				return 0, nil
			default:
			}
		} else if timeout > 0 {
			ch := make(chan struct{})
			expired = ch
			timer = s.clock.AfterFunc(timeout, func() { close(ch) })
		}
		wake := s.pollCh.Load()
		if wake == nil {
			ch := make(chan struct{})
			wake = &ch
			s.pollCh.Store(wake)
		}
		s.unlock()
		select {
		case <-*wake:
		case <-expired:
		}
		s.lock()
	}
}

// pollLocked returns the events of a socket, as Linux's tcp_poll.
func (s *Stack) pollLocked(sk *socket) int16 {
	if l := sk.l; l != nil {
		if len(l.acceptQ) > 0 {
			return POLLIN
		}
		return 0
	}
	var mask int16
	ep := sk.ep
	if ep == nil {
		// TCP_CLOSE: hang-up, and "writable" since not connecting.
		mask = POLLHUP | POLLOUT
		if sk.shutRd {
			mask |= POLLIN | POLLRDHUP
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
		mask |= POLLHUP
	}
	if rdShut {
		mask |= POLLIN | POLLRDHUP
	}
	if st != tcp.SynSent && st != tcp.SynRcvd {
		if c.Readable() > 0 || len(sk.peek) > 0 {
			mask |= POLLIN
		}
		if wrShut || c.WriteReady() {
			mask |= POLLOUT
		}
	}
	if c.Err() != 0 {
		mask |= POLLERR
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
