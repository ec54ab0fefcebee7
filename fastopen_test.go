package synstack

import (
	"errors"
	"net/netip"
	"syscall"
	"testing"
)

// tfoNet is two stacks, a the client and b the server, with Fast Open on
// both sides, and a listener on b with a Fast Open queue of qlen.
func tfoNet(t *testing.T, qlen int) (n *vnet, lfd int, addr netip.AddrPort) {
	t.Helper()
	n = newVnet(t, func(a, b *Config) { a.FastOpen = FastOpenClient; b.FastOpen = FastOpenServer })
	addr = netip.AddrPortFrom(addrB, 80)
	lfd = listenOn(t, n.b, addr, 8, true)
	must(t, n.b.Sockets().SetsockoptInt(lfd, IPPROTO_TCP, TCP_FASTOPEN, qlen))
	return n, lfd, addr
}

// tfoSend opens a connection from n.a with sendto(MSG_FASTOPEN) of msg
// and returns the client's fd and sendto's result.
func tfoSend(t *testing.T, n *vnet, addr netip.AddrPort, msg string) (int, int, error) {
	t.Helper()
	fd := mustFD(t)(n.a.Sockets().Socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK, 0))
	k, err := n.a.Sockets().Sendto(fd, []byte(msg), MSG_FASTOPEN, addr)
	return fd, k, err
}

// TestFastOpenSockets: the first connect asks for a cookie; the second
// carries its data in the SYN, which the server can accept and read
// before the handshake ends; a forged cookie's data is dropped and sent
// again after the handshake. The counters say so.
func TestFastOpenSockets(t *testing.T) {
	n, lfd, addr := tfoNet(t, 4)
	ca, cb := n.a.Sockets(), n.b.Sockets()

	fd, _, err := tfoSend(t, n, addr, "first")
	wantErr(t, "sendto without a cookie", err, syscall.EINPROGRESS)
	n.pump()
	if k, err := ca.Send(fd, []byte("first"), 0); k != 5 || err != nil {
		t.Fatalf("send after the cookie request: %d, %v", k, err)
	}
	n.pump()
	sfd := mustFD(t)(func() (int, error) { fd, _, err := cb.Accept(lfd); return fd, err }())
	buf := make([]byte, 64)
	if k, err := cb.Recv(sfd, buf, 0); string(buf[:k]) != "first" || err != nil {
		t.Fatalf("server read %q, %v", buf[:k], err)
	}
	if inf, _ := ca.GetsockoptTCPInfo(fd); inf.Options&TCPI_OPT_SYN_DATA != 0 || inf.FastOpenClientFail != 1 {
		t.Errorf("cookie request: tcpi_options %#x, client fail %d", inf.Options, inf.FastOpenClientFail)
	}

	// With the cookie: the data rides in the SYN. Hold the final ACK
	// back: the server accepts and reads before it.
	n.drop = func(dir string, pkt []byte) bool { return dir == "a>b" && bareACK(pkt) }
	fd2, k, err := tfoSend(t, n, addr, "second")
	if k != 6 || err != nil {
		t.Fatalf("sendto with a cookie: %d, %v", k, err)
	}
	n.pump()
	n.drop = nil
	sfd2 := mustFD(t)(func() (int, error) { fd, _, err := cb.Accept(lfd); return fd, err }())
	if k, err := cb.Recv(sfd2, buf, 0); string(buf[:k]) != "second" || err != nil {
		t.Fatalf("server read %q, %v before the final ACK", buf[:k], err)
	}
	if inf, _ := cb.GetsockoptTCPInfo(sfd2); inf.State.String() != "SYN_RCVD" || inf.Options&TCPI_OPT_SYN_DATA == 0 {
		t.Errorf("server: %s, tcpi_options %#x", inf.State, inf.Options)
	}
	if inf, _ := ca.GetsockoptTCPInfo(fd2); inf.Options&TCPI_OPT_SYN_DATA == 0 {
		t.Errorf("client: tcpi_options %#x", inf.Options)
	}

	// A forged cookie: the data comes after the handshake.
	n.a.h.SetFastOpenMode(FastOpenClient) // keeps the cache
	must(t, n.b.SetFastOpenKeys(FastOpenKey{1}))
	fd3, k, err := tfoSend(t, n, addr, "third")
	if k != 5 || err != nil {
		t.Fatalf("sendto with a stale cookie: %d, %v", k, err)
	}
	n.pump()
	sfd3 := mustFD(t)(func() (int, error) { fd, _, err := cb.Accept(lfd); return fd, err }())
	if k, _ := cb.Recv(sfd3, buf, 0); string(buf[:k]) != "third" {
		t.Fatalf("server read %q", buf[:k])
	}
	if inf, _ := ca.GetsockoptTCPInfo(fd3); inf.FastOpenClientFail != 2 || inf.Options&TCPI_OPT_SYN_DATA != 0 {
		t.Errorf("stale cookie: tcpi_options %#x, client fail %d", inf.Options, inf.FastOpenClientFail)
	}
	sa, sb := n.a.Stats(), n.b.Stats()
	if sa.TcpExtTCPFastOpenActive != 2 || sa.TcpExtTCPFastOpenActiveFail != 1 {
		t.Errorf("client: Active %d, ActiveFail %d", sa.TcpExtTCPFastOpenActive, sa.TcpExtTCPFastOpenActiveFail)
	}
	if sb.TcpExtTCPFastOpenPassive != 1 || sb.TcpExtTCPFastOpenPassiveFail != 1 || sb.TcpExtTCPFastOpenCookieReqd != 1 {
		t.Errorf("server: Passive %d, PassiveFail %d, CookieReqd %d",
			sb.TcpExtTCPFastOpenPassive, sb.TcpExtTCPFastOpenPassiveFail, sb.TcpExtTCPFastOpenCookieReqd)
	}
}

