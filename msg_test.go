package synstack

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"slices"
	"syscall"
	"testing"
	"time"
)

// TestSendmsgRecvmsgIovecs sends three buffers as one message and reads
// them back into two, with the errors Linux gives for bad messages.
func TestSendmsgRecvmsgIovecs(t *testing.T) {
	n := newVnet(t, nil)
	lfd := listenOn(t, n.b, netip.AddrPortFrom(addrB, 80), 4, false)
	cfd, sfd := n.connect(netip.AddrPortFrom(addrB, 80), lfd)
	a, b := n.a.Sockets(), n.b.Sockets()

	got, err := a.Sendmsg(cfd, &Msghdr{Iov: [][]byte{[]byte("ab"), nil, []byte("cde")}}, 0)
	if err != nil || got != 5 {
		t.Fatalf("Sendmsg = %d, %v; want 5", got, err)
	}
	n.pump()
	x, y := make([]byte, 3), make([]byte, 4)
	m := &Msghdr{Iov: [][]byte{x, y}}
	got, err = b.Recvmsg(sfd, m, MSG_DONTWAIT)
	if err != nil || got != 5 || string(x) != "abc" || string(y[:2]) != "de" {
		t.Fatalf("Recvmsg = %d, %v, %q %q; want abc de", got, err, x, y)
	}
	if len(m.Control) != 0 || m.Flags != 0 {
		t.Errorf("Recvmsg reported %v, flags %#x; want nothing", m.Control, m.Flags)
	}

	if got, err = a.Sendmsg(cfd, &Msghdr{Iov: [][]byte{nil, {}}}, 0); err != nil || got != 0 {
		t.Errorf("empty Sendmsg = %d, %v; want 0", got, err)
	}
	_, err = a.Sendmsg(cfd, &Msghdr{Iov: make([][]byte, UIO_MAXIOV+1)}, 0)
	wantErr(t, "Sendmsg with too many buffers", err, syscall.EMSGSIZE)
	_, err = b.Recvmsg(sfd, &Msghdr{Iov: [][]byte{x}}, MSG_OOB)
	wantErr(t, "Recvmsg MSG_OOB with no urgent data", err, syscall.EINVAL)
	_, err = b.Recvmsg(sfd, &Msghdr{Iov: [][]byte{x}}, MSG_ERRQUEUE)
	wantErr(t, "Recvmsg MSG_ERRQUEUE on an empty queue", err, syscall.EAGAIN)
	_, err = a.Sendmsg(99, &Msghdr{}, 0)
	wantErr(t, "Sendmsg on a bad fd", err, syscall.EBADF)
	_, err = a.Sendmsg(cfd, nil, 0)
	wantErr(t, "Sendmsg without a message", err, syscall.EFAULT)
	_, err = b.Recvmsg(sfd, nil, 0)
	wantErr(t, "Recvmsg without a message", err, syscall.EFAULT)
}

// TestRecvmsgUDPName reads a datagram's source and truncation by recvmsg.
func TestRecvmsgUDPName(t *testing.T) {
	n := newVnet(t, nil)
	a, b := n.a.Sockets(), n.b.Sockets()
	rfd := mustFD(t)(b.Socket(AF_INET, SOCK_DGRAM, 0))
	must(t, b.Bind(rfd, netip.AddrPortFrom(addrB, 53)))
	sfd := mustFD(t)(a.Socket(AF_INET, SOCK_DGRAM, 0))
	must(t, a.Bind(sfd, netip.AddrPortFrom(addrA, 5353)))
	if _, err := a.Sendmsg(sfd, &Msghdr{Name: netip.AddrPortFrom(addrB, 53), Iov: [][]byte{[]byte("hello"), []byte("!")}}, 0); err != nil {
		t.Fatal(err)
	}
	n.pump()
	buf := make([]byte, 4)
	m := &Msghdr{Iov: [][]byte{buf}}
	got, err := b.Recvmsg(rfd, m, MSG_DONTWAIT|MSG_TRUNC)
	if err != nil || got != 6 || string(buf) != "hell" {
		t.Fatalf("Recvmsg = %d, %v, %q; want 6 hell", got, err, buf)
	}
	if m.Name != netip.AddrPortFrom(addrA, 5353) || m.Flags != MSG_TRUNC {
		t.Errorf("Recvmsg name %v flags %#x; want %v:5353 MSG_TRUNC", m.Name, m.Flags, addrA)
	}
}

