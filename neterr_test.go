package synstack_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/link/pipe"
	"github.com/synstack/synstack/wire"
)

// checkOpErr checks that err is a *net.OpError for op whose chain holds
// target.
func checkOpErr(t *testing.T, what string, err error, op string, target error) {
	t.Helper()
	var oe *net.OpError
	if !errors.As(err, &oe) {
		t.Errorf("%s: %T %v, want a *net.OpError", what, err, err)
		return
	}
	if oe.Op != op {
		t.Errorf("%s: Op %q, want %q (%v)", what, oe.Op, op, err)
	}
	if !errors.Is(err, target) {
		t.Errorf("%s: %v, want errors.Is %v", what, err, target)
	}
}

func checkTimeout(t *testing.T, what string, err error) {
	t.Helper()
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("%s: %v, want a net.Error with Timeout()", what, err)
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("%s: %v, want errors.Is os.ErrDeadlineExceeded", what, err)
	}
}

func TestDialRefused(t *testing.T) {
	_, cli := stackPair(t, 1500, nil)
	for _, addr := range []string{"10.0.0.1:81", "[fd00::1]:81"} {
		_, err := cli.Dial("tcp", addr)
		checkOpErr(t, "dial "+addr, err, "dial", syscall.ECONNREFUSED)
		var se *os.SyscallError
		if !errors.As(err, &se) || se.Syscall != "connect" {
			t.Errorf("dial %s: %v, want an *os.SyscallError for connect", addr, err)
		}
	}
}

func TestDialBadAddress(t *testing.T) {
	_, cli := stackPair(t, 1500, nil)
	for _, tc := range []struct{ network, addr string }{
		{"ip", "10.0.0.1:80"},
		{"udp", "example.com:53"},
		{"tcp", "example.com:80"},
		{"tcp", "10.0.0.1"},
		{"tcp4", "[fd00::1]:80"},
		{"tcp6", "10.0.0.1:80"},
	} {
		c, err := cli.Dial(tc.network, tc.addr)
		var oe *net.OpError
		if c != nil || !errors.As(err, &oe) || oe.Op != "dial" {
			t.Errorf("Dial(%q, %q): %v, %v; want a dial *net.OpError", tc.network, tc.addr, c, err)
		}
	}
	// No address of the family.
	a, b := pipe.New(1500)
	defer a.Close()
	s, err := synstack.New(synstack.Config{Link: b, Addrs: stackPairAddrs[1][:1]})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.Dial("tcp", "[fd00::1]:80")
	checkOpErr(t, "dial v6 from a v4-only stack", err, "dial", syscall.ENETUNREACH)
}

// dropSYNs makes the link from cli drop every SYN: dials then hang.
func dropSYNs(t *testing.T, l *pipe.Endpoint) {
	l.SetDropFunc(func(pkt []byte) bool {
		var payload []byte
		var proto uint8
		if pkt[0]>>4 == 4 {
			h, p, err := wire.ParseIPv4(pkt)
			if err != nil {
				return false
			}
			payload, proto = p, h.Protocol
		} else {
			h, p, err := wire.ParseIPv6(pkt)
			if err != nil {
				return false
			}
			payload, proto = p, h.NextHeader
		}
		if proto != wire.ProtoTCP {
			return false
		}
		h, _, err := wire.ParseTCP(payload)
		return err == nil && h.Flags&wire.FlagSYN != 0
	})
}

