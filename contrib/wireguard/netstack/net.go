package netstack

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/synstack/synstack"
)

// DialContextTCPAddrPort connects to addr over TCP. ctx done before the
// connection is established abandons the dial.
func (n *Net) DialContextTCPAddrPort(ctx context.Context, addr netip.AddrPort) (*synstack.TCPConn, error) {
	c, err := n.stack.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		return nil, err
	}
	return c.(*synstack.TCPConn), nil
}

// DialContextTCP connects to addr over TCP (nil: the zero address, an
// error).
func (n *Net) DialContextTCP(ctx context.Context, addr *net.TCPAddr) (*synstack.TCPConn, error) {
	return n.DialContextTCPAddrPort(ctx, tcpAddrPort(addr))
}

// DialTCPAddrPort connects to addr over TCP.
func (n *Net) DialTCPAddrPort(addr netip.AddrPort) (*synstack.TCPConn, error) {
	return n.DialContextTCPAddrPort(context.Background(), addr)
}

// DialTCP connects to addr over TCP.
func (n *Net) DialTCP(addr *net.TCPAddr) (*synstack.TCPConn, error) {
	return n.DialContextTCPAddrPort(context.Background(), tcpAddrPort(addr))
}

// ListenTCPAddrPort listens for TCP connections on addr; an invalid
// address listens on every address of the stack (IPv4 and IPv6), port 0
// on an ephemeral port.
func (n *Net) ListenTCPAddrPort(addr netip.AddrPort) (*synstack.TCPListener, error) {
	return n.stack.ListenTCP("tcp", net.TCPAddrFromAddrPort(addr))
}

// ListenTCP listens for TCP connections on addr (nil: every address, an
// ephemeral port).
func (n *Net) ListenTCP(addr *net.TCPAddr) (*synstack.TCPListener, error) {
	return n.ListenTCPAddrPort(tcpAddrPort(addr))
}

// DialUDPAddrPort returns a UDP socket bound to laddr (when its address is
// valid or its port not zero; else an ephemeral port) and, when raddr is
// valid, connected to raddr.
func (n *Net) DialUDPAddrPort(laddr, raddr netip.AddrPort) (*synstack.UDPConn, error) {
	var la *net.UDPAddr
	if laddr.IsValid() || laddr.Port() > 0 {
		la = net.UDPAddrFromAddrPort(laddr)
	}
	if !raddr.IsValid() {
		if la == nil {
			la = &net.UDPAddr{}
		}
		return n.stack.ListenUDP("udp", la)
	}
	return n.stack.DialUDP("udp", la, net.UDPAddrFromAddrPort(raddr))
}

// ListenUDPAddrPort returns a UDP socket bound to laddr.
func (n *Net) ListenUDPAddrPort(laddr netip.AddrPort) (*synstack.UDPConn, error) {
	return n.DialUDPAddrPort(laddr, netip.AddrPort{})
}

// DialUDP is DialUDPAddrPort with package net's addresses (nil: none).
func (n *Net) DialUDP(laddr, raddr *net.UDPAddr) (*synstack.UDPConn, error) {
	return n.DialUDPAddrPort(udpAddrPort(laddr), udpAddrPort(raddr))
}

// ListenUDP returns a UDP socket bound to laddr (nil: every address, an
// ephemeral port).
func (n *Net) ListenUDP(laddr *net.UDPAddr) (*synstack.UDPConn, error) {
	return n.DialUDPAddrPort(udpAddrPort(laddr), netip.AddrPort{})
}

// tcpAddrPort is a's address and port; nil gives the zero AddrPort.
func tcpAddrPort(a *net.TCPAddr) netip.AddrPort {
	if a == nil {
		return netip.AddrPort{}
	}
	ip, _ := netip.AddrFromSlice(a.IP)
	return netip.AddrPortFrom(ip.Unmap(), uint16(a.Port))
}

// udpAddrPort is a's address and port; nil gives the zero AddrPort.
func udpAddrPort(a *net.UDPAddr) netip.AddrPort {
	if a == nil {
		return netip.AddrPort{}
	}
	ip, _ := netip.AddrFromSlice(a.IP)
	return netip.AddrPortFrom(ip.Unmap(), uint16(a.Port))
}

