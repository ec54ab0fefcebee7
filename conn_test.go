package synstack

import (
	"bytes"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/synstack/synstack/tcp"
	"github.com/synstack/synstack/wire"
)

var srvAddr = netip.AddrPortFrom(addrB, 8080)

func readAll(t *testing.T, n *vnet, ss *Sockets, fd int) (string, error) {
	t.Helper()
	buf := make([]byte, 65536)
	k, err := ss.Recv(fd, buf, MSG_DONTWAIT)
	if err != nil {
		return "", err
	}
	return string(buf[:k]), nil
}

func pollOne(ss *Sockets, fd int, events int16) int16 {
	p := []PollFd{{Fd: fd, Events: events}}
	ss.Poll(p, 0)
	return p[0].Revents
}

func TestConnectStates(t *testing.T) {
	n := newVnet(t, nil)
	lfd := listenOn(t, n.b, srvAddr, 5, true)
	ca := n.a.Sockets()
	fd := mustFD(t)(ca.Socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK, 0))
	wantErr(t, "connect", ca.Connect(fd, srvAddr), syscall.EINPROGRESS)
	wantErr(t, "connect in progress", ca.Connect(fd, srvAddr), syscall.EALREADY)
	if ev := pollOne(ca, fd, POLLIN|POLLOUT); ev != 0 {
		t.Errorf("poll in SYN_SENT: %#x", ev)
	}
	_, err := ca.Getpeername(fd)
	wantErr(t, "getpeername in SYN_SENT", err, syscall.ENOTCONN)
	_, err = ca.Write(fd, []byte("x"))
	wantErr(t, "non-blocking write in SYN_SENT", err, syscall.EAGAIN)
	_, err = ca.Read(fd, make([]byte, 1))
	wantErr(t, "non-blocking read in SYN_SENT", err, syscall.EAGAIN)
	n.pump()
	if ev := pollOne(ca, fd, POLLIN|POLLOUT); ev != POLLOUT {
		t.Errorf("poll when established: %#x", ev)
	}
	wantErr(t, "connect completes", ca.Connect(fd, srvAddr), 0)
	wantErr(t, "connect again", ca.Connect(fd, srvAddr), syscall.EISCONN)
	if ev := pollOne(n.b.Sockets(), lfd, POLLIN); ev != POLLIN {
		t.Errorf("listener poll %#x", ev)
	}
	sfd, peer, err := n.b.Sockets().Accept(lfd)
	must(t, err)
	local, _ := ca.Getsockname(fd)
	if peer != local || local.Addr() != addrA {
		t.Errorf("accept peer %v, client local %v", peer, local)
	}
	if p, _ := ca.Getpeername(fd); p != srvAddr {
		t.Errorf("getpeername %v", p)
	}
	if fl, _ := n.b.Sockets().Fcntl(sfd, F_GETFL, 0); fl&O_NONBLOCK != 0 {
		t.Errorf("accepted socket inherited O_NONBLOCK")
	}
	if v, _ := ca.GetsockoptInt(fd, IPPROTO_TCP, TCP_MAXSEG); v != 1448 { // 1460 less the timestamp option, as Linux
		t.Errorf("TCP_MAXSEG connected %d", v)
	}
	st := n.a.Stats()
	if st.TcpActiveOpens != 1 || st.TcpCurrEstab != 1 {
		t.Errorf("client stats %+v", st)
	}
	if st := n.b.Stats(); st.TcpPassiveOpens != 1 || st.TcpCurrEstab != 1 {
		t.Errorf("server stats %+v", st)
	}
}

