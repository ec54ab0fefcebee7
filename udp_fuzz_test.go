package synstack

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"slices"
	"syscall"
	"testing"
	"time"
)

// FuzzUDPSockets drives the UDP socket layer of two stacks on a vnet
// (virtual clock, synchronous delivery) with a random sequence of calls:
// socket, bind, connect, sendto, recvfrom, shutdown, close, dup,
// setsockopt, getsockopt, getsockname, getpeername, with good and bad
// arguments, and packets moved and time advanced between them. It checks:
// no panic and no call that blocks; every error a syscall.Errno; a
// sendto that succeeds reports the whole datagram; every datagram
// received is one that was sent, from the port it was sent from, its
// bytes those sent (cut to the buffer, or its whole length with
// MSG_TRUNC); and nothing leaks: once every descriptor is closed, the
// lowest descriptor is free again and every port that was bound can be
// bound again without SO_REUSEADDR.
//
// The seeds (f.Add) run with go test, in CI; go test -fuzz
// FuzzUDPSockets explores further.
func FuzzUDPSockets(f *testing.F) {
	for _, seed := range udpFuzzSeeds() {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, script []byte) {
		u := newUDPFuzz(t)
		r := fuzzReader(script)
		for i := 0; i < 300 && len(r) > 0; i++ {
			u.step(&r)
		}
		u.finish()
	})
}

// fuzzReader hands out a script's bytes, zeros once it is spent.
type fuzzReader []byte

func (r *fuzzReader) next() int {
	if len(*r) == 0 {
		return 0
	}
	b := (*r)[0]
	*r = (*r)[1:]
	return int(b)
}

// choose returns one of choices, by the next byte.
func choose[T any](r *fuzzReader, choices ...T) T { return choices[r.next()%len(choices)] }

// udpFuzz is one run of FuzzUDPSockets: the two stacks, the descriptors
// open on each, the datagrams sent and the ports bound.
type udpFuzz struct {
	t     *testing.T
	n     *vnet
	st    [2]*Stack
	fds   [2][]int
	sent  map[uint32]sentDatagram
	seq   uint32
	ports [2]map[uint16]bool // ports bound on each stack
}

// sentDatagram is what a datagram carried: its length and source port.
type sentDatagram struct {
	len  int
	from uint16
}

func newUDPFuzz(t *testing.T) *udpFuzz {
	n := newVnet(t, nil)
	return &udpFuzz{t: t, n: n, st: [2]*Stack{n.a, n.b}, sent: map[uint32]sentDatagram{},
		ports: [2]map[uint16]bool{{}, {}}}
}

// Arguments the calls draw from: addresses of both stacks, wildcards,
// addresses no one has, mapped, broadcast and multicast ones, the zero
// AddrPort; ports; sizes around the MTU and the UDP limit.
var (
	fuzzAddrs = []netip.Addr{addrA, addrB, addr6A, addr6B, netip.IPv4Unspecified(), netip.IPv6Unspecified(),
		netip.MustParseAddr("10.0.0.99"), netip.MustParseAddr("::ffff:10.0.0.2"), netip.MustParseAddr("255.255.255.255"),
		netip.MustParseAddr("224.0.0.1"), netip.MustParseAddr("ff02::1"), {}}
	fuzzPorts = []uint16{0, 7000, 7001, 53}
	fuzzSizes = []int{0, 1, 3, 4, 100, 1472, 1473, 1452, 3000, 9000, 65507, 65508, 65527, 65528}
	fuzzBufs  = []int{0, 1, 4, 16, 1500, 70000}
)

