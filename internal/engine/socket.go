package engine

import (
	"errors"
	"io"
	"net/netip"
	"syscall"

	"github.com/synstack/synstack/tcp"
	"github.com/synstack/synstack/tcp/seq"
)

// Socket families, Linux's values (the socket layer passes them through).
const (
	AF_INET  = 2
	AF_INET6 = 10
)

// Shutdown's how, Linux's values.
const (
	SHUT_RD   = 0
	SHUT_WR   = 1
	SHUT_RDWR = 2
)

// sockState is the socket-level connection state (Linux's sock->state),
// apart from the TCP state of its connection.
type sockState uint8

const (
	ssUnconnected sockState = iota // never connected, or after a failed connect
	ssConnecting                   // connect called; not yet seen to complete by connect
	ssConnected                    // connect saw the handshake complete, or accepted
)

// Socket is a TCP socket of the host: everything of Linux's socket but its
// descriptors, which the socket layer above keeps (it counts them, and
// calls Close when the last one goes). Its methods take the locks they
// need (locks.go) and return Linux's errno values as syscall.Errno;
// blocking ones wait on the socket's wait queue, without holding a lock,
// until it changes, the host closes, or cancel (when not nil) closes.
type Socket struct {
	h *Host

	family uint8 // AF_INET or AF_INET6
	closed bool  // Close was called
	// foDefer: a TCP_FASTOPEN_CONNECT connect waits for the first write
	// (its address is in Host.tfo.deferred, fastopen.go).
	foDefer bool
	state   sockState
	shutRd  bool // shutdown on a socket without a connection (Linux sets
	shutWr  bool // sk_shutdown even when it returns ENOTCONN)
	// hasEQ: a TCP socket's error queue exists, in Host.errQueues
	// (errqueue.go). Under the connection's shard lock.
	hasEQ bool
	// +checklocks:h.ctl
	userBound bool // bind came from a bind call

	// FD is the descriptor table's: the layer above keeps it, under its
	// own lock; the engine never reads it.
	FD FDState

	// bind is the claim on a local port the socket holds itself (one
	// reference): made by bind (userBound) or by listen's automatic bind.
	// A connection holds its own reference to its claim.
	// +checklocks:h.ctl
	bind *binding

	ep *endpoint // the connection, if any
	// +checklocks:h.ctl
	l    *listener // the listener, while listening
	opts *Options  // shared with every socket that has the same (Host.internOptsLocked): never changed in place

	// peek holds data taken from the connection by MSG_PEEK and not yet
	// read (rare: a pointer, so that a socket does not carry a slice).
	peek *peeked
	// waiters is the socket's wait queue: the calls blocked on it, each
	// waiting for one token on its channel at the next event (wake).
	waiters waitQueue
	// udp is the UDP part of a UDP socket (udp.go); nil for TCP.
	udp *udpSock
}

// FDState is what the descriptor table above keeps of an open socket:
// the descriptors that refer to it, and O_NONBLOCK (a file status flag,
// shared by dup'ed descriptors).
type FDState struct {
	Refs     int32
	NonBlock bool
}

// peeked is data a MSG_PEEK took from the connection, not yet read.
type peeked struct{ b []byte }

// peekLen is the length of the data peeked and not yet read.
func (sk *Socket) peekLen() int {
	if sk.peek == nil {
		return 0
	}
	return len(sk.peek.b)
}

// ErrCanceled is what a blocking call returns when its cancel channel (a
// deadline, a context, a Close of the net.Conn above) closes.
var ErrCanceled = errors.New("synstack: wait canceled")

// NewSocket returns an unbound, unconnected socket of family (AF_INET or
// AF_INET6) with the host's default options; EBADF once the host is closed.
func (s *Host) NewSocket(family int) (*Socket, error) {
	s.ctl.Lock()
	defer s.ctl.Unlock()
	if s.closed {
		return nil, syscall.EBADF
	}
	return &Socket{h: s, family: uint8(family), opts: s.defaultOpts()}, nil
}

// usable returns EBADF if the socket can no longer be used by a call (one
// that has been waiting on it, too).
func (sk *Socket) usable() error {
	if sk.h.closed || sk.closed {
		return syscall.EBADF
	}
	return nil
}

