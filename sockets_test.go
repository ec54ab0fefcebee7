package synstack

import (
	"net/netip"
	"syscall"
	"testing"
	"time"
)

func TestSocketArguments(t *testing.T) {
	n := newVnet(t, nil)
	ss := n.a.Sockets()
	cases := []struct {
		domain, typ, proto int
		want               syscall.Errno
	}{
		{AF_INET, SOCK_STREAM, 0, 0},
		{AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP, 0},
		{1 /* AF_UNIX */, SOCK_STREAM, 0, syscall.EAFNOSUPPORT},
		{AF_INET, SOCK_DGRAM, 0, 0},
		{AF_INET6, SOCK_DGRAM, IPPROTO_UDP, 0},
		{AF_INET, SOCK_DGRAM, IPPROTO_TCP, syscall.EPROTONOSUPPORT},
		{AF_INET, 3 /* SOCK_RAW */, 0, syscall.ESOCKTNOSUPPORT},
		{AF_INET, SOCK_STREAM, 17 /* UDP */, syscall.EPROTONOSUPPORT},
		{AF_INET, SOCK_STREAM | 0x1000, 0, syscall.EINVAL},
		{AF_INET, 12, 0, syscall.EINVAL},
	}
	for _, c := range cases {
		_, err := ss.Socket(c.domain, c.typ, c.proto)
		wantErr(t, "socket", err, c.want)
	}
}

func TestDescriptorNumbering(t *testing.T) {
	n := newVnet(t, nil)
	ss := n.a.Sockets()
	fd := mustFD(t)
	a := fd(ss.Socket(AF_INET, SOCK_STREAM, 0))
	b := fd(ss.Socket(AF_INET, SOCK_STREAM, 0))
	c := fd(ss.Socket(AF_INET, SOCK_STREAM, 0))
	if a != 3 || b != 4 || c != 5 {
		t.Fatalf("fds %d %d %d, want 3 4 5", a, b, c)
	}
	must(t, ss.Close(b))
	if d := fd(ss.Dup(a)); d != 4 {
		t.Errorf("dup got %d, want lowest free 4", d)
	}
	if e := fd(ss.Socket(AF_INET, SOCK_STREAM, 0)); e != 6 {
		t.Errorf("socket got %d, want 6", e)
	}
}

func TestBadFD(t *testing.T) {
	n := newVnet(t, nil)
	ss := n.a.Sockets()
	ap := netip.AddrPortFrom(addrA, 80)
	for _, fd := range []int{-1, 0, 2, 3, 100} {
		errs := map[string]error{}
		errs["bind"] = ss.Bind(fd, ap)
		errs["listen"] = ss.Listen(fd, 1)
		_, _, errs["accept"] = ss.Accept(fd)
		errs["connect"] = ss.Connect(fd, ap)
		_, errs["read"] = ss.Read(fd, make([]byte, 1))
		_, errs["write"] = ss.Write(fd, []byte{1})
		_, errs["recv"] = ss.Recv(fd, make([]byte, 1), 0)
		_, errs["send"] = ss.Send(fd, []byte{1}, 0)
		errs["shutdown"] = ss.Shutdown(fd, SHUT_RDWR)
		errs["close"] = ss.Close(fd)
		_, errs["dup"] = ss.Dup(fd)
		_, errs["fcntl"] = ss.Fcntl(fd, F_GETFL, 0)
		errs["setsockopt"] = ss.SetsockoptInt(fd, SOL_SOCKET, SO_REUSEADDR, 1)
		_, errs["getsockopt"] = ss.GetsockoptInt(fd, SOL_SOCKET, SO_REUSEADDR)
		errs["setlinger"] = ss.SetsockoptLinger(fd, syscall.Linger{})
		_, errs["getlinger"] = ss.GetsockoptLinger(fd)
		_, errs["tcpinfo"] = ss.GetsockoptTCPInfo(fd)
		_, errs["getsockname"] = ss.Getsockname(fd)
		_, errs["getpeername"] = ss.Getpeername(fd)
		for name, err := range errs {
			wantErr(t, name, err, syscall.EBADF)
		}
	}
	pfd := []PollFd{{Fd: 42, Events: POLLIN}, {Fd: -1, Events: POLLIN}}
	k, err := ss.Poll(pfd, 0)
	if k != 1 || err != nil || pfd[0].Revents != POLLNVAL || pfd[1].Revents != 0 {
		t.Errorf("poll: %d %v %+v", k, err, pfd)
	}
}

