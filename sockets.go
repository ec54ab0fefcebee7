package synstack

import (
	"errors"
	"io"
	"net/netip"
	"syscall"

	"github.com/synstack/synstack/tcp"
)

// Sockets is a stack's file-descriptor table and its BSD socket calls. It
// behaves as one process: descriptors count up from 3, lowest free first;
// Dup gives a second descriptor for the same socket, and a socket is closed
// when its last descriptor is. Errors are plain syscall.Errno values, the
// ones Linux returns. Blocking calls wait, without holding the stack's lock,
// until the socket changes; they return EBADF when the stack is closed or
// the socket's last descriptor is closed under them.
//
// The table and sockets without a connection are guarded by the stack's
// control-plane lock (Stack.ctl); the socket of a connection also by its
// shard's lock, under which a net.Conn's Read and Write run (see
// shard.go).
type Sockets struct {
	s   *Stack
	fds []*socket // by descriptor; nil marks a free one
	// lowFree: every descriptor from firstFD up to it is in use, so the
	// search for the lowest free one starts there (no scan of a table of
	// a million sockets on every accept).
	lowFree int
	// optScratch is the copy of a socket's options a setsockopt changes
	// (Sockets.setOptLocked), under ctl.
	optScratch sockOpts
}

// firstFD is the first descriptor handed out (0, 1 and 2 are stdio).
const firstFD = 3

// sockState is the socket-level connection state (Linux's sock->state),
// apart from the TCP state of its connection.
type sockState uint8

const (
	ssUnconnected sockState = iota // never connected, or after a failed connect
	ssConnecting                   // connect called; not yet seen to complete by connect
	ssConnected                    // connect saw the handshake complete, or accepted
)

// socket is an open socket: what its descriptors refer to.
type socket struct {
	refs     int32 // descriptors referring to the socket
	family   uint8 // AF_INET or AF_INET6
	closed   bool  // the last descriptor is closed
	nonblock bool  // O_NONBLOCK (shared by all descriptors, as a file status flag)
	state    sockState

	// bind is the claim on a local port the socket holds itself (one
	// reference): made by bind (userBound) or by listen's automatic bind.
	// A connection holds its own reference to its claim.
	bind *binding

	ep   *endpoint // the connection, if any
	l    *listener // the listener, while listening
	opts *sockOpts // shared with every socket that has the same (Stack.internOptsLocked): never changed in place

	// shutRd, shutWr record shutdown on a socket without a connection
	// (Linux sets sk_shutdown even when it returns ENOTCONN).
	shutRd, shutWr bool
	userBound      bool // bind came from a bind call
	// peek holds data taken from the connection by MSG_PEEK and not yet read.
	peek []byte
	// waiters are the calls blocked on the socket, each waiting for one
	// token on its channel at the next event. The channels come from the
	// pool of the shard of the lock held (Stack.chansFor) and go back
	// after the wait.
	waiters []chan struct{}
}

// getLocked returns the socket of fd, or EBADF.
func (t *Sockets) getLocked(fd int) (*socket, error) {
	if t.s.closed || fd < 0 || fd >= len(t.fds) || t.fds[fd] == nil {
		return nil, syscall.EBADF
	}
	return t.fds[fd], nil
}

// fdLocks names the locks a call on a descriptor takes (see shard.go).
type fdLocks uint8

const (
	// ctlOnly is Stack.ctl: the descriptor table and the sockets without
	// a connection (bind, listen, accept).
	ctlOnly fdLocks = iota
	// sockLocks is ctl and the shard locks of the socket
	// (Stack.lockSocket): its connection's shard's, or every shard's for
	// a listener; ctl alone if fd names no socket.
	sockLocks
	// allLocks is ctl and every shard's lock (Stack.lock).
	allLocks
)

// lockFD takes the locks how names, and names them in l for
// Stack.release (which the caller calls, whatever the result), and
// returns fd's socket, or EBADF. A call that waits on the socket
// (waitLocked releases and retakes l) or takes more locks (connectLocked
// takes the new connection's shard) uses it; the others use withFD.
func (t *Sockets) lockFD(fd int, how fdLocks, l *locks) (*socket, error) {
	s := t.s
	*l = locks{ctl: true, all: how == allLocks}
	s.acquire(l)
	sk, err := t.getLocked(fd)
	if err == nil && how == sockLocks {
		s.lockSocket(sk, l)
	}
	return sk, err
}

