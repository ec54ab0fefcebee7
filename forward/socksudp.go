package forward

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/proxy"
)

// SOCKS5 UDP ASSOCIATE (RFC 1928 section 7, username and password per RFC
// 1929). A flow opens a TCP control connection to the proxy, asks it for
// an association and sends its datagrams to the relay address the proxy
// answers, each behind a header naming the destination:
//
//	+----+------+------+----------+----------+----------+
//	|RSV | FRAG | ATYP | DST.ADDR | DST.PORT |   DATA   |
//	+----+------+------+----------+----------+----------+
//	| 2  |  1   |  1   | Variable |    2     | Variable |
//
// The association lasts as long as the control connection: closing the
// conn closes both, and a proxy that closes the control connection ends
// the association (reads then fail). Fragmented datagrams (FRAG not 0)
// are dropped, as the RFC allows an implementation that does not
// reassemble to do.

// SOCKS5 protocol constants.
const (
	socksVersion      = 5
	socksAuthNone     = 0
	socksAuthPassword = 2
	socksAuthNoneOK   = 0xff
	socksCmdAssociate = 3
	socksATYPv4       = 1
	socksATYPName     = 3
	socksATYPv6       = 4
	// socksMaxHeader is the longest UDP request header: a 255-byte name.
	socksMaxHeader = 4 + 1 + 255 + 2
)

// socksReplyErrnos maps the SOCKS5 reply codes (RFC 1928 section 6) to
// errnos, as socksReplies does for golang.org/x/net/proxy's wording.
var socksReplyErrnos = map[byte]syscall.Errno{
	2: syscall.EACCES, 3: syscall.ENETUNREACH, 4: syscall.EHOSTUNREACH,
	5: syscall.ECONNREFUSED, 6: syscall.ETIMEDOUT,
}

