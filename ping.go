package synstack

import (
	"context"
	"net"
	"net/netip"
	"time"
)

// PingConn is a ping socket of a Stack, as Linux's unprivileged ICMP
// sockets (socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP)): a net.PacketConn
// whose packets are whole ICMP (v6) echo messages. Each WriteTo sends an
// echo request (type 8 for IPv4, 128 for IPv6, code 0, at least 8 bytes;
// else EINVAL) with the socket's identifier and a checksum put in; each
// ReadFrom returns an echo reply carrying that identifier, header
// included, with the address that answered, a *net.IPAddr. x/net/icmp
// parses and builds the messages. Stack.ListenPing and Stack.DialPing
// make one; deadlines and errors are UDPConn's.
type PingConn struct {
	c *UDPConn
}

var _ net.PacketConn = (*PingConn)(nil)

// ListenPing opens a ping socket on laddr (network "ping4" or "ping6"; the
// zero Addr for any address of the family).
func (s *Stack) ListenPing(network string, laddr netip.Addr) (*PingConn, error) {
	var local netip.AddrPort
	if laddr.IsValid() {
		local = netip.AddrPortFrom(laddr, 0)
	}
	c, err := s.udp(context.Background(), "listen", "ping", network, local, netip.AddrPort{})
	if err != nil {
		return nil, err
	}
	return &PingConn{c}, nil
}

// DialPing opens a ping socket connected to raddr: Write sends it echo
// requests, Read returns its replies alone.
func (s *Stack) DialPing(network string, raddr netip.Addr) (*PingConn, error) {
	c, err := s.udp(context.Background(), "dial", "ping", network, netip.AddrPort{}, netip.AddrPortFrom(raddr, 0))
	if err != nil {
		return nil, err
	}
	return &PingConn{c}, nil
}

// ReadFrom reads the next echo reply into p and returns who sent it.
func (c *PingConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, from, err := c.c.ReadFromUDPAddrPort(p)
	if !from.IsValid() {
		return n, nil, err
	}
	return n, &net.IPAddr{IP: from.Addr().AsSlice()}, err
}

// WriteTo sends the echo request p to addr, a *net.IPAddr.
func (c *PingConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	ia, ok := addr.(*net.IPAddr)
	if !ok {
		return 0, c.c.opErr("write", &net.AddrError{Err: "unexpected address type", Addr: addr.String()}, netip.AddrPort{})
	}
	a, _ := netip.AddrFromSlice(ia.IP)
	return c.c.WriteToUDPAddrPort(p, netip.AddrPortFrom(a.Unmap(), 0))
}

// Read reads the next echo reply from the connected peer.
func (c *PingConn) Read(p []byte) (int, error) { return c.c.Read(p) }

// Write sends the echo request p to the connected peer.
func (c *PingConn) Write(p []byte) (int, error) { return c.c.Write(p) }

// Ident returns the echo identifier the stack puts in the requests (the
// socket's "port").
func (c *PingConn) Ident() uint16 { return c.c.local.Port() }

// Close closes the socket.
func (c *PingConn) Close() error { return c.c.Close() }

// LocalAddr returns the local address, a *net.IPAddr.
func (c *PingConn) LocalAddr() net.Addr { return &net.IPAddr{IP: c.c.local.Addr().AsSlice()} }

// SetDeadline sets the read and write deadlines.
func (c *PingConn) SetDeadline(t time.Time) error { return c.c.SetDeadline(t) }

// SetReadDeadline sets the deadline of reads.
func (c *PingConn) SetReadDeadline(t time.Time) error { return c.c.SetReadDeadline(t) }

// SetWriteDeadline sets the deadline of writes.
func (c *PingConn) SetWriteDeadline(t time.Time) error { return c.c.SetWriteDeadline(t) }
