package synstack

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/synstack/synstack/internal/engine"
)

// UDPConn is a UDP socket of a Stack: a net.Conn and a net.PacketConn with
// the methods of *net.UDPConn. ListenUDP, ListenPacket, DialUDP and the
// Dial of a "udp" network return one.
//
// It behaves as package net's: each Write or WriteTo sends one datagram
// (fragmented to the link's MTU when larger; over 65,507 bytes of IPv4
// payload it fails with EMSGSIZE); each Read or ReadFrom returns one
// datagram, the part that does not fit p discarded (ReadMsgUDPAddrPort
// says so with MSG_TRUNC in its flags). Errors are *net.OpError wrapping
// an *os.SyscallError wrapping the syscall.Errno: on a connected UDPConn,
// ECONNREFUSED once after an ICMP port unreachable from the peer.
// Deadlines are absolute times on the stack's clock and cut off calls
// already blocked (os.ErrDeadlineExceeded). All methods may be called from
// several goroutines at once.
type UDPConn struct {
	descriptor
	sk      *engine.Socket
	network string
	local   netip.AddrPort // as bound (the port chosen if 0 was asked)
	remote  netip.AddrPort // the peer, for a connected UDPConn
	rd, wd  engine.Deadline
}

var (
	_ net.Conn       = (*UDPConn)(nil)
	_ net.PacketConn = (*UDPConn)(nil)
)

// ListenUDP opens a UDP socket bound to laddr (network "udp", "udp4" or
// "udp6"; a nil laddr or port 0 picks a free port; "udp" on the
// unspecified address takes IPv4 and IPv6), as net.ListenUDP.
func (s *Stack) ListenUDP(network string, laddr *net.UDPAddr) (*UDPConn, error) {
	var local netip.AddrPort
	if laddr != nil {
		local = laddr.AddrPort()
	}
	return s.udp(context.Background(), "listen", "udp", network, local, netip.AddrPort{})
}

// DialUDP opens a UDP socket connected to raddr (required), bound to laddr
// if not nil, as net.DialUDP: it sends to raddr and receives from it alone.
func (s *Stack) DialUDP(network string, laddr, raddr *net.UDPAddr) (*UDPConn, error) {
	if raddr == nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("missing address")}
	}
	var local netip.AddrPort
	if laddr != nil {
		local = laddr.AddrPort()
	}
	return s.udp(context.Background(), "dial", "udp", network, local, raddr.AddrPort())
}

// ListenPacket opens a UDP socket on address ("host:port", host an IP
// literal of the stack or empty), as net.ListenPacket does for the "udp"
// networks; other networks fail with net.UnknownNetworkError.
func (s *Stack) ListenPacket(network, address string) (net.PacketConn, error) {
	return orNil[net.PacketConn](s.listenUDP(context.Background(), network, address))
}

// listenUDP is ListenPacket with a context, for a UDPConn.
func (s *Stack) listenUDP(ctx context.Context, network, address string) (*UDPConn, error) {
	laddr, err := resolve(ctx, "udp", network, address)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	return s.udp(ctx, "listen", "udp", network, laddr, netip.AddrPort{})
}

// dialUDP is Dial for the "udp" networks.
func (s *Stack) dialUDP(ctx context.Context, network, address string, laddr netip.AddrPort) (*UDPConn, error) {
	raddr, err := resolve(ctx, "udp", network, address)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	return s.udp(ctx, "dial", "udp", network, laddr, raddr)
}

