package netstack

import (
	"net"
	"net/netip"
	"time"
)

// The ping API of wireguard-go's netstack, kept so that programs using it
// compile. Until synstack sends echo requests from its API (issue 17,
// item 3), every call fails with ErrPingNotSupported.

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

// PingConn is a ping socket. None can be made yet: the methods that would
// return one fail with ErrPingNotSupported, and so do the methods of its
// zero value.
type PingConn struct {
	laddr, raddr PingAddr
}

// DialPingAddr fails with ErrPingNotSupported.
func (n *Net) DialPingAddr(laddr, raddr netip.Addr) (*PingConn, error) {
	return nil, pingError("dial", raddr)
}

// ListenPingAddr fails with ErrPingNotSupported.
func (n *Net) ListenPingAddr(laddr netip.Addr) (*PingConn, error) {
	return nil, pingError("listen", laddr)
}

// DialPing fails with ErrPingNotSupported.
func (n *Net) DialPing(laddr, raddr *PingAddr) (*PingConn, error) {
	var ra netip.Addr
	if raddr != nil {
		ra = raddr.addr
	}
	return n.DialPingAddr(netip.Addr{}, ra)
}

// ListenPing fails with ErrPingNotSupported.
func (n *Net) ListenPing(laddr *PingAddr) (*PingConn, error) {
	var la netip.Addr
	if laddr != nil {
		la = laddr.addr
	}
	return n.ListenPingAddr(la)
}

// pingError is the *net.OpError of a ping call on addr.
func pingError(op string, addr netip.Addr) error {
	return &net.OpError{Op: op, Net: PingAddr{addr}.Network(), Err: ErrPingNotSupported}
}

// LocalAddr returns the local address.
func (pc *PingConn) LocalAddr() net.Addr { return pc.laddr }

// RemoteAddr returns the remote address.
func (pc *PingConn) RemoteAddr() net.Addr { return pc.raddr }

// Close returns nil.
func (pc *PingConn) Close() error { return nil }

// SetDeadline fails with ErrPingNotSupported.
func (pc *PingConn) SetDeadline(time.Time) error { return pingError("set", pc.laddr.addr) }

// SetReadDeadline fails with ErrPingNotSupported.
func (pc *PingConn) SetReadDeadline(time.Time) error { return pingError("set", pc.laddr.addr) }

// SetWriteDeadline fails with ErrPingNotSupported.
func (pc *PingConn) SetWriteDeadline(time.Time) error { return pingError("set", pc.laddr.addr) }

// WriteTo fails with ErrPingNotSupported.
func (pc *PingConn) WriteTo([]byte, net.Addr) (int, error) {
	return 0, pingError("write", pc.raddr.addr)
}

// Write fails with ErrPingNotSupported.
func (pc *PingConn) Write([]byte) (int, error) { return 0, pingError("write", pc.raddr.addr) }

// ReadFrom fails with ErrPingNotSupported.
func (pc *PingConn) ReadFrom([]byte) (int, net.Addr, error) {
	return 0, nil, pingError("read", pc.laddr.addr)
}

// Read fails with ErrPingNotSupported.
func (pc *PingConn) Read([]byte) (int, error) { return 0, pingError("read", pc.laddr.addr) }
