package synstack

import (
	"math"
	"net/netip"
	"slices"
	"syscall"
	"testing"
)

// TestSockoptTable walks every row of the option table through the public
// calls: a value set reads back as the row says, a value outside the
// row's range is refused with EINVAL and changes nothing, a read-only
// option refuses a set, and a call with a value of the wrong type gets
// the errno it gets on Linux. A new option is a new row; this test then
// covers it.
func TestSockoptTable(t *testing.T) {
	n := newVnet(t, nil)
	ss := n.a.Sockets()
	seen := map[[2]int]string{}
	for i := range sockopts {
		p := &sockopts[i]
		key := [2]int{p.level, p.name}
		if prev, dup := seen[key]; dup {
			t.Errorf("%s: same level and name as %s", p.linux, prev)
		}
		seen[key] = p.linux
		if p.linux == "" || p.get == nil {
			t.Errorf("row %d (%d, %d): no Linux name or no getter", i, p.level, p.name)
			continue
		}
		t.Run(p.linux, func(t *testing.T) {
			fam := AF_INET
			if p.v6 {
				fam = AF_INET6
				fd4 := mustFD(t)(ss.Socket(AF_INET, SOCK_STREAM, 0))
				checkAbsent(t, ss, fd4, p.level, p.name)
				must(t, ss.Close(fd4))
			}
			typ := SOCK_STREAM
			if p.level == SOL_SOCKET && p.name == SO_TIMESTAMPING {
				// OPT_ID needs a connection on TCP (msg_test.go).
				typ = SOCK_DGRAM
			}
			fd := mustFD(t)(ss.Socket(fam, typ, 0))
			defer ss.Close(fd)
			switch p.typ {
			case optInt, optBool:
				walkIntOpt(t, ss, fd, p)
			case optLinger:
				walkLingerOpt(t, ss, fd, p)
			case optString:
				walkStringOpt(t, ss, fd, p)
			default:
				t.Fatalf("type %d has no walk", p.typ)
			}
		})
	}
	fd := mustFD(t)(ss.Socket(AF_INET6, SOCK_STREAM, 0))
	for _, level := range []int{SOL_SOCKET, IPPROTO_TCP, IPPROTO_IPV6, 1234} {
		checkAbsent(t, ss, fd, level, 9999)
	}
	wantErr(t, "bad fd", ss.SetsockoptInt(100, SOL_SOCKET, SO_KEEPALIVE, 1), syscall.EBADF)
	if v, err := ss.GetsockoptInt(100, SOL_SOCKET, SO_KEEPALIVE); v != -1 || err != syscall.EBADF {
		t.Errorf("get on a bad fd: %d, %v; want -1, EBADF", v, err)
	}
}

// checkAbsent checks that (level, name) is no option of fd for any call.
func checkAbsent(t *testing.T, ss *Sockets, fd, level, name int) {
	t.Helper()
	wantErr(t, "set int", ss.SetsockoptInt(fd, level, name, 1), syscall.ENOPROTOOPT)
	wantErr(t, "set string", ss.SetsockoptString(fd, level, name, "x"), syscall.ENOPROTOOPT)
	if v, err := ss.GetsockoptInt(fd, level, name); v != -1 || err != syscall.ENOPROTOOPT {
		t.Errorf("get int (%d, %d): %d, %v; want -1, ENOPROTOOPT", level, name, v, err)
	}
	_, err := ss.GetsockoptString(fd, level, name)
	wantErr(t, "get string", err, syscall.ENOPROTOOPT)
}

// getter turns get into a call that fails the test on an error.
func getter[T any](t *testing.T, get func() (T, error)) func() T {
	return func() T {
		t.Helper()
		v, err := get()
		must(t, err)
		return v
	}
}

// walkIntOpt checks an optInt or optBool row.
func walkIntOpt(t *testing.T, ss *Sockets, fd int, p *sockopt) {
	get := getter(t, func() (int, error) { return ss.GetsockoptInt(fd, p.level, p.name) })
	wantErr(t, "set as a string", ss.SetsockoptString(fd, p.level, p.name, "1"), syscall.ENOPROTOOPT)
	_, err := ss.GetsockoptString(fd, p.level, p.name)
	wantErr(t, "get as a string", err, syscall.ENOPROTOOPT)
	def := get()
	if p.set == nil {
		wantErr(t, "set of a read-only option", ss.SetsockoptInt(fd, p.level, p.name, def), syscall.ENOPROTOOPT)
		if v := get(); v != def {
			t.Errorf("read-only option changed: %d, was %d", v, def)
		}
		return
	}
	// Linux's optval is a C int: walk the range within 32 bits.
	lo, hi := math.MinInt32, math.MaxInt32
	ranged := p.typ == optInt && (p.lo != 0 || p.hi != 0)
	if ranged {
		lo, hi = max(p.lo, lo), min(p.hi, hi)
	}
	want := def
	vals := []int{lo, lo + 1, lo/2 + hi/2, 1, 0, hi - 1, hi}
	slices.Sort(vals)
	for _, v := range slices.Compact(vals) {
		if v < lo || v > hi || !p.takes(v) {
			continue
		}
		if err := ss.SetsockoptInt(fd, p.level, p.name, v); err != nil {
			t.Errorf("set %d: %v", v, err)
			continue
		}
		want = wantRead(p, v, def)
		if got := get(); got != want {
			t.Errorf("set %d: reads %d, want %d", v, got, want)
		}
	}
	if !ranged {
		return
	}
	for _, v := range []int{lo - 1, hi + 1} {
		if v < lo && lo == math.MinInt32 || v > hi && hi == math.MaxInt32 || p.takes(v) {
			continue
		}
		wantErr(t, "set out of range", ss.SetsockoptInt(fd, p.level, p.name, v), syscall.EINVAL)
		if got := get(); got != want {
			t.Errorf("refused set %d changed the option: %d, want %d", v, got, want)
		}
	}
}