// localAddr converts an address given to bind or connect to the unmapped
// form the stack uses, checking it against the socket's family: an
// AF_INET socket takes IPv4 (a v4-mapped address is unmapped), an AF_INET6
// socket IPv6 and, unless IPV6_V6ONLY, IPv4 (plain or v4-mapped).
func (sk *Socket) localAddr(a netip.Addr, v6onlyErr syscall.Errno) (netip.Addr, error) {
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
		if sk.opts.V6Only {
			return a, v6onlyErr
		}
		return a.Unmap(), nil
	}
	return a.WithZone(""), nil
}

// sockAddr presents an address in the socket's family: v4-mapped for IPv4
// on an AF_INET6 socket.
func (sk *Socket) sockAddr(ap netip.AddrPort) netip.AddrPort {
	if sk.family == AF_INET6 && ap.Addr().Is4() {
		return netip.AddrPortFrom(netip.AddrFrom16(ap.Addr().As16()), ap.Port())
	}
	return ap
}

// wildcard is the unspecified address of the socket's family.
func (sk *Socket) wildcard() netip.Addr {
	if sk.family == AF_INET {
		return netip.IPv4Unspecified()
	}
	return netip.IPv6Unspecified()
}

// newBinding returns an unentered claim for addr:port with the socket's
// current reuse options.
func (sk *Socket) newBinding(addr netip.Addr, port uint16, explicit bool) *binding {
	return &binding{
		addr:      addr,
		port:      port,
		v6only:    addr.Is6() && sk.opts.V6Only,
		reuse:     sk.opts.ReuseAddr,
		reuseport: sk.opts.ReusePort,
		explicit:  explicit,
	}
}

// Bind binds the socket to a local address and port (see
// synstack.Sockets.Bind for the rules and errors).
func (sk *Socket) Bind(addr netip.AddrPort) error {
	var l locks
	defer sk.h.releaseCtl(&l)
	if err := sk.lock(ctlOnly, &l); err != nil {
		return err
	}
	if sk.udp != nil {
		return sk.udp.bindLocked(addr)
	}
	return sk.bindLocked(addr)
}