// TestFastOpenQueueOverflow: Fast Open children still in SYN_RCVD beyond
// the listener's TCP_FASTOPEN queue fall back to a normal handshake.
func TestFastOpenQueueOverflow(t *testing.T) {
	n, _, addr := tfoNet(t, 1)
	tfoSend(t, n, addr, "") // the cookie
	n.pump()
	// No final ACKs from now on: the first child stays in SYN_RCVD.
	n.drop = func(dir string, pkt []byte) bool { return dir == "a>b" && bareACK(pkt) }
	if _, k, err := tfoSend(t, n, addr, "one"); k != 3 || err != nil {
		t.Fatalf("first: %d, %v", k, err)
	}
	n.pump()
	fd2, k, err := tfoSend(t, n, addr, "two")
	if k != 3 || err != nil {
		t.Fatalf("second: %d, %v", k, err)
	}
	n.pump()
	if st := n.b.Stats(); st.TcpExtTCPFastOpenListenOverflow != 1 || st.TcpExtTCPFastOpenPassive != 1 {
		t.Errorf("ListenOverflow %d, Passive %d", st.TcpExtTCPFastOpenListenOverflow, st.TcpExtTCPFastOpenPassive)
	}
	if inf, _ := n.a.Sockets().GetsockoptTCPInfo(fd2); inf.FastOpenClientFail != 2 {
		t.Errorf("second client: fail %d, want its data not acknowledged", inf.FastOpenClientFail)
	}
}

// TestFastOpenConnect: with TCP_FASTOPEN_CONNECT and a cookie cached,
// connect returns at once and sends nothing; the first write goes in the
// SYN.
func TestFastOpenConnect(t *testing.T) {
	n, _, addr := tfoNet(t, 4)
	ca := n.a.Sockets()
	fd := mustFD(t)(ca.Socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK, 0))
	must(t, ca.SetsockoptInt(fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, 1))
	wantErr(t, "connect without a cookie", ca.Connect(fd, addr), syscall.EINPROGRESS)
	n.pump()

	fd2 := mustFD(t)(ca.Socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK, 0))
	must(t, ca.SetsockoptInt(fd2, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, 1))
	sent := n.a.Stats().TcpOutSegs
	wantErr(t, "connect with a cookie", ca.Connect(fd2, addr), 0)
	if got := n.a.Stats().TcpOutSegs; got != sent {
		t.Fatalf("connect sent %d segments, want none", got-sent)
	}
	_, err := ca.Recv(fd2, make([]byte, 4), 0)
	wantErr(t, "read before the first write", err, syscall.EAGAIN)
	if k, err := ca.Send(fd2, []byte("hello"), 0); k != 5 || err != nil {
		t.Fatalf("first write: %d, %v", k, err)
	}
	n.pump()
	if inf, _ := ca.GetsockoptTCPInfo(fd2); inf.Options&TCPI_OPT_SYN_DATA == 0 {
		t.Errorf("tcpi_options %#x: want SYN_DATA", inf.Options)
	}
}