// udp opens the datagram socket of a UDPConn (proto "udp") or a PingConn
// ("ping"): bound to local (if valid), and connected to remote (if valid).
func (s *Stack) udp(ctx context.Context, op, proto, network string, local, remote netip.AddrPort) (*UDPConn, error) {
	fail := func(err error) (*UDPConn, error) {
		return nil, udpOpError(op, network, local, remote, err)
	}
	if err := checkNetwork(proto, network); err != nil {
		return fail(err)
	}
	if err := ctx.Err(); err != nil {
		return fail(ctxError(err))
	}
	local = netip.AddrPortFrom(local.Addr().Unmap().WithZone(""), local.Port())
	remote = netip.AddrPortFrom(remote.Addr().Unmap().WithZone(""), remote.Port())
	fam, v6only := family(network, local.Addr(), remote.Addr(), !remote.IsValid())
	t := s.sockets
	ipproto := 0
	if proto == "ping" {
		ipproto = pick(fam == AF_INET, IPPROTO_ICMP, IPPROTO_ICMPV6)
	}
	fd, err := t.Socket(fam, SOCK_DGRAM, ipproto)
	if err != nil {
		return fail(mapErr(op, err, false))
	}
	ok := false
	defer t.closeUnless(fd, &ok)
	if fam == AF_INET6 && v6only {
		if err := t.SetsockoptInt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1); err != nil {
			return fail(mapErr("set", err, false))
		}
	}
	sk, _, err := t.get(fd)
	if err == nil && (local.IsValid() || !remote.IsValid()) {
		if !local.Addr().IsValid() {
			local = netip.AddrPortFrom(sk.Wildcard(), local.Port())
		}
		err = sk.Bind(local)
		if err != nil {
			return fail(bindErr(err))
		}
	}
	if err == nil && remote.IsValid() {
		err = sk.Connect(remote, false, nil)
	}
	if err == nil {
		local, err = sk.LocalAddr()
	}
	if err != nil {
		return fail(mapErr(op, err, false))
	}
	ok = true
	return &UDPConn{descriptor: descriptor{s: s, fd: int32(fd)}, sk: sk, network: network, local: local, remote: remote}, nil
}

// Read reads the next datagram from the connected peer into p.
func (c *UDPConn) Read(p []byte) (int, error) {
	n, _, err := c.ReadFromUDPAddrPort(p)
	return n, err
}

// Write sends p as one datagram to the connected peer.
func (c *UDPConn) Write(p []byte) (int, error) {
	return c.WriteToUDPAddrPort(p, netip.AddrPort{})
}