func TestFcntl(t *testing.T) {
	n := newVnet(t, nil)
	ss := n.a.Sockets()
	fd := mustFD(t)(ss.Socket(AF_INET, SOCK_STREAM, 0))
	if fl, _ := ss.Fcntl(fd, F_GETFL, 0); fl != O_RDWR {
		t.Errorf("flags %#x", fl)
	}
	_, err := ss.Fcntl(fd, F_SETFL, O_RDWR|O_NONBLOCK)
	must(t, err)
	dup := mustFD(t)(ss.Dup(fd))
	if fl, _ := ss.Fcntl(dup, F_GETFL, 0); fl != O_RDWR|O_NONBLOCK {
		t.Errorf("flags of dup %#x: O_NONBLOCK is shared", fl)
	}
	_, err = ss.Fcntl(fd, 99, 0)
	wantErr(t, "fcntl 99", err, syscall.EINVAL)
	// Non-blocking accept on an empty listener.
	must(t, ss.Listen(fd, 1))
	_, _, err = ss.Accept(dup)
	wantErr(t, "accept", err, syscall.EAGAIN)
}

func TestUnconnectedCalls(t *testing.T) {
	n := newVnet(t, nil)
	ss := n.a.Sockets()
	fd := mustFD(t)(ss.Socket(AF_INET, SOCK_STREAM, 0))
	_, err := ss.Read(fd, make([]byte, 1))
	wantErr(t, "read", err, syscall.ENOTCONN)
	_, err = ss.Write(fd, []byte{1})
	wantErr(t, "write", err, syscall.EPIPE)
	_, _, err = ss.Accept(fd)
	wantErr(t, "accept", err, syscall.EINVAL)
	_, err = ss.Getpeername(fd)
	wantErr(t, "getpeername", err, syscall.ENOTCONN)
	wantErr(t, "shutdown bad how", ss.Shutdown(fd, 3), syscall.EINVAL)
	wantErr(t, "shutdown", ss.Shutdown(fd, SHUT_WR), syscall.ENOTCONN)
	if ap, _ := ss.Getsockname(fd); ap != netip.AddrPortFrom(netip.IPv4Unspecified(), 0) {
		t.Errorf("getsockname %v", ap)
	}
	pfd := []PollFd{{Fd: fd, Events: POLLIN | POLLOUT}}
	if k, _ := ss.Poll(pfd, 0); k != 1 || pfd[0].Revents != POLLOUT|POLLHUP {
		t.Errorf("poll of a new socket: %#x, want POLLOUT|POLLHUP", pfd[0].Revents)
	}
	// Listening socket: read ENOTCONN, write EPIPE, connect EISCONN.
	must(t, ss.Listen(fd, 1))
	_, err = ss.Read(fd, make([]byte, 1))
	wantErr(t, "read listener", err, syscall.ENOTCONN)
	_, err = ss.Write(fd, []byte{1})
	wantErr(t, "write listener", err, syscall.EPIPE)
	wantErr(t, "connect listener", ss.Connect(fd, netip.AddrPortFrom(addrB, 1)), syscall.EISCONN)
	wantErr(t, "bind listener", ss.Bind(fd, netip.AddrPortFrom(addrA, 1)), syscall.EINVAL)
	// Poll with a timeout on the virtual clock.
	pfd = []PollFd{{Fd: fd, Events: POLLIN}}
	done := make(chan int)
	go func() {
		k, _ := ss.Poll(pfd, time.Second)
		done <- k
	}()
	for {
		if _, ok := n.clk.Next(); ok {
			break
		}
		time.Sleep(time.Millisecond)
	}
	n.clk.Advance(time.Second)
	if k := <-done; k != 0 {
		t.Errorf("poll timed out with %d", k)
	}
}