// bindLocked is Bind on a socket, under ctl.
//
// +checklocks:sk.h.ctl
func (sk *Socket) bindLocked(addr netip.AddrPort) error {
	s := sk.h
	a, err := sk.localAddr(addr.Addr(), syscall.EINVAL)
	if err != nil {
		return err
	}
	if !a.IsUnspecified() && !s.isLocalAddr(a) && !sk.opts.FreeBind {
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

// Listen makes the socket listen with the given backlog (negative:
// SomaxConn); see synstack.Sockets.Listen.
func (sk *Socket) Listen(backlog int) error {
	var l locks
	defer sk.h.releaseCtl(&l)
	if err := sk.lock(ctlOnly, &l); err != nil {
		return err
	}
	if sk.udp != nil {
		return syscall.EOPNOTSUPP
	}
	return sk.listenLocked(backlog)
}

// listenLocked is Listen on a socket, under ctl.
//
// +checklocks:sk.h.ctl
func (sk *Socket) listenLocked(backlog int) error {
	s := sk.h
	if sk.ep != nil || sk.state != ssUnconnected {
		return syscall.EINVAL
	}
	if backlog < 0 || backlog > s.limits.SomaxConn {
		backlog = s.limits.SomaxConn
	}
	if sk.l != nil {
		sk.l.backlog = backlog
		sk.wake()
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

// SetMaxConns bounds the connections the listening socket has alive (see
// synstack.Sockets.SetMaxConns); EINVAL if it is not listening.
func (sk *Socket) SetMaxConns(n int) error {
	var l locks
	defer sk.h.releaseCtl(&l)
	if err := sk.lock(ctlOnly, &l); err != nil {
		return err
	}
	if sk.l == nil {
		return syscall.EINVAL
	}
	sk.l.maxConns = max(n, 0)
	return nil
}

// Accept takes the first connection of the listener's accept queue and
// returns its socket and the peer's address (see synstack.Sockets.Accept).
func (sk *Socket) Accept(nonblock bool, cancel <-chan struct{}) (*Socket, netip.AddrPort, error) {
	var l locks
	defer sk.h.releaseCtl(&l)
	if err := sk.lock(ctlOnly, &l); err != nil {
		return nil, netip.AddrPort{}, err
	}
	if sk.udp != nil {
		return nil, netip.AddrPort{}, syscall.EOPNOTSUPP
	}
	return sk.acceptLocked(nonblock, cancel, &l)
}

// acceptLocked is Accept on a socket, under ctl (and no shard's lock); it
// also returns ErrCanceled when cancel closes while it waits.
//
// +checklocks:sk.h.ctl
func (sk *Socket) acceptLocked(nonblock bool, cancel <-chan struct{}, l *locks) (*Socket, netip.AddrPort, error) {
	s := sk.h
	for {
		if err := sk.usable(); err != nil {
			return nil, netip.AddrPort{}, err
		}
		if isDone(cancel) {
			return nil, netip.AddrPort{}, ErrCanceled
		}
		ln := sk.l
		if ln == nil {
			return nil, netip.AddrPort{}, syscall.EINVAL
		}
		if q := ln.acceptQ; len(q) > 0 {
			ep := q[0]
			q[0] = nil
			ln.acceptQ = q[1:]
			nsk := &Socket{h: s, family: sk.family, state: ssConnected, opts: sk.opts, ep: ep}
			ep.sh.mu.Lock() // the connection's work reads these
			ep.parent = nil
			ep.inAccept = false
			ep.sock = nsk
			ep.sh.mu.Unlock()
			return nsk, nsk.sockAddr(ep.remote), nil
		}
		if nonblock {
			return nil, netip.AddrPort{}, syscall.EAGAIN
		}
		sk.waitLocked(cancel, l)
	}
}

// Connect opens a connection to addr (see synstack.Sockets.Connect).
// Non-blocking, it returns EINPROGRESS; blocking, it waits for the
// handshake to end, or for cancel: then ErrCanceled, the attempt abandoned.
func (sk *Socket) Connect(addr netip.AddrPort, nonblock bool, cancel <-chan struct{}) error {
	var l locks
	defer sk.h.releaseCtl(&l)
	if err := sk.lock(sockLocks, &l); err != nil {
		return err
	}
	if sk.udp != nil {
		return sk.udp.connectLocked(addr)
	}
	return sk.connectLocked(addr, nonblock, cancel, &l)
}

// connectLocked is Connect on a socket, under l (ctl and sk's shard, see
// Host.lockSocket), which then names the shard of the new connection. A
// blocking connect that is waiting when cancel closes abandons the
// attempt (as shutdown in SYN_SENT does) and returns ErrCanceled.
//
// +checklocks:sk.h.ctl
func (sk *Socket) connectLocked(addr netip.AddrPort, nonblock bool, cancel <-chan struct{}, l *locks) error {
	if sk.foDefer {
		return syscall.EISCONN // a deferred Fast Open connect (fastopen.go)
	}
	if sk.deferFastOpenLocked(addr) {
		return nil
	}
	return sk.connectWithLocked(addr, nonblock, cancel, l, nil)
}

// connectWithLocked is connectLocked with start, when not nil, sending
// the SYN instead of tcp.Conn.Connect (a Fast Open connect, fastopen.go).
//
// +checklocks:sk.h.ctl
func (sk *Socket) connectWithLocked(addr netip.AddrPort, nonblock bool, cancel <-chan struct{}, l *locks, start func(ep *endpoint) error) error {
	s := sk.h
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
		return sk.waitConnectLocked(cancel, l)
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
		l.addShard(s.shardOf(local, remote))
	}
	ep := s.newEndpointLocked(local, remote, sk.opts, b)
	ep.sock = sk
	sk.ep = ep
	sk.state = ssConnecting
	sk.peek = nil
	sk.shutRd, sk.shutWr = false, false
	if start != nil {
		err = start(ep)
	} else if sk.opts.FastOpenConnect {
		err = sk.fastOpenConnectLocked(ep)
	} else {
		err = ep.conn.Connect(s.clock.Now())
	}
	s.afterLocked(ep)
	if err != nil {
		sk.disconnectLocked()
		return errnoOf(err)
	}
	if nonblock {
		return syscall.EINPROGRESS
	}
	return sk.waitConnectLocked(cancel, l)
}

// waitConnectLocked waits for the handshake of a connecting socket to end
// and reports it as connect does: nil once established, else the
// connection's error (or ECONNABORTED if it was already taken by
// SO_ERROR), after which the socket is unconnected and may connect again.
// If cancel closes first, the attempt is abandoned: ErrCanceled. It runs
// under l, ctl and sk's connection's shard (see waitLocked).
func (sk *Socket) waitConnectLocked(cancel <-chan struct{}, l *locks) error {
	for {
		if err := sk.usable(); err != nil {
			return err
		}
		if sk.ep == nil {
			return syscall.ECONNABORTED
		}
		switch sk.ep.conn.State() {
		case tcp.SynSent, tcp.SynRcvd:
			if isDone(cancel) {
				sk.disconnectLocked()
				return ErrCanceled
			}
			sk.waitLocked(cancel, l)
			continue
		case tcp.Closed:
			err := sk.ep.conn.TakeErr()
			if err == 0 {
				err = syscall.ECONNABORTED
			}
			sk.disconnectLocked()
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
func (sk *Socket) disconnectLocked() {
	s := sk.h
	ep := sk.ep
	if ep == nil {
		return
	}
	if ep.hashed {
		ep.conn.Abort(s.clock.Now())
		s.afterLocked(ep)
		s.unhashLocked(ep) // +checklocksignore: ep is sk.ep, whose shard l names
	}
	ep.sock = nil
	sk.ep = nil
	sk.state = ssUnconnected
	sk.peek = nil
	sk.wake()
}

// Recv reads received data (see synstack.Sockets.Recv): 0, nil at the end
// of the stream; with peek the data stays to be read again.
func (sk *Socket) Recv(p []byte, peek, nonblock bool, cancel <-chan struct{}) (int, error) {
	if sk.udp != nil {
		n, _, _, err := sk.RecvFrom(p, peek, nonblock, cancel)
		return n, err
	}
	var l locks
	defer sk.h.releaseCtl(&l)
	if err := sk.lock(sockLocks, &l); err != nil {
		return 0, err
	}
	return sk.recvLocked(p, peek, nonblock, cancel, &l)
}

// recvLocked is Recv on a socket; it also returns ErrCanceled when cancel
// is closed, checked before reading (as a deadline in the past is). It
// runs under l: the lock of the socket's connection's shard alone (a
// net.Conn's Read), or ctl with it (Recv).
func (sk *Socket) recvLocked(p []byte, peek, nonblock bool, cancel <-chan struct{}, l *locks) (int, error) {
	for {
		if err := sk.usable(); err != nil {
			return 0, err
		}
		if isDone(cancel) {
			return 0, ErrCanceled
		}
		if sk.ep == nil && sk.foDefer && !sk.shutRd {
			// A deferred Fast Open connect: nothing to read yet.
			if nonblock {
				return 0, syscall.EAGAIN
			}
			sk.waitLocked(cancel, l)
			continue
		}
		if sk.ep == nil {
			if sk.shutRd {
				return 0, nil
			}
			return 0, syscall.ENOTCONN
		}
		n, err := sk.readLocked(p, peek)
		switch {
		case err == syscall.EAGAIN && !nonblock:
			sk.waitLocked(cancel, l)
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
func (sk *Socket) readLocked(p []byte, peek bool) (int, error) {
	s := sk.h
	if len(p) == 0 {
		return 0, nil
	}
	ep := sk.ep
	now := s.clock.Now()
	if !peek {
		if pk := sk.peek; pk != nil {
			n := copy(p, pk.b)
			if pk.b = pk.b[n:]; len(pk.b) == 0 {
				sk.peek = nil
			}
			return n, nil
		}
		n, err := ep.conn.Read(now, p)
		s.afterLocked(ep)
		return n, err
	}
	if sk.peek == nil {
		sk.peek = &peeked{}
	}
	pk := sk.peek
	if len(pk.b) < len(p) {
		more := make([]byte, len(p)-len(pk.b))
		n, err := ep.conn.Read(now, more)
		s.afterLocked(ep)
		if n > 0 {
			pk.b = append(pk.b, more[:n]...)
		} else if len(pk.b) == 0 {
			sk.peek = nil
			return 0, err
		}
	}
	return copy(p, pk.b), nil
}

// Send writes data (see synstack.Sockets.Send): blocking, everything,
// waiting for room; non-blocking, what fits, or EAGAIN.
func (sk *Socket) Send(p []byte, nonblock bool, cancel <-chan struct{}) (int, error) {
	return sk.SendMsg(p, SendFlags{NonBlock: nonblock}, cancel)
}

// SendMsg is Send with sendmsg's flags (SendFlags).
func (sk *Socket) SendMsg(p []byte, f SendFlags, cancel <-chan struct{}) (int, error) {
	if sk.udp != nil {
		return sk.SendTo(p, netip.AddrPort{})
	}
	var l locks
	defer sk.h.releaseCtl(&l)
	if err := sk.lock(sockLocks, &l); err != nil {
		return 0, err
	}
	return sk.sendLocked(p, f, cancel, &l)
}

// sendLocked is Send on a socket. When cancel closes it returns what it
// has written with ErrCanceled (checked before writing, as a deadline in
// the past is). It runs under l, as recvLocked.
func (sk *Socket) sendLocked(p []byte, f SendFlags, cancel <-chan struct{}, l *locks) (int, error) {
	nonblock := f.NonBlock
	s := sk.h
	written := 0
	waited := false
	for {
		if err := sk.usable(); err != nil {
			if written > 0 {
				return written, nil
			}
			return 0, err
		}
		if isDone(cancel) {
			return written, ErrCanceled
		}
		ep := sk.ep
		if ep == nil && sk.foDefer {
			// The deferred Fast Open connect: this write goes in the SYN.
			return sk.sendFastOpenLocked(p, s.fastOpenDeferred(sk), f, cancel, l) // +checklocksignore: a socket without a connection is written under ctl (Send)
		}
		if ep == nil {
			return 0, syscall.EPIPE
		}
		if st := ep.conn.State(); (st == tcp.SynSent || st == tcp.SynRcvd) && !ep.conn.FastOpenPassive() {
			// Linux's sk_stream_wait_connect (a Fast Open child
			// writes in SYN_RCVD).
			if nonblock {
				return 0, syscall.EAGAIN
			}
			// A writer waiting for the handshake: the handshake's ACK
			// waits for its data (Linux's sk_write_pending).
			ep.conn.SetWriterWaiting(true)
			sk.waitLocked(cancel, l)
			if sk.ep == ep {
				ep.conn.SetWriterWaiting(false)
			}
			continue
		}
		if waited && !ep.conn.WriteReady() && !ep.conn.WriteClosed() && ep.conn.Err() == 0 {
			// Linux wakes a blocked writer only when half the queue has
			// drained (sk_stream_write_space), not for every ACK.
			sk.waitLocked(cancel, l)
			continue
		}
		start := ep.conn.WriteEnd()
		chunk, wf := p[written:], tcp.WriteFlags{More: f.More, EOR: f.EOR, OOB: f.OOB}
		if len(f.Breaks) > 0 {
			chunk, wf = breakChunk(p, written, f)
		}
		n, err := ep.conn.WriteMsg(s.clock.Now(), chunk, wf)
		if n > 0 {
			// Before afterLocked, which stamps what the write sent.
			sk.noteSendLocked(start, start.Add(seq.Size(n)), p[:written+n], f, written > 0)
		}
		s.afterLocked(ep)
		written += n
		if err == nil && written == len(p) {
			return written, nil
		}
		if err == nil && n == len(chunk) && n > 0 {
			continue // on to the next buffer of a broken-up send
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
				sk.waitLocked(cancel, l)
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

// breakChunk is the part of p from written up to the next of f.Breaks, and
// its write flags: a part that ends at a break is a record of its own
// (EOR: no segment joins it with what follows) and is pushed (no MSG_MORE).
func breakChunk(p []byte, written int, f SendFlags) ([]byte, tcp.WriteFlags) {
	for _, b := range f.Breaks {
		if b > written && b < len(p) {
			return p[written:b], tcp.WriteFlags{EOR: true}
		}
	}
	return p[written:], tcp.WriteFlags{More: f.More, EOR: f.EOR, OOB: f.OOB}
}

// Shutdown shuts the reading side, the writing side or both (see
// synstack.Sockets.Shutdown).
func (sk *Socket) Shutdown(how int) error {
	var l locks
	defer sk.h.releaseCtl(&l)
	if err := sk.lock(allLocks, &l); err != nil {
		return err
	}
	if sk.udp != nil {
		return sk.udp.shutdownLocked(how)
	}
	return sk.shutdownLocked(how)
}

// shutdownLocked is Shutdown on a socket, under Host.lock.
//
// +checklocks:sk.h.ctl
func (sk *Socket) shutdownLocked(how int) error {
	s := sk.h
	if how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR {
		return syscall.EINVAL
	}
	if sk.l != nil {
		if how == SHUT_WR {
			return nil
		}
		sk.stopListenLocked()
		return nil
	}
	ep := sk.ep
	if ep == nil || ep.conn.State() == tcp.Closed {
		sk.shutRd = sk.shutRd || how != SHUT_WR
		sk.shutWr = sk.shutWr || how != SHUT_RD
		sk.wake()
		return syscall.ENOTCONN
	}
	if ep.conn.State() == tcp.SynSent {
		sk.disconnectLocked()
		return nil
	}
	err := ep.conn.Shutdown(s.clock.Now(), how)
	s.afterLocked(ep)
	return errnoOf(err)
}

// stopListenLocked ends the socket's listening; a port bound by listen
// itself (not by bind) is released, as Linux does.
//
// +checklocks:sk.h.ctl
func (sk *Socket) stopListenLocked() {
	s := sk.h
	s.stopListeningLocked(sk.l)
	sk.l = nil
	if !sk.userBound {
		s.releaseBindingLocked(sk.bind)
		sk.bind = nil
	}
}

// Close closes the socket, whose last descriptor went: a listener stops
// (resetting its queued connections); a connection gets tcp's close, or an
// abort with SO_LINGER and a zero timeout, and lives on as an orphan until
// it finishes (reset instead beyond MaxOrphans). Calls blocked on the
// socket return EBADF. EBADF when the socket or the host is closed already.
func (sk *Socket) Close() error {
	var l locks
	defer sk.h.releaseCtl(&l)
	if err := sk.lock(sockLocks, &l); err != nil {
		return err
	}
	if sk.udp != nil {
		sk.closed = true
		sk.udp.closeLocked()
		return nil
	}
	sk.releaseLocked()
	return nil
}

// releaseLocked closes the socket, under its locks (sockLocks).
//
// +checklocks:sk.h.ctl
func (sk *Socket) releaseLocked() {
	s := sk.h
	sk.closed = true
	if sk.foDefer {
		s.fastOpenUndefer(sk)
	}
	if sk.l != nil {
		sk.stopListenLocked()
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
			if sk.opts.Linger.Onoff != 0 && sk.opts.Linger.Linger == 0 {
				ep.conn.Abort(now)
			} else {
				ep.conn.Close(now)
			}
			s.afterLocked(ep)
			if ep.hashed && ep.conn.State() != tcp.TimeWait {
				if s.orphanCount() >= s.limits.MaxOrphans {
					// Linux's "too many orphaned sockets".
					s.g().stats.TcpExtTCPAbortOnMemory++
					ep.conn.Abort(now)
					s.afterLocked(ep)
					s.unhashLocked(ep) // +checklocksignore: ep is sk.ep, whose shard l names
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
	if sk.hasEQ {
		s.errQueues.Delete(sk)
	}
	sk.wake()
}

// LocalAddr returns the socket's local address: the connection's, the
// bound one, or the unspecified address and port 0 when unbound; IPv4
// addresses of an AF_INET6 socket are v4-mapped.
func (sk *Socket) LocalAddr() (netip.AddrPort, error) {
	var l locks
	defer sk.h.releaseCtl(&l)
	if err := sk.lock(allLocks, &l); err != nil {
		return netip.AddrPort{}, err
	}
	switch {
	case sk.udp != nil && sk.udp.hashed:
		return sk.sockAddr(sk.udp.local), nil
	case sk.ep != nil:
		return sk.sockAddr(sk.ep.local), nil
	case sk.bind != nil:
		return sk.sockAddr(netip.AddrPortFrom(sk.bind.addr, sk.bind.port)), nil
	}
	return netip.AddrPortFrom(sk.wildcard(), 0), nil
}

// PeerAddr returns the peer's address; ENOTCONN unless the connection is
// past SYN_SENT and not closed.
func (sk *Socket) PeerAddr() (netip.AddrPort, error) {
	var l locks
	defer sk.h.releaseCtl(&l)
	if err := sk.lock(allLocks, &l); err != nil {
		return netip.AddrPort{}, err
	}
	if u := sk.udp; u != nil {
		if !u.remote.IsValid() {
			return netip.AddrPort{}, syscall.ENOTCONN
		}
		return sk.sockAddr(u.remote), nil
	}
	if sk.ep == nil {
		return netip.AddrPort{}, syscall.ENOTCONN
	}
	if st := sk.ep.conn.State(); st == tcp.Closed || st == tcp.SynSent {
		return netip.AddrPort{}, syscall.ENOTCONN
	}
	return sk.sockAddr(sk.ep.remote), nil
}

// Connected reports whether the socket has a connection that connect or
// accept saw established: a net.Conn may stand on it.
func (sk *Socket) Connected() bool {
	var l locks
	defer sk.h.releaseCtl(&l)
	if err := sk.lock(allLocks, &l); err != nil {
		return false
	}
	return sk.ep != nil && sk.state == ssConnected
}

// Listening reports whether the socket listens.
func (sk *Socket) Listening() bool {
	var l locks
	defer sk.h.releaseCtl(&l)
	if err := sk.lock(ctlOnly, &l); err != nil {
		return false
	}
	return sk.l != nil
}

// Queue sizes ioctl reports (Linux's tcp_ioctl).
const (
	QueueIn     = iota // SIOCINQ: bytes received and not yet read
	QueueOut           // SIOCOUTQ: bytes written and not yet acknowledged
	QueueOutNSD        // SIOCOUTQNSD: bytes written and not yet sent
)

// QueueLen returns a queue's size, as Linux's tcp_ioctl: EINVAL on a
// listener, 0 while the handshake is under way (or without connection).
// On a datagram socket, udp_ioctl's (udpSock.queueLen).
func (sk *Socket) QueueLen(which int) (int, error) {
	if u := sk.udp; u != nil {
		return u.queueLen(which)
	}
	var l locks
	defer sk.h.releaseCtl(&l)
	if err := sk.lock(allLocks, &l); err != nil {
		return 0, err
	}
	switch {
	case sk.l != nil:
		return 0, syscall.EINVAL
	case sk.ep == nil:
		return 0, nil
	}
	c := &sk.ep.conn
	if st := c.State(); st == tcp.SynSent || st == tcp.SynRcvd {
		return 0, nil
	}
	switch which {
	case QueueIn:
		return c.Readable() + sk.peekLen(), nil
	case QueueOut:
		return c.SendQueued(), nil
	case QueueOutNSD:
		return c.Unsent(), nil
	}
	return 0, syscall.EINVAL
}

// TCPInfo returns TCP_INFO of the socket's connection.
func (sk *Socket) TCPInfo() (tcp.Info, error) {
	var l locks
	defer sk.h.releaseCtl(&l)
	if err := sk.lock(allLocks, &l); err != nil {
		return tcp.Info{}, err
	}
	switch {
	case sk.udp != nil:
		return tcp.Info{}, syscall.ENOPROTOOPT
	case sk.ep != nil:
		return sk.ep.conn.Info(sk.h.clock.Now()), nil
	case sk.l != nil:
		return tcp.Info{State: tcp.Listen}, nil
	}
	return tcp.Info{State: tcp.Closed}, nil
}

// SetWriterWaiting marks a writer blocked on the socket's handshake with
// data still to write, as a blocking Send does while it waits (see
// tcp.Conn.SetWriterWaiting); a caller that makes blocking calls one
// non-blocking attempt at a time (the packet-script runner) sets it while
// its call waits. It does nothing on a socket without a connection.
func (sk *Socket) SetWriterWaiting(waiting bool) error {
	var l locks
	defer sk.h.releaseCtl(&l)
	if err := sk.lock(sockLocks, &l); err != nil {
		return err
	}
	if sk.ep != nil {
		sk.ep.conn.SetWriterWaiting(waiting)
	}
	return nil
}

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

// Wildcard is the unspecified address of the socket's family.
func (sk *Socket) Wildcard() netip.Addr { return sk.wildcard() }