// LookupHost looks host up (see LookupContextHost).
func (n *Net) LookupHost(host string) ([]string, error) {
	return n.LookupContextHost(context.Background(), host)
}

// LookupContextHost returns the addresses of host: host itself when it is
// an IP literal, else the A records (when the stack has an IPv4 address)
// and AAAA records (when it has an IPv6 one) the DNS servers given to
// CreateNetTUN return, asked through the tunnel. Errors are *net.DNSError.
func (n *Net) LookupContextHost(ctx context.Context, host string) ([]string, error) {
	if host == "" || (!n.hasV4 && !n.hasV6) {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	literal := host
	if i := strings.LastIndexByte(host, '%'); i >= 0 && strings.IndexByte(host, ':') >= 0 {
		literal = host[:i]
	}
	if ip, err := netip.ParseAddr(literal); err == nil {
		return []string{ip.String()}, nil
	}
	network := "ip"
	if !n.hasV6 {
		network = "ip4"
	} else if !n.hasV4 {
		network = "ip6"
	}
	ips, err := n.resolver.LookupNetIP(ctx, network, host)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.Unmap().String()
	}
	return out, nil
}

// Dial is DialContext without a context.
func (n *Net) Dial(network, address string) (net.Conn, error) {
	return n.DialContext(context.Background(), network, address)
}

// DialContext connects to address on network: "tcp", "tcp4", "tcp6",
// "udp", "udp4" or "udp6" with a "host:port" address, the host a name
// (looked up with LookupContextHost) or an IP literal, the port a number.
// It tries the host's addresses of the network's family in turn, each
// with its share of ctx's deadline (at least 2 s), as package net does.
// With "ping", "ping4" or "ping6" the address is an IP literal, and the
// result a connected *PingConn.
func (n *Net) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	proto, v4, v6, ok := splitNetwork(network)
	if !ok {
		return nil, &net.OpError{Op: "dial", Net: network, Err: net.UnknownNetworkError(network)}
	}
	if proto == "ping" {
		addr, err := netip.ParseAddr(address)
		if err != nil {
			return nil, &net.OpError{Op: "dial", Net: network, Err: err}
		}
		return n.DialPingAddr(netip.Addr{}, addr)
	}
	host, sport, err := net.SplitHostPort(address)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	port, err := strconv.ParseUint(sport, 10, 16)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: &net.AddrError{Err: "invalid port", Addr: address}}
	}
	names, err := n.LookupContextHost(ctx, host)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	var addrs []netip.AddrPort
	for _, s := range names {
		if ip, err := netip.ParseAddr(s); err == nil && (ip.Is4() && v4 || ip.Is6() && v6) {
			addrs = append(addrs, netip.AddrPortFrom(ip, uint16(port)))
		}
	}
	if len(addrs) == 0 {
		return nil, &net.OpError{Op: "dial", Net: network, Err: &net.AddrError{Err: "no suitable address found", Addr: host}}
	}
	var first error
	for i, a := range addrs {
		c, err := n.dialOne(ctx, proto, a, len(addrs)-i)
		if err == nil {
			return c, nil
		}
		if first == nil {
			first = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, first
}

// dialOne dials a, one of left addresses still to try, giving it its
// share of ctx's deadline.
func (n *Net) dialOne(ctx context.Context, proto string, a netip.AddrPort, left int) (net.Conn, error) {
	if d, ok := ctx.Deadline(); ok && left > 1 {
		share := time.Until(d) / time.Duration(left)
		if share < minDialShare {
			share = min(minDialShare, time.Until(d))
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, share)
		defer cancel()
	}
	if proto == "udp" {
		return n.DialUDPAddrPort(netip.AddrPort{}, a)
	}
	return n.DialContextTCPAddrPort(ctx, a)
}

// minDialShare is the least time DialContext gives one of several
// addresses, as package net's.
const minDialShare = 2 * time.Second

// splitNetwork parses "tcp", "udp" or "ping" with an optional "4" or "6".
func splitNetwork(network string) (proto string, v4, v6, ok bool) {
	proto, fam := network, ""
	if l := len(network); l > 0 && (network[l-1] == '4' || network[l-1] == '6') {
		proto, fam = network[:l-1], network[l-1:]
	}
	switch proto {
	case "tcp", "udp", "ping":
	default:
		return "", false, false, false
	}
	return proto, fam != "6", fam != "4", true
}
