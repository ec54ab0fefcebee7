package synstack

import (
	"net/netip"
	"sync"
	"syscall"

	"github.com/synstack/synstack/internal/engine"
)

// Sockets is a stack's file-descriptor table and its BSD socket calls. It
// behaves as one process: descriptors count up from 3, lowest free first;
// Dup gives a second descriptor for the same socket, and a socket is closed
// when its last descriptor is. Errors are plain syscall.Errno values, the
// ones Linux returns. Blocking calls wait, without holding a lock, until
// the socket changes; they return EBADF when the stack is closed or the
// socket's last descriptor is closed under them.
//
// The table is this layer's: descriptors name the engine's sockets, whose
// FD part (the descriptors referring to one, and O_NONBLOCK, shared by
// dup'ed descriptors as a file status flag) is kept here, under the
// table's lock. Every call on a socket is the engine's, which takes its
// own locks. The table's lock is taken before any of the engine's and
// never held across a call that waits.
type Sockets struct {
	s      *Stack
	mu     sync.Mutex
	fds    []*engine.Socket // by descriptor; nil marks a free one
	closed bool             // the stack is closed
	// lowFree: every descriptor from firstFD up to it is in use, so the
	// search for the lowest free one starts there (no scan of a table of
	// a million sockets on every accept).
	lowFree int
}

// firstFD is the first descriptor handed out (0, 1 and 2 are stdio).
const firstFD = 3

// get returns fd's socket and whether it is non-blocking, or EBADF.
func (t *Sockets) get(fd int) (*engine.Socket, bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	sk, err := t.getLocked(fd)
	if err != nil {
		return nil, false, err
	}
	return sk, sk.FD.NonBlock, nil
}

// getLocked returns fd's socket, or EBADF. Under t.mu.
func (t *Sockets) getLocked(fd int) (*engine.Socket, error) {
	if t.closed || fd < 0 || fd >= len(t.fds) || t.fds[fd] == nil {
		return nil, syscall.EBADF
	}
	return t.fds[fd], nil
}

// onSocket runs f on fd's socket, or returns EBADF.
func (t *Sockets) onSocket(fd int, f func(sk *engine.Socket) error) error {
	sk, _, err := t.get(fd)
	if err != nil {
		return err
	}
	return f(sk)
}

// alloc gives sk the lowest free descriptor; EBADF once the stack is
// closed.
func (t *Sockets) alloc(sk *engine.Socket) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return -1, syscall.EBADF
	}
	return t.allocLocked(sk), nil
}

// allocLocked gives sk the lowest free descriptor. Under t.mu.
func (t *Sockets) allocLocked(sk *engine.Socket) int {
	sk.FD.Refs++
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

// open gives a new socket a descriptor, closing the socket if it cannot.
func (t *Sockets) open(sk *engine.Socket, nonblock bool) (int, error) {
	sk.FD.NonBlock = nonblock // not in the table yet: no other call sees it
	fd, err := t.alloc(sk)
	if err != nil {
		sk.Close()
	}
	return fd, err
}

// closeUnless closes fd unless *kept: deferred by a face, it undoes the
// socket it could not finish setting up.
func (t *Sockets) closeUnless(fd int, kept *bool) {
	if !*kept {
		t.Close(fd)
	}
}

// markClosed makes every descriptor invalid (Stack.Close).
func (t *Sockets) markClosed() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
}

