package synstack_test

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/clock"
)

// hangGuard cuts off a UDP read that would wait for ever (a hang, not a
// timing: every datagram of these tests is on its way already).
func hangGuard(c *synstack.UDPConn) { c.SetReadDeadline(time.Now().Add(30 * time.Second)) }

// TestUDPRoundTrip: a datagram each way between ListenUDP and DialUDP, on
// IPv4 and IPv6, with the sender's address and the counters.
func TestUDPRoundTrip(t *testing.T) {
	for _, c := range []struct{ network, srv string }{{"udp4", "10.0.0.1:53"}, {"udp6", "[fd00::1]:53"}} {
		t.Run(c.network, func(t *testing.T) {
			srv, cli := stackPair(t, 1500, nil)
			ln, err := srv.ListenUDP(c.network, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(c.srv)))
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			d, err := cli.DialUDP(c.network, nil, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(c.srv)))
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			hangGuard(ln)
			hangGuard(d)
			if _, err := d.Write([]byte("question")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 100)
			n, from, err := ln.ReadFromUDPAddrPort(buf)
			if err != nil || string(buf[:n]) != "question" {
				t.Fatalf("server read %q, %v", buf[:n], err)
			}
			if from.String() != d.LocalAddr().String() {
				t.Errorf("datagram from %v, the client is %v", from, d.LocalAddr())
			}
			if _, err := ln.WriteToUDPAddrPort([]byte("answer"), from); err != nil {
				t.Fatal(err)
			}
			n, err = d.Read(buf)
			if err != nil || string(buf[:n]) != "answer" {
				t.Fatalf("client read %q, %v", buf[:n], err)
			}
			st := srv.Stats()
			in, out := st.UdpInDatagrams, st.UdpOutDatagrams
			if c.network == "udp6" {
				in, out = st.Udp6InDatagrams, st.Udp6OutDatagrams
			}
			if in != 1 || out != 1 {
				t.Errorf("server counted %d in, %d out: want 1 and 1", in, out)
			}
		})
	}
}

// TestUDPPortUnreachable: a datagram to a port without a socket draws an
// ICMP port unreachable, and the connected sender's next call fails with
// ECONNREFUSED, once, as on Linux.
func TestUDPPortUnreachable(t *testing.T) {
	srv, cli := stackPair(t, 1500, nil)
	d, err := cli.Dial("udp", "10.0.0.1:9")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	u := d.(*synstack.UDPConn)
	hangGuard(u)
	if _, err := u.Write([]byte("anyone?")); err != nil {
		t.Fatal(err)
	}
	_, err = u.Read(make([]byte, 10))
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("read after a port unreachable: %v, want ECONNREFUSED", err)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "read" || oe.Net != "udp" {
		t.Errorf("error %#v: want a *net.OpError of read on udp", err)
	}
	if st := srv.Stats(); st.UdpNoPorts != 1 || st.IcmpOutDestUnreachs != 1 {
		t.Errorf("server: UdpNoPorts %d, IcmpOutDestUnreachs %d: want 1 and 1", st.UdpNoPorts, st.IcmpOutDestUnreachs)
	}
	// The error was taken: the socket works on.
	if _, err := u.Write([]byte("again")); err != nil {
		t.Errorf("write after the error was read: %v", err)
	}
}

// TestUDPFragments: datagrams larger than the MTU go out in IP fragments
// and come back whole, on IPv4 and IPv6, counted on both sides.
func TestUDPFragments(t *testing.T) {
	for _, c := range []struct{ network, srv string }{{"udp4", "10.0.0.1:7"}, {"udp6", "[fd00::1]:7"}} {
		t.Run(c.network, func(t *testing.T) {
			srv, cli := stackPair(t, 1500, nil)
			ln, err := srv.ListenPacket(c.network, c.srv)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			u := ln.(*synstack.UDPConn)
			hangGuard(u)
			d, err := cli.Dial(c.network, c.srv)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			for _, size := range []int{1473, 9000, 65507 - 20} {
				msg := bytes.Repeat([]byte{byte(size)}, size)
				for i := range msg {
					msg[i] ^= byte(i * 7)
				}
				if _, err := d.Write(msg); err != nil {
					t.Fatalf("write %d bytes: %v", size, err)
				}
				buf := make([]byte, 70000)
				n, _, err := u.ReadFrom(buf)
				if err != nil || !bytes.Equal(buf[:n], msg) {
					t.Fatalf("%d bytes: read %d, %v", size, n, err)
				}
			}
			cs, ss := cli.Stats(), srv.Stats()
			creates, oks := cs.IpFragCreates, ss.IpReasmOKs
			if c.network == "udp6" {
				creates, oks = cs.Ip6FragCreates, ss.Ip6ReasmOKs
			}
			if creates < 3 || oks != 3 {
				t.Errorf("%d fragments sent, %d datagrams reassembled: want more than 3 and 3", creates, oks)
			}
		})
	}
}

