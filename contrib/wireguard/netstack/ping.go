package netstack

import (
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/synstack/synstack"
)

// The ping API of wireguard-go's netstack, on synstack's ping sockets
// (synstack.PingConn, as Linux's unprivileged ICMP sockets): a PingConn
// writes whole ICMP (v6) echo requests, the stack puts its identifier and
// the checksum in, and it reads the echo replies, header included.

// PingAddr is the address of a ping socket: an IP address.
type PingAddr struct{ addr netip.Addr }

// PingAddrFromAddr returns the PingAddr of addr.
func PingAddrFromAddr(addr netip.Addr) *PingAddr { return &PingAddr{addr} }

// String returns the address.
func (a PingAddr) String() string { return a.addr.String() }

// Network returns "ping4" or "ping6" by the address's family, or "ping".
func (a PingAddr) Network() string {
	switch {
	case a.addr.Is4():
		return "ping4"
	case a.addr.Is6():
		return "ping6"
	}
	return "ping"
}

// Addr returns the address.
func (a PingAddr) Addr() netip.Addr { return a.addr }

// PingConn is a ping socket: a net.PacketConn of ICMP (v6) echo
// messages.
type PingConn struct {
	laddr, raddr PingAddr
	c            *synstack.PingConn
}

// DialPingAddr opens a ping socket connected to raddr, on laddr's family
// (any address of it when laddr is the zero Addr).
func (n *Net) DialPingAddr(laddr, raddr netip.Addr) (*PingConn, error) {
	if !raddr.IsValid() {
		return nil, &net.OpError{Op: "dial", Net: "ping", Err: errors.New("missing address")}
	}
	c, err := n.stack.DialPing(PingAddr{raddr}.Network(), raddr)
	if err != nil {
		return nil, err
	}
	return &PingConn{laddr: localPing(c, raddr), raddr: PingAddr{raddr}, c: c}, nil
}

// ListenPingAddr opens a ping socket on laddr.
func (n *Net) ListenPingAddr(laddr netip.Addr) (*PingConn, error) {
	network := PingAddr{laddr}.Network()
	if !laddr.IsValid() {
		network = "ping4"
	}
	c, err := n.stack.ListenPing(network, laddr)
	if err != nil {
		return nil, err
	}
	return &PingConn{laddr: localPing(c, laddr), c: c}, nil
}

// localPing is the local address of c, as a PingAddr.
func localPing(c *synstack.PingConn, fallback netip.Addr) PingAddr {
	if ia, ok := c.LocalAddr().(*net.IPAddr); ok {
		if a, ok := netip.AddrFromSlice(ia.IP); ok {
			return PingAddr{a.Unmap()}
		}
	}
	return PingAddr{fallback}
}

// DialPing is DialPingAddr with PingAddrs.
func (n *Net) DialPing(laddr, raddr *PingAddr) (*PingConn, error) {
	var la, ra netip.Addr
	if laddr != nil {
		la = laddr.addr
	}
	if raddr != nil {
		ra = raddr.addr
	}
	_ = la
	return n.DialPingAddr(la, ra)
}

// ListenPing is ListenPingAddr with a PingAddr.
func (n *Net) ListenPing(laddr *PingAddr) (*PingConn, error) {
	var la netip.Addr
	if laddr != nil {
		la = laddr.addr
	}
	return n.ListenPingAddr(la)
}

// LocalAddr returns the local address.
func (pc *PingConn) LocalAddr() net.Addr { return pc.laddr }

// RemoteAddr returns the remote address.
func (pc *PingConn) RemoteAddr() net.Addr { return pc.raddr }

// Close closes the socket.
func (pc *PingConn) Close() error { return pc.c.Close() }

// SetDeadline sets the read and write deadlines.
func (pc *PingConn) SetDeadline(t time.Time) error { return pc.c.SetDeadline(t) }

// SetReadDeadline sets the deadline of reads.
func (pc *PingConn) SetReadDeadline(t time.Time) error { return pc.c.SetReadDeadline(t) }

// SetWriteDeadline sets the deadline of writes.
func (pc *PingConn) SetWriteDeadline(t time.Time) error { return pc.c.SetWriteDeadline(t) }

// WriteTo sends the echo request p to addr, a *PingAddr or *net.IPAddr.
func (pc *PingConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	switch v := addr.(type) {
	case *PingAddr:
		return pc.c.WriteTo(p, &net.IPAddr{IP: v.addr.AsSlice()})
	case PingAddr:
		return pc.c.WriteTo(p, &net.IPAddr{IP: v.addr.AsSlice()})
	}
	return pc.c.WriteTo(p, addr)
}

// Write sends the echo request p to the connected address.
func (pc *PingConn) Write(p []byte) (int, error) { return pc.c.Write(p) }

// ReadFrom reads the next echo reply and who sent it, a *PingAddr.
func (pc *PingConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, from, err := pc.c.ReadFrom(p)
	if ia, ok := from.(*net.IPAddr); ok {
		a, _ := netip.AddrFromSlice(ia.IP)
		return n, &PingAddr{a.Unmap()}, err
	}
	return n, nil, err
}

// Read reads the next echo reply from the connected address.
func (pc *PingConn) Read(p []byte) (int, error) { return pc.c.Read(p) }
