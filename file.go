package synstack

import (
	"net"
	"net/netip"
	"os"
	"syscall"
)

// FileConn returns a net.Conn (a *TCPConn) for a connected socket of the
// stack's socket layer, as net.FileConn does for an open file: the
// TCPConn holds its own descriptor, a Dup of fd, so the caller may close
// fd. A socket that is not connected gives ENOTCONN.
func (s *Stack) FileConn(fd int) (net.Conn, error) {
	fail := func(err error) (net.Conn, error) { return nil, fileErr(err) }
	t := s.sockets
	nfd, err := t.Dup(fd)
	if err != nil {
		return fail(err)
	}
	sk, _, err := t.get(nfd)
	var c *TCPConn
	if err == nil {
		c, err = s.connOnFD(nfd, sk, "tcp")
	}
	if err != nil {
		t.Close(nfd)
		return fail(err)
	}
	return c, nil
}

// FileListener returns a net.Listener (a *TCPListener) for a listening
// socket of the stack's socket layer, as net.FileListener does for an
// open file: the listener holds its own descriptor, a Dup of fd. A socket
// that is not listening gives EINVAL.
func (s *Stack) FileListener(fd int) (net.Listener, error) {
	fail := func(err error) (net.Listener, error) { return nil, fileErr(err) }
	t := s.sockets
	nfd, err := t.Dup(fd)
	if err != nil {
		return fail(err)
	}
	sk, _, err := t.get(nfd)
	var addr netip.AddrPort
	switch {
	case err != nil:
	case !sk.Listening():
		err = syscall.EINVAL
	default:
		addr, err = sk.LocalAddr()
	}
	if err != nil {
		t.Close(nfd)
		return fail(err)
	}
	return &TCPListener{descriptor: descriptor{s: s, fd: int32(nfd)}, sk: sk, network: "tcp", addr: tcpAddr(addr)}, nil
}

// fileErr is the error of FileConn and FileListener: the errno of the
// descriptor (EBADF, ENOTCONN, EINVAL), or net.ErrClosed when the stack is.
func fileErr(err error) error {
	if errno, ok := err.(syscall.Errno); ok {
		err = os.NewSyscallError("dup", errno)
	}
	return &net.OpError{Op: "file", Net: "tcp", Err: err}
}