// addr draws an address and port.
func (u *udpFuzz) addr(r *fuzzReader) netip.AddrPort {
	a := choose(r, fuzzAddrs...)
	if !a.IsValid() {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(a, choose(r, fuzzPorts...))
}

// fd draws a descriptor of stack i: an open one, or (one time in a few)
// one that is not.
func (u *udpFuzz) fd(r *fuzzReader, i int) int {
	k := r.next() % (len(u.fds[i]) + 1)
	if k == len(u.fds[i]) {
		return choose(r, -1, 0, 2, 3, 99, 1<<20)
	}
	return u.fds[i][k]
}

// errno checks that err is nil or a syscall.Errno.
func (u *udpFuzz) errno(op string, err error) {
	u.t.Helper()
	if err == nil {
		return
	}
	if _, ok := err.(syscall.Errno); !ok {
		u.t.Fatalf("%s: error %T %v, want a syscall.Errno", op, err, err)
	}
}

// bound notes the port fd of stack i is bound to, if it is.
func (u *udpFuzz) bound(i, fd int) {
	if a, err := u.st[i].Sockets().Getsockname(fd); err == nil && a.Port() != 0 {
		u.ports[i][a.Port()] = true
	}
}

// step makes one call, drawn from r.
func (u *udpFuzz) step(r *fuzzReader) {
	i := r.next() & 1
	ss := u.st[i].Sockets()
	switch r.next() % 12 {
	case 0, 1:
		typ := SOCK_DGRAM | choose(r, 0, SOCK_NONBLOCK, SOCK_CLOEXEC, SOCK_NONBLOCK|SOCK_CLOEXEC, 0x10000000)
		fd, err := ss.Socket(choose(r, AF_INET, AF_INET6, AF_INET6, 1), typ, choose(r, 0, IPPROTO_UDP, 0, IPPROTO_TCP))
		u.errno("socket", err)
		if err == nil {
			u.fds[i] = append(u.fds[i], fd)
		}
	case 2:
		fd := u.fd(r, i)
		u.errno("bind", ss.Bind(fd, u.addr(r)))
		u.bound(i, fd)
	case 3:
		fd := u.fd(r, i)
		u.errno("connect", ss.Connect(fd, u.addr(r)))
		u.bound(i, fd)
	case 4, 5:
		u.sendto(r, i)
	case 6, 7:
		u.recvfrom(r, i)
	case 8:
		u.errno("shutdown", ss.Shutdown(u.fd(r, i), choose(r, SHUT_RD, SHUT_WR, SHUT_RDWR, 3, -1)))
	case 9:
		fd := u.fd(r, i)
		err := ss.Close(fd)
		u.errno("close", err)
		if err == nil {
			u.fds[i] = slices.DeleteFunc(u.fds[i], func(v int) bool { return v == fd })
		}
	case 10:
		u.options(r, i)
	case 11:
		switch r.next() % 3 {
		case 0:
			u.n.pump()
		case 1:
			u.n.advance(time.Duration(r.next()) * 10 * time.Millisecond)
		case 2:
			fd, err := ss.Dup(u.fd(r, i))
			u.errno("dup", err)
			if err == nil {
				u.fds[i] = append(u.fds[i], fd)
			}
		}
	}
}

// options sets or reads a socket option, or the socket's names.
func (u *udpFuzz) options(r *fuzzReader, i int) {
	ss := u.st[i].Sockets()
	fd := u.fd(r, i)
	type opt struct{ level, name int }
	opts := []opt{{SOL_SOCKET, SO_RCVBUF}, {SOL_SOCKET, SO_SNDBUF}, {SOL_SOCKET, SO_REUSEADDR},
		{SOL_SOCKET, SO_REUSEPORT}, {IPPROTO_IPV6, IPV6_V6ONLY}, {IPPROTO_TCP, TCP_NODELAY}, {SOL_SOCKET, SO_TYPE}}
	o := opt{r.next(), r.next()} // one of the 256 x 256, if the next byte says so
	if k := r.next() % (len(opts) + 1); k < len(opts) {
		o = opts[k]
	}
	kind, v := r.next()%4, choose(r, 0, 1, -1, 256, 4096, 1<<20, 1<<30)
	switch kind {
	case 0, 1:
		u.errno("setsockopt", ss.SetsockoptInt(fd, o.level, o.name, v))
	case 2:
		_, err := ss.GetsockoptInt(fd, o.level, o.name)
		u.errno("getsockopt", err)
	case 3:
		_, err := ss.Getsockname(fd)
		u.errno("getsockname", err)
		_, err = ss.Getpeername(fd)
		u.errno("getpeername", err)
	}
}

// sendto sends a datagram: its first 4 bytes (if it has them) number it,
// the rest follow from the number, so that a receiver can check it.
func (u *udpFuzz) sendto(r *fuzzReader, i int) {
	ss := u.st[i].Sockets()
	fd := u.fd(r, i)
	to := u.addr(r)
	if r.next()%3 == 0 {
		to = netip.AddrPort{} // the connected peer
	}
	u.seq++
	p := fuzzDatagram(u.seq, choose(r, fuzzSizes...))
	n, err := ss.Sendto(fd, p, choose(r, 0, MSG_DONTWAIT), to)
	u.errno("sendto", err)
	if err != nil {
		return
	}
	if n != len(p) {
		u.t.Fatalf("sendto of %d bytes returned %d", len(p), n)
	}
	u.bound(i, fd)
	if a, err := ss.Getsockname(fd); err == nil && len(p) >= 4 {
		u.sent[u.seq] = sentDatagram{len: len(p), from: a.Port()}
	}
}

// fuzzDatagram is datagram number seq, of n bytes.
func fuzzDatagram(seq uint32, n int) []byte {
	p := make([]byte, n)
	for k := range p {
		p[k] = byte(seq) + byte(k)
	}
	if n >= 4 {
		binary.BigEndian.PutUint32(p, seq)
	}
	return p
}

// recvfrom receives a datagram, never blocking, and checks it against
// what was sent.
func (u *udpFuzz) recvfrom(r *fuzzReader, i int) {
	ss := u.st[i].Sockets()
	buf := make([]byte, choose(r, fuzzBufs...))
	flags := MSG_DONTWAIT | choose(r, 0, MSG_PEEK, MSG_TRUNC, MSG_PEEK|MSG_TRUNC)
	n, from, err := ss.Recvfrom(u.fd(r, i), buf, flags)
	u.errno("recvfrom", err)
	if err != nil {
		return
	}
	got := buf[:min(n, len(buf))]
	if n > len(buf) && flags&MSG_TRUNC == 0 {
		u.t.Fatalf("recvfrom into %d bytes returned %d", len(buf), n)
	}
	if n == 0 && !from.IsValid() {
		return // an empty datagram from nowhere is a shut reading side's EOF
	}
	if len(got) < 4 {
		return // too short to say which datagram it is
	}
	seq := binary.BigEndian.Uint32(got)
	d, ok := u.sent[seq]
	switch {
	case !ok:
		u.t.Fatalf("received a datagram numbered %d, which was never sent (%d bytes from %v)", seq, n, from)
	case from.Port() != d.from:
		u.t.Fatalf("datagram %d came from port %d, was sent from %d", seq, from.Port(), d.from)
	case !bytes.Equal(got, fuzzDatagram(seq, d.len)[:len(got)]):
		u.t.Fatalf("datagram %d: the bytes received differ from those sent", seq)
	case flags&MSG_TRUNC != 0 && n != d.len:
		u.t.Fatalf("datagram %d of %d bytes: recvfrom with MSG_TRUNC returned %d", seq, d.len, n)
	}
}

// finish closes every descriptor and checks that nothing is left: the
// lowest descriptor is free, and each port bound can be bound again.
func (u *udpFuzz) finish() {
	u.n.pump()
	for i, st := range u.st {
		ss := st.Sockets()
		for _, fd := range u.fds[i] {
			if err := ss.Close(fd); err != nil {
				u.t.Fatalf("close %d: %v", fd, err)
			}
		}
		u.fds[i] = nil
		for port := range u.ports[i] {
			for _, fam := range []int{AF_INET, AF_INET6} {
				fd, err := ss.Socket(fam, SOCK_DGRAM, 0)
				if err != nil || fd != firstFD {
					u.t.Fatalf("socket after closing everything: %d, %v; want descriptor %d", fd, err, firstFD)
				}
				wild := netip.IPv4Unspecified()
				if fam == AF_INET6 {
					wild = netip.IPv6Unspecified()
				}
				if err := ss.Bind(fd, netip.AddrPortFrom(wild, port)); err != nil {
					u.t.Fatalf("stack %d: bind %v after closing everything: %v (a socket left in the table)", i, netip.AddrPortFrom(wild, port), err)
				}
				must(u.t, ss.Close(fd))
			}
		}
	}
	u.n.advance(time.Minute) // reassembly and timers run out, on no socket
}

// udpFuzzSeeds are the seeds: scripts that reach each call, both ways
// between the stacks, with the arguments that fail and those that do not.
func udpFuzzSeeds() [][]byte {
	// Each step: stack, op, then the op's bytes (see step).
	sock := func(st, fam byte) []byte { return []byte{st, 0, 1, fam, 0} }                 // a non-blocking socket
	bind := func(st, fd, addr, port byte) []byte { return []byte{st, 2, fd, addr, port} } // addr, port: indexes
	conn := func(st, fd, addr, port byte) []byte { return []byte{st, 3, fd, addr, port} }
	send := func(st, fd, addr, port, size byte) []byte { return []byte{st, 4, fd, addr, port, 1, size, 0} }
	sendConn := func(st, fd, size byte) []byte { return []byte{st, 4, fd, 0, 0, 0, size, 0} }
	recv := func(st, fd, buf, flags byte) []byte { return []byte{st, 6, buf, flags, fd} }
	// opt: on fd, option k of the list, kind (0 set, 2 get, 3 names), value index.
	opt := func(st, fd, k, kind, v byte) []byte { return []byte{st, 10, fd, 0, 0, k, kind, v} }
	pump := []byte{0, 11, 0}
	cat := func(steps ...[]byte) []byte { return slices.Concat(steps...) }
	return [][]byte{
		nil,
		// IPv4 both ways: b binds 10.0.0.2:7000, a sends 1, 3,000 and
		// 65,507 bytes; b reads with a big buffer, a small one, MSG_TRUNC;
		// b answers; a reads.
		cat(sock(1, 0), bind(1, 0, 1, 1), sock(0, 0), send(0, 0, 1, 1, 1), send(0, 0, 1, 1, 8), send(0, 0, 1, 1, 10), pump,
			recv(1, 0, 5, 0), recv(1, 0, 2, 0), recv(1, 0, 2, 2), recv(1, 0, 5, 0),
			send(1, 0, 0, 1, 4), pump, recv(0, 0, 4, 0), recv(0, 0, 4, 1)),
		// IPv6, connected: a connects to [fd00::2]:7001 where nobody
		// listens (port unreachable, then ECONNREFUSED), then b binds it
		// and a sends again.
		cat(sock(0, 1), conn(0, 0, 3, 2), sendConn(0, 0, 4), pump, sendConn(0, 0, 4), sock(1, 1), bind(1, 0, 3, 2),
			sendConn(0, 0, 9), pump, recv(1, 0, 5, 1), recv(1, 0, 5, 0), recv(0, 0, 4, 0)),
		// Bad arguments: a socket of no family, bind to another's
		// address, to a bound port, sendto over the limit, to port 0,
		// shutdown, close twice, options.
		cat(sock(0, 3), sock(0, 0), bind(0, 0, 1, 1), bind(0, 0, 0, 1), sock(0, 0), bind(0, 1, 0, 1),
			send(0, 0, 1, 1, 11), send(0, 0, 1, 0, 3), send(0, 0, 6, 1, 3),
			opt(0, 0, 2, 0, 1), opt(0, 0, 4, 0, 1), opt(0, 0, 0, 2, 0), []byte{0, 10, 0, 9, 9, 7, 0, 2},
			[]byte{0, 8, 0, 0}, []byte{0, 8, 0, 3}, recv(0, 0, 4, 0), []byte{0, 9, 0}, []byte{0, 9, 0}, []byte{0, 9, 5, 0},
			[]byte{0, 11, 2, 0, 0}, []byte{0, 11, 1, 200}),
		// SO_REUSEADDR and SO_REUSEPORT on one port, IPv4 and IPv6
		// wildcards, the mapped address, a dual-stack socket.
		cat(sock(1, 1), opt(1, 0, 3, 0, 1), bind(1, 0, 5, 1), sock(1, 0), opt(1, 1, 3, 0, 1), bind(1, 1, 4, 1),
			sock(0, 0), send(0, 0, 1, 1, 4), sock(0, 1), send(0, 1, 7, 1, 4), pump, recv(1, 0, 5, 0), recv(1, 1, 5, 0)),
	}
}