// TestUDPTruncation: a datagram longer than the buffer is cut, the rest
// discarded, and MSG_TRUNC says so; the next read is the next datagram.
func TestUDPTruncation(t *testing.T) {
	srv, cli := stackPair(t, 1500, nil)
	ln, err := srv.ListenUDP("udp", &net.UDPAddr{Port: 5000})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	hangGuard(ln)
	d, err := cli.Dial("udp", "10.0.0.1:5000")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.Write([]byte("0123456789abcdef"))
	d.Write([]byte("next"))
	buf := make([]byte, 10)
	n, _, flags, _, err := ln.ReadMsgUDPAddrPort(buf, nil)
	if err != nil || string(buf[:n]) != "0123456789" || flags&synstack.MSG_TRUNC == 0 {
		t.Fatalf("read %q, flags %#x, %v: want the first 10 bytes and MSG_TRUNC", buf[:n], flags, err)
	}
	n, _, flags, _, err = ln.ReadMsgUDPAddrPort(buf, nil)
	if err != nil || string(buf[:n]) != "next" || flags != 0 {
		t.Fatalf("second read %q, flags %#x, %v", buf[:n], flags, err)
	}
}

// TestUDPReceiveQueueBound: a socket that does not read keeps at most its
// SO_RCVBUF; the rest is dropped and counted, and what was kept is read
// whole and in order.
func TestUDPReceiveQueueBound(t *testing.T) {
	srv, cli := stackPair(t, 1500, nil)
	ln, err := srv.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 6000})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := ln.SetReadBuffer(4096); err != nil { // 8192 once doubled
		t.Fatal(err)
	}
	d, err := cli.Dial("udp4", "10.0.0.1:6000")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	const sent = 100
	for i := range sent {
		d.Write(bytes.Repeat([]byte{byte(i)}, 1000))
	}
	// The last datagram sent: once it is counted, every one has arrived.
	waitFor(t, func() bool { st := srv.Stats(); return st.UdpInDatagrams+st.UdpRcvbufErrors == sent })
	st := srv.Stats()
	if st.UdpInDatagrams == 0 || st.UdpInDatagrams > 8 || st.UdpRcvbufErrors != sent-st.UdpInDatagrams ||
		st.UdpInErrors != st.UdpRcvbufErrors {
		t.Fatalf("%d queued, %d dropped (%d in errors): want at most 8192 bytes queued, the rest dropped",
			st.UdpInDatagrams, st.UdpRcvbufErrors, st.UdpInErrors)
	}
	buf := make([]byte, 2000)
	for i := range int(st.UdpInDatagrams) {
		n, _, err := ln.ReadFrom(buf)
		if err != nil || n != 1000 || buf[0] != byte(i) {
			t.Fatalf("datagram %d: %d bytes starting %d, %v", i, n, buf[0], err)
		}
	}
}

// waitFor waits until cond holds (a hang guard, not a timing).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for range 30000 {
		if cond() {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("condition never held")
}