// TestUDPRecvErrQueue sends to a port with no socket: with IP_RECVERR the
// port unreachable goes on the error queue with its sender, and the next
// plain call still returns ECONNREFUSED, as Linux.
func TestUDPRecvErrQueue(t *testing.T) {
	n := newVnet(t, nil)
	a := n.a.Sockets()
	fd := mustFD(t)(a.Socket(AF_INET, SOCK_DGRAM, 0))
	must(t, a.SetsockoptInt(fd, IPPROTO_IP, IP_RECVERR, 1))
	dst := netip.AddrPortFrom(addrB, 9)
	if _, err := a.Sendto(fd, []byte("ping"), 0, dst); err != nil {
		t.Fatal(err)
	}
	n.pump()
	p := []PollFd{{Fd: fd, Events: POLLIN}}
	if _, err := a.Poll(p, 0); err != nil || p[0].Revents&POLLERR == 0 {
		t.Errorf("poll revents %#x, %v; want POLLERR", p[0].Revents, err)
	}
	buf := make([]byte, 16)
	m := &Msghdr{Iov: [][]byte{buf}}
	got, err := a.Recvmsg(fd, m, MSG_ERRQUEUE)
	if err != nil || got != 4 || string(buf[:4]) != "ping" {
		t.Fatalf("Recvmsg(MSG_ERRQUEUE) = %d, %v, %q; want the datagram back", got, err, buf[:got])
	}
	if len(m.Control) != 1 || m.Flags != MSG_ERRQUEUE || m.Name != dst {
		t.Fatalf("control %v, flags %#x, name %v", m.Control, m.Flags, m.Name)
	}
	e, ok := m.Control[0].(*ExtendedErr)
	if !ok || e.CmsgLevel() != SOL_IP || e.CmsgType() != IP_RECVERR || e.Origin != SO_EE_ORIGIN_ICMP ||
		e.Errno != uint32(syscall.ECONNREFUSED) || e.SockExtendedErr.Type != 3 || e.Code != 3 || e.Offender != addrB {
		t.Errorf("extended error %+v", m.Control[0])
	}
	_, err = a.Recvmsg(fd, &Msghdr{Iov: [][]byte{buf}}, MSG_ERRQUEUE)
	wantErr(t, "second MSG_ERRQUEUE read", err, syscall.EAGAIN)
}

// TestZeroCopyCompletions: each MSG_ZEROCOPY send takes the next id; ids
// acknowledged before the user reads merge into one range.
func TestZeroCopyCompletions(t *testing.T) {
	n := newVnet(t, nil)
	lfd := listenOn(t, n.b, netip.AddrPortFrom(addrB, 80), 4, false)
	cfd, _ := n.connect(netip.AddrPortFrom(addrB, 80), lfd)
	a := n.a.Sockets()
	must(t, a.SetsockoptInt(cfd, SOL_SOCKET, SO_ZEROCOPY, 1))
	data := bytes.Repeat([]byte("z"), 1000)
	for i := range 3 {
		if _, err := a.Send(cfd, data, MSG_ZEROCOPY); err != nil {
			t.Fatal(err)
		}
		n.pump()
		n.advance(50 * time.Millisecond)
		// Each completion wakes the socket's pollers, merged or not.
		if w, err := a.ErrQueueWakes(cfd); err != nil || w != uint64(i+1) {
			t.Errorf("after send %d: ErrQueueWakes = %d, %v; want %d", i, w, err, i+1)
		}
	}
	if _, err := a.Send(cfd, data, 0); err != nil { // no id
		t.Fatal(err)
	}
	n.advance(50 * time.Millisecond)
	m := &Msghdr{}
	if _, err := a.Recvmsg(cfd, m, MSG_ERRQUEUE); err != nil {
		t.Fatal(err)
	}
	e := m.Control[0].(*ExtendedErr)
	if e.Origin != SO_EE_ORIGIN_ZEROCOPY || e.Info != 0 || e.Data != 2 || e.Code != SO_EE_CODE_ZEROCOPY_COPIED {
		t.Errorf("completion %+v; want ids 0..2, copied", e.SockExtendedErr)
	}
	if _, err := a.Recvmsg(cfd, m, MSG_ERRQUEUE); err != syscall.EAGAIN {
		t.Errorf("a second report: %v", err)
	}
	if _, err := a.ErrQueueWakes(999); err != syscall.EBADF {
		t.Errorf("ErrQueueWakes on a bad fd: %v; want EBADF", err)
	}
}