func TestConnectRefused(t *testing.T) {
	n := newVnet(t, nil)
	ca := n.a.Sockets()
	fd := mustFD(t)(ca.Socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK, 0))
	var sent []wire.TCP
	n.drop = func(dir string, pkt []byte) bool {
		if dir == "b>a" {
			_, p, _ := wire.ParseIPv4(pkt)
			h, _, _ := wire.ParseTCP(p)
			sent = append(sent, h)
		}
		return false
	}
	wantErr(t, "connect", ca.Connect(fd, srvAddr), syscall.EINPROGRESS)
	n.pump()
	if len(sent) != 1 || sent[0].Flags != wire.FlagRST|wire.FlagACK || sent[0].Seq != 0 {
		t.Fatalf("reply to SYN: %+v", sent)
	}
	want := int16(POLLOUT | POLLERR | POLLHUP | POLLIN | POLLRDHUP)
	if ev := pollOne(ca, fd, POLLIN|POLLOUT|POLLRDHUP); ev != want {
		t.Errorf("poll after refusal %#x, want %#x", ev, want)
	}
	if v, _ := ca.GetsockoptInt(fd, SOL_SOCKET, SO_ERROR); v != int(syscall.ECONNREFUSED) {
		t.Errorf("SO_ERROR %d", v)
	}
	if v, _ := ca.GetsockoptInt(fd, SOL_SOCKET, SO_ERROR); v != 0 {
		t.Errorf("SO_ERROR again %d", v)
	}
	wantErr(t, "connect after SO_ERROR", ca.Connect(fd, srvAddr), syscall.ECONNABORTED)
	// The socket may connect again.
	listenOn(t, n.b, srvAddr, 5, true)
	wantErr(t, "connect anew", ca.Connect(fd, srvAddr), syscall.EINPROGRESS)
	n.pump()
	wantErr(t, "connected", ca.Connect(fd, srvAddr), 0)
	if st := n.b.Stats(); st.SynstackNoSocket != 1 || st.TcpOutRsts != 1 {
		t.Errorf("server stats %+v", st)
	}
	if st := n.a.Stats(); st.TcpAttemptFails != 1 {
		t.Errorf("client stats %+v", st)
	}
}

func TestConnectTimesOut(t *testing.T) {
	n := newVnet(t, func(a, b *Config) { a.TCP.SynRetries = 2 })
	n.drop = func(string, []byte) bool { return true }
	ca := n.a.Sockets()
	fd := mustFD(t)(ca.Socket(AF_INET, SOCK_STREAM, 0))
	done := make(chan error)
	go func() { done <- ca.Connect(fd, srvAddr) }()
	for i := 0; ; i++ {
		select {
		case err := <-done:
			wantErr(t, "blocking connect", err, syscall.ETIMEDOUT)
			if now := n.clk.Now(); now.Sub(time.Unix(1_700_000_000, 0)) < 7*time.Second {
				t.Errorf("timed out too early, at %v", now)
			}
			return
		default:
		}
		if i > 100000 {
			t.Fatal("connect never timed out")
		}
		n.clk.Advance(100 * time.Millisecond)
		time.Sleep(10 * time.Microsecond)
	}
}

func TestDupThenClose(t *testing.T) {
	n := newVnet(t, nil)
	lfd := listenOn(t, n.b, srvAddr, 5, true)
	cfd, sfd := n.connect(srvAddr, lfd)
	ca, sb := n.a.Sockets(), n.b.Sockets()
	dfd := mustFD(t)(ca.Dup(cfd))
	must(t, ca.Close(cfd))
	n.pump()
	// The connection is still up: no FIN reached the server.
	_, err := readAll(t, n, sb, sfd)
	wantErr(t, "server read", err, syscall.EAGAIN)
	_, err = ca.Write(dfd, []byte("still here"))
	must(t, err)
	n.pump()
	if s, _ := readAll(t, n, sb, sfd); s != "still here" {
		t.Errorf("server read %q", s)
	}
	_, err = ca.Write(cfd, []byte("x"))
	wantErr(t, "write on closed fd", err, syscall.EBADF)
	// Closing the last reference sends FIN.
	must(t, ca.Close(dfd))
	n.pump()
	if s, err := readAll(t, n, sb, sfd); s != "" || err != nil {
		t.Errorf("server read after close: %q %v, want EOF", s, err)
	}
	if ev := pollOne(sb, sfd, POLLIN|POLLRDHUP); ev != POLLIN|POLLRDHUP {
		t.Errorf("poll after FIN %#x", ev)
	}
}