// TestUDPSocketCalls: the socket layer's SOCK_DGRAM with Linux's errno.
func TestUDPSocketCalls(t *testing.T) {
	srv, _ := stackPair(t, 1500, nil)
	ss := srv.Sockets()
	fd, err := ss.Socket(synstack.AF_INET, synstack.SOCK_DGRAM|synstack.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, err, want error) {
		t.Helper()
		if !errors.Is(err, want) && !(want == nil && err == nil) {
			t.Errorf("%s: %v, want %v", what, err, want)
		}
	}
	_, err = ss.Sendto(fd, []byte("x"), 0, netip.AddrPort{})
	check("sendto without an address, unconnected", err, syscall.EDESTADDRREQ)
	_, err = ss.Sendto(fd, make([]byte, 65508), 0, netip.MustParseAddrPort("10.0.0.2:1"))
	check("sendto of 65,508 bytes", err, syscall.EMSGSIZE)
	check("listen", ss.Listen(fd, 1), syscall.EOPNOTSUPP)
	_, _, err = ss.Accept(fd)
	check("accept", err, syscall.EOPNOTSUPP)
	_, _, err = ss.Recvfrom(fd, make([]byte, 10), 0)
	check("recvfrom, non-blocking, nothing queued", err, syscall.EAGAIN)
	if v, err := ss.GetsockoptInt(fd, synstack.SOL_SOCKET, synstack.SO_TYPE); v != synstack.SOCK_DGRAM || err != nil {
		t.Errorf("SO_TYPE %d, %v", v, err)
	}
	if v, err := ss.GetsockoptInt(fd, synstack.SOL_SOCKET, synstack.SO_PROTOCOL); v != synstack.IPPROTO_UDP || err != nil {
		t.Errorf("SO_PROTOCOL %d, %v", v, err)
	}
	if v, err := ss.GetsockoptInt(fd, synstack.SOL_SOCKET, synstack.SO_RCVBUF); v != 212992 || err != nil {
		t.Errorf("SO_RCVBUF %d, %v: want Linux's rmem_default, 212992", v, err)
	}
	_, err = ss.GetsockoptInt(fd, synstack.IPPROTO_TCP, synstack.TCP_NODELAY)
	check("TCP_NODELAY on UDP", err, syscall.ENOPROTOOPT)
	_, err = ss.Getpeername(fd)
	check("getpeername, unconnected", err, syscall.ENOTCONN)
	// The send above bound the socket to an ephemeral port.
	if a, err := ss.Getsockname(fd); err != nil || a.Port() < synstack.EphemeralPortFirst {
		t.Errorf("getsockname after sendto: %v, %v", a, err)
	}

	// Port sharing: EADDRINUSE, unless both sockets set SO_REUSEADDR.
	a, _ := ss.Socket(synstack.AF_INET, synstack.SOCK_DGRAM, 0)
	b, _ := ss.Socket(synstack.AF_INET, synstack.SOCK_DGRAM, 0)
	addr := netip.MustParseAddrPort("10.0.0.1:7000")
	check("bind", ss.Bind(a, addr), nil)
	check("second bind", ss.Bind(b, addr), syscall.EADDRINUSE)
	c, _ := ss.Socket(synstack.AF_INET, synstack.SOCK_DGRAM, 0)
	d, _ := ss.Socket(synstack.AF_INET, synstack.SOCK_DGRAM, 0)
	for _, fd := range []int{c, d} {
		check("SO_REUSEADDR", ss.SetsockoptInt(fd, synstack.SOL_SOCKET, synstack.SO_REUSEADDR, 1), nil)
		check("bind with SO_REUSEADDR", ss.Bind(fd, netip.MustParseAddrPort("10.0.0.1:7001")), nil)
	}
	check("shutdown, unconnected", ss.Shutdown(c, synstack.SHUT_RD), syscall.ENOTCONN)
	n, _, err := ss.Recvfrom(c, make([]byte, 1), 0)
	if n != 0 || err != nil {
		t.Errorf("recvfrom after SHUT_RD: %d, %v: want 0, nil", n, err)
	}
	for _, fd := range []int{fd, a, b, c, d} {
		check("close", ss.Close(fd), nil)
	}
}

