package synstack

import (
	"syscall"

	"github.com/synstack/synstack/internal/engine"
)

// recvUrgent is recv with MSG_OOB (see Recv): the urgent byte into p.
// With an empty p it is taken (or peeked) and 0 returned, as Linux does
// (MSG_TRUNC set there).
func recvUrgent(sk *engine.Socket, p []byte, flags int) (int, error) {
	if sk.UDP() {
		return 0, syscall.EOPNOTSUPP
	}
	b, ok, err := sk.RecvUrgent(flags&MSG_PEEK != 0)
	if err != nil || !ok || len(p) == 0 {
		return 0, err
	}
	p[0] = b
	return 1, nil
}

// gatherTarget is the buffer recvmsg's MSG_OOB reads into: the first
// non-empty one.
func gatherTarget(iov [][]byte) []byte {
	for _, b := range iov {
		if len(b) > 0 {
			return b
		}
	}
	return nil
}

// ReadToMark reads from a TCP socket as splice(2) and the kernel's other
// readers of a socket's queue read (Linux's tcp_read_sock): never past the
// urgent mark, and 0 at the mark while data waits beyond it, the urgent
// byte left in place (it is Recv's to skip or MSG_OOB's to take).
// Without a mark ahead it is Recv with flags (MSG_DONTWAIT, MSG_PEEK).
func (t *Sockets) ReadToMark(fd int, p []byte, flags int) (int, error) {
	sk, _, err := t.get(fd)
	if err != nil {
		return 0, err
	}
	if !sk.UDP() {
		off, waiting, ok, err := sk.MarkAhead()
		switch {
		case err != nil:
			return 0, err
		case ok && off == 0 && waiting:
			return 0, nil
		case ok && off > 0:
			p = p[:min(len(p), off)]
		}
	}
	return t.Recv(fd, p, flags&^MSG_OOB)
}