func TestShutdownActsAtOnce(t *testing.T) {
	n := newVnet(t, nil)
	lfd := listenOn(t, n.b, srvAddr, 5, true)
	cfd, sfd := n.connect(srvAddr, lfd)
	ca, sb := n.a.Sockets(), n.b.Sockets()
	dfd := mustFD(t)(ca.Dup(cfd))
	must(t, ca.Shutdown(cfd, SHUT_WR))
	n.pump()
	if s, err := readAll(t, n, sb, sfd); s != "" || err != nil {
		t.Errorf("server read after SHUT_WR: %q %v, want EOF", s, err)
	}
	_, err := ca.Write(dfd, []byte("x"))
	wantErr(t, "write on the other descriptor", err, syscall.EPIPE)
	// Half-close: the server can still send.
	_, err = sb.Write(sfd, []byte("reply"))
	must(t, err)
	n.pump()
	if s, _ := readAll(t, n, ca, dfd); s != "reply" {
		t.Errorf("client read %q", s)
	}
	// SHUT_RD on one descriptor wakes a Read blocked on the other.
	must(t, setBlocking(ca, dfd))
	done := make(chan struct {
		n   int
		err error
	})
	go func() {
		k, err := ca.Read(dfd, make([]byte, 10))
		done <- struct {
			n   int
			err error
		}{k, err}
	}()
	time.Sleep(10 * time.Millisecond)
	must(t, ca.Shutdown(cfd, SHUT_RD))
	select {
	case r := <-done:
		if r.n != 0 || r.err != nil {
			t.Errorf("blocked read after SHUT_RD: %d %v", r.n, r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("blocked read not woken by shutdown")
	}
}

// setBlocking clears O_NONBLOCK on fd.
func setBlocking(ss *Sockets, fd int) error {
	_, err := ss.Fcntl(fd, F_SETFL, O_RDWR)
	return err
}

func TestResetErrors(t *testing.T) {
	n := newVnet(t, nil)
	lfd := listenOn(t, n.b, srvAddr, 5, true)
	cfd, sfd := n.connect(srvAddr, lfd)
	ca, sb := n.a.Sockets(), n.b.Sockets()
	must(t, sb.SetsockoptLinger(sfd, syscall.Linger{Onoff: 1, Linger: 0}))
	must(t, sb.Close(sfd))
	n.pump()
	want := int16(POLLIN | POLLOUT | POLLERR | POLLHUP | POLLRDHUP)
	if ev := pollOne(ca, cfd, POLLIN|POLLOUT|POLLRDHUP); ev != want {
		t.Errorf("poll after RST %#x, want %#x", ev, want)
	}
	_, err := readAll(t, n, ca, cfd)
	wantErr(t, "first read", err, syscall.ECONNRESET)
	if s, err := readAll(t, n, ca, cfd); s != "" || err != nil {
		t.Errorf("second read %q %v, want EOF", s, err)
	}
	_, err = ca.Write(cfd, []byte("x"))
	wantErr(t, "write after reset", err, syscall.EPIPE)
	wantErr(t, "shutdown after reset", ca.Shutdown(cfd, SHUT_WR), syscall.ENOTCONN)
	if st := n.a.Stats(); st.TcpEstabResets != 1 {
		t.Errorf("client stats %+v", st)
	}
	// Reset first seen by a write.
	cfd, sfd = n.connect(srvAddr, lfd)
	must(t, sb.SetsockoptLinger(sfd, syscall.Linger{Onoff: 1, Linger: 0}))
	must(t, sb.Close(sfd))
	n.pump()
	_, err = ca.Write(cfd, []byte("x"))
	wantErr(t, "first write", err, syscall.ECONNRESET)
	_, err = ca.Write(cfd, []byte("x"))
	wantErr(t, "second write", err, syscall.EPIPE)
}

func TestCloseWithUnreadDataResets(t *testing.T) {
	n := newVnet(t, nil)
	lfd := listenOn(t, n.b, srvAddr, 5, true)
	cfd, sfd := n.connect(srvAddr, lfd)
	ca, sb := n.a.Sockets(), n.b.Sockets()
	_, err := ca.Write(cfd, []byte("unread"))
	must(t, err)
	n.pump()
	must(t, sb.Close(sfd))
	n.pump()
	_, err = readAll(t, n, ca, cfd)
	wantErr(t, "read", err, syscall.ECONNRESET)
}

func TestPeek(t *testing.T) {
	n := newVnet(t, nil)
	lfd := listenOn(t, n.b, srvAddr, 5, true)
	cfd, sfd := n.connect(srvAddr, lfd)
	ca, sb := n.a.Sockets(), n.b.Sockets()
	_, err := ca.Write(cfd, []byte("hello world"))
	must(t, err)
	n.pump()
	buf := make([]byte, 5)
	for i := 0; i < 2; i++ {
		k, err := sb.Recv(sfd, buf, MSG_PEEK)
		if err != nil || string(buf[:k]) != "hello" {
			t.Fatalf("peek %q %v", buf[:k], err)
		}
	}
	big := make([]byte, 100)
	k, err := sb.Recv(sfd, big, MSG_PEEK)
	if err != nil || string(big[:k]) != "hello world" {
		t.Errorf("longer peek %q %v", big[:k], err)
	}
	k, err = sb.Read(sfd, big)
	if err != nil || string(big[:k]) != "hello world" {
		t.Errorf("read after peek %q %v", big[:k], err)
	}
	_, err = sb.Recv(sfd, big, MSG_PEEK|MSG_DONTWAIT)
	wantErr(t, "peek empty", err, syscall.EAGAIN)
}

func TestNonBlockingWriteFills(t *testing.T) {
	n := newVnet(t, nil)
	lfd := listenOn(t, n.b, srvAddr, 5, true)
	cfd, sfd := n.connect(srvAddr, lfd)
	ca, sb := n.a.Sockets(), n.b.Sockets()
	chunk := bytes.Repeat([]byte("x"), 65536)
	total := 0
	for i := 0; ; i++ {
		k, err := ca.Send(cfd, chunk, MSG_DONTWAIT)
		if err == syscall.EAGAIN {
			break
		}
		must(t, err)
		total += k
		n.pump()
		if i > 1000 {
			t.Fatal("send never filled")
		}
	}
	if ev := pollOne(ca, cfd, POLLOUT); ev != 0 {
		t.Errorf("POLLOUT with a full buffer: %#x", ev)
	}
	// Drain on the server; the client becomes writable again.
	got := 0
	buf := make([]byte, 65536)
	for got < total {
		k, err := sb.Recv(sfd, buf, MSG_DONTWAIT)
		if err == syscall.EAGAIN {
			n.advance(300 * time.Millisecond)
			continue
		}
		must(t, err)
		got += k
		n.pump()
	}
	if ev := pollOne(ca, cfd, POLLOUT); ev != POLLOUT {
		t.Errorf("POLLOUT after drain: %#x", ev)
	}
}

func TestReuseAddrTimeWait(t *testing.T) {
	n := newVnet(t, nil)
	sb, ca := n.b.Sockets(), n.a.Sockets()
	listenReuse := func(reuse bool) (int, error) {
		fd := mustFD(t)(sb.Socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK, 0))
		if reuse {
			must(t, sb.SetsockoptInt(fd, SOL_SOCKET, SO_REUSEADDR, 1))
		}
		if err := sb.Bind(fd, srvAddr); err != nil {
			sb.Close(fd)
			return -1, err
		}
		return fd, sb.Listen(fd, 5)
	}
	lfd, err := listenReuse(true)
	must(t, err)
	cfd, sfd := n.connect(srvAddr, lfd)
	// The server closes first and so ends in TIME_WAIT.
	must(t, sb.Close(sfd))
	n.pump()
	must(t, ca.Close(cfd))
	n.pump()
	must(t, sb.Close(lfd))
	if n.b.connCount() != 1 {
		t.Fatalf("server connections: %d, want the TIME_WAIT one", n.b.connCount())
	}
	for ep := range n.b.allConns() {
		if ep.Conn.State() != tcp.TimeWait {
			t.Fatalf("state %v", ep.Conn.State())
		}
	}
	_, err = listenReuse(false)
	wantErr(t, "bind without SO_REUSEADDR", err, syscall.EADDRINUSE)
	lfd, err = listenReuse(true)
	wantErr(t, "bind with SO_REUSEADDR", err, 0)
	// A listener holds the port even against SO_REUSEADDR.
	_, err = listenReuse(true)
	wantErr(t, "bind next to a listener", err, syscall.EADDRINUSE)
	must(t, sb.Close(lfd))
	// Once TIME_WAIT is over the port is free for anyone.
	n.advance(61 * time.Second)
	if n.b.connCount() != 0 {
		t.Fatalf("TIME_WAIT still there")
	}
	_, err = listenReuse(false)
	wantErr(t, "bind after TIME_WAIT", err, 0)
}

func TestTimeWaitWithoutReuseAddrOnOldSocket(t *testing.T) {
	// Linux needs SO_REUSEADDR on both the TIME_WAIT socket (inherited from
	// the listener) and the new one.
	n := newVnet(t, nil)
	sb, ca := n.b.Sockets(), n.a.Sockets()
	lfd := listenOn(t, n.b, srvAddr, 5, true)
	cfd, sfd := n.connect(srvAddr, lfd)
	must(t, sb.Close(sfd))
	n.pump()
	must(t, ca.Close(cfd))
	n.pump()
	must(t, sb.Close(lfd))
	fd := mustFD(t)(sb.Socket(AF_INET, SOCK_STREAM, 0))
	must(t, sb.SetsockoptInt(fd, SOL_SOCKET, SO_REUSEADDR, 1))
	wantErr(t, "bind", sb.Bind(fd, srvAddr), syscall.EADDRINUSE)
	// Any live connection on the port blocks a bind without reuse.
	lfd = listenOn(t, n.b, netip.AddrPortFrom(addrB, 9090), 5, true)
	n.connect(netip.AddrPortFrom(addrB, 9090), lfd)
	must(t, sb.Close(lfd))
	fd = mustFD(t)(sb.Socket(AF_INET, SOCK_STREAM, 0))
	wantErr(t, "bind over an established connection", sb.Bind(fd, netip.AddrPortFrom(addrB, 9090)), syscall.EADDRINUSE)
}

func TestTimeWaitNewIncarnation(t *testing.T) {
	n := newVnet(t, nil)
	sb, ca := n.b.Sockets(), n.a.Sockets()
	lfd := listenOn(t, n.b, srvAddr, 5, true)
	cfd, sfd := n.connect(srvAddr, lfd)
	local, _ := ca.Getsockname(cfd)
	must(t, sb.Close(sfd))
	n.pump()
	must(t, ca.Close(cfd))
	n.pump()
	n.advance(time.Second)
	// The client reuses its port: the SYN meets the server's TIME_WAIT.
	fd := mustFD(t)(ca.Socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK, 0))
	must(t, ca.Bind(fd, local))
	wantErr(t, "connect", ca.Connect(fd, srvAddr), syscall.EINPROGRESS)
	n.pump()
	wantErr(t, "connected", ca.Connect(fd, srvAddr), 0)
	_, peer, err := sb.Accept(lfd)
	must(t, err)
	if peer != local {
		t.Errorf("peer %v, want %v", peer, local)
	}
}