// TestUDPReusePortSpreads: sockets sharing a port with SO_REUSEPORT each
// get some of the flows, by a hash of the 4-tuple, as Linux spreads them.
func TestUDPReusePortSpreads(t *testing.T) {
	srv, cli := stackPair(t, 1500, nil)
	ss := srv.Sockets()
	var fds []int
	for range 2 {
		fd, _ := ss.Socket(synstack.AF_INET, synstack.SOCK_DGRAM|synstack.SOCK_NONBLOCK, 0)
		if err := ss.SetsockoptInt(fd, synstack.SOL_SOCKET, synstack.SO_REUSEPORT, 1); err != nil {
			t.Fatal(err)
		}
		if err := ss.Bind(fd, netip.MustParseAddrPort("10.0.0.1:8000")); err != nil {
			t.Fatal(err)
		}
		fds = append(fds, fd)
	}
	const flows = 32
	for range flows {
		d, err := cli.Dial("udp4", "10.0.0.1:8000")
		if err != nil {
			t.Fatal(err)
		}
		d.Write([]byte("x"))
		d.Close()
	}
	waitFor(t, func() bool { return srv.Stats().UdpInDatagrams == flows })
	for i, fd := range fds {
		got := 0
		for {
			if _, _, err := ss.Recvfrom(fd, make([]byte, 1), 0); err != nil {
				break
			}
			got++
		}
		if got == 0 || got == flows {
			t.Errorf("socket %d got %d of %d flows: want them spread", i, got, flows)
		}
	}
}

// TestUDPUnreachableRateLimit: port unreachables to one host are limited
// as Linux's icmp_ratelimit: a burst of 6, then one a second.
func TestUDPUnreachableRateLimit(t *testing.T) {
	vc := clock.NewVirtual(time.Unix(1e9, 0))
	srv, cli := stackPair(t, 1500, func(c *synstack.Config) { c.Clock = vc })
	// Unconnected: its sends do not stop at the first ICMP error.
	u, err := cli.ListenUDP("udp4", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	to := netip.MustParseAddrPort("10.0.0.1:9")
	for range 20 {
		if _, err := u.WriteToUDPAddrPort([]byte("x"), to); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool { return srv.Stats().UdpNoPorts == 20 })
	if got := srv.Stats().IcmpOutDestUnreachs; got != 6 {
		t.Errorf("%d port unreachables for 20 datagrams at once: want a burst of 6", got)
	}
	vc.Advance(time.Second)
	u.WriteToUDPAddrPort([]byte("x"), to)
	u.WriteToUDPAddrPort([]byte("x"), to)
	waitFor(t, func() bool { return srv.Stats().UdpNoPorts == 22 })
	if got := srv.Stats().IcmpOutDestUnreachs; got != 7 {
		t.Errorf("%d port unreachables after one more second: want one more, 7", got)
	}
}

// TestUDPRecvErr: an unconnected socket ignores ICMP errors unless
// IP_RECVERR is set; then its next call returns the error, as a
// connected socket's would.
func TestUDPRecvErr(t *testing.T) {
	_, cli := stackPair(t, 1500, nil)
	ss := cli.Sockets()
	for _, recvErr := range []bool{false, true} {
		fd, err := ss.Socket(synstack.AF_INET, synstack.SOCK_DGRAM, 0)
		if err != nil {
			t.Fatal(err)
		}
		if recvErr {
			if err := ss.SetsockoptInt(fd, synstack.IPPROTO_IP, synstack.IP_RECVERR, 1); err != nil {
				t.Fatal(err)
			}
			if v, err := ss.GetsockoptInt(fd, synstack.IPPROTO_IP, synstack.IP_RECVERR); v != 1 || err != nil {
				t.Fatalf("IP_RECVERR reads %d, %v", v, err)
			}
		}
		before := cli.Stats().IcmpInDestUnreachs
		if _, err := ss.Sendto(fd, []byte("x"), 0, netip.MustParseAddrPort("10.0.0.1:9")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool { return cli.Stats().IcmpInDestUnreachs == before+1 })
		_, _, err = ss.Recvfrom(fd, make([]byte, 10), synstack.MSG_DONTWAIT)
		want := syscall.EAGAIN
		if recvErr {
			want = syscall.ECONNREFUSED
		}
		if !errors.Is(err, want) {
			t.Errorf("IP_RECVERR %v: recvfrom after a port unreachable: %v, want %v", recvErr, err, want)
		}
		ss.Close(fd)
	}
}