// withFD runs f on fd's socket under the locks how names, or returns
// fail and EBADF if fd names no socket.
func withFD[T any](t *Sockets, fd int, how fdLocks, fail T, f func(sk *socket) (T, error)) (T, error) {
	var l locks
	sk, err := t.lockFD(fd, how, &l)
	defer t.s.release(&l)
	if err != nil {
		return fail, err
	}
	return f(sk)
}

// onFD is withFD for a call that returns only an error.
func (t *Sockets) onFD(fd int, how fdLocks, f func(sk *socket) error) error {
	_, err := withFD(t, fd, how, struct{}{}, func(sk *socket) (struct{}, error) {
		return struct{}{}, f(sk)
	})
	return err
}

// allocLocked gives sk the lowest free descriptor.
func (t *Sockets) allocLocked(sk *socket) int {
	sk.refs++
	for fd := max(t.lowFree, firstFD); fd < len(t.fds); fd++ {
		if t.fds[fd] == nil {
			t.fds[fd] = sk
			t.lowFree = fd + 1
			return fd
		}
	}
	for len(t.fds) < firstFD {
		t.fds = append(t.fds, nil)
	}
	t.fds = append(t.fds, sk)
	t.lowFree = len(t.fds)
	return len(t.fds) - 1
}

// freeLocked makes fd free again.
func (t *Sockets) freeLocked(fd int) {
	t.fds[fd] = nil
	t.lowFree = min(t.lowFree, fd)
}

// usable returns EBADF if the socket can no longer be used by a call that
// has been waiting on it.
func (t *Sockets) usable(sk *socket) error {
	if t.s.closed || sk.closed {
		return syscall.EBADF
	}
	return nil
}

// Socket creates a socket: domain AF_INET or AF_INET6 (else
// EAFNOSUPPORT), type SOCK_STREAM optionally with SOCK_NONBLOCK and
// SOCK_CLOEXEC (other flags EINVAL, other types ESOCKTNOSUPPORT), protocol 0
// or IPPROTO_TCP (else EPROTONOSUPPORT). It returns the new descriptor.
func (t *Sockets) Socket(domain, typ, proto int) (int, error) {
	t.s.ctl.Lock()
	defer t.s.ctl.Unlock()
	return t.socketLocked(domain, typ, proto)
}

// socketLocked is Socket under ctl.
func (t *Sockets) socketLocked(domain, typ, proto int) (int, error) {
	s := t.s
	if s.closed {
		return -1, syscall.EBADF
	}
	if domain != AF_INET && domain != AF_INET6 {
		return -1, syscall.EAFNOSUPPORT
	}
	flags := typ &^ sockTypeMask
	typ &= sockTypeMask
	if flags&^(SOCK_NONBLOCK|SOCK_CLOEXEC) != 0 || typ < 0 || typ >= sockMax {
		return -1, syscall.EINVAL
	}
	if typ != SOCK_STREAM {
		return -1, syscall.ESOCKTNOSUPPORT
	}
	if proto != IPPROTO_IP && proto != IPPROTO_TCP {
		return -1, syscall.EPROTONOSUPPORT
	}
	sk := &socket{family: uint8(domain), nonblock: flags&SOCK_NONBLOCK != 0, opts: s.defaultOpts()}
	return t.allocLocked(sk), nil
}

// localAddr converts an address given to bind or connect to the unmapped
// form the stack uses, checking it against the socket's family: an
// AF_INET socket takes IPv4 (a v4-mapped address is unmapped), an AF_INET6
// socket IPv6 and, unless IPV6_V6ONLY, IPv4 (plain or v4-mapped).
func (sk *socket) localAddr(a netip.Addr, v6onlyErr syscall.Errno) (netip.Addr, error) {
	if !a.IsValid() {
		return a, syscall.EINVAL
	}
	if sk.family == AF_INET {
		a = a.Unmap()
		if !a.Is4() {
			return a, syscall.EAFNOSUPPORT
		}
		return a, nil
	}
	if a.Is4() || a.Is4In6() {
		if sk.opts.v6only {
			return a, v6onlyErr
		}
		return a.Unmap(), nil
	}
	return a.WithZone(""), nil
}

// sockAddr presents an address in the socket's family: v4-mapped for IPv4
// on an AF_INET6 socket.
func (sk *socket) sockAddr(ap netip.AddrPort) netip.AddrPort {
	if sk.family == AF_INET6 && ap.Addr().Is4() {
		return netip.AddrPortFrom(netip.AddrFrom16(ap.Addr().As16()), ap.Port())
	}
	return ap
}