func TestReusePortSpreads(t *testing.T) {
	n := newVnet(t, nil)
	sb := n.b.Sockets()
	var lfds [2]int
	for i := range lfds {
		fd := mustFD(t)(sb.Socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK, 0))
		must(t, sb.SetsockoptInt(fd, SOL_SOCKET, SO_REUSEPORT, 1))
		must(t, sb.Bind(fd, srvAddr))
		must(t, sb.Listen(fd, 300))
		lfds[i] = fd
	}
	ca := n.a.Sockets()
	ports := map[uint16]bool{}
	for i := 0; i < 200; i++ {
		fd := mustFD(t)(ca.Socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK, 0))
		wantErr(t, "connect", ca.Connect(fd, srvAddr), syscall.EINPROGRESS)
		n.pump()
		wantErr(t, "connected", ca.Connect(fd, srvAddr), 0)
		local, _ := ca.Getsockname(fd)
		if local.Port() < EphemeralPortFirst || local.Port() > EphemeralPortLast || ports[local.Port()] {
			t.Fatalf("ephemeral port %d out of range or reused", local.Port())
		}
		ports[local.Port()] = true
	}
	var counts [2]int
	for i, lfd := range lfds {
		for {
			_, _, err := sb.Accept(lfd)
			if err == syscall.EAGAIN {
				break
			}
			must(t, err)
			counts[i]++
		}
	}
	if counts[0]+counts[1] != 200 || counts[0] < 50 || counts[1] < 50 {
		t.Errorf("spread %v", counts)
	}
}