func TestDialContextCancel(t *testing.T) {
	a, b := pipe.New(1500)
	srv, err := synstack.New(synstack.Config{Link: a, Addrs: stackPairAddrs[0]})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cli, err := synstack.New(synstack.Config{Link: b, Addrs: stackPairAddrs[1]})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ln, err := srv.Listen("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dropSYNs(t, b)

	// Cancelled while waiting for the SYN,ACK.
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	// Not cancelled, the dial would end in ETIMEDOUT after the SYN retries:
	// the error says which ended it, without timing it.
	_, err = cli.DialContext(ctx, "tcp", "10.0.0.1:80")
	checkOpErr(t, "cancelled dial", err, "dial", context.Canceled)

	// A context deadline, and a Dialer timeout.
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = cli.DialContext(ctx, "tcp", "[fd00::1]:80")
	checkOpErr(t, "dial past its deadline", err, "dial", context.DeadlineExceeded)
	checkTimeout(t, "dial past its deadline", err)
	d := synstack.Dialer{Stack: cli, Timeout: 50 * time.Millisecond}
	_, err = d.Dial("tcp", "10.0.0.1:80")
	checkOpErr(t, "dial with a timeout", err, "dial", context.DeadlineExceeded)

	// An already cancelled context does not even send a SYN.
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	_, err = cli.DialContext(ctx, "tcp", "10.0.0.1:80")
	checkOpErr(t, "dial with a done context", err, "dial", context.Canceled)

	// The abandoned attempts left nothing behind: a new dial goes through.
	b.SetDropFunc(nil)
	c, err := cli.Dial("tcp", "10.0.0.1:80")
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if st := cli.Stats(); st.TcpActiveOpens != 4 || st.TcpAttemptFails != 3 {
		t.Errorf("active opens %d, failed %d; want 4 and 3", st.TcpActiveOpens, st.TcpAttemptFails)
	}
}

func TestReadWriteDeadlines(t *testing.T) {
	srv, cli := stackPair(t, 1500, nil)
	c1, c2 := connPair(t, srv, cli, "tcp", "10.0.0.1:80")
	defer c1.Close()
	defer c2.Close()
	buf := make([]byte, 100)

	// A deadline in the past fails at once, even with data waiting.
	c2.Write([]byte("x"))
	c1.SetReadDeadline(time.Now().Add(-time.Second))
	n, err := c1.Read(buf)
	if n != 0 {
		t.Errorf("read %d bytes past the deadline", n)
	}
	checkOpErr(t, "read past deadline", err, "read", os.ErrDeadlineExceeded)
	checkTimeout(t, "read past deadline", err)

	// Clearing it reads the data.
	c1.SetReadDeadline(time.Time{})
	if n, err := c1.Read(buf); n != 1 || err != nil {
		t.Fatalf("read %d, %v", n, err)
	}

	// A deadline cuts off a blocked Read; moving it while blocked counts.
	c1.SetReadDeadline(time.Now().Add(time.Hour))
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := c1.Read(buf)
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	c1.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	select {
	case err := <-done:
		checkTimeout(t, "blocked read", err)
		if d := time.Since(start); d < 40*time.Millisecond {
			t.Errorf("read timed out after %v", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("blocked read not cut off by its deadline")
	}

	// A write deadline cuts off a Write waiting for room.
	c1.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	big := make([]byte, 4<<20)
	n, err = c1.Write(big)
	checkOpErr(t, "blocked write", err, "write", os.ErrDeadlineExceeded)
	checkTimeout(t, "blocked write", err)
	if n >= len(big) {
		t.Errorf("write wrote %d of %d before its deadline", n, len(big))
	}
	// The read side is unaffected.
	c1.SetReadDeadline(time.Time{})
	c2.Write([]byte("y"))
	if n, err := c1.Read(buf); n != 1 || err != nil {
		t.Errorf("read after a write timeout: %d, %v", n, err)
	}
}

func TestUseAfterClose(t *testing.T) {
	srv, cli := stackPair(t, 1500, nil)
	c1, c2 := connPair(t, srv, cli, "tcp", "10.0.0.1:80")
	defer c2.Close()

	blocked := make(chan error, 2)
	go func() {
		_, err := c1.Read(make([]byte, 10))
		blocked <- err
	}()
	go func() {
		_, err := c1.Write(make([]byte, 8<<20))
		blocked <- err
	}()
	time.Sleep(20 * time.Millisecond)
	if err := c1.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case err := <-blocked:
			var oe *net.OpError
			if !errors.As(err, &oe) || (oe.Op != "read" && oe.Op != "write") || !errors.Is(err, net.ErrClosed) {
				t.Errorf("blocked call at close: %v, want a read or write error with net.ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Close did not wake a blocked call")
		}
	}
	_, err := c1.Read(make([]byte, 1))
	checkOpErr(t, "read after close", err, "read", net.ErrClosed)
	_, err = c1.Write([]byte("x"))
	checkOpErr(t, "write after close", err, "write", net.ErrClosed)
	checkOpErr(t, "second close", c1.Close(), "close", net.ErrClosed)
	checkOpErr(t, "set deadline after close", c1.SetDeadline(time.Now()), "set", net.ErrClosed)
	checkOpErr(t, "set option after close", c1.SetNoDelay(false), "set", net.ErrClosed)
	checkOpErr(t, "close write after close", c1.CloseWrite(), "close", net.ErrClosed)

	// A listener likewise.
	ln, err := srv.Listen("tcp", ":90")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		_, err := ln.Accept()
		blocked <- err
	}()
	time.Sleep(20 * time.Millisecond)
	ln.Close()
	checkOpErr(t, "blocked accept at close", <-blocked, "accept", net.ErrClosed)
	_, err = ln.Accept()
	checkOpErr(t, "accept after close", err, "accept", net.ErrClosed)
	// The port is free again.
	ln, err = srv.Listen("tcp", ":90")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
}

func TestAcceptDeadline(t *testing.T) {
	srv, _ := stackPair(t, 1500, nil)
	ln, err := srv.ListenTCP("tcp", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if ln.Addr().(*net.TCPAddr).Port == 0 {
		t.Errorf("listener on port 0: %v", ln.Addr())
	}
	ln.SetDeadline(time.Now().Add(30 * time.Millisecond))
	_, err = ln.Accept()
	checkOpErr(t, "accept past deadline", err, "accept", os.ErrDeadlineExceeded)
	checkTimeout(t, "accept past deadline", err)
}

func TestStackCloseEndsCalls(t *testing.T) {
	srv, cli := stackPair(t, 1500, nil)
	c1, c2 := connPair(t, srv, cli, "tcp", "10.0.0.1:80")
	ln, err := srv.Listen("tcp", ":81")
	if err != nil {
		t.Fatal(err)
	}
	type ended struct {
		who string
		err error
	}
	errs := make(chan ended, 3)
	go func() {
		_, err := c1.Read(make([]byte, 10))
		errs <- ended{"cli", err}
	}()
	go func() {
		_, err := c2.Read(make([]byte, 10))
		errs <- ended{"srv", err}
	}()
	go func() {
		_, err := ln.Accept()
		errs <- ended{"srv", err}
	}()
	time.Sleep(20 * time.Millisecond)
	// srv's calls end with net.ErrClosed; its RST reaches cli's connection
	// first (ECONNRESET) unless cli is closed before it arrives.
	srv.Close()
	time.Sleep(20 * time.Millisecond)
	cli.Close()
	for range 3 {
		select {
		case e := <-errs:
			var oe *net.OpError
			if !errors.As(e.err, &oe) || !errors.Is(e.err, net.ErrClosed) && !(e.who == "cli" && errors.Is(e.err, syscall.ECONNRESET)) {
				t.Errorf("%s call ended by Stack.Close: %v, want net.ErrClosed", e.who, e.err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Stack.Close did not end a blocked call")
		}
	}
	if err := c1.Close(); err != nil {
		t.Errorf("close after Stack.Close: %v", err)
	}
	c2.Close()
	ln.Close()
	if _, err := cli.Dial("tcp", "10.0.0.1:80"); !errors.Is(err, net.ErrClosed) {
		t.Errorf("dial on a closed stack: %v", err)
	}
}

func TestEOFAndReset(t *testing.T) {
	srv, cli := stackPair(t, 1500, nil)
	c1, c2 := connPair(t, srv, cli, "tcp", "[fd00::1]:80")
	defer c1.Close()
	c2.Write([]byte("bye"))
	c2.Close()
	b, err := io.ReadAll(c1)
	if string(b) != "bye" || err != nil {
		t.Errorf("ReadAll: %q, %v", b, err)
	}
	if n, err := c1.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("read at EOF: %d, %v; want io.EOF", n, err)
	}

	// SetLinger(0): Close resets; the peer's Read sees ECONNRESET once, then EOF.
	c3, c4 := connPair(t, srv, cli, "tcp", "10.0.0.1:82")
	defer c3.Close()
	if err := c4.SetLinger(0); err != nil {
		t.Fatal(err)
	}
	c4.Close()
	_, err = c3.Read(make([]byte, 10))
	checkOpErr(t, "read after reset", err, "read", syscall.ECONNRESET)
	if _, err := c3.Read(make([]byte, 10)); err != io.EOF {
		t.Errorf("second read after reset: %v, want io.EOF", err)
	}
	_, err = c3.Write([]byte("x"))
	checkOpErr(t, "write after reset", err, "write", syscall.EPIPE)
}

func TestHalfClose(t *testing.T) {
	srv, cli := stackPair(t, 1500, nil)
	c1, c2 := connPair(t, srv, cli, "tcp", "10.0.0.1:80")
	defer c1.Close()
	defer c2.Close()
	// Each side closes its writing side; data still flows the other way.
	if err := c1.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(c2); len(b) != 0 || err != nil {
		t.Fatalf("ReadAll after the peer's CloseWrite: %q, %v", b, err)
	}
	if _, err := c2.Write([]byte("still open")); err != nil {
		t.Fatal(err)
	}
	c2.CloseWrite()
	if b, err := io.ReadAll(c1); string(b) != "still open" || err != nil {
		t.Fatalf("ReadAll: %q, %v", b, err)
	}
	// CloseRead: later reads see EOF at once.
	c3, c4 := connPair(t, srv, cli, "tcp", "10.0.0.1:81")
	defer c3.Close()
	defer c4.Close()
	if err := c3.CloseRead(); err != nil {
		t.Fatal(err)
	}
	if n, err := c3.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("read after CloseRead: %d, %v", n, err)
	}
}

func TestDualStackListen(t *testing.T) {
	srv, cli := stackPair(t, 1500, nil)
	ln, err := srv.Listen("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if got := ln.Addr().String(); got != "[::]:80" {
		t.Errorf("dual-stack listener at %s", got)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte(c.LocalAddr().String() + " " + c.RemoteAddr().String()))
			c.Close()
		}
	}()
	for _, tc := range []struct{ addr, want string }{
		{"10.0.0.1:80", "10.0.0.1:80 10.0.0.2:"},
		{"[fd00::1]:80", "[fd00::1]:80 [fd00::2]:"},
	} {
		c, err := cli.Dial("tcp", tc.addr)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(c)
		if len(b) < len(tc.want) || string(b[:len(tc.want)]) != tc.want {
			t.Errorf("dial %s: server saw %q", tc.addr, b)
		}
		if _, ok := c.LocalAddr().(*net.TCPAddr); !ok {
			t.Errorf("LocalAddr is a %T", c.LocalAddr())
		}
		c.Close()
	}

	// "tcp4" and "tcp6" listeners on one port coexist; tcp6 takes IPv6 only.
	ln4, err := srv.Listen("tcp4", ":90")
	if err != nil {
		t.Fatal(err)
	}
	ln4.Close()
	ln6, err := srv.Listen("tcp6", ":90")
	if err != nil {
		t.Fatal(err)
	}
	defer ln6.Close()
	_, err = cli.Dial("tcp", "10.0.0.1:90")
	checkOpErr(t, "IPv4 dial to a tcp6 listener", err, "dial", syscall.ECONNREFUSED)
	ln4, err = srv.Listen("tcp4", ":90")
	if err != nil {
		t.Fatalf("tcp4 beside tcp6 on one port: %v", err)
	}
	ln4.Close()
	// A dual-stack listener conflicts with both.
	_, err = srv.Listen("tcp", ":90")
	checkOpErr(t, "dual-stack listen on a taken port", err, "listen", syscall.EADDRINUSE)
}