// bareACK reports an IPv4 packet carrying a TCP segment with ACK alone
// and no data.
func bareACK(pkt []byte) bool {
	seg := pkt[int(pkt[0]&0xf)*4:]
	return seg[13] == 0x10 && len(seg) == int(seg[12]>>4)*4
}

// TestFastOpenBackupKey: after a key rotation a cookie of the old key,
// now the backup, is still good (PassiveAltKey) and the SYN-ACK hands
// the client the new key's cookie, with which the next SYN's data is
// taken too.
func TestFastOpenBackupKey(t *testing.T) {
	n, _, addr := tfoNet(t, 4)
	old, next := FastOpenKey{1}, FastOpenKey{2}
	must(t, n.b.SetFastOpenKeys(old))
	tfoSend(t, n, addr, "") // a cookie of the old key
	n.pump()
	must(t, n.b.SetFastOpenKeys(next, old))
	for i := 0; i < 2; i++ {
		fd, k, err := tfoSend(t, n, addr, "data")
		if k != 4 || err != nil {
			t.Fatalf("sendto %d: %d, %v", i, k, err)
		}
		n.pump()
		if inf, _ := n.a.Sockets().GetsockoptTCPInfo(fd); inf.Options&TCPI_OPT_SYN_DATA == 0 {
			t.Errorf("sendto %d: the server did not take the data (tcpi_options %#x)", i, inf.Options)
		}
	}
	if st := n.b.Stats(); st.TcpExtTCPFastOpenPassive != 2 || st.TcpExtTCPFastOpenPassiveAltKey != 1 {
		t.Errorf("Passive %d, PassiveAltKey %d; want 2 and 1", st.TcpExtTCPFastOpenPassive, st.TcpExtTCPFastOpenPassiveAltKey)
	}
	if got := n.b.FastOpenKeys(); len(got) != 2 || got[0] != next || got[1] != old {
		t.Errorf("FastOpenKeys %v", got)
	}
	if err := n.b.SetFastOpenKeys(old, old, old); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("three keys: %v, want EINVAL", err)
	}
}

// TestFastOpenWithoutCookies: with the client's 0x4 and the server's
// 0x200 the data goes in the first SYN, no cookie asked or given; with
// Fast Open off (FastOpenOff) MSG_FASTOPEN is EOPNOTSUPP.
func TestFastOpenWithoutCookies(t *testing.T) {
	n := newVnet(t, func(a, b *Config) {
		a.FastOpen = FastOpenClient | FastOpenClientNoCookie
		b.FastOpen = FastOpenServer | FastOpenServerNoCookie
	})
	addr := netip.AddrPortFrom(addrB, 80)
	lfd := listenOn(t, n.b, addr, 8, true)
	must(t, n.b.Sockets().SetsockoptInt(lfd, IPPROTO_TCP, TCP_FASTOPEN, 4))
	fd, k, err := tfoSend(t, n, addr, "hello")
	if k != 5 || err != nil {
		t.Fatalf("sendto: %d, %v", k, err)
	}
	n.pump()
	if inf, _ := n.a.Sockets().GetsockoptTCPInfo(fd); inf.Options&TCPI_OPT_SYN_DATA == 0 {
		t.Errorf("tcpi_options %#x: want SYN_DATA", inf.Options)
	}
	if st := n.b.Stats(); st.TcpExtTCPFastOpenCookieReqd != 0 || st.TcpExtTCPFastOpenPassive != 1 {
		t.Errorf("CookieReqd %d, Passive %d", st.TcpExtTCPFastOpenCookieReqd, st.TcpExtTCPFastOpenPassive)
	}

	n.a.SetFastOpen(FastOpenOff)
	_, _, err = tfoSend(t, n, addr, "x")
	wantErr(t, "sendto with Fast Open off", err, syscall.EOPNOTSUPP)
}