// wildcard is the unspecified address of the socket's family.
func (sk *socket) wildcard() netip.Addr {
	if sk.family == AF_INET {
		return netip.IPv4Unspecified()
	}
	return netip.IPv6Unspecified()
}

// newBinding returns an unentered claim for addr:port with the socket's
// current reuse options.
func (sk *socket) newBinding(addr netip.Addr, port uint16, explicit bool) *binding {
	return &binding{
		addr:      addr,
		port:      port,
		v6only:    addr.Is6() && sk.opts.v6only,
		reuse:     sk.opts.reuseAddr,
		reuseport: sk.opts.reusePort,
		explicit:  explicit,
	}
}

// Bind binds the socket to a local address and port. Errors as Linux:
// EAFNOSUPPORT for an address of the wrong family, EADDRNOTAVAIL for an
// address that is not the stack's, EINVAL if already bound (or connected,
// or listening), EADDRINUSE when the port conflicts (see the package's port
// rules: SO_REUSEADDR, SO_REUSEPORT as set before this call). Port 0 picks
// a free port in the ephemeral range; the unspecified address binds every
// address of the family (and IPv4 too for an AF_INET6 socket without
// IPV6_V6ONLY).
func (t *Sockets) Bind(fd int, addr netip.AddrPort) error {
	return t.onFD(fd, ctlOnly, func(sk *socket) error { return t.bindLocked(sk, addr) })
}

// bindLocked is Bind on a socket, under ctl.
func (t *Sockets) bindLocked(sk *socket, addr netip.AddrPort) error {
	s := t.s
	a, err := sk.localAddr(addr.Addr(), syscall.EINVAL)
	if err != nil {
		return err
	}
	if !a.IsUnspecified() && !s.isLocalAddr(a) {
		return syscall.EADDRNOTAVAIL
	}
	if sk.bind != nil || sk.ep != nil || sk.l != nil {
		return syscall.EINVAL
	}
	b := sk.newBinding(a, addr.Port(), true)
	if b.port == 0 {
		if b.port = s.pickBindPortLocked(b); b.port == 0 {
			return syscall.EADDRINUSE
		}
	} else if s.conflictLocked(b) {
		return syscall.EADDRINUSE
	}
	s.addBindingLocked(b)
	s.retainBinding(b)
	sk.bind = b
	sk.userBound = true
	return nil
}

// Listen makes the socket listen with the given backlog, capped by
// SomaxConn (a negative backlog means SomaxConn). The accept queue then
// admits backlog+1 connections, as Linux's. An unbound socket is first
// bound to a free port on the wildcard address. Listen re-checks the port
// (Linux's inet_csk_get_port at listen): two SO_REUSEADDR sockets may bind
// one port but only one may listen on it (EADDRINUSE). EINVAL on a
// connected or connecting socket. Listen on a listening socket changes its
// backlog.
func (t *Sockets) Listen(fd, backlog int) error {
	return t.onFD(fd, ctlOnly, func(sk *socket) error { return t.listenLocked(sk, backlog) })
}

// listenLocked is Listen on a socket, under ctl.
func (t *Sockets) listenLocked(sk *socket, backlog int) error {
	s := t.s
	if sk.ep != nil || sk.state != ssUnconnected {
		return syscall.EINVAL
	}
	if backlog < 0 || backlog > s.somaxconn {
		backlog = s.somaxconn
	}
	if sk.l != nil {
		sk.l.backlog = backlog
		s.wakeSocketLocked(sk)
		return nil
	}
	if sk.bind == nil {
		b := sk.newBinding(sk.wildcard(), 0, true)
		if b.port = s.pickBindPortLocked(b); b.port == 0 {
			return syscall.EADDRINUSE
		}
		s.addBindingLocked(b)
		s.retainBinding(b)
		sk.bind = b
	} else if s.conflictLocked(sk.bind) {
		return syscall.EADDRINUSE
	}
	sk.shutRd, sk.shutWr = false, false
	sk.l = s.startListeningLocked(sk, backlog)
	return nil
}