// socksUDP makes a UDP association with the proxy at addr for datagrams to
// address, reaching the proxy (control and relay) with forward.
func socksUDP(ctx context.Context, addr string, auth *proxy.Auth, forward DialFunc, address string) (net.Conn, error) {
	hdr, err := socksHeader(address)
	if err != nil {
		return nil, err
	}
	ctrl, err := forward(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (net.Conn, error) {
		ctrl.Close()
		return nil, &net.OpError{Op: "socks associate", Net: "udp", Addr: udpAddrOf(address), Err: err}
	}
	if d, ok := ctx.Deadline(); ok {
		ctrl.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { ctrl.SetDeadline(time.Unix(1, 0)) })
	relay, err := socksAssociate(ctrl, auth)
	if !stop() || ctx.Err() != nil {
		return fail(ctx.Err())
	}
	if err != nil {
		return fail(err)
	}
	ctrl.SetDeadline(time.Time{})
	if relay.Addr().IsUnspecified() {
		// The relay is on the proxy's own address (RFC 1928 leaves this
		// to the server; many answer 0.0.0.0).
		if ta, ok := ctrl.RemoteAddr().(*net.TCPAddr); ok {
			relay = netip.AddrPortFrom(ta.AddrPort().Addr().Unmap(), relay.Port())
		}
	}
	udp, err := forward(ctx, "udp", relay.String())
	if err != nil {
		return fail(err)
	}
	c := &socksUDPConn{Conn: udp, ctrl: ctrl, hdr: hdr, done: make(chan struct{})}
	go c.watch()
	return c, nil
}

// udpAddrOf is address as a *net.UDPAddr if it is an IP literal's.
func udpAddrOf(address string) net.Addr {
	if ap, err := netip.ParseAddrPort(address); err == nil {
		return net.UDPAddrFromAddrPort(ap)
	}
	return nil
}

// socksHeader is the UDP request header for datagrams to address.
func socksHeader(address string) ([]byte, error) {
	host, ps, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(ps, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("port %q: %w", ps, err)
	}
	h := []byte{0, 0, 0}
	if a, err := netip.ParseAddr(host); err == nil {
		a = a.Unmap()
		if a.Is4() {
			h = append(append(h, socksATYPv4), a.AsSlice()...)
		} else {
			h = append(append(h, socksATYPv6), a.AsSlice()...)
		}
	} else {
		if len(host) > 255 {
			return nil, fmt.Errorf("host name %q longer than 255 bytes", host)
		}
		h = append(append(h, socksATYPName, byte(len(host))), host...)
	}
	return binary.BigEndian.AppendUint16(h, uint16(port)), nil
}

// socksAssociate negotiates authentication on ctrl and asks for a UDP
// association; it returns the relay's address.
func socksAssociate(ctrl net.Conn, auth *proxy.Auth) (netip.AddrPort, error) {
	hello := []byte{socksVersion, 1, socksAuthNone}
	if auth != nil {
		hello = []byte{socksVersion, 2, socksAuthNone, socksAuthPassword}
	}
	if _, err := ctrl.Write(hello); err != nil {
		return netip.AddrPort{}, err
	}
	var b [262]byte
	if _, err := io.ReadFull(ctrl, b[:2]); err != nil {
		return netip.AddrPort{}, err
	}
	switch {
	case b[0] != socksVersion:
		return netip.AddrPort{}, fmt.Errorf("SOCKS version %d answered, want 5", b[0])
	case b[1] == socksAuthPassword && auth != nil:
		if err := socksPassword(ctrl, auth); err != nil {
			return netip.AddrPort{}, err
		}
	case b[1] != socksAuthNone:
		return netip.AddrPort{}, fmt.Errorf("no acceptable authentication method (the proxy chose %d): %w", b[1], syscall.EACCES)
	}
	// DST.ADDR and DST.PORT: the address the datagrams will come from,
	// not known before the relay's is; zeros, as RFC 1928 allows.
	if _, err := ctrl.Write([]byte{socksVersion, socksCmdAssociate, 0, socksATYPv4, 0, 0, 0, 0, 0, 0}); err != nil {
		return netip.AddrPort{}, err
	}
	if _, err := io.ReadFull(ctrl, b[:4]); err != nil {
		return netip.AddrPort{}, err
	}
	if b[1] != 0 {
		err := fmt.Errorf("UDP ASSOCIATE refused, reply %d", b[1])
		if errno, ok := socksReplyErrnos[b[1]]; ok {
			err = fmt.Errorf("%w: %w", err, errno)
		}
		return netip.AddrPort{}, err
	}
	var n int
	switch b[3] {
	case socksATYPv4:
		n = 4
	case socksATYPv6:
		n = 16
	default:
		return netip.AddrPort{}, fmt.Errorf("UDP ASSOCIATE answered address type %d, want an IP address", b[3])
	}
	if _, err := io.ReadFull(ctrl, b[:n+2]); err != nil {
		return netip.AddrPort{}, err
	}
	a, _ := netip.AddrFromSlice(b[:n])
	return netip.AddrPortFrom(a.Unmap(), binary.BigEndian.Uint16(b[n:])), nil
}

// socksPassword is RFC 1929's username and password sub-negotiation.
func socksPassword(ctrl net.Conn, auth *proxy.Auth) error {
	if len(auth.User) > 255 || len(auth.Password) > 255 {
		return errors.New("SOCKS5 user name or password longer than 255 bytes")
	}
	req := append([]byte{1, byte(len(auth.User))}, auth.User...)
	req = append(append(req, byte(len(auth.Password))), auth.Password...)
	if _, err := ctrl.Write(req); err != nil {
		return err
	}
	var b [2]byte
	if _, err := io.ReadFull(ctrl, b[:]); err != nil {
		return err
	}
	if b[1] != 0 {
		return fmt.Errorf("SOCKS5 user name and password refused: %w", syscall.EACCES)
	}
	return nil
}

// socksUDPConn is a UDP association: a connected UDP socket to the relay
// that adds the request header to what it writes and strips it from what
// it reads.
type socksUDPConn struct {
	net.Conn               // to the relay
	ctrl     net.Conn      // the association's control connection
	hdr      []byte        // the header of datagrams to the destination
	done     chan struct{} // closed when watch returns
	once     sync.Once
}

// watch waits for the control connection to end (the proxy closed it, or
// Close did) and ends the association.
func (c *socksUDPConn) watch() {
	defer close(c.done)
	var b [64]byte
	for {
		if _, err := c.ctrl.Read(b[:]); err != nil {
			c.Conn.Close()
			return
		}
	}
}

// Read reads the next datagram from the destination into p, header
// removed. Datagrams from other sources than the destination (when it is
// an IP address), fragments and malformed ones are dropped.
func (c *socksUDPConn) Read(p []byte) (int, error) {
	for {
		n, err := c.Conn.Read(p)
		if err != nil {
			return 0, err
		}
		h := socksHeaderLen(p[:n])
		if h < 0 || p[2] != 0 || (c.hdr[3] != socksATYPName && string(p[3:h]) != string(c.hdr[3:])) {
			continue
		}
		return copy(p, p[h:n]), nil
	}
}

// socksHeaderLen returns the length of the UDP request header d begins
// with, or -1 if it is malformed.
func socksHeaderLen(d []byte) int {
	if len(d) < 4 || d[0] != 0 || d[1] != 0 {
		return -1
	}
	h := -1
	switch d[3] {
	case socksATYPv4:
		h = 4 + 4 + 2
	case socksATYPv6:
		h = 4 + 16 + 2
	case socksATYPName:
		if len(d) > 4 {
			h = 4 + 1 + int(d[4]) + 2
		}
	}
	if h > len(d) {
		return -1
	}
	return h
}

// Write sends p to the destination as one datagram.
func (c *socksUDPConn) Write(p []byte) (int, error) {
	bp := getBuf(socksMaxHeader + DefaultUDPBufSize)
	defer putBuf(bp)
	b := append(append((*bp)[:0], c.hdr...), p...)
	if _, err := c.Conn.Write(b); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close ends the association: the relay socket and the control
// connection.
func (c *socksUDPConn) Close() error {
	var err error
	c.once.Do(func() {
		err = c.Conn.Close()
		c.ctrl.Close()
		<-c.done
	})
	return err
}