// TestTimestampingTCP: SCHED, SND and ACK stamps of a write's last byte,
// keyed from when OPT_ID was set, on the stack's clock.
func TestTimestampingTCP(t *testing.T) {
	n := newVnet(t, nil)
	lfd := listenOn(t, n.b, netip.AddrPortFrom(addrB, 80), 4, false)
	cfd, _ := n.connect(netip.AddrPortFrom(addrB, 80), lfd)
	a := n.a.Sockets()
	flags := SOF_TIMESTAMPING_TX_SCHED | SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_TX_ACK |
		SOF_TIMESTAMPING_SOFTWARE | SOF_TIMESTAMPING_OPT_ID | SOF_TIMESTAMPING_OPT_TSONLY
	must(t, a.SetsockoptInt(cfd, SOL_SOCKET, SO_TIMESTAMPING, flags))
	sent := n.clk.Now()
	if _, err := a.Send(cfd, make([]byte, 300), 0); err != nil {
		t.Fatal(err)
	}
	n.advance(5 * time.Millisecond)
	acked := n.clk.Now() // the ACK came within the first step
	want := []uint32{SCM_TSTAMP_SCHED, SCM_TSTAMP_SND, SCM_TSTAMP_ACK}
	for i, kind := range want {
		m := &Msghdr{Iov: [][]byte{make([]byte, 8)}}
		got, err := a.Recvmsg(cfd, m, MSG_ERRQUEUE)
		if err != nil || got != 0 || len(m.Control) != 2 {
			t.Fatalf("report %d: %d, %v, %v", i, got, err, m.Control)
		}
		ts := m.Control[0].(*Timestamping)
		e := m.Control[1].(*ExtendedErr)
		if e.Info != kind || e.Data != 299 || e.Errno != uint32(syscall.ENOMSG) || e.Origin != SO_EE_ORIGIN_TIMESTAMPING {
			t.Errorf("report %d: %+v; want kind %d key 299", i, e.SockExtendedErr, kind)
		}
		if kind != SCM_TSTAMP_ACK && !ts.Software.Equal(sent) || kind == SCM_TSTAMP_ACK && ts.Software.After(acked) {
			t.Errorf("report %d stamped %v (sent %v)", i, ts.Software, sent)
		}
	}
	err := a.SetsockoptInt(listenOn(t, n.a, netip.AddrPortFrom(addrA, 81), 1, false), SOL_SOCKET, SO_TIMESTAMPING, SOF_TIMESTAMPING_OPT_ID)
	wantErr(t, "OPT_ID on a listener", err, syscall.EINVAL)
}

// TestTCPInq: TCP_INQ reports what is left after each read, and one more
// once the FIN has come.
func TestTCPInq(t *testing.T) {
	n := newVnet(t, nil)
	lfd := listenOn(t, n.b, netip.AddrPortFrom(addrB, 80), 4, false)
	cfd, sfd := n.connect(netip.AddrPortFrom(addrB, 80), lfd)
	a, b := n.a.Sockets(), n.b.Sockets()
	must(t, b.SetsockoptInt(sfd, IPPROTO_TCP, TCP_INQ, 1))
	if v, err := b.GetsockoptInt(sfd, IPPROTO_TCP, TCP_INQ); err != nil || v != 1 {
		t.Errorf("getsockopt TCP_INQ = %d, %v", v, err)
	}
	if _, err := a.Send(cfd, make([]byte, 1000), 0); err != nil {
		t.Fatal(err)
	}
	must(t, a.Shutdown(cfd, SHUT_WR))
	n.pump()
	for _, step := range []struct{ read, inq int }{{300, 701}, {700, 1}} {
		m := &Msghdr{Iov: [][]byte{make([]byte, step.read)}}
		got, err := b.Recvmsg(sfd, m, MSG_DONTWAIT)
		if err != nil || got != step.read || len(m.Control) != 1 {
			t.Fatalf("Recvmsg = %d, %v, %v", got, err, m.Control)
		}
		if q := m.Control[0].(*TCPInq); q.Bytes != step.inq {
			t.Errorf("after reading %d: inq %d, want %d", step.read, q.Bytes, step.inq)
		}
	}
}