func TestConnOptions(t *testing.T) {
	srv, cli := stackPair(t, 1500, nil)
	d := synstack.Dialer{Stack: cli, KeepAlive: -1, Control: func(network, address string, s *synstack.Sockets, fd int) error {
		return s.SetsockoptInt(fd, synstack.IPPROTO_TCP, synstack.TCP_MAXSEG, 1000)
	}}
	ln, err := srv.Listen("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			io.Copy(io.Discard, c)
			c.Close()
		}
	}()
	nc, err := d.Dial("tcp", "10.0.0.1:80")
	if err != nil {
		t.Fatal(err)
	}
	c := nc.(*synstack.TCPConn)
	defer c.Close()
	get := func(level, opt int) int {
		t.Helper()
		var v int
		var err error
		if cerr := c.Control(func(s *synstack.Sockets, fd int) { v, err = s.GetsockoptInt(fd, level, opt) }); cerr != nil {
			t.Fatal(cerr)
		}
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if get(synstack.IPPROTO_TCP, synstack.TCP_NODELAY) != 1 {
		t.Errorf("TCP_NODELAY not set by default")
	}
	if get(synstack.SOL_SOCKET, synstack.SO_KEEPALIVE) != 0 {
		t.Errorf("SO_KEEPALIVE set despite KeepAlive: -1")
	}
	if mss := get(synstack.IPPROTO_TCP, synstack.TCP_MAXSEG); mss > 1000 {
		t.Errorf("MSS %d despite TCP_MAXSEG 1000 set by Control", mss)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.SetNoDelay(false))
	must(c.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: 30 * time.Second, Interval: 1500 * time.Millisecond, Count: 3}))
	must(c.SetReadBuffer(50000))
	must(c.SetWriteBuffer(60000))
	for _, o := range []struct{ level, opt, want int }{
		{synstack.IPPROTO_TCP, synstack.TCP_NODELAY, 0},
		{synstack.SOL_SOCKET, synstack.SO_KEEPALIVE, 1},
		{synstack.IPPROTO_TCP, synstack.TCP_KEEPIDLE, 30},
		{synstack.IPPROTO_TCP, synstack.TCP_KEEPINTVL, 2},
		{synstack.IPPROTO_TCP, synstack.TCP_KEEPCNT, 3},
		{synstack.SOL_SOCKET, synstack.SO_RCVBUF, 100000},
		{synstack.SOL_SOCKET, synstack.SO_SNDBUF, 120000},
	} {
		if got := get(o.level, o.opt); got != o.want {
			t.Errorf("option %d/%d: %d, want %d", o.level, o.opt, got, o.want)
		}
	}
	must(c.SetKeepAlive(false))
	must(c.SetKeepAlivePeriod(0))
	if get(synstack.SOL_SOCKET, synstack.SO_KEEPALIVE) != 0 || get(synstack.IPPROTO_TCP, synstack.TCP_KEEPIDLE) != 15 {
		t.Errorf("SetKeepAlive(false), SetKeepAlivePeriod(0) not applied")
	}
	must(c.SetLinger(5))
	var l syscall.Linger
	c.Control(func(s *synstack.Sockets, fd int) { l, _ = s.GetsockoptLinger(fd) })
	if l.Onoff != 1 || l.Linger != 5 {
		t.Errorf("linger %+v", l)
	}
	if err := c.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: -1, Interval: -1, Count: 200}); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("TCP_KEEPCNT 200 accepted")
	}
}