func TestSpecificListenerBeforeWildcard(t *testing.T) {
	n := newVnet(t, func(a, b *Config) {
		b.Addrs = append(b.Addrs, netip.MustParsePrefix("10.0.0.3/24"))
	})
	sb := n.b.Sockets()
	wild := mustFD(t)(sb.Socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK, 0))
	must(t, sb.SetsockoptInt(wild, SOL_SOCKET, SO_REUSEADDR, 1))
	must(t, sb.Bind(wild, netip.AddrPortFrom(netip.IPv4Unspecified(), 8080)))
	must(t, sb.Listen(wild, 5))
	// Bind to a specific address next to a wildcard: conflict (Linux)
	// unless both have SO_REUSEADDR and the other is not listening... it
	// is listening, so use SO_REUSEPORT-free distinct test: listen on the
	// specific one first in a fresh port.
	spec := mustFD(t)(sb.Socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK, 0))
	must(t, sb.SetsockoptInt(spec, SOL_SOCKET, SO_REUSEPORT, 1))
	must(t, sb.Bind(spec, netip.AddrPortFrom(addrB, 9000)))
	must(t, sb.Listen(spec, 5))
	wild2 := mustFD(t)(sb.Socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK, 0))
	must(t, sb.SetsockoptInt(wild2, SOL_SOCKET, SO_REUSEPORT, 1))
	must(t, sb.Bind(wild2, netip.AddrPortFrom(netip.IPv4Unspecified(), 9000)))
	must(t, sb.Listen(wild2, 5))
	for i := 0; i < 10; i++ {
		n.connect(netip.AddrPortFrom(addrB, 9000), spec)
	}
	_, _, err := sb.Accept(wild2)
	wantErr(t, "wildcard got nothing", err, syscall.EAGAIN)
	// The wildcard takes the other address.
	n.connect(netip.AddrPortFrom(netip.MustParseAddr("10.0.0.3"), 9000), wild2)
	n.connect(netip.AddrPortFrom(netip.MustParseAddr("10.0.0.3"), 8080), wild)
}