// Socket creates a socket: domain AF_INET or AF_INET6 (else
// EAFNOSUPPORT), type SOCK_STREAM (TCP: protocol 0 or IPPROTO_TCP) or
// SOCK_DGRAM (UDP: protocol 0 or IPPROTO_UDP; a ping socket, as Linux's
// unprivileged ICMP sockets: IPPROTO_ICMP on AF_INET, IPPROTO_ICMPV6 on
// AF_INET6), optionally with
// SOCK_NONBLOCK and SOCK_CLOEXEC (other flags EINVAL, other types
// ESOCKTNOSUPPORT, other protocols EPROTONOSUPPORT). It returns the new
// descriptor.
func (t *Sockets) Socket(domain, typ, proto int) (int, error) {
	if domain != AF_INET && domain != AF_INET6 {
		return -1, syscall.EAFNOSUPPORT
	}
	flags := typ &^ sockTypeMask
	typ &= sockTypeMask
	if flags&^(SOCK_NONBLOCK|SOCK_CLOEXEC) != 0 || typ < 0 || typ >= sockMax {
		return -1, syscall.EINVAL
	}
	var newSocket func(int) (*engine.Socket, error)
	switch {
	case typ == SOCK_STREAM && (proto == IPPROTO_IP || proto == IPPROTO_TCP):
		newSocket = t.s.h.NewSocket
	case typ == SOCK_DGRAM && (proto == IPPROTO_IP || proto == IPPROTO_UDP):
		newSocket = t.s.h.NewUDPSocket
	case typ == SOCK_DGRAM && (domain == AF_INET && proto == IPPROTO_ICMP || domain == AF_INET6 && proto == IPPROTO_ICMPV6):
		newSocket = t.s.h.NewPingSocket
	case typ != SOCK_STREAM && typ != SOCK_DGRAM:
		return -1, syscall.ESOCKTNOSUPPORT
	default:
		return -1, syscall.EPROTONOSUPPORT
	}
	sk, err := newSocket(domain)
	if err != nil {
		return -1, err
	}
	return t.open(sk, flags&SOCK_NONBLOCK != 0)
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
	return t.onSocket(fd, func(sk *engine.Socket) error { return sk.Bind(addr) })
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
	return t.onSocket(fd, func(sk *engine.Socket) error { return sk.Listen(backlog) })
}

// SetMaxConns bounds the connections the listening socket fd has alive,
// from SYN_RCVD to the end, accepted or not; n <= 0 removes the bound. A
// SYN beyond it is dropped and counted (Stats.SynstackConnLimitDrops), as
// one beyond a full accept queue, so the client's retransmission gets in
// once a connection has ended. Linux has no such option (a server bounds
// itself after accept, which costs a handshake per refusal); the stack as
// a whole is bounded by Config.MaxConns. EINVAL if fd is not listening.
func (t *Sockets) SetMaxConns(fd, n int) error {
	return t.onSocket(fd, func(sk *engine.Socket) error { return sk.SetMaxConns(n) })
}

