package synstack

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/synstack/synstack/internal/engine"
)

// ListenConfig holds options for listening on a Stack, as net.ListenConfig
// does for the kernel's stack. A ListenConfig with only Stack set is ready
// to use; Stack.Listen uses such a one.
type ListenConfig struct {
	// Stack is the stack to listen on. Required.
	Stack *Stack

	// Backlog bounds the accept queue (listen's backlog); zero or
	// negative means Config.SomaxConn, as package net passes somaxconn.
	Backlog int

	// ReusePort sets SO_REUSEPORT before bind: several listeners that
	// all set it may share one address and port, and incoming connections
	// are spread among them by a hash of their addresses. (SO_REUSEADDR
	// is always set, as package net sets it, so that a server restarts
	// while its old connections sit in TIME_WAIT.)
	ReusePort bool

	// KeepAlive is the idle time before the first keepalive probe on
	// accepted connections, as net.ListenConfig's: zero means 15 s,
	// negative turns keepalive off. It is ignored if
	// KeepAliveConfig.Enable is true.
	KeepAlive time.Duration

	// KeepAliveConfig, if Enable is set, configures keepalive on accepted
	// connections (see TCPConn.SetKeepAliveConfig).
	KeepAliveConfig net.KeepAliveConfig

	// MaxConns, if positive, bounds the listener's connections alive,
	// from the SYN to the end, accepted or not (beyond the backlog, which
	// bounds only those waiting for Accept): a SYN beyond it is dropped
	// and counted in Stats.SynstackConnLimitDrops, and the client's
	// retransmission gets in once a connection has ended. See
	// Sockets.SetMaxConns.
	MaxConns int

	// Control, if not nil, is called with the new socket's descriptor
	// after it is created and its default options are set, before it is
	// bound: the place for any other socket option. network and address
	// are the arguments of Listen. An error aborts the Listen.
	Control func(network, address string, s *Sockets, fd int) error

	// FastOpen, if positive, makes the listener a TCP Fast Open server
	// (RFC 7413, as TCP_FASTOPEN): a SYN carrying a good cookie has its
	// data taken at once, and the connection is accepted and readable
	// before the handshake ends; FastOpen bounds how many such
	// connections may wait in that state (beyond it, a normal handshake).
	// The stack's Config.FastOpen must have FastOpenServer.
	FastOpen int

	// MD5Keys, if not empty, are TCP MD5 signature keys (RFC 2385, as
	// TCP_MD5SIG_EXT) by the peers they are for: a connection from a
	// peer in a prefix signs its segments with the key of the longest
	// such prefix and takes only segments signed with it; a peer in none
	// connects without. An empty key is an error.
	MD5Keys map[netip.Prefix][]byte
}

// Listen announces on the local address: network "tcp", "tcp4" or
// "tcp6"; address "host:port" where host is an IP literal of the stack or
// empty, and port 0 picks a free port (see Addr). As in package net, "tcp"
// with an empty or unspecified host takes IPv4 and IPv6 connections (one
// dual-stack socket), "tcp6" takes IPv6 only. The net.Listener is a
// *TCPListener.
func (lc *ListenConfig) Listen(ctx context.Context, network, address string) (net.Listener, error) {
	return orNil[net.Listener](lc.listen(ctx, network, address))
}

func (lc *ListenConfig) listen(ctx context.Context, network, address string) (*TCPListener, error) {
	s := lc.Stack
	if s == nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: errors.New("synstack: ListenConfig.Stack is nil")}
	}
	laddr, err := resolveTCP(ctx, network, address)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	fail := func(err error) (*TCPListener, error) {
		return nil, opError("listen", network, nil, tcpAddr(laddr), err)
	}
	if err := ctx.Err(); err != nil {
		return fail(ctxError(err))
	}
	fam, v6only := family(network, laddr.Addr(), laddr.Addr(), true)
	t := s.sockets
	ka := lc.KeepAliveConfig
	if !ka.Enable && lc.KeepAlive >= 0 {
		ka = net.KeepAliveConfig{Enable: true, Idle: lc.KeepAlive}
	}
	fd, err := t.netSocket("listen", fam, v6only, ka)
	if err != nil {
		return fail(err)
	}
	ok := false
	defer t.closeUnless(fd, &ok)
	if err := t.SetsockoptInt(fd, SOL_SOCKET, SO_REUSEADDR, 1); err != nil {
		return fail(mapErr("set", err, false))
	}
	if lc.ReusePort {
		if err := t.SetsockoptInt(fd, SOL_SOCKET, SO_REUSEPORT, 1); err != nil {
			return fail(mapErr("set", err, false))
		}
	}
	if lc.Control != nil {
		if err := lc.Control(network, address, t, fd); err != nil {
			return fail(err)
		}
	}
	if err := t.setMD5Keys(fd, lc.MD5Keys); err != nil {
		return fail(mapErr("set", err, false))
	}
	if err := t.Bind(fd, laddr); err != nil {
		return fail(bindErr(err))
	}
	if lc.FastOpen > 0 {
		if err := t.SetsockoptInt(fd, IPPROTO_TCP, TCP_FASTOPEN, lc.FastOpen); err != nil {
			return fail(mapErr("set", err, false))
		}
	}
	backlog := lc.Backlog
	if backlog <= 0 {
		backlog = -1 // SomaxConn
	}
	if err := t.Listen(fd, backlog); err != nil {
		return fail(mapErr("listen", err, false))
	}
	if lc.MaxConns > 0 {
		if err := t.SetMaxConns(fd, lc.MaxConns); err != nil {
			return fail(mapErr("listen", err, false))
		}
	}
	l := &TCPListener{descriptor: descriptor{s: s, fd: int32(fd)}, network: network}
	l.sk, _, err = t.get(fd)
	var addr netip.AddrPort
	if err == nil {
		addr, err = l.sk.LocalAddr()
		l.addr = tcpAddr(addr)
	}
	if err != nil {
		return fail(mapErr("listen", err, false))
	}
	ok = true
	return l, nil
}