func TestAcceptQueueOverflow(t *testing.T) {
	// Without SYN cookies, so that the second child waits in SYN_RCVD and
	// its SYN,ACK retransmissions fill the queue later (TestSynCookies
	// covers the stateless way).
	n := newVnet(t, func(a, b *Config) { b.NoSynCookies = true })
	lfd := listenOn(t, n.b, srvAddr, 0, true) // admits 1
	ca, sb := n.a.Sockets(), n.b.Sockets()
	c1 := mustFD(t)(ca.Socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK, 0))
	c2 := mustFD(t)(ca.Socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK, 0))
	wantErr(t, "connect 1", ca.Connect(c1, srvAddr), syscall.EINPROGRESS)
	wantErr(t, "connect 2", ca.Connect(c2, srvAddr), syscall.EINPROGRESS)
	n.pump()
	// Both SYNs found room; the first ACK filled the queue, the second
	// was dropped: that child is still in SYN_RCVD.
	st := n.b.Stats()
	if st.TcpExtListenOverflows != 1 || st.TcpExtListenDrops != 1 {
		t.Errorf("after ACK overflow: %+v", st)
	}
	synQ, acceptQ := n.b.queues(lfd)
	if acceptQ != 1 || synQ != 1 {
		t.Fatalf("queues: accept %d syn %d", acceptQ, synQ)
	}
	// A third SYN is dropped while the queue is full.
	c3 := mustFD(t)(ca.Socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK, 0))
	wantErr(t, "connect 3", ca.Connect(c3, srvAddr), syscall.EINPROGRESS)
	n.pump()
	if st := n.b.Stats(); st.TcpExtListenOverflows != 2 {
		t.Errorf("after SYN overflow: %+v", st)
	}
	_, _, err := sb.Accept(lfd)
	must(t, err)
	// Retransmissions fill the queue again, one at a time.
	accepted := 1
	for i := 0; i < 100 && accepted < 3; i++ {
		n.advance(500 * time.Millisecond)
		if _, _, err := sb.Accept(lfd); err == nil {
			accepted++
		}
	}
	if accepted != 3 {
		t.Errorf("accepted %d of 3", accepted)
	}
}

func TestSynBacklog(t *testing.T) {
	n := newVnet(t, func(a, b *Config) { b.MaxSynBacklog = 2; b.NoSynCookies = true })
	listenOn(t, n.b, srvAddr, 10, true)
	// Drop the server's SYN,ACKs so children stay in SYN_RCVD.
	n.drop = func(dir string, _ []byte) bool { return dir == "b>a" }
	ca := n.a.Sockets()
	for i := 0; i < 3; i++ {
		fd := mustFD(t)(ca.Socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK, 0))
		ca.Connect(fd, srvAddr)
	}
	n.pump()
	if st := n.b.Stats(); st.TcpExtListenDrops != 1 || st.TcpPassiveOpens != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestListenerCloseResetsChildren(t *testing.T) {
	n := newVnet(t, nil)
	lfd := listenOn(t, n.b, srvAddr, 5, true)
	ca, sb := n.a.Sockets(), n.b.Sockets()
	var cfds []int
	for i := 0; i < 2; i++ {
		fd := mustFD(t)(ca.Socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK, 0))
		ca.Connect(fd, srvAddr)
		cfds = append(cfds, fd)
	}
	n.pump()
	must(t, sb.Close(lfd))
	n.pump()
	for _, fd := range cfds {
		_, err := readAll(t, n, ca, fd)
		wantErr(t, "client of an un-accepted child", err, syscall.ECONNRESET)
	}
	if n.b.connCount() != 0 || n.b.portCount() != 0 {
		t.Errorf("server tables not empty: %d conns, %d ports", n.b.connCount(), n.b.portCount())
	}
}