// SetMaxConns bounds the connections the listening socket fd has alive,
// from SYN_RCVD to the end, accepted or not; n <= 0 removes the bound. A
// SYN beyond it is dropped and counted (Stats.SynstackConnLimitDrops), as
// one beyond a full accept queue, so the client's retransmission gets in
// once a connection has ended. Linux has no such option (a server bounds
// itself after accept, which costs a handshake per refusal); the stack as
// a whole is bounded by Config.MaxConns. EINVAL if fd is not listening.
func (t *Sockets) SetMaxConns(fd, n int) error {
	return t.onFD(fd, ctlOnly, func(sk *socket) error {
		if sk.l == nil {
			return syscall.EINVAL
		}
		sk.l.maxConns = max(n, 0)
		return nil
	})
}

// Accept takes the first connection of the listener's accept queue and
// returns a new descriptor for it (blocking, whatever the listener's
// flags, as Linux's accept) and the peer's address. EINVAL if the socket is
// not listening (also when a listener is shut down under a blocked
// Accept), EAGAIN if non-blocking and the queue is empty.
func (t *Sockets) Accept(fd int) (nfd int, peer netip.AddrPort, err error) {
	nfd, err = withFD(t, fd, ctlOnly, -1, func(sk *socket) (int, error) {
		var err error
		nfd, peer, err = t.acceptLocked(sk, sk.nonblock, nil)
		return nfd, err
	})
	return nfd, peer, err
}

// acceptLocked is Accept on a socket, under ctl (and no shard's lock); it
// also returns errCanceled when cancel closes while it waits.
func (t *Sockets) acceptLocked(sk *socket, nonblock bool, cancel <-chan struct{}) (int, netip.AddrPort, error) {
	s := t.s
	l := locks{ctl: true}
	for {
		if err := t.usable(sk); err != nil {
			return -1, netip.AddrPort{}, err
		}
		if isDone(cancel) {
			return -1, netip.AddrPort{}, errCanceled
		}
		ln := sk.l
		if ln == nil {
			return -1, netip.AddrPort{}, syscall.EINVAL
		}
		if q := ln.acceptQ; len(q) > 0 {
			ep := q[0]
			q[0] = nil
			ln.acceptQ = q[1:]
			nsk := &socket{family: sk.family, state: ssConnected, opts: sk.opts, ep: ep}
			ep.sh.mu.Lock() // the connection's work reads these
			ep.parent = nil
			ep.inAccept = false
			ep.sock = nsk
			ep.sh.mu.Unlock()
			return t.allocLocked(nsk), nsk.sockAddr(ep.remote), nil
		}
		if nonblock {
			return -1, netip.AddrPort{}, syscall.EAGAIN
		}
		s.waitLocked(sk, cancel, &l)
	}
}

// Connect opens a connection to addr. Non-blocking, it returns EINPROGRESS
// (the end shows in Poll as POLLOUT, the result in SO_ERROR), and EALREADY
// while in progress; blocking, it waits and returns the error
// (ECONNREFUSED, ETIMEDOUT...). EISCONN on a connected socket and, as
// Linux, on a listening one. An unbound socket gets the stack's address of
// addr's family (the first whose prefix contains addr, if any) and an
// ephemeral port (RFC 6056 algorithm 3). EADDRNOTAVAIL when the 4-tuple is
// taken or no port is free, ENETUNREACH when the stack has no address of
// that family.
func (t *Sockets) Connect(fd int, addr netip.AddrPort) error {
	var l locks
	sk, err := t.lockFD(fd, sockLocks, &l)
	defer t.s.release(&l)
	if err != nil {
		return err
	}
	return t.connectLocked(sk, addr, sk.nonblock, nil, &l)
}