// Accept takes the first connection of the listener's accept queue and
// returns a new descriptor for it (blocking, whatever the listener's
// flags, as Linux's accept) and the peer's address. EINVAL if the socket is
// not listening (also when a listener is shut down under a blocked
// Accept), EAGAIN if non-blocking and the queue is empty.
func (t *Sockets) Accept(fd int) (nfd int, peer netip.AddrPort, err error) {
	sk, nonblock, err := t.get(fd)
	if err != nil {
		return -1, netip.AddrPort{}, err
	}
	nsk, peer, err := sk.Accept(nonblock, nil)
	if err != nil {
		return -1, netip.AddrPort{}, err
	}
	if nfd, err = t.open(nsk, false); err != nil {
		return -1, netip.AddrPort{}, err
	}
	return nfd, peer, nil
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
	sk, nonblock, err := t.get(fd)
	if err != nil {
		return err
	}
	return sk.Connect(addr, nonblock, nil)
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
//
// Urgent data (TCP): a read stops at the urgent mark, before the byte the
// peer's urgent pointer marks, and skips that byte afterwards; MSG_OOB
// reads it (one byte, never waiting; with MSG_PEEK it stays), as Linux:
// EINVAL when there is none to read (none came, it was read, or
// SO_OOBINLINE keeps it in the stream), EAGAIN when announced and not yet
// here, ENOTCONN on a listener, EOPNOTSUPP on UDP. See Ioctl's SIOCATMARK.
func (t *Sockets) Recv(fd int, p []byte, flags int) (int, error) {
	sk, nonblock, err := t.get(fd)
	if err != nil {
		return 0, err
	}
	if flags&MSG_OOB != 0 {
		return recvUrgent(sk, p, flags)
	}
	return sk.Recv(p, flags&MSG_PEEK != 0, nonblock || flags&MSG_DONTWAIT != 0, nil)
}

// Send writes data. A blocking Send writes everything, waiting for room in
// the send buffer (and for the handshake of a connecting socket); a
// non-blocking one (or MSG_DONTWAIT) writes what fits and returns EAGAIN if
// nothing does. EPIPE on a socket never connected, after SHUT_WR, and after
// a reset once ECONNRESET has been returned. MSG_NOSIGNAL is accepted
// (there are no signals); MSG_MORE, MSG_EOR and MSG_ZEROCOPY as Sendmsg.
func (t *Sockets) Send(fd int, p []byte, flags int) (int, error) {
	sk, nonblock, err := t.get(fd)
	if err != nil {
		return 0, err
	}
	return sk.SendMsg(p, sendFlags(nonblock, flags), nil)
}

// SetWriterWaiting tells fd's connection that a writer is blocked on its
// handshake with data still to write, as a blocking Send (or a blocking
// sendto with MSG_FASTOPEN whose SYN could not take all the data) does
// while it waits: the SYN,ACK is then acknowledged by that data, not by
// an ACK of its own (Linux's sk_write_pending). A program that makes a
// blocking call as non-blocking attempts, such as the packet-script
// runner, sets it while its call waits and clears it when it returns.
func (t *Sockets) SetWriterWaiting(fd int, waiting bool) error {
	return t.onSocket(fd, func(sk *engine.Socket) error { return sk.SetWriterWaiting(waiting) })
}

// Shutdown shuts the reading side (SHUT_RD), writing side (SHUT_WR, a FIN
// after queued data) or both of the socket, whatever the number of
// descriptors: blocked calls on any of them wake up. EINVAL for a bad how,
// ENOTCONN on an unconnected socket. On a listener, SHUT_RD and SHUT_RDWR
// stop listening (its queued connections are reset and a blocked Accept
// returns EINVAL); SHUT_WR does nothing. In SYN_SENT it abandons the
// connection attempt.
func (t *Sockets) Shutdown(fd, how int) error {
	return t.onSocket(fd, func(sk *engine.Socket) error { return sk.Shutdown(how) })
}

// Close closes a descriptor. The socket closes with its last descriptor:
// a listener stops (resetting its queued connections); a connection gets
// tcp's close (FIN after queued data, or RST if received data is unread)
// or, with SO_LINGER on and a zero timeout, an abort (RST). The
// connection then lives on as an orphan until it finishes; beyond
// MaxOrphans orphans it is reset instead. SO_LINGER with a non-zero
// timeout does not make Close wait: it closes as without SO_LINGER.
func (t *Sockets) Close(fd int) error {
	t.mu.Lock()
	sk, err := t.getLocked(fd)
	if err != nil {
		t.mu.Unlock()
		return err
	}
	t.fds[fd] = nil
	t.lowFree = min(t.lowFree, fd)
	sk.FD.Refs--
	last := sk.FD.Refs == 0
	t.mu.Unlock()
	if last {
		// EBADF: the stack closed under the call; nothing is left to do.
		_ = sk.Close()
	}
	return nil
}

// Ioctl runs the socket ioctls Linux's TCP has for its queues and
// returns the value they write: SIOCINQ (FIONREAD), bytes received and not
// yet read; SIOCOUTQ (TIOCOUTQ), bytes written and not yet acknowledged;
// SIOCOUTQNSD, bytes written and not yet sent. As Linux, a listener gets
// EINVAL and a connection still in its handshake reads 0; on a UDP
// socket SIOCINQ is the size of the next datagram, SIOCOUTQ 0 and
// SIOCOUTQNSD ENOTTY; SIOCATMARK is 1 when the next read starts at the
// urgent mark (TCP); any other request gets ENOTTY.
func (t *Sockets) Ioctl(fd, req int) (int, error) {
	sk, _, err := t.get(fd)
	if err != nil {
		return 0, err
	}
	switch req {
	case SIOCINQ:
		return sk.QueueLen(engine.QueueIn)
	case SIOCOUTQ:
		return sk.QueueLen(engine.QueueOut)
	case SIOCOUTQNSD:
		return sk.QueueLen(engine.QueueOutNSD)
	case SIOCATMARK:
		if sk.UDP() {
			return 0, syscall.ENOTTY
		}
		at, err := sk.AtMark()
		return boolInt(at), err
	}
	return 0, syscall.ENOTTY
}

// Dup returns a new descriptor (the lowest free) for the same socket.
func (t *Sockets) Dup(fd int) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	sk, err := t.getLocked(fd)
	if err != nil {
		return -1, err
	}
	return t.allocLocked(sk), nil
}

