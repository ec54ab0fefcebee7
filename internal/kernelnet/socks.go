package kernelnet

import (
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
)

// SOCKS5UDP is a minimal SOCKS5 server of UDP associations (UDP ASSOCIATE,
// RFC 1928 section 7) for tests: IPv4 destinations only, no fragments.
type SOCKS5UDP struct {
	// User and Password, if User is not empty, are required (RFC 1929);
	// otherwise no authentication is asked.
	User, Password string
	// Reply, if not 0, refuses every association with that reply code.
	Reply byte
	// ListenUDP opens an association's sockets (its relay, and the one
	// it sends to destinations from). Default: 127.0.0.1, a port the
	// kernel picks.
	ListenUDP func() (*net.UDPConn, error)
	// Asked, if set, is told each datagram's destination.
	Asked func(dst netip.AddrPort)
}

// Serve serves SOCKS5 on ln until the test ends. The relay's address is
// answered as 0.0.0.0 (its port), as many servers do: the client sends to
// the server's own address.
func (s *SOCKS5UDP) Serve(tb testing.TB, ln net.Listener) {
	ServeListener(tb, ln, s.associate)
}

func (s *SOCKS5UDP) listen() (*net.UDPConn, error) {
	if s.ListenUDP != nil {
		return s.ListenUDP()
	}
	return net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
}

// handshake reads the greeting (and the password) and the request; it
// reports whether the client may go on.
func (s *SOCKS5UDP) handshake(c *net.TCPConn) bool {
	b := make([]byte, 256)
	if _, err := io.ReadFull(c, b[:2]); err != nil {
		return false
	}
	io.ReadFull(c, b[:b[1]])
	if s.User == "" {
		c.Write([]byte{5, 0})
	} else {
		c.Write([]byte{5, 2})
		field := func() string {
			io.ReadFull(c, b[:1])
			n := int(b[0])
			io.ReadFull(c, b[:n])
			return string(b[:n])
		}
		io.ReadFull(c, b[:1]) // the sub-negotiation's version
		if user, pass := field(), field(); user != s.User || pass != s.Password {
			c.Write([]byte{1, 1})
			return false
		}
		c.Write([]byte{1, 0})
	}
	if _, err := io.ReadFull(c, b[:10]); err != nil || b[1] != 3 {
		return false
	}
	if s.Reply != 0 {
		c.Write([]byte{5, s.Reply, 0, 1, 0, 0, 0, 0, 0, 0})
		return false
	}
	return true
}

// associate serves one association until its control connection closes.
func (s *SOCKS5UDP) associate(c *net.TCPConn) {
	if !s.handshake(c) {
		return
	}
	relay, err := s.listen()
	if err != nil {
		return
	}
	defer relay.Close()
	out, err := s.listen()
	if err != nil {
		return
	}
	defer out.Close()
	port := relay.LocalAddr().(*net.UDPAddr).Port
	c.Write([]byte{5, 0, 0, 1, 0, 0, 0, 0, byte(port >> 8), byte(port)})
	var client atomic.Pointer[netip.AddrPort]
	done := make(chan struct{}, 2)
	go func() { // the destinations' answers, to the client
		defer func() { done <- struct{}{} }()
		buf := make([]byte, 65536)
		for {
			n, from, err := out.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			h := append([]byte{0, 0, 0, 1}, from.Addr().Unmap().AsSlice()...)
			h = binary.BigEndian.AppendUint16(h, from.Port())
			relay.WriteToUDPAddrPort(append(h, buf[:n]...), *client.Load())
		}
	}()
	go func() { // the client's datagrams, to their destinations
		defer func() { done <- struct{}{} }()
		buf := make([]byte, 65536)
		for {
			n, from, err := relay.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if n < 10 || buf[2] != 0 || buf[3] != 1 {
				continue
			}
			client.Store(&from) // before the first answer can come
			dst := netip.AddrPortFrom(netip.AddrFrom4([4]byte(buf[4:8])), binary.BigEndian.Uint16(buf[8:10]))
			if s.Asked != nil {
				s.Asked(dst)
			}
			out.WriteToUDPAddrPort(buf[10:n], dst)
		}
	}()
	io.Copy(io.Discard, c) // the association lasts as long as the control connection
	relay.Close()
	out.Close()
	<-done
	<-done
}
