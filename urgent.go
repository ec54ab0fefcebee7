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