// wantRead is what option p reads after a set of v on a socket without
// connection: v as the row keeps it, the default def if that is 0.
func wantRead(p *sockopt, v, def int) int {
	if p.typ == optBool {
		return boolInt(v != 0)
	}
	if p.norm != nil {
		v = p.norm(v)
	}
	if v == 0 && !p.zeroIsValue {
		return def
	}
	return v
}

// walkLingerOpt checks the optLinger row, SO_LINGER, the only one the
// calls reach.
func walkLingerOpt(t *testing.T, ss *Sockets, fd int, p *sockopt) {
	if p.level != SOL_SOCKET || p.name != SO_LINGER {
		t.Fatalf("no call reaches a linger option other than SO_LINGER")
	}
	for _, c := range []struct{ set, want syscall.Linger }{
		{syscall.Linger{Onoff: 1, Linger: 0}, syscall.Linger{Onoff: 1, Linger: 0}},
		{syscall.Linger{Onoff: 5, Linger: 3}, syscall.Linger{Onoff: 1, Linger: 3}},
		{syscall.Linger{Onoff: 0, Linger: -4}, syscall.Linger{Onoff: 0, Linger: 0}},
	} {
		must(t, ss.SetsockoptLinger(fd, c.set))
		if got, err := ss.GetsockoptLinger(fd); err != nil || got != c.want {
			t.Errorf("set %+v: reads %+v, %v; want %+v", c.set, got, err, c.want)
		}
	}
	wantErr(t, "set as an int", ss.SetsockoptInt(fd, p.level, p.name, 1), syscall.EINVAL)
	_, err := ss.GetsockoptInt(fd, p.level, p.name)
	wantErr(t, "get as an int", err, syscall.EINVAL)
	wantErr(t, "set as a string", ss.SetsockoptString(fd, p.level, p.name, "1"), syscall.ENOPROTOOPT)
}

// walkStringOpt checks an optString row: each of its choices reads back,
// "" reads the default, and a name not among them is refused.
func walkStringOpt(t *testing.T, ss *Sockets, fd int, p *sockopt) {
	get := getter(t, func() (string, error) { return ss.GetsockoptString(fd, p.level, p.name) })
	def := get()
	if len(p.choices) == 0 {
		t.Fatalf("no choices")
	}
	for _, v := range p.choices {
		must(t, ss.SetsockoptString(fd, p.level, p.name, v))
		if got := get(); got != v {
			t.Errorf("set %q: reads %q", v, got)
		}
	}
	if p.level == IPPROTO_TCP && p.name == TCP_FASTOPEN_KEY {
		// Linux refuses an empty key (a key cannot be unset).
		wantErr(t, "set \"\"", ss.SetsockoptString(fd, p.level, p.name, ""), syscall.EINVAL)
	} else {
		must(t, ss.SetsockoptString(fd, p.level, p.name, ""))
		if got := get(); got != def {
			t.Errorf("set \"\": reads %q, want the default %q", got, def)
		}
	}
	last := p.choices[len(p.choices)-1]
	must(t, ss.SetsockoptString(fd, p.level, p.name, last))
	bad := "no-such-" + last
	if slices.Contains(p.choices, bad) {
		t.Fatalf("%q is a choice", bad)
	}
	if err := ss.SetsockoptString(fd, p.level, p.name, bad); err == nil {
		t.Errorf("set %q: accepted", bad)
	}
	if got := get(); got != last {
		t.Errorf("refused set changed the option: %q, want %q", got, last)
	}
	wantErr(t, "set as an int", ss.SetsockoptInt(fd, p.level, p.name, 1), syscall.ENOPROTOOPT)
	_, err := ss.GetsockoptInt(fd, p.level, p.name)
	wantErr(t, "get as an int", err, syscall.ENOPROTOOPT)
}

