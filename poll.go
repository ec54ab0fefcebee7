package synstack

import (
	"time"

	"github.com/synstack/synstack/clock"
	"github.com/synstack/synstack/internal/engine"
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
		// Taken before the sockets are looked at: an event after the look
		// closes it.
		wake := s.h.PollNotify()
		n := 0
		for i := range fds {
			f := &fds[i]
			f.Revents = 0
			if f.Fd < 0 {
				continue
			}
			if sk, _, err := t.get(f.Fd); err != nil {
				f.Revents = POLLNVAL
			} else {
				f.Revents = int16(sk.Events()) & (f.Events | POLLERR | POLLHUP)
			}
			if f.Revents != 0 {
				n++
			}
		}
		if n > 0 || timeout == 0 || s.h.Closed() {
			return n, nil
		}
		if expired == nil && timeout > 0 {
			ch := make(chan struct{})
			expired = ch
			timer = s.clock.AfterFunc(timeout, func() { close(ch) })
		}
		select {
		case <-wake:
		case <-expired:
			return 0, nil
		}
	}
}

// The engine's event bits are poll's.
var _ = [1]struct{}{}[engine.EventIn^POLLIN|engine.EventOut^POLLOUT|engine.EventErr^POLLERR|
	engine.EventHup^POLLHUP|engine.EventRdHup^POLLRDHUP]