// Fcntl supports F_GETFL (O_RDWR, plus O_NONBLOCK when set), F_SETFL
// (O_NONBLOCK is taken from arg, other bits ignored as Linux ignores the
// access mode), F_GETFD and F_SETFD (accepted, always 0). O_NONBLOCK
// belongs to the socket and so to all its descriptors, as a file status
// flag shared by dup'ed descriptors. Other commands get EINVAL.
func (t *Sockets) Fcntl(fd, cmd, arg int) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	sk, err := t.getLocked(fd)
	if err != nil {
		return -1, err
	}
	switch cmd {
	case F_GETFL:
		fl := O_RDWR
		if sk.FD.NonBlock {
			fl |= O_NONBLOCK
		}
		return fl, nil
	case F_SETFL:
		sk.FD.NonBlock = arg&O_NONBLOCK != 0
		return 0, nil
	case F_GETFD, F_SETFD:
		return 0, nil
	}
	return -1, syscall.EINVAL
}

// Getsockname returns the socket's local address: the connection's, the
// bound one, or the unspecified address and port 0 when unbound. IPv4
// addresses of an AF_INET6 socket are v4-mapped.
func (t *Sockets) Getsockname(fd int) (netip.AddrPort, error) {
	sk, _, err := t.get(fd)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return sk.LocalAddr()
}

// Getpeername returns the peer's address; ENOTCONN unless the connection
// is past SYN_SENT and not closed.
func (t *Sockets) Getpeername(fd int) (netip.AddrPort, error) {
	sk, _, err := t.get(fd)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return sk.PeerAddr()
}

// Sendto sends p to addr: on a UDP socket one datagram (to the connected
// peer when addr is the zero AddrPort; EDESTADDRREQ if there is none,
// EMSGSIZE over 65,507 bytes of IPv4 payload); on a TCP socket addr is
// ignored, as Linux ignores it, and Sendto is Send, unless flags has
// MSG_FASTOPEN: an unconnected socket then connects to addr with TCP Fast
// Open, its SYN carrying what of p it can (see fastopen.go).
func (t *Sockets) Sendto(fd int, p []byte, flags int, addr netip.AddrPort) (int, error) {
	sk, nonblock, err := t.get(fd)
	if err != nil {
		return 0, err
	}
	if !sk.UDP() {
		if flags&MSG_FASTOPEN != 0 {
			return sk.SendFastOpen(p, addr, sendFlags(nonblock, flags), nil)
		}
		return sk.SendMsg(p, sendFlags(nonblock, flags), nil)
	}
	return sk.SendTo(p, addr)
}

// Recvfrom receives into p and returns the sender's address: on a UDP
// socket one datagram, whose bytes beyond len(p) are discarded (with
// MSG_TRUNC the datagram's whole length is returned, as Linux does); on a
// TCP socket Recv, with no address. Flags as Recv's: MSG_PEEK,
// MSG_DONTWAIT.
func (t *Sockets) Recvfrom(fd int, p []byte, flags int) (int, netip.AddrPort, error) {
	sk, nonblock, err := t.get(fd)
	if err != nil {
		return 0, netip.AddrPort{}, err
	}
	nonblock = nonblock || flags&MSG_DONTWAIT != 0
	if !sk.UDP() {
		if flags&MSG_OOB != 0 {
			n, err := recvUrgent(sk, p, flags)
			return n, netip.AddrPort{}, err
		}
		n, err := sk.Recv(p, flags&MSG_PEEK != 0, nonblock, nil)
		return n, netip.AddrPort{}, err
	}
	n, from, full, err := sk.RecvFrom(p, flags&MSG_PEEK != 0, nonblock, nil)
	if flags&MSG_TRUNC != 0 {
		n = full
	}
	return n, from, err
}