// TestDescriptorCallsDoNotAllocate counts the allocations of the calls
// that go through withFD and lockFD: the helper must keep its locks on
// the stack (a callback that took them would move them to the heap), and
// a set of options already interned must not copy them to the heap.
func TestDescriptorCallsDoNotAllocate(t *testing.T) {
	if soakRace {
		t.Skip("allocation counts need a build without -race")
	}
	n := newVnet(t, nil)
	ss := n.a.Sockets()
	fd := mustFD(t)(ss.Socket(AF_INET, SOCK_STREAM, 0))
	buf := make([]byte, 1)
	for _, c := range []struct {
		name string
		call func()
	}{
		{"GetsockoptInt", func() { _, _ = ss.GetsockoptInt(fd, IPPROTO_TCP, TCP_KEEPIDLE) }},
		{"GetsockoptString", func() { _, _ = ss.GetsockoptString(fd, IPPROTO_TCP, TCP_CONGESTION) }},
		{"SetsockoptInt", func() { _ = ss.SetsockoptInt(fd, IPPROTO_TCP, TCP_NODELAY, 1) }},
		{"SetsockoptLinger", func() { _ = ss.SetsockoptLinger(fd, syscall.Linger{}) }},
		{"Fcntl", func() { _, _ = ss.Fcntl(fd, F_GETFL, 0) }},
		{"Getsockname", func() { _, _ = ss.Getsockname(fd) }},
		{"Recv", func() { _, _ = ss.Recv(fd, buf, 0) }},
		{"Send", func() { _, _ = ss.Send(fd, buf, 0) }},
	} {
		if a := testing.AllocsPerRun(100, c.call); a != 0 {
			t.Errorf("%s: %.1f allocations, want 0", c.name, a)
		}
	}
}

// TestFreeBindAndIoctl: IP_FREEBIND lets bind take an address the stack
// does not have (for TCP and UDP), and the queue ioctls read a
// connection's queues (EINVAL on a listener) or a UDP socket's next
// datagram, ENOTTY for an unknown request.
func TestFreeBindAndIoctl(t *testing.T) {
	n := newVnet(t, nil)
	ss := n.a.Sockets()
	for _, typ := range []int{SOCK_STREAM, SOCK_DGRAM} {
		fd := mustFD(t)(ss.Socket(AF_INET, typ, 0))
		wantErr(t, "not our address", ss.Bind(fd, netip.AddrPortFrom(addrB, 80)), syscall.EADDRNOTAVAIL)
		must(t, ss.SetsockoptInt(fd, IPPROTO_IP, IP_FREEBIND, 1))
		must(t, ss.Bind(fd, netip.AddrPortFrom(addrB, 80)))
		if v, err := ss.Ioctl(fd, SIOCINQ); v != 0 || err != nil {
			t.Errorf("SIOCINQ of an empty queue: %d, %v", v, err)
		}
		_, err := ss.Ioctl(fd, SIOCOUTQNSD)
		if typ == SOCK_DGRAM {
			wantErr(t, "SIOCOUTQNSD on UDP", err, syscall.ENOTTY)
		} else {
			must(t, err)
		}
		must(t, ss.Close(fd))
	}
	// UDP: SIOCINQ is the next datagram's size.
	ufd := mustFD(t)(ss.Socket(AF_INET, SOCK_DGRAM, 0))
	must(t, ss.Bind(ufd, netip.AddrPortFrom(addrA, 53)))
	sb := n.b.Sockets()
	bfd := mustFD(t)(sb.Socket(AF_INET, SOCK_DGRAM, 0))
	for _, size := range []int{300, 20} {
		if _, err := sb.Sendto(bfd, make([]byte, size), 0, netip.AddrPortFrom(addrA, 53)); err != nil {
			t.Fatal(err)
		}
	}
	n.pump()
	if v, err := ss.Ioctl(ufd, SIOCINQ); v != 300 || err != nil {
		t.Errorf("UDP SIOCINQ: %d, %v; want the first datagram's 300", v, err)
	}
	if v, err := ss.Ioctl(ufd, SIOCOUTQ); v != 0 || err != nil {
		t.Errorf("UDP SIOCOUTQ: %d, %v; want 0", v, err)
	}
	lfd := mustFD(t)(ss.Socket(AF_INET, SOCK_STREAM, 0))
	must(t, ss.Bind(lfd, netip.AddrPortFrom(addrA, 80)))
	must(t, ss.Listen(lfd, 1))
	for _, req := range []int{SIOCINQ, SIOCOUTQ, SIOCOUTQNSD} {
		_, err := ss.Ioctl(lfd, req)
		wantErr(t, "on a listener", err, syscall.EINVAL)
	}
	_, err := ss.Ioctl(lfd, 0x5401)
	wantErr(t, "unknown request", err, syscall.ENOTTY)
	_, err = ss.Ioctl(99, SIOCINQ)
	wantErr(t, "bad descriptor", err, syscall.EBADF)
}