func TestFileConn(t *testing.T) {
	srv, cli := stackPair(t, 1500, nil)
	// A server through the socket layer, a client through net.Conn, then
	// the accepted descriptor turned into a net.Conn.
	ss := srv.Sockets()
	lfd, err := ss.Socket(synstack.AF_INET, synstack.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := ss.Bind(lfd, stackPairAddrPort("10.0.0.1:80")); err != nil {
		t.Fatal(err)
	}
	if err := ss.Listen(lfd, 5); err != nil {
		t.Fatal(err)
	}
	ln, err := srv.FileListener(lfd)
	if err != nil {
		t.Fatal(err)
	}
	ss.Close(lfd) // the listener has its own descriptor
	defer ln.Close()
	if ln.Addr().String() != "10.0.0.1:80" {
		t.Errorf("FileListener at %v", ln.Addr())
	}
	c, err := cli.Dial("tcp", "10.0.0.1:80")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	var fd int
	sc.(*synstack.TCPConn).Control(func(s *synstack.Sockets, d int) { fd = d })
	fc, err := srv.FileConn(fd)
	if err != nil {
		t.Fatal(err)
	}
	sc.Close()
	fc.Write([]byte("via FileConn"))
	fc.Close()
	if b, _ := io.ReadAll(c); string(b) != "via FileConn" {
		t.Errorf("read %q", b)
	}
	if _, err := srv.FileConn(99); !errors.Is(err, syscall.EBADF) {
		t.Errorf("FileConn(99): %v", err)
	}
}
