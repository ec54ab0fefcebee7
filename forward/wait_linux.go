package forward

import (
	"net"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// readWaiter waits until a socket of the host has a datagram (or an
// error) to read, holding no buffer meanwhile: it peeks one byte without
// blocking each time the runtime's poller says the socket is readable.
type readWaiter struct {
	rc   syscall.RawConn
	b    [1]byte
	err  error              // what the last peek found
	peek func(uintptr) bool // made once: a closure per wait would allocate
}

// newReadWaiter returns a waiter for c, or nil if c is no host socket
// (its Read then waits, with its buffer).
func newReadWaiter(c net.Conn) *readWaiter {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	w := &readWaiter{rc: rc}
	w.peek = func(fd uintptr) bool {
		// recvfrom with no address: unix.Recvfrom would allocate one.
		_, _, e := unix.Syscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&w.b[0])), 1,
			unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case unix.EAGAIN, unix.EINTR:
			return false
		case 0:
			w.err = nil
		default:
			// A pending error (an ICMP port unreachable): the peek took
			// it off the socket, so it is the wait's to report.
			w.err = os.NewSyscallError("recvfrom", e)
		}
		return true
	}
	return w
}

// wait returns once a datagram is ready, or with the socket's error.
func (w *readWaiter) wait() error {
	if w == nil {
		return nil
	}
	if err := w.rc.Read(w.peek); err != nil {
		return err
	}
	return w.err
}