func TestShutdownListener(t *testing.T) {
	n := newVnet(t, nil)
	lfd := listenOn(t, n.b, srvAddr, 5, false)
	sb := n.b.Sockets()
	wantErr(t, "SHUT_WR on listener", sb.Shutdown(lfd, SHUT_WR), 0)
	if v, _ := sb.GetsockoptInt(lfd, SOL_SOCKET, SO_ACCEPTCONN); v != 1 {
		t.Errorf("still listening after SHUT_WR")
	}
	dfd := mustFD(t)(sb.Dup(lfd))
	done := make(chan error)
	go func() {
		_, _, err := sb.Accept(dfd)
		done <- err
	}()
	time.Sleep(10 * time.Millisecond)
	must(t, sb.Shutdown(lfd, SHUT_RD))
	select {
	case err := <-done:
		wantErr(t, "blocked accept", err, syscall.EINVAL)
	case <-time.After(5 * time.Second):
		t.Fatal("accept not woken")
	}
	// A SYN now finds no listener.
	fd := mustFD(t)(n.a.Sockets().Socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK, 0))
	n.a.Sockets().Connect(fd, srvAddr)
	n.pump()
	if v, _ := n.a.Sockets().GetsockoptInt(fd, SOL_SOCKET, SO_ERROR); v != int(syscall.ECONNREFUSED) {
		t.Errorf("SO_ERROR %d", v)
	}
	// It may listen again on its bound port.
	must(t, sb.Listen(lfd, 5))
	n.connect(srvAddr, lfd)
}

func TestOrphanLimit(t *testing.T) {
	n := newVnet(t, func(a, b *Config) { b.MaxOrphans = 1 })
	lfd := listenOn(t, n.b, srvAddr, 5, true)
	ca, sb := n.a.Sockets(), n.b.Sockets()
	c1, s1 := n.connect(srvAddr, lfd)
	c2, s2 := n.connect(srvAddr, lfd)
	must(t, sb.Close(s1)) // FIN: an orphan in FIN_WAIT_2
	n.pump()
	must(t, sb.Close(s2)) // one orphan too many: reset
	n.pump()
	if st := n.b.Stats(); st.TcpExtTCPAbortOnMemory != 1 {
		t.Errorf("stats %+v", st)
	}
	if s, err := readAll(t, n, ca, c1); s != "" || err != nil {
		t.Errorf("first client: %q %v, want EOF", s, err)
	}
	// As Linux's tcp_close, the FIN went out before the reset: the
	// client was in CLOSE_WAIT and a RST there gives EPIPE.
	_, err := readAll(t, n, ca, c2)
	wantErr(t, "second client", err, syscall.EPIPE)
	if n.b.orphanCount() != 1 {
		t.Errorf("orphans %d", n.b.orphanCount())
	}
	// The orphan in FIN_WAIT_2 goes after tcp_fin_timeout.
	n.advance(61 * time.Second)
	if n.b.orphanCount() != 0 || n.b.connCount() != 0 {
		t.Errorf("orphans %d, conns %d", n.b.orphanCount(), n.b.connCount())
	}
}

func TestIPv6Connection(t *testing.T) {
	n := newVnet(t, nil)
	srv6 := netip.AddrPortFrom(addr6B, 8080)
	lfd := listenOn(t, n.b, srv6, 5, true)
	cfd, sfd := n.connect(srv6, lfd)
	ca, sb := n.a.Sockets(), n.b.Sockets()
	_, err := ca.Write(cfd, []byte("over v6"))
	must(t, err)
	n.pump()
	if s, _ := readAll(t, n, sb, sfd); s != "over v6" {
		t.Errorf("read %q", s)
	}
	if v, _ := ca.GetsockoptInt(cfd, IPPROTO_TCP, TCP_MAXSEG); v != 1428 {
		t.Errorf("IPv6 MSS %d", v)
	}
	// An AF_INET6 wildcard listener takes IPv4 too; peers show as mapped.
	wild := listenOn(t, n.b, netip.AddrPortFrom(netip.IPv6Unspecified(), 8181), 5, true)
	fd := mustFD(t)(ca.Socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK, 0))
	ca.Connect(fd, netip.AddrPortFrom(addrB, 8181))
	n.pump()
	sfd, peer, err := sb.Accept(wild)
	must(t, err)
	if !peer.Addr().Is4In6() || peer.Addr().Unmap() != addrA {
		t.Errorf("peer %v", peer)
	}
	if local, _ := sb.Getsockname(sfd); local.Addr() != netip.AddrFrom16(addrB.As16()) {
		t.Errorf("local %v", local)
	}
}