// connectLocked is Connect on a socket, under l (ctl and sk's shard, see
// Stack.lockSocket), which then names the shard of the new connection. A
// blocking connect that is waiting when cancel closes abandons the
// attempt (as shutdown in SYN_SENT does) and returns errCanceled.
func (t *Sockets) connectLocked(sk *socket, addr netip.AddrPort, nonblock bool, cancel <-chan struct{}, l *locks) error {
	s := t.s
	dst, err := sk.localAddr(addr.Addr(), syscall.ENETUNREACH)
	if err != nil {
		return err
	}
	switch {
	case sk.l != nil:
		return syscall.EISCONN
	case sk.state == ssConnected:
		return syscall.EISCONN
	case sk.state == ssConnecting:
		if st := sk.ep.conn.State(); (st == tcp.SynSent || st == tcp.SynRcvd) && nonblock {
			return syscall.EALREADY
		}
		return t.waitConnectLocked(sk, cancel, l)
	}
	if dst.IsUnspecified() || dst.IsMulticast() {
		return syscall.ENETUNREACH
	}
	remote := netip.AddrPortFrom(dst, addr.Port())

	// The local address: the bound one, or the source for dst.
	var src netip.Addr
	if sk.bind != nil && !sk.bind.addr.IsUnspecified() {
		src = sk.bind.addr
		if src.Is4() != dst.Is4() {
			return syscall.EINVAL
		}
	} else {
		var ok bool
		if src, ok = s.sourceAddrFor(dst); !ok {
			return syscall.ENETUNREACH
		}
	}
	if s.connLimitLocked(nil) {
		return syscall.ENOBUFS
	}
	var b *binding
	if sk.bind != nil {
		b = sk.bind
		if s.connInUse(netip.AddrPortFrom(src, b.port), remote, l) {
			return syscall.EADDRNOTAVAIL
		}
		if b.addr.IsUnspecified() {
			b.addr = src // as Linux sets the bound address at connect
			b.v6only = false
		}
	} else {
		port := s.pickConnectPortLocked(src, remote, l)
		if port == 0 {
			return syscall.EADDRNOTAVAIL
		}
		b = sk.newBinding(src, port, false)
		s.addBindingLocked(b)
	}
	local := netip.AddrPortFrom(src, b.port)
	if !l.all {
		// sk has no connection (sk.state is ssUnconnected), so l names
		// no shard yet: take the new connection's.
		l.sh = s.shardOf(local, remote)
		l.sh.mu.Lock()
	}
	ep := s.newEndpointLocked(local, remote, sk.opts, b)
	ep.sock = sk
	sk.ep = ep
	sk.state = ssConnecting
	sk.peek = nil
	sk.shutRd, sk.shutWr = false, false
	err = ep.conn.Connect(s.clock.Now())
	s.afterLocked(ep)
	if err != nil {
		s.disconnectLocked(sk)
		return errnoOf(err)
	}
	if nonblock {
		return syscall.EINPROGRESS
	}
	return t.waitConnectLocked(sk, cancel, l)
}

// waitConnectLocked waits for the handshake of a connecting socket to end
// and reports it as connect does: nil once established, else the
// connection's error (or ECONNABORTED if it was already taken by
// SO_ERROR), after which the socket is unconnected and may connect again.
// If cancel closes first, the attempt is abandoned: errCanceled. It runs
// under l, ctl and sk's connection's shard (see waitLocked).
func (t *Sockets) waitConnectLocked(sk *socket, cancel <-chan struct{}, l *locks) error {
	s := t.s
	for {
		if err := t.usable(sk); err != nil {
			return err
		}
		if sk.ep == nil {
			return syscall.ECONNABORTED
		}
		switch sk.ep.conn.State() {
		case tcp.SynSent, tcp.SynRcvd:
			if isDone(cancel) {
				s.disconnectLocked(sk)
				return errCanceled
			}
			s.waitLocked(sk, cancel, l)
			continue
		case tcp.Closed:
			err := sk.ep.conn.TakeErr()
			if err == 0 {
				err = syscall.ECONNABORTED
			}
			s.disconnectLocked(sk)
			return err
		}
		sk.state = ssConnected
		return nil
	}
}

// disconnectLocked detaches a socket from its connection (Linux's
// tcp_disconnect after a failed connect, or shutdown in SYN_SENT): a live
// connection is aborted (no RST in SYN_SENT), and the socket is
// unconnected again. It needs ctl and the connection's shard's lock.
func (s *Stack) disconnectLocked(sk *socket) {
	ep := sk.ep
	if ep == nil {
		return
	}
	if ep.hashed {
		ep.conn.Abort(s.clock.Now())
		s.afterLocked(ep)
		s.unhashLocked(ep)
	}
	ep.sock = nil
	sk.ep = nil
	sk.state = ssUnconnected
	sk.peek = nil
	s.wakeSocketLocked(sk)
}

// Read is Recv with no flags: read(2).
func (t *Sockets) Read(fd int, p []byte) (int, error) { return t.Recv(fd, p, 0) }

// Write is Send with no flags: write(2).
func (t *Sockets) Write(fd int, p []byte) (int, error) { return t.Send(fd, p, 0) }