// TestFastOpenSendmsg: sendmsg with MSG_FASTOPEN and a name opens the
// connection as sendto does: the first asks for a cookie, the second
// carries its data in the SYN.
func TestFastOpenSendmsg(t *testing.T) {
	n, lfd, addr := tfoNet(t, 4)
	ca := n.a.Sockets()
	send := func(msg string) (int, int, error) {
		fd := mustFD(t)(ca.Socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK, 0))
		k, err := ca.Sendmsg(fd, &Msghdr{Name: addr, Iov: [][]byte{[]byte(msg[:2]), []byte(msg[2:])}}, MSG_FASTOPEN)
		return fd, k, err
	}
	_, _, err := send("first")
	wantErr(t, "sendmsg without a cookie", err, syscall.EINPROGRESS)
	n.pump()
	fd, k, err := send("second")
	if k != 6 || err != nil {
		t.Fatalf("sendmsg with a cookie: %d, %v", k, err)
	}
	n.pump()
	cb := n.b.Sockets()
	accept := func() int { return mustFD(t)(func() (int, error) { fd, _, err := cb.Accept(lfd); return fd, err }()) }
	accept() // the first connection's child
	buf := make([]byte, 64)
	if k, err := cb.Recv(accept(), buf, MSG_DONTWAIT); string(buf[:k]) != "second" {
		t.Errorf("the second child read %q, %v", buf[:k], err)
	}
	if inf, _ := ca.GetsockoptTCPInfo(fd); inf.Options&TCPI_OPT_SYN_DATA == 0 {
		t.Errorf("tcpi_options %#x: the data did not go in the SYN", inf.Options)
	}
}

// TestFlushFastOpenCache: after FlushFastOpenCache the next Fast Open
// connect asks for a cookie again instead of sending its data.
func TestFlushFastOpenCache(t *testing.T) {
	n, _, addr := tfoNet(t, 4)
	_, _, err := tfoSend(t, n, addr, "first")
	wantErr(t, "sendto without a cookie", err, syscall.EINPROGRESS)
	n.pump()
	if _, k, err := tfoSend(t, n, addr, "second"); k != 6 || err != nil {
		t.Fatalf("sendto with the cookie: %d, %v", k, err)
	}
	n.pump()
	n.a.FlushFastOpenCache()
	_, _, err = tfoSend(t, n, addr, "third")
	wantErr(t, "sendto after the flush", err, syscall.EINPROGRESS)
}

// TestFastOpenZeroCopy: sendto(MSG_FASTOPEN|MSG_ZEROCOPY) takes a
// zerocopy id only when the SYN carries data (a cookie request sends
// nothing), and its completion, reported as copied, comes once the
// SYN's data is acknowledged.
func TestFastOpenZeroCopy(t *testing.T) {
	n, _, addr := tfoNet(t, 4)
	ca := n.a.Sockets()
	send := func() (int, int, error) {
		fd := mustFD(t)(ca.Socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK, 0))
		must(t, ca.SetsockoptInt(fd, SOL_SOCKET, SO_ZEROCOPY, 1))
		k, err := ca.Sendto(fd, []byte("zerocopy"), MSG_FASTOPEN|MSG_ZEROCOPY, addr)
		return fd, k, err
	}
	fd, _, err := send()
	wantErr(t, "sendto without a cookie", err, syscall.EINPROGRESS)
	n.pump()
	_, err = ca.Recvmsg(fd, &Msghdr{}, MSG_ERRQUEUE)
	wantErr(t, "MSG_ERRQUEUE after a cookie request", err, syscall.EAGAIN)

	fd, k, err := send()
	if k != 8 || err != nil {
		t.Fatalf("sendto with a cookie: %d, %v", k, err)
	}
	n.pump()
	m := &Msghdr{}
	if _, err := ca.Recvmsg(fd, m, MSG_ERRQUEUE); err != nil || len(m.Control) != 1 {
		t.Fatalf("MSG_ERRQUEUE once the SYN's data is acknowledged: %v, %v", m.Control, err)
	}
	if e := m.Control[0].(*ExtendedErr); e.Origin != SO_EE_ORIGIN_ZEROCOPY || e.Info != 0 || e.Data != 0 || e.Code != SO_EE_CODE_ZEROCOPY_COPIED {
		t.Errorf("completion %+v; want id 0, copied", e.SockExtendedErr)
	}
	if _, err := ca.Send(fd, []byte("more"), MSG_ZEROCOPY); err != nil {
		t.Fatal(err)
	}
	n.pump()
	if _, err := ca.Recvmsg(fd, m, MSG_ERRQUEUE); err != nil || m.Control[0].(*ExtendedErr).Info != 1 {
		t.Errorf("the next send's completion: %v, %v; want id 1", m.Control, err)
	}
}
