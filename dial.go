package synstack

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/synstack/synstack/internal/engine"
)

// Dialer holds options for connecting to an address on a Stack, as
// net.Dialer does for the kernel's stack. A Dialer with only Stack set is
// ready to use; Stack.Dial and Stack.DialContext use such a Dialer.
type Dialer struct {
	// Stack is the stack to dial from. Required.
	Stack *Stack

	// Timeout, if positive, bounds the time a dial may take.
	Timeout time.Duration

	// Deadline, if not zero, is the time after which a dial fails.
	// Timeout, Deadline and the context's deadline are measured by the
	// real clock, as contexts are.
	Deadline time.Time

	// LocalAddr, if not nil, is the local address to bind to: a
	// *net.TCPAddr, whose port may be zero. Otherwise the stack picks its
	// address for the destination and an ephemeral port.
	LocalAddr net.Addr

	// KeepAlive is the idle time before the first keepalive probe, as
	// net.Dialer's: zero means 15 s, negative turns keepalive off. It is
	// ignored if KeepAliveConfig.Enable is true.
	KeepAlive time.Duration

	// KeepAliveConfig, if Enable is set, configures keepalive probes (see
	// TCPConn.SetKeepAliveConfig).
	KeepAliveConfig net.KeepAliveConfig

	// Control, if not nil, is called with the new socket's descriptor
	// after it is created and before it is bound and connected: the place
	// for socket options (SO_REUSEADDR, TCP_MAXSEG, SO_RCVBUF...). network
	// and address are the arguments of the dial. An error aborts the dial.
	Control func(network, address string, s *Sockets, fd int) error

	// FastOpenData, if not empty, is sent with TCP Fast Open (RFC 7413,
	// as sendto with MSG_FASTOPEN): in the SYN itself when the stack
	// holds a cookie from an earlier connection to the same address, so
	// the server may answer a request one round trip sooner; after the
	// handshake otherwise, the SYN then asking for a cookie for the next
	// dial. The dial returns once connected and the data written. The
	// stack's Config.FastOpen must have FastOpenClient (the default).
	FastOpenData []byte

	// MD5Key, if not empty, signs the connection with TCP MD5 signatures
	// (RFC 2385, as TCP_MD5SIG for the address dialled): every segment
	// it sends, the SYN included, and only segments the peer signed with
	// the same key are taken.
	MD5Key []byte
}

// Dial connects to address on the named network ("tcp", "tcp4" or
// "tcp6"). The address is "host:port" with an IP literal host: the stack
// resolves no names. The net.Conn returned is a *TCPConn.
func (d *Dialer) Dial(network, address string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, address)
}

// DialContext connects to address as Dial does, within ctx: if ctx is
// done before the connection is established, the attempt is abandoned
// and the error is a *net.OpError for which errors.Is(err,
// context.Canceled) or errors.Is(err, context.DeadlineExceeded) holds.
// Once connected, ctx no longer matters. Errors from the connection
// wrap the errno, as package net's: errors.Is(err, syscall.ECONNREFUSED)
// after a RST (or an ICMP port unreachable), syscall.ETIMEDOUT when no
// answer came, syscall.EHOSTUNREACH for an ICMP host unreachable.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if checkNetwork("udp", network) == nil {
		return orNil[net.Conn](d.dialUDP(ctx, network, address))
	}
	return orNil[net.Conn](d.dial(ctx, network, address))
}

// dialUDP is DialContext for the "udp" networks: a connected UDPConn.
func (d *Dialer) dialUDP(ctx context.Context, network, address string) (*UDPConn, error) {
	if ctx == nil {
		panic("synstack: nil context")
	}
	if d.Stack == nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("synstack: Dialer.Stack is nil")}
	}
	var laddr netip.AddrPort
	if d.LocalAddr != nil {
		ua, ok := d.LocalAddr.(*net.UDPAddr)
		if !ok {
			return nil, &net.OpError{Op: "dial", Net: network,
				Err: &net.AddrError{Err: "mismatched local address type", Addr: d.LocalAddr.String()}}
		}
		laddr = ua.AddrPort()
	}
	return d.Stack.dialUDP(ctx, network, address, laddr)
}

func (d *Dialer) dial(ctx context.Context, network, address string) (*TCPConn, error) {
	if ctx == nil {
		panic("synstack: nil context")
	}
	if d.Stack == nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("synstack: Dialer.Stack is nil")}
	}
	raddr, err := resolveTCP(ctx, network, address)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	var laddr netip.AddrPort
	if d.LocalAddr != nil {
		ta, ok := d.LocalAddr.(*net.TCPAddr)
		if !ok {
			return nil, &net.OpError{Op: "dial", Net: network, Addr: tcpAddr(raddr),
				Err: &net.AddrError{Err: "mismatched local address type", Addr: d.LocalAddr.String()}}
		}
		ap := ta.AddrPort()
		laddr = netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port())
	}
	if d.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.Timeout)
		defer cancel()
	}
	if !d.Deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Deadline)
		defer cancel()
	}
	ka := d.KeepAliveConfig
	if !ka.Enable && d.KeepAlive >= 0 {
		ka = net.KeepAliveConfig{Enable: true, Idle: d.KeepAlive}
	}
	control := d.Control
	if len(d.MD5Key) > 0 {
		control = func(network, address string, t *Sockets, fd int) error {
			if d.Control != nil {
				if err := d.Control(network, address, t, fd); err != nil {
					return err
				}
			}
			peer := raddr.Addr().Unmap()
			return t.setMD5Keys(fd, map[netip.Prefix][]byte{netip.PrefixFrom(peer, peer.BitLen()): d.MD5Key})
		}
	}
	return d.Stack.dialTCP(ctx, network, address, laddr, raddr, ka, control, d.FastOpenData)
}