// Recv reads received data: 0, nil at end of stream (the peer's FIN, or
// after SHUT_RD), ENOTCONN on a socket never connected (or listening),
// ECONNRESET once after a reset (then 0), EAGAIN when non-blocking (or
// MSG_DONTWAIT) and nothing is ready. A blocking Recv waits for data. With
// MSG_PEEK the data stays to be read again. MSG_WAITALL is ignored.
func (t *Sockets) Recv(fd int, p []byte, flags int) (int, error) {
	var l locks
	sk, err := t.lockFD(fd, sockLocks, &l)
	defer t.s.release(&l)
	if err != nil {
		return 0, err
	}
	return t.recvLocked(sk, p, flags, sk.nonblock || flags&MSG_DONTWAIT != 0, nil, &l)
}

// recvLocked is Recv on a socket; it also returns errCanceled when cancel
// is closed, checked before reading (as a deadline in the past is). It
// runs under l: the lock of the socket's connection's shard alone (a
// net.Conn's Read), or ctl with it (Recv).
func (t *Sockets) recvLocked(sk *socket, p []byte, flags int, nonblock bool, cancel <-chan struct{}, l *locks) (int, error) {
	s := t.s
	for {
		if err := t.usable(sk); err != nil {
			return 0, err
		}
		if isDone(cancel) {
			return 0, errCanceled
		}
		if sk.ep == nil {
			if sk.shutRd {
				return 0, nil
			}
			return 0, syscall.ENOTCONN
		}
		n, err := s.readLocked(sk, p, flags&MSG_PEEK != 0)
		switch {
		case err == syscall.EAGAIN && !nonblock:
			s.waitLocked(sk, cancel, l)
			continue
		case err == io.EOF:
			return 0, nil
		case err != nil:
			return 0, errnoOf(err)
		}
		return n, nil
	}
}

// readLocked reads (or peeks) from the socket's connection, serving data
// kept by an earlier peek first.
func (s *Stack) readLocked(sk *socket, p []byte, peek bool) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	ep := sk.ep
	now := s.clock.Now()
	if !peek {
		if len(sk.peek) > 0 {
			n := copy(p, sk.peek)
			sk.peek = sk.peek[n:]
			if len(sk.peek) == 0 {
				sk.peek = nil
			}
			return n, nil
		}
		n, err := ep.conn.Read(now, p)
		s.afterLocked(ep)
		return n, err
	}
	if len(sk.peek) < len(p) {
		more := make([]byte, len(p)-len(sk.peek))
		n, err := ep.conn.Read(now, more)
		s.afterLocked(ep)
		if n > 0 {
			sk.peek = append(sk.peek, more[:n]...)
		} else if len(sk.peek) == 0 {
			return 0, err
		}
	}
	return copy(p, sk.peek), nil
}

// Send writes data. A blocking Send writes everything, waiting for room in
// the send buffer (and for the handshake of a connecting socket); a
// non-blocking one (or MSG_DONTWAIT) writes what fits and returns EAGAIN if
// nothing does. EPIPE on a socket never connected, after SHUT_WR, and after
// a reset once ECONNRESET has been returned. MSG_NOSIGNAL is accepted
// (there are no signals).
func (t *Sockets) Send(fd int, p []byte, flags int) (int, error) {
	var l locks
	sk, err := t.lockFD(fd, sockLocks, &l)
	defer t.s.release(&l)
	if err != nil {
		return 0, err
	}
	return t.sendLocked(sk, p, sk.nonblock || flags&MSG_DONTWAIT != 0, nil, &l)
}

// sendLocked is Send on a socket. When cancel closes it returns what it
// has written with errCanceled (checked before writing, as a deadline in
// the past is). It runs under l, as recvLocked.
func (t *Sockets) sendLocked(sk *socket, p []byte, nonblock bool, cancel <-chan struct{}, l *locks) (int, error) {
	s := t.s
	written := 0
	waited := false
	for {
		if err := t.usable(sk); err != nil {
			if written > 0 {
				return written, nil
			}
			return 0, err
		}
		if isDone(cancel) {
			return written, errCanceled
		}
		ep := sk.ep
		if ep == nil {
			return 0, syscall.EPIPE
		}
		if st := ep.conn.State(); st == tcp.SynSent || st == tcp.SynRcvd {
			// Linux's sk_stream_wait_connect.
			if nonblock {
				return 0, syscall.EAGAIN
			}
			s.waitLocked(sk, cancel, l)
			continue
		}
		if waited && !ep.conn.WriteReady() && !ep.conn.WriteClosed() && ep.conn.Err() == 0 {
			// Linux wakes a blocked writer only when half the queue has
			// drained (sk_stream_write_space), not for every ACK.
			s.waitLocked(sk, cancel, l)
			continue
		}
		n, err := ep.conn.Write(s.clock.Now(), p[written:])
		s.afterLocked(ep)
		written += n
		if err == nil && written == len(p) {
			return written, nil
		}
		if err == nil && n == 0 {
			err = syscall.EAGAIN
		}
		switch {
		case err == syscall.EAGAIN || err == nil:
			if nonblock {
				if written > 0 {
					return written, nil
				}
				return 0, syscall.EAGAIN
			}
			if err != nil {
				s.waitLocked(sk, cancel, l)
				waited = true
			}
		default:
			if written > 0 {
				return written, nil
			}
			return 0, errnoOf(err)
		}
	}
}