// Listen listens on address with a ListenConfig that has only its Stack
// set (see ListenConfig.Listen). The net.Listener is a *TCPListener.
func (s *Stack) Listen(network, address string) (net.Listener, error) {
	return (&ListenConfig{Stack: s}).Listen(context.Background(), network, address)
}

// ListenTCP listens on laddr (nil: every address, a free port), as
// net.ListenTCP.
func (s *Stack) ListenTCP(network string, laddr *net.TCPAddr) (*TCPListener, error) {
	address := ":0"
	if laddr != nil {
		address = laddr.String()
	}
	return (&ListenConfig{Stack: s}).listen(context.Background(), network, address)
}

// TCPListener is a TCP listener of a Stack: a net.Listener with the
// methods of *net.TCPListener that mean something here. Its errors are
// made as package net makes them (see TCPConn). All methods may be called
// from several goroutines at once.
type TCPListener struct {
	descriptor
	sk      *engine.Socket
	network string
	addr    *net.TCPAddr
	dl      engine.Deadline // Accept's
}

var _ net.Listener = (*TCPListener)(nil)

// Accept waits for the next connection and returns it: a *TCPConn.
func (l *TCPListener) Accept() (net.Conn, error) {
	return orNil[net.Conn](l.AcceptTCP())
}

// AcceptTCP waits for the next connection and returns it.
func (l *TCPListener) AcceptTCP() (*TCPConn, error) {
	if l.closed.Load() {
		return nil, l.opErr("accept", net.ErrClosed)
	}
	sk, err := l.sk.AcceptConn(&l.dl)
	if err != nil {
		return nil, l.opErr("accept", err)
	}
	c, err := l.s.newTCPConn(sk, l.network)
	if err != nil {
		return nil, l.opErr("accept", err)
	}
	return c, nil
}

// Addr returns the listener's address, a *net.TCPAddr (with the port
// chosen when the address asked for port 0).
func (l *TCPListener) Addr() net.Addr { return netAddr(l.addr) }

// Close stops listening: a blocked Accept returns net.ErrClosed, and the
// connections not yet accepted are reset. Connections already accepted
// are not affected.
func (l *TCPListener) Close() error {
	if err := l.close(func() { l.sk.CloseAcceptDeadline(&l.dl) }); err != nil {
		return l.opErr("close", err)
	}
	return nil
}

// SetDeadline sets the deadline of Accept: an absolute time on the
// stack's clock after which Accept, even one already blocked, fails with
// os.ErrDeadlineExceeded. The zero time means none.
func (l *TCPListener) SetDeadline(t time.Time) error {
	if l.closed.Load() {
		return l.opErr("set", net.ErrClosed)
	}
	l.sk.SetAcceptDeadline(&l.dl, t)
	return nil
}

// Control calls f with the stack's socket layer and the listener's
// descriptor, which stays open during the call (see TCPConn.Control).
func (l *TCPListener) Control(f func(s *Sockets, fd int)) error {
	err := l.descriptor.control(func(t *Sockets, fd int) error {
		f(t, fd)
		return nil
	})
	if err != nil {
		return l.opErr("raw-control", err)
	}
	return nil
}

func (l *TCPListener) opErr(op string, err error) error {
	return opError(op, l.network, nil, l.addr, mapErr(op, err, l.closed.Load()))
}