func TestBindRules(t *testing.T) {
	n := newVnet(t, nil)
	ss := n.a.Sockets()
	sock := func(opts ...int) int {
		t.Helper()
		fd := mustFD(t)(ss.Socket(AF_INET, SOCK_STREAM, 0))
		for _, o := range opts {
			must(t, ss.SetsockoptInt(fd, SOL_SOCKET, o, 1))
		}
		return fd
	}
	ap := func(a netip.Addr, p uint16) netip.AddrPort { return netip.AddrPortFrom(a, p) }
	any4 := netip.IPv4Unspecified()

	fd := sock()
	wantErr(t, "not our address", ss.Bind(fd, ap(addrB, 80)), syscall.EADDRNOTAVAIL)
	wantErr(t, "v6 on AF_INET", ss.Bind(fd, ap(addr6A, 80)), syscall.EAFNOSUPPORT)
	must(t, ss.Bind(fd, ap(addrA, 80)))
	wantErr(t, "bind twice", ss.Bind(fd, ap(addrA, 81)), syscall.EINVAL)
	wantErr(t, "same address and port", ss.Bind(sock(), ap(addrA, 80)), syscall.EADDRINUSE)
	wantErr(t, "wildcard over specific", ss.Bind(sock(), ap(any4, 80)), syscall.EADDRINUSE)
	must(t, ss.Bind(sock(), ap(addrA, 81)))

	// SO_REUSEADDR on both: binding together is fine while neither
	// listens; the second listen fails (inet_csk_get_port at listen).
	r1, r2 := sock(SO_REUSEADDR), sock(SO_REUSEADDR)
	must(t, ss.Bind(r1, ap(addrA, 90)))
	must(t, ss.Bind(r2, ap(any4, 90)))
	must(t, ss.Listen(r1, 5))
	wantErr(t, "second listen", ss.Listen(r2, 5), syscall.EADDRINUSE)
	wantErr(t, "reuseaddr vs listener", ss.Bind(sock(SO_REUSEADDR), ap(addrA, 90)), syscall.EADDRINUSE)
	// Only one side with SO_REUSEADDR is not enough.
	must(t, ss.Bind(sock(SO_REUSEADDR), ap(addrA, 91)))
	wantErr(t, "one-sided reuseaddr", ss.Bind(sock(), ap(addrA, 91)), syscall.EADDRINUSE)

	// SO_REUSEPORT on both: bind and listen together.
	p1, p2 := sock(SO_REUSEPORT), sock(SO_REUSEPORT)
	must(t, ss.Bind(p1, ap(addrA, 100)))
	must(t, ss.Bind(p2, ap(addrA, 100)))
	must(t, ss.Listen(p1, 5))
	must(t, ss.Listen(p2, 5))
	wantErr(t, "no reuseport", ss.Bind(sock(), ap(addrA, 100)), syscall.EADDRINUSE)

	// Options set after bind do not change the bind.
	l1 := sock()
	must(t, ss.Bind(l1, ap(addrA, 110)))
	must(t, ss.SetsockoptInt(l1, SOL_SOCKET, SO_REUSEPORT, 1))
	wantErr(t, "reuseport set after bind", ss.Bind(sock(SO_REUSEPORT), ap(addrA, 110)), syscall.EADDRINUSE)

	// Closing releases the port.
	c := sock()
	must(t, ss.Bind(c, ap(addrA, 120)))
	must(t, ss.Close(c))
	must(t, ss.Bind(sock(), ap(addrA, 120)))
	// ... but not while a dup'ed descriptor remains.
	c = sock()
	must(t, ss.Bind(c, ap(addrA, 121)))
	d := mustFD(t)(ss.Dup(c))
	must(t, ss.Close(c))
	wantErr(t, "still bound by dup", ss.Bind(sock(), ap(addrA, 121)), syscall.EADDRINUSE)
	must(t, ss.Close(d))
	must(t, ss.Bind(sock(), ap(addrA, 121)))

	// Port 0 picks an ephemeral port.
	for i := 0; i < 50; i++ {
		e := sock()
		must(t, ss.Bind(e, ap(addrA, 0)))
		got, _ := ss.Getsockname(e)
		if got.Port() < EphemeralPortFirst || got.Port() > EphemeralPortLast || got.Addr() != addrA {
			t.Fatalf("bind port 0 gave %v", got)
		}
	}
	// Listen without bind binds an ephemeral port on the wildcard.
	e := sock()
	must(t, ss.Listen(e, 1))
	got, _ := ss.Getsockname(e)
	if got.Port() < EphemeralPortFirst || got.Port() > EphemeralPortLast || got.Addr() != any4 {
		t.Errorf("listen autobind gave %v", got)
	}
	if v, _ := ss.GetsockoptInt(e, SOL_SOCKET, SO_ACCEPTCONN); v != 1 {
		t.Errorf("SO_ACCEPTCONN %d", v)
	}
}