// ReadFrom reads the next datagram into p and returns its sender, a
// *net.UDPAddr.
func (c *UDPConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, from, err := c.ReadFromUDPAddrPort(p)
	if !from.IsValid() {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(from), err
}

// ReadFromUDP is ReadFrom with a *net.UDPAddr.
func (c *UDPConn) ReadFromUDP(p []byte) (int, *net.UDPAddr, error) {
	n, from, err := c.ReadFromUDPAddrPort(p)
	if !from.IsValid() {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(from), err
}

// ReadFromUDPAddrPort is ReadFrom with a netip.AddrPort.
func (c *UDPConn) ReadFromUDPAddrPort(p []byte) (int, netip.AddrPort, error) {
	n, _, _, from, err := c.ReadMsgUDPAddrPort(p, nil)
	return n, from, err
}

// ReadMsgUDPAddrPort reads the next datagram into b and returns its
// sender; flags holds MSG_TRUNC when the datagram was longer than b. No
// control messages are returned (oobn is 0): the error queue is read with
// ReadErrQueue, control messages as Go values with Sockets.Recvmsg.
func (c *UDPConn) ReadMsgUDPAddrPort(b, oob []byte) (n, oobn, flags int, addr netip.AddrPort, err error) {
	if c.closed.Load() {
		return 0, 0, 0, addr, c.opErr("read", net.ErrClosed, addr)
	}
	n, addr, full, err := c.sk.ReadFromConn(b, &c.rd)
	if err != nil {
		return n, 0, 0, addr, c.opErr("read", err, addr)
	}
	if full > n {
		flags |= MSG_TRUNC
	}
	return n, 0, flags, addr, nil
}

// WriteTo sends p as one datagram to addr, a *net.UDPAddr.
func (c *UDPConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, c.opErr("write", &net.AddrError{Err: "unexpected address type", Addr: addr.String()}, netip.AddrPort{})
	}
	return c.WriteToUDP(p, ua)
}

// WriteToUDP sends p as one datagram to addr.
func (c *UDPConn) WriteToUDP(p []byte, addr *net.UDPAddr) (int, error) {
	if addr == nil {
		return 0, c.opErr("write", errors.New("missing address"), netip.AddrPort{})
	}
	return c.WriteToUDPAddrPort(p, addr.AddrPort())
}

// WriteToUDPAddrPort sends p as one datagram to addr (the connected peer
// when addr is the zero AddrPort).
func (c *UDPConn) WriteToUDPAddrPort(p []byte, addr netip.AddrPort) (int, error) {
	if c.closed.Load() {
		return 0, c.opErr("write", net.ErrClosed, addr)
	}
	if addr.IsValid() && c.remote.IsValid() {
		// As package net: a connected UDPConn writes to its peer only.
		return 0, c.opErr("write", net.ErrWriteToConnected, addr)
	}
	addr = netip.AddrPortFrom(addr.Addr().Unmap().WithZone(""), addr.Port())
	n, err := c.sk.WriteToConn(p, addr, &c.wd)
	if err != nil {
		return n, c.opErr("write", err, addr)
	}
	return n, nil
}

// Close closes the socket: blocked calls return net.ErrClosed.
func (c *UDPConn) Close() error {
	if err := c.close(func() { c.sk.CloseUDPDeadline(&c.rd, &c.wd) }); err != nil {
		return c.opErr("close", err, netip.AddrPort{})
	}
	return nil
}

// LocalAddr returns the local address, a *net.UDPAddr.
func (c *UDPConn) LocalAddr() net.Addr { return udpAddr(c.local) }

// RemoteAddr returns the connected peer's address, a *net.UDPAddr, or nil.
func (c *UDPConn) RemoteAddr() net.Addr { return udpAddr(c.remote) }

// SetDeadline sets the read and write deadlines (see TCPConn.SetDeadline).
func (c *UDPConn) SetDeadline(t time.Time) error { return c.setDeadline(t, &c.rd, &c.wd) }

// SetReadDeadline sets the deadline of reads.
func (c *UDPConn) SetReadDeadline(t time.Time) error { return c.setDeadline(t, &c.rd) }

// SetWriteDeadline sets the deadline of writes.
func (c *UDPConn) SetWriteDeadline(t time.Time) error { return c.setDeadline(t, &c.wd) }

// setDeadline sets the deadlines ds.
func (c *UDPConn) setDeadline(t time.Time, ds ...*engine.Deadline) error {
	if c.closed.Load() {
		return c.opErr("set", net.ErrClosed, netip.AddrPort{})
	}
	c.sk.SetUDPDeadline(t, ds...)
	return nil
}

// SetReadBuffer sets the receive buffer (SO_RCVBUF; doubled, as Linux
// does): datagrams beyond it are dropped (Stats.UdpRcvbufErrors).
func (c *UDPConn) SetReadBuffer(bytes int) error {
	return c.control("set", func(t *Sockets, fd int) error { return t.SetsockoptInt(fd, SOL_SOCKET, SO_RCVBUF, bytes) })
}

// SetWriteBuffer sets the send buffer (SO_SNDBUF; doubled, as Linux does).
func (c *UDPConn) SetWriteBuffer(bytes int) error {
	return c.control("set", func(t *Sockets, fd int) error { return t.SetsockoptInt(fd, SOL_SOCKET, SO_SNDBUF, bytes) })
}

// Control calls f with the stack's socket layer and the descriptor under
// the UDPConn (see TCPConn.Control).
func (c *UDPConn) Control(f func(s *Sockets, fd int)) error {
	return c.control("raw-control", func(t *Sockets, fd int) error {
		f(t, fd)
		return nil
	})
}

// control runs f on the descriptor while it is sure to be open.
func (c *UDPConn) control(op string, f func(t *Sockets, fd int) error) error {
	if err := c.descriptor.control(f); err != nil {
		return c.opErr(op, err, netip.AddrPort{})
	}
	return nil
}

// opErr wraps an error of op (on a datagram to or from peer, if valid) as
// package net does.
func (c *UDPConn) opErr(op string, err error, peer netip.AddrPort) error {
	if !peer.IsValid() {
		peer = c.remote
	}
	return udpOpError(op, c.network, c.local, peer, mapErr(op, err, c.closed.Load()))
}

// udpOpError is opError for UDP addresses.
func udpOpError(op, network string, source, addr netip.AddrPort, err error) error {
	if err == nil {
		return nil
	}
	return &net.OpError{Op: op, Net: network, Source: udpAddr(source), Addr: udpAddr(addr), Err: err}
}

// udpAddr is ap as a *net.UDPAddr, or nil.
func udpAddr(ap netip.AddrPort) net.Addr {
	if !ap.IsValid() {
		return nil
	}
	return net.UDPAddrFromAddrPort(ap)
}