// Shutdown shuts the reading side (SHUT_RD), writing side (SHUT_WR, a FIN
// after queued data) or both of the socket, whatever the number of
// descriptors: blocked calls on any of them wake up. EINVAL for a bad how,
// ENOTCONN on an unconnected socket. On a listener, SHUT_RD and SHUT_RDWR
// stop listening (its queued connections are reset and a blocked Accept
// returns EINVAL); SHUT_WR does nothing. In SYN_SENT it abandons the
// connection attempt.
func (t *Sockets) Shutdown(fd, how int) error {
	return t.onFD(fd, allLocks, func(sk *socket) error { return t.shutdownLocked(sk, how) })
}

// shutdownLocked is Shutdown on a socket, under Stack.lock.
func (t *Sockets) shutdownLocked(sk *socket, how int) error {
	s := t.s
	if how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR {
		return syscall.EINVAL
	}
	if sk.l != nil {
		if how == SHUT_WR {
			return nil
		}
		s.stopListenLocked(sk)
		return nil
	}
	ep := sk.ep
	if ep == nil || ep.conn.State() == tcp.Closed {
		sk.shutRd = sk.shutRd || how != SHUT_WR
		sk.shutWr = sk.shutWr || how != SHUT_RD
		s.wakeSocketLocked(sk)
		return syscall.ENOTCONN
	}
	if ep.conn.State() == tcp.SynSent {
		s.disconnectLocked(sk)
		return nil
	}
	err := ep.conn.Shutdown(s.clock.Now(), how)
	s.afterLocked(ep)
	return errnoOf(err)
}

// stopListenLocked ends the socket's listening; a port bound by listen
// itself (not by bind) is released, as Linux does.
func (s *Stack) stopListenLocked(sk *socket) {
	s.stopListeningLocked(sk.l)
	sk.l = nil
	if !sk.userBound {
		s.releaseBindingLocked(sk.bind)
		sk.bind = nil
	}
}

// Close closes a descriptor. The socket closes with its last descriptor:
// a listener stops (resetting its queued connections); a connection gets
// tcp's close (FIN after queued data, or RST if received data is unread)
// or, with SO_LINGER on and a zero timeout, an abort (RST). The
// connection then lives on as an orphan until it finishes; beyond
// MaxOrphans orphans it is reset instead. SO_LINGER with a non-zero
// timeout does not make Close wait: it closes as without SO_LINGER.
func (t *Sockets) Close(fd int) error {
	return t.onFD(fd, sockLocks, func(sk *socket) error {
		t.closeFDLocked(fd, sk)
		return nil
	})
}

// closeLocked is Close under ctl and the socket's shards (lockSocket).
func (t *Sockets) closeLocked(fd int) error {
	sk, err := t.getLocked(fd)
	if err != nil {
		return err
	}
	t.closeFDLocked(fd, sk)
	return nil
}

// closeFDLocked closes fd, which names sk, under ctl and sk's shards.
func (t *Sockets) closeFDLocked(fd int, sk *socket) {
	t.freeLocked(fd)
	sk.refs--
	if sk.refs == 0 {
		t.s.releaseSocketLocked(sk)
	}
}