func TestBindIPv6(t *testing.T) {
	n := newVnet(t, nil)
	ss := n.a.Sockets()
	sock6 := func(v6only bool) int {
		fd := mustFD(t)(ss.Socket(AF_INET6, SOCK_STREAM, 0))
		if v6only {
			must(t, ss.SetsockoptInt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1))
		}
		return fd
	}
	sock4 := func() int { return mustFD(t)(ss.Socket(AF_INET, SOCK_STREAM, 0)) }
	any6 := netip.AddrPortFrom(netip.IPv6Unspecified(), 80)
	any4 := netip.AddrPortFrom(netip.IPv4Unspecified(), 80)

	// :: without V6ONLY takes IPv4 too.
	must(t, ss.Bind(sock6(false), any6))
	wantErr(t, "0.0.0.0 after ::", ss.Bind(sock4(), any4), syscall.EADDRINUSE)
	wantErr(t, "10.0.0.1 after ::", ss.Bind(sock4(), netip.AddrPortFrom(addrA, 80)), syscall.EADDRINUSE)

	// :: with V6ONLY leaves IPv4 free.
	any6b := netip.AddrPortFrom(netip.IPv6Unspecified(), 81)
	must(t, ss.Bind(sock6(true), any6b))
	must(t, ss.Bind(sock4(), netip.AddrPortFrom(netip.IPv4Unspecified(), 81)))

	// An AF_INET6 socket shows IPv4 as mapped.
	fd := sock6(false)
	must(t, ss.Bind(fd, netip.AddrPortFrom(addrA, 82)))
	got, _ := ss.Getsockname(fd)
	if got.Addr() != netip.AddrFrom16(addrA.As16()) || got.Port() != 82 {
		t.Errorf("getsockname %v", got)
	}
	wantErr(t, "v4 on v6only", ss.Bind(sock6(true), netip.AddrPortFrom(addrA, 83)), syscall.EINVAL)
	wantErr(t, "v6only after bind", ss.SetsockoptInt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1), syscall.EINVAL)
	_, err := ss.GetsockoptInt(sock4(), IPPROTO_IPV6, IPV6_V6ONLY)
	wantErr(t, "v6only on AF_INET", err, syscall.ENOPROTOOPT)
}