// TestUDPConnErrQueue reads an ICMP error through UDPConn.ReadErrQueue,
// on an IPv6 socket: the level and type are IPv6's.
func TestUDPConnErrQueue(t *testing.T) {
	n := newVnet(t, nil)
	c, err := n.a.ListenUDP("udp6", &net.UDPAddr{IP: addr6A.AsSlice(), Port: 4000})
	must(t, err)
	defer c.Close()
	must(t, c.Control(func(s *Sockets, fd int) { must(t, s.SetsockoptInt(fd, IPPROTO_IPV6, IPV6_RECVERR, 1)) }))
	dst := netip.AddrPortFrom(addr6B, 7)
	if _, err := c.WriteToUDPAddrPort([]byte("data"), dst); err != nil {
		t.Fatal(err)
	}
	n.pump()
	// The pending error is there for the next plain call, as Linux's
	// sk_err, and the report stays queued.
	if _, err := c.WriteToUDPAddrPort([]byte("x"), dst); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("next send: %v, want ECONNREFUSED", err)
	}
	b := make([]byte, 2)
	got, e, to, err := c.ReadErrQueue(b)
	if err != nil || got != 2 || string(b) != "da" || to != dst {
		t.Fatalf("ReadErrQueue = %d %q %v, %v", got, b, to, err)
	}
	if e.CmsgLevel() != SOL_IPV6 || e.CmsgType() != IPV6_RECVERR || e.Origin != SO_EE_ORIGIN_ICMP6 ||
		e.Errno != uint32(syscall.ECONNREFUSED) || e.Offender != addr6B {
		t.Errorf("extended error %+v", e)
	}
	if _, _, _, err := c.ReadErrQueue(b); !errors.Is(err, syscall.EAGAIN) {
		t.Errorf("empty queue: %v", err)
	}
	// Reading a report clears the pending error (Linux's
	// sock_dequeue_err_skb), so the send after goes.
	if _, err := c.WriteToUDPAddrPort([]byte("z"), dst); err != nil {
		t.Fatal(err)
	}
	n.pump()
	if _, _, _, err := c.ReadErrQueue(b); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteToUDPAddrPort([]byte("y"), dst); err != nil {
		t.Errorf("send after reading the report: %v", err)
	}
}

// TestUDPRxTimestamp: with RX_SOFTWARE|SOFTWARE a datagram's arrival time
// comes with it as SCM_TIMESTAMPING.
func TestUDPRxTimestamp(t *testing.T) {
	n := newVnet(t, nil)
	a, b := n.a.Sockets(), n.b.Sockets()
	rfd := mustFD(t)(b.Socket(AF_INET, SOCK_DGRAM, 0))
	must(t, b.Bind(rfd, netip.AddrPortFrom(addrB, 53)))
	must(t, b.SetsockoptInt(rfd, SOL_SOCKET, SO_TIMESTAMPING, SOF_TIMESTAMPING_RX_SOFTWARE|SOF_TIMESTAMPING_SOFTWARE))
	sfd := mustFD(t)(a.Socket(AF_INET, SOCK_DGRAM, 0))
	n.advance(30 * time.Millisecond)
	arrived := n.clk.Now()
	if _, err := a.Sendto(sfd, []byte("t"), 0, netip.AddrPortFrom(addrB, 53)); err != nil {
		t.Fatal(err)
	}
	n.pump()
	n.advance(20 * time.Millisecond)
	m := &Msghdr{Iov: [][]byte{make([]byte, 4)}}
	if _, err := b.Recvmsg(rfd, m, MSG_DONTWAIT); err != nil {
		t.Fatal(err)
	}
	if len(m.Control) != 1 || !m.Control[0].(*Timestamping).Software.Equal(arrived) {
		t.Errorf("control %v, want the arrival %v", m.Control, arrived)
	}
}

// TestUDPZeroCopy: a datagram sent with MSG_ZEROCOPY completes at once
// (its data is copied); without SO_ZEROCOPY the flag asks nothing.
func TestUDPZeroCopy(t *testing.T) {
	n := newVnet(t, nil)
	a := n.a.Sockets()
	fd := mustFD(t)(a.Socket(AF_INET, SOCK_DGRAM, 0))
	dst := netip.AddrPortFrom(addrB, 9)
	if _, err := a.Sendmsg(fd, &Msghdr{Name: dst, Iov: [][]byte{[]byte("a")}}, MSG_ZEROCOPY); err != nil {
		t.Fatal(err)
	}
	_, err := a.Recvmsg(fd, &Msghdr{}, MSG_ERRQUEUE)
	wantErr(t, "without SO_ZEROCOPY", err, syscall.EAGAIN)
	must(t, a.SetsockoptInt(fd, SOL_SOCKET, SO_ZEROCOPY, 1))
	for range 2 {
		if _, err := a.Sendmsg(fd, &Msghdr{Name: dst, Iov: [][]byte{[]byte("a")}}, MSG_ZEROCOPY); err != nil {
			t.Fatal(err)
		}
	}
	m := &Msghdr{}
	if _, err := a.Recvmsg(fd, m, MSG_ERRQUEUE); err != nil {
		t.Fatal(err)
	}
	if e := m.Control[0].(*ExtendedErr); e.Origin != SO_EE_ORIGIN_ZEROCOPY || e.Info != 0 || e.Data != 1 {
		t.Errorf("completion %+v; want ids 0..1", e.SockExtendedErr)
	}
	wantErr(t, "SO_ZEROCOPY 2", a.SetsockoptInt(fd, SOL_SOCKET, SO_ZEROCOPY, 2), syscall.EINVAL)
}