func TestDeterministicWithSeed(t *testing.T) {
	run := func() []string {
		var trace []string
		n := newVnet(t, func(a, b *Config) {
			a.OnPacket = func(dir string, pkt []byte) { trace = append(trace, dir+string(pkt)) }
		})
		lfd := listenOn(t, n.b, srvAddr, 5, true)
		cfd, _ := n.connect(srvAddr, lfd)
		n.a.Sockets().Write(cfd, []byte("data"))
		n.pump()
		n.advance(time.Second)
		return trace
	}
	a, b := run(), run()
	if len(a) == 0 || len(a) != len(b) {
		t.Fatalf("traces of %d and %d packets", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("packet %d differs", i)
		}
	}
}

func TestOnTransition(t *testing.T) {
	var got []string
	n := newVnet(t, func(a, b *Config) {
		a.OnTransition = func(l, r netip.AddrPort, from, to tcp.State, c tcp.Cause) {
			got = append(got, from.String()+">"+to.String())
		}
	})
	lfd := listenOn(t, n.b, srvAddr, 5, true)
	n.connect(srvAddr, lfd)
	if len(got) != 2 || got[0] != "CLOSED>SYN_SENT" || got[1] != "SYN_SENT>ESTABLISHED" {
		t.Errorf("transitions %v", got)
	}
}

// echo runs a 1 MB echo between the stacks of n with non-blocking calls.
func echo(t *testing.T, n *vnet) {
	lfd := listenOn(t, n.b, srvAddr, 5, true)
	cfd, sfd := n.connect(srvAddr, lfd)
	ca, sb := n.a.Sockets(), n.b.Sockets()
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	var got []byte
	sent := 0
	var pending []byte
	buf := make([]byte, 65536)
	idle := 0
	for len(got) < len(data) {
		if idle > 2000 {
			t.Fatalf("stalled: sent %d, got back %d; stats A %+v B %+v", sent, len(got), n.a.Stats(), n.b.Stats())
		}
		progress := false
		if sent < len(data) {
			if k, err := ca.Send(cfd, data[sent:], MSG_DONTWAIT); err == nil {
				sent += k
				progress = true
			}
		}
		if len(pending) == 0 {
			if k, err := sb.Recv(sfd, buf, MSG_DONTWAIT); err == nil && k > 0 {
				pending = append(pending, buf[:k]...)
				progress = true
			}
		}
		if len(pending) > 0 {
			if k, err := sb.Send(sfd, pending, MSG_DONTWAIT); err == nil {
				pending = pending[k:]
				progress = true
			}
		}
		if k, err := ca.Recv(cfd, buf, MSG_DONTWAIT); err == nil {
			got = append(got, buf[:k]...)
			progress = true
		}
		n.pump()
		if progress {
			idle = 0
		} else {
			idle++
			n.advance(10 * time.Millisecond)
		}
	}
	if !bytes.Equal(got, data) {
		t.Errorf("echoed data differs")
	}
	for _, st := range []Stats{n.a.Stats(), n.b.Stats()} {
		if st.IpOutDiscards != 0 {
			t.Errorf("packets larger than the MTU: %+v", st)
		}
	}
}

func TestVirtualEcho(t *testing.T) {
	echo(t, newVnet(t, nil))
}

func TestVirtualEchoWithLoss(t *testing.T) {
	n := newVnet(t, nil)
	count := map[string]int{}
	n.drop = func(dir string, pkt []byte) bool {
		count[dir]++
		return count[dir]%97 == 50
	}
	echo(t, n)
}

func TestStackCloseResetsConnections(t *testing.T) {
	n := newVnet(t, nil)
	lfd := listenOn(t, n.b, srvAddr, 5, true)
	cfd, sfd := n.connect(srvAddr, lfd)
	_ = cfd
	must(t, n.a.Close())
	n.pump()
	_, err := readAll(t, n, n.b.Sockets(), sfd)
	wantErr(t, "server read after the client stack closed", err, syscall.ECONNRESET)
	_, err = n.a.Sockets().Read(cfd, make([]byte, 1))
	wantErr(t, "read on a closed stack", err, syscall.EBADF)
	n.a.DeliverPacket([]byte{0x45}) // ignored, no panic
}