func TestSockoptValues(t *testing.T) {
	n := newVnet(t, nil)
	ss := n.a.Sockets()
	fd := mustFD(t)(ss.Socket(AF_INET, SOCK_STREAM, 0))
	get := func(level, opt int) int {
		t.Helper()
		v, err := ss.GetsockoptInt(fd, level, opt)
		must(t, err)
		return v
	}
	for _, c := range []struct{ set, want int }{{5000, 10000}, {1, 4608}, {1 << 30, 2 * 212992}, {-1, 2 * 212992}} {
		must(t, ss.SetsockoptInt(fd, SOL_SOCKET, SO_SNDBUF, c.set))
		if v := get(SOL_SOCKET, SO_SNDBUF); v != c.want {
			t.Errorf("SO_SNDBUF %d: got %d want %d", c.set, v, c.want)
		}
	}
	must(t, ss.SetsockoptInt(fd, SOL_SOCKET, SO_RCVBUF, 1))
	if v := get(SOL_SOCKET, SO_RCVBUF); v != 2304 {
		t.Errorf("SO_RCVBUF min %d", v)
	}
	if v := get(SOL_SOCKET, SO_TYPE); v != SOCK_STREAM {
		t.Errorf("SO_TYPE %d", v)
	}
	if v := get(SOL_SOCKET, SO_ERROR); v != 0 {
		t.Errorf("SO_ERROR %d", v)
	}
	if v := get(SOL_SOCKET, SO_ACCEPTCONN); v != 0 {
		t.Errorf("SO_ACCEPTCONN %d", v)
	}
	if v := get(IPPROTO_TCP, TCP_MAXSEG); v != 536 {
		t.Errorf("TCP_MAXSEG before connect %d", v)
	}
	must(t, ss.SetsockoptInt(fd, IPPROTO_TCP, TCP_MAXSEG, 1000))
	if v := get(IPPROTO_TCP, TCP_MAXSEG); v != 1000 {
		t.Errorf("TCP_MAXSEG set %d", v)
	}
	wantErr(t, "TCP_MAXSEG 50", ss.SetsockoptInt(fd, IPPROTO_TCP, TCP_MAXSEG, 50), syscall.EINVAL)
	if v := get(IPPROTO_TCP, TCP_KEEPIDLE); v != 7200 {
		t.Errorf("TCP_KEEPIDLE default %d", v)
	}
	for _, c := range []struct {
		opt, v int
		want   syscall.Errno
	}{
		{TCP_KEEPIDLE, 0, syscall.EINVAL}, {TCP_KEEPIDLE, 32768, syscall.EINVAL}, {TCP_KEEPIDLE, 32767, 0},
		{TCP_KEEPINTVL, 0, syscall.EINVAL}, {TCP_KEEPINTVL, 1, 0},
		{TCP_KEEPCNT, 128, syscall.EINVAL}, {TCP_KEEPCNT, 127, 0},
		{TCP_NODELAY, 1, 0}, {99, 1, syscall.ENOPROTOOPT},
	} {
		wantErr(t, "setsockopt", ss.SetsockoptInt(fd, IPPROTO_TCP, c.opt, c.v), c.want)
	}
	if v := get(IPPROTO_TCP, TCP_KEEPINTVL); v != 1 {
		t.Errorf("TCP_KEEPINTVL %d", v)
	}
	if v := get(IPPROTO_TCP, TCP_NODELAY); v != 1 {
		t.Errorf("TCP_NODELAY %d", v)
	}
	must(t, ss.SetsockoptInt(fd, SOL_SOCKET, SO_KEEPALIVE, 1))
	if v := get(SOL_SOCKET, SO_KEEPALIVE); v != 1 {
		t.Errorf("SO_KEEPALIVE %d", v)
	}
	wantErr(t, "unknown level", ss.SetsockoptInt(fd, 1234, 1, 1), syscall.ENOPROTOOPT)
	wantErr(t, "unknown socket option", ss.SetsockoptInt(fd, SOL_SOCKET, 1234, 1), syscall.ENOPROTOOPT)
	wantErr(t, "SO_ERROR is read-only", ss.SetsockoptInt(fd, SOL_SOCKET, SO_ERROR, 1), syscall.ENOPROTOOPT)
	_, err := ss.GetsockoptInt(fd, SOL_SOCKET, 1234)
	wantErr(t, "get unknown", err, syscall.ENOPROTOOPT)

	must(t, ss.SetsockoptLinger(fd, syscall.Linger{Onoff: 5, Linger: 3}))
	if l, _ := ss.GetsockoptLinger(fd); l != (syscall.Linger{Onoff: 1, Linger: 3}) {
		t.Errorf("linger %+v", l)
	}
}