// TestUDPTxTimestamps: a datagram's SCHED and SND stamps come at once,
// keyed by the datagrams sent since OPT_ID was set.
func TestUDPTxTimestamps(t *testing.T) {
	n := newVnet(t, nil)
	a := n.a.Sockets()
	fd := mustFD(t)(a.Socket(AF_INET, SOCK_DGRAM, 0))
	dst := netip.AddrPortFrom(addrB, 9)
	if _, err := a.Sendto(fd, []byte("before"), 0, dst); err != nil {
		t.Fatal(err)
	}
	must(t, a.SetsockoptInt(fd, SOL_SOCKET, SO_TIMESTAMPING, SOF_TIMESTAMPING_TX_SOFTWARE|
		SOF_TIMESTAMPING_SOFTWARE|SOF_TIMESTAMPING_OPT_ID|SOF_TIMESTAMPING_OPT_TSONLY))
	for range 2 {
		if _, err := a.Sendto(fd, []byte("x"), 0, dst); err != nil {
			t.Fatal(err)
		}
	}
	for key := range uint32(2) {
		m := &Msghdr{}
		if _, err := a.Recvmsg(fd, m, MSG_ERRQUEUE); err != nil || len(m.Control) != 2 {
			t.Fatalf("report %d: %v %v", key, m.Control, err)
		}
		if e := m.Control[1].(*ExtendedErr); e.Info != SCM_TSTAMP_SND || e.Data != key {
			t.Errorf("report %d: %+v", key, e.SockExtendedErr)
		}
		if ts := m.Control[0].(*Timestamping); !ts.Software.Equal(n.clk.Now()) {
			t.Errorf("stamped %v, now %v", ts.Software, n.clk.Now())
		}
	}
	_, err := a.Recvmsg(fd, &Msghdr{}, MSG_ERRQUEUE)
	wantErr(t, "after the stamps", err, syscall.EAGAIN)
}

// TestErrQueueBounded: reports beyond the receive buffer are dropped.
func TestErrQueueBounded(t *testing.T) {
	n := newVnet(t, nil)
	a := n.a.Sockets()
	fd := mustFD(t)(a.Socket(AF_INET, SOCK_DGRAM, 0))
	must(t, a.SetsockoptInt(fd, SOL_SOCKET, SO_RCVBUF, 1)) // the floor: 2,304 bytes
	must(t, a.SetsockoptInt(fd, SOL_SOCKET, SO_TIMESTAMPING, SOF_TIMESTAMPING_TX_SOFTWARE|SOF_TIMESTAMPING_OPT_TSONLY))
	for range 100 {
		if _, err := a.Sendto(fd, []byte("x"), 0, netip.AddrPortFrom(addrB, 9)); err != nil {
			t.Fatal(err)
		}
	}
	got := 0
	for ; got < 100; got++ {
		if _, err := a.Recvmsg(fd, &Msghdr{}, MSG_ERRQUEUE); err != nil {
			break
		}
	}
	if got == 0 || got > 2304/256 {
		t.Errorf("%d reports queued; want some, at most %d", got, 2304/256)
	}
}

// TestZeroCopyFragBreaks: a MSG_ZEROCOPY send's buffers are counted in
// page fragments, 17 to a Linux send buffer; the data after each 17th
// starts a new one.
func TestZeroCopyFragBreaks(t *testing.T) {
	ones := func(n int) [][]byte {
		iov := make([][]byte, n)
		for i := range iov {
			iov[i] = []byte{0}
		}
		return iov
	}
	for _, tc := range []struct {
		name string
		iov  [][]byte
		want []int
	}{
		{"17 fit", ones(17), nil},
		{"18", ones(18), []int{17}},
		{"64", ones(64), []int{17, 34, 51}},
		{"empty ones skipped", append(append(ones(10), nil, nil), ones(8)...), []int{17}},
		{"a buffer of 18 pages", [][]byte{make([]byte, 18*4096-1)}, []int{17 * 4096}},
		{"pages and ones", append([][]byte{make([]byte, 16*4096+1)}, ones(3)...), []int{16*4096 + 1}},
	} {
		if got := zcFragBreaks(tc.iov); !slices.Equal(got, tc.want) {
			t.Errorf("%s: breaks %v, want %v", tc.name, got, tc.want)
		}
	}
}