// dialTCP creates a socket, sets its options, binds it to laddr if valid,
// and connects it to raddr, waiting at most until ctx is done.
func (s *Stack) dialTCP(ctx context.Context, network, address string, laddr, raddr netip.AddrPort,
	ka net.KeepAliveConfig, control func(string, string, *Sockets, int) error, fastOpen []byte) (*TCPConn, error) {
	fail := func(err error) (*TCPConn, error) {
		return nil, opError("dial", network, tcpAddr(laddr), tcpAddr(raddr), err)
	}
	if err := ctx.Err(); err != nil {
		return fail(ctxError(err))
	}
	fam, v6only := family(network, laddr.Addr(), raddr.Addr(), false)
	t := s.sockets
	fd, err := t.netSocket("dial", fam, v6only, ka)
	if err != nil {
		return fail(err)
	}
	ok := false
	defer t.closeUnless(fd, &ok)
	if control != nil {
		if err := control(network, address, t, fd); err != nil {
			return fail(err)
		}
	}
	if laddr.IsValid() {
		if err := t.Bind(fd, laddr); err != nil {
			return fail(bindErr(err))
		}
	}
	sk, _, err := t.get(fd)
	switch {
	case err == nil && len(fastOpen) > 0:
		_, err = sk.SendFastOpen(fastOpen, raddr, engine.SendFlags{}, ctx.Done())
	case err == nil:
		err = sk.Connect(raddr, false, ctx.Done())
	}
	var c *TCPConn
	if err == nil {
		c, err = s.connOnFD(fd, sk, network)
	}
	switch {
	case err == engine.ErrCanceled:
		return fail(ctxError(ctx.Err()))
	case err != nil:
		return fail(mapErr("dial", err, false))
	}
	ok = true
	return c, nil
}

// netSocket creates a socket of the net.Conn layer with package net's
// options: IPV6_V6ONLY for "tcp6", TCP_NODELAY, and keepalive as ka says.
// Errors are mapped as package
// net's: op's for the socket, "set" for an option.
func (t *Sockets) netSocket(op string, fam int, v6only bool, ka net.KeepAliveConfig) (int, error) {
	fd, err := t.Socket(fam, SOCK_STREAM, 0)
	if err != nil {
		return -1, mapErr(op, err, false)
	}
	if err := t.setupSocket(fd, fam, v6only, ka); err != nil {
		t.Close(fd)
		return -1, mapErr("set", err, false)
	}
	return fd, nil
}

// setupSocket gives a new socket package net's options: IPV6_V6ONLY for
// "tcp6", TCP_NODELAY, and keepalive as ka says.
func (t *Sockets) setupSocket(fd, fam int, v6only bool, ka net.KeepAliveConfig) error {
	if fam == AF_INET6 && v6only {
		if err := t.SetsockoptInt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1); err != nil {
			return err
		}
	}
	if err := t.SetsockoptInt(fd, IPPROTO_TCP, TCP_NODELAY, 1); err != nil {
		return err
	}
	if ka.Enable {
		return setKeepAliveConfig(t.SetsockoptInt, fd, ka)
	}
	return nil
}

// bindErr is a failed bind as package net reports it.
func bindErr(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) && errno != syscall.EBADF {
		return os.NewSyscallError("bind", errno)
	}
	return mapErr("dial", err, false)
}

// Dial connects to address on network ("tcp", "tcp4" or "tcp6") with a
// Dialer that has only its Stack set. The net.Conn is a *TCPConn.
func (s *Stack) Dial(network, address string) (net.Conn, error) {
	return (&Dialer{Stack: s}).DialContext(context.Background(), network, address)
}

// DialContext is Dial within ctx (see Dialer.DialContext). Its signature
// is that of http.Transport.DialContext and similar hooks, so a stack
// plugs straight into them:
//
//	client := &http.Client{Transport: &http.Transport{DialContext: stack.DialContext}}
func (s *Stack) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return (&Dialer{Stack: s}).DialContext(ctx, network, address)
}

// DialTCP connects to raddr, from laddr if it is not nil, as net.DialTCP.
func (s *Stack) DialTCP(network string, laddr, raddr *net.TCPAddr) (*TCPConn, error) {
	if raddr == nil {
		return nil, &net.OpError{Op: "dial", Net: network, Source: netAddr(laddr), Err: errors.New("missing address")}
	}
	d := Dialer{Stack: s}
	if laddr != nil {
		d.LocalAddr = laddr
	}
	return d.dial(context.Background(), network, raddr.String())
}