// releaseSocketLocked closes a socket whose last descriptor went.
func (s *Stack) releaseSocketLocked(sk *socket) {
	sk.closed = true
	if sk.l != nil {
		s.stopListenLocked(sk)
	}
	if ep := sk.ep; ep != nil {
		ep.sock = nil
		sk.ep = nil
		if !ep.hashed {
			// Over already (a reset, a timeout): what it still holds,
			// data that came before the end and was never read, goes
			// back. Nothing is sent.
			ep.conn.Close(s.clock.Now())
		}
		if ep.hashed {
			now := s.clock.Now()
			if sk.opts.linger.Onoff != 0 && sk.opts.linger.Linger == 0 {
				ep.conn.Abort(now)
			} else {
				ep.conn.Close(now)
			}
			s.afterLocked(ep)
			if ep.hashed && ep.conn.State() != tcp.TimeWait {
				if s.orphanCount() >= s.maxOrphans {
					// Linux's "too many orphaned sockets".
					s.g().stats.TcpExtTCPAbortOnMemory++
					ep.conn.Abort(now)
					s.afterLocked(ep)
					s.unhashLocked(ep)
				} else {
					ep.orphan = true
					s.orphans.Add(1)
				}
			}
		}
	}
	if sk.bind != nil {
		s.releaseBindingLocked(sk.bind)
		sk.bind = nil
	}
	sk.peek = nil
	s.wakeSocketLocked(sk)
}

// Dup returns a new descriptor (the lowest free) for the same socket.
func (t *Sockets) Dup(fd int) (int, error) {
	return withFD(t, fd, allLocks, -1, func(sk *socket) (int, error) {
		return t.allocLocked(sk), nil
	})
}

// Fcntl supports F_GETFL (O_RDWR, plus O_NONBLOCK when set), F_SETFL
// (O_NONBLOCK is taken from arg, other bits ignored as Linux ignores the
// access mode), F_GETFD and F_SETFD (accepted, always 0). O_NONBLOCK
// belongs to the socket and so to all its descriptors, as a file status
// flag shared by dup'ed descriptors. Other commands get EINVAL.
func (t *Sockets) Fcntl(fd, cmd, arg int) (int, error) {
	return withFD(t, fd, allLocks, -1, func(sk *socket) (int, error) {
		switch cmd {
		case F_GETFL:
			fl := O_RDWR
			if sk.nonblock {
				fl |= O_NONBLOCK
			}
			return fl, nil
		case F_SETFL:
			sk.nonblock = arg&O_NONBLOCK != 0
			return 0, nil
		case F_GETFD, F_SETFD:
			return 0, nil
		}
		return -1, syscall.EINVAL
	})
}

// Getsockname returns the socket's local address: the connection's, the
// bound one, or the unspecified address and port 0 when unbound. IPv4
// addresses of an AF_INET6 socket are v4-mapped.
func (t *Sockets) Getsockname(fd int) (netip.AddrPort, error) {
	return withFD(t, fd, allLocks, netip.AddrPort{}, func(sk *socket) (netip.AddrPort, error) {
		switch {
		case sk.ep != nil:
			return sk.sockAddr(sk.ep.local), nil
		case sk.bind != nil:
			return sk.sockAddr(netip.AddrPortFrom(sk.bind.addr, sk.bind.port)), nil
		}
		return netip.AddrPortFrom(sk.wildcard(), 0), nil
	})
}

// Getpeername returns the peer's address; ENOTCONN unless the connection
// is past SYN_SENT and not closed.
func (t *Sockets) Getpeername(fd int) (netip.AddrPort, error) {
	return withFD(t, fd, allLocks, netip.AddrPort{}, func(sk *socket) (netip.AddrPort, error) {
		if sk.ep == nil {
			return netip.AddrPort{}, syscall.ENOTCONN
		}
		if st := sk.ep.conn.State(); st == tcp.Closed || st == tcp.SynSent {
			return netip.AddrPort{}, syscall.ENOTCONN
		}
		return sk.sockAddr(sk.ep.remote), nil
	})
}

// errCanceled is what the blocking calls' Locked forms return when their
// cancel channel (a deadline, a context, a Close of the net.Conn above)
// closes. It never reaches a caller of Sockets.
var errCanceled = errors.New("synstack: wait canceled")

// isDone reports whether ch is closed; a nil ch never is.
func isDone(ch <-chan struct{}) bool {
	if ch == nil {
		return false
	}
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// errnoOf converts an error from tcp.Conn to the Errno the socket layer
// returns.
func errnoOf(err error) error {
	if err == nil {
		return nil
	}
	if e, ok := err.(syscall.Errno); ok {
		if e == 0 {
			return nil
		}
		return e
	}
	if err == io.EOF {
		return nil
	}
	return syscall.EIO
}
