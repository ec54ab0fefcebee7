package synstack

import (
	"bytes"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/synstack/synstack/clock"
	"github.com/synstack/synstack/link"
	"github.com/synstack/synstack/link/pipe"
	"github.com/synstack/synstack/link/sim"
)

var (
	addrA  = netip.MustParseAddr("10.0.0.1")
	addrB  = netip.MustParseAddr("10.0.0.2")
	addr6A = netip.MustParseAddr("fd00::1")
	addr6B = netip.MustParseAddr("fd00::2")
)

// vnet joins two stacks sharing one virtual clock through a synchronous
// link: written packets queue up and pump delivers them on the test's
// goroutine, so everything is deterministic.
type vnet struct {
	t    *testing.T
	clk  *clock.Virtual
	a, b *Stack
	mu   sync.Mutex
	q    []queued
	// drop, if set, drops packets it selects (dir is "a>b" or "b>a").
	drop func(dir string, pkt []byte) bool
}

type queued struct {
	to  *syncEnd
	pkt []byte
}

type syncEnd struct {
	n    *vnet
	name string
	peer *syncEnd
	d    link.Dispatcher
}

func (e *syncEnd) MTU() int                 { return 1500 }
func (e *syncEnd) Attach(d link.Dispatcher) { e.d = d }
func (e *syncEnd) Close() error             { return nil }
func (e *syncEnd) WritePacket(pkt []byte) error {
	e.n.mu.Lock()
	defer e.n.mu.Unlock()
	if e.n.drop != nil && e.n.drop(e.name, pkt) {
		return nil
	}
	e.n.q = append(e.n.q, queued{e.peer, bytes.Clone(pkt)})
	return nil
}

func newVnet(t *testing.T, mod func(a, b *Config)) *vnet {
	t.Helper()
	n := &vnet{t: t, clk: clock.NewVirtual(time.Unix(1_700_000_000, 0))}
	ea := &syncEnd{n: n, name: "a>b"}
	eb := &syncEnd{n: n, name: "b>a"}
	ea.peer, eb.peer = eb, ea
	ca := Config{Link: ea, Clock: n.clk, Seed: 1, Addrs: []netip.Prefix{
		netip.PrefixFrom(addrA, 24), netip.PrefixFrom(addr6A, 64)}}
	cb := Config{Link: eb, Clock: n.clk, Seed: 2, Addrs: []netip.Prefix{
		netip.PrefixFrom(addrB, 24), netip.PrefixFrom(addr6B, 64)}}
	if mod != nil {
		mod(&ca, &cb)
	}
	var err error
	if n.a, err = New(ca); err != nil {
		t.Fatal(err)
	}
	if n.b, err = New(cb); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.a.Close(); n.b.Close() })
	return n
}

// pump delivers queued packets until none is left.
func (n *vnet) pump() {
	for i := 0; ; i++ {
		n.mu.Lock()
		if len(n.q) == 0 {
			n.mu.Unlock()
			return
		}
		p := n.q[0]
		n.q = n.q[1:]
		n.mu.Unlock()
		if i > 1_000_000 {
			n.t.Fatal("packet storm")
		}
		if p.to.d != nil {
			p.to.d.DeliverPacket(p.pkt)
		}
	}
}

// advance moves the clock by d in steps of at most 10 ms, delivering the
// packets timers send along the way.
func (n *vnet) advance(d time.Duration) {
	end := n.clk.Now().Add(d)
	for n.clk.Now().Before(end) {
		step := min(end.Sub(n.clk.Now()), 10*time.Millisecond)
		n.clk.Advance(step)
		n.pump()
	}
}

// must fails the test on err.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// mustFD fails the test on err and returns fd.
func mustFD(t *testing.T) func(int, error) int {
	return func(fd int, err error) int {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return fd
	}
}

// wantErr checks err is the errno want (0 for nil).
func wantErr(t *testing.T, what string, err error, want syscall.Errno) {
	t.Helper()
	if want == 0 {
		if err != nil {
			t.Errorf("%s: %v, want success", what, err)
		}
		return
	}
	if err != want {
		t.Errorf("%s: %v, want %v", what, err, want)
	}
}

// listenOn makes a listening socket on st at port with backlog.
func listenOn(t *testing.T, st *Stack, addr netip.AddrPort, backlog int, nonblock bool) int {
	t.Helper()
	ss := st.Sockets()
	typ := SOCK_STREAM
	if nonblock {
		typ |= SOCK_NONBLOCK
	}
	fam := AF_INET
	if addr.Addr().Is6() {
		fam = AF_INET6
	}
	fd, err := ss.Socket(fam, typ, 0)
	must(t, err)
	must(t, ss.Bind(fd, addr))
	must(t, ss.Listen(fd, backlog))
	return fd
}

// connectV opens a non-blocking connection from n.a to n.b's addr and
// completes the handshake; it returns the client fd and the accepted fd.
func (n *vnet) connect(addr netip.AddrPort, lfd int) (cfd, sfd int) {
	t := n.t
	t.Helper()
	fam := AF_INET
	if addr.Addr().Is6() {
		fam = AF_INET6
	}
	cfd, err := n.a.Sockets().Socket(fam, SOCK_STREAM|SOCK_NONBLOCK, 0)
	must(t, err)
	wantErr(t, "connect", n.a.Sockets().Connect(cfd, addr), syscall.EINPROGRESS)
	n.pump()
	wantErr(t, "connect again", n.a.Sockets().Connect(cfd, addr), 0)
	sfd, _, err = n.b.Sockets().Accept(lfd)
	must(t, err)
	return cfd, sfd
}

// simStacks joins a client (net.2) and a server (net.1) on a sim.Pair with
// opts, both on vc and seeded from seed, for the soak and the simulation
// tests, and returns their links too; Cleanup closes them.
func simStacks(t *testing.T, opts sim.Options, vc *clock.Virtual, seed uint64, net string) (cli, srv *Stack, la, lb *sim.Endpoint) {
	t.Helper()
	la, lb = sim.Pair(opts)
	var err error
	cli, err = New(Config{Link: la, Clock: vc, Seed: seed, Addrs: []netip.Prefix{netip.MustParsePrefix(net + ".2/24")}})
	must(t, err)
	srv, err = New(Config{Link: lb, Clock: vc, Seed: seed + 1, Addrs: []netip.Prefix{netip.MustParsePrefix(net + ".1/24")}})
	must(t, err)
	t.Cleanup(func() { cli.Close(); srv.Close() })
	return cli, srv, la, lb
}

// pipeStacks joins two stacks on the real clock with link/pipe.
func pipeStacks(t *testing.T) (a, b *Stack) {
	t.Helper()
	la, lb := pipe.New(1500)
	var err error
	a, err = New(Config{Link: la, Addrs: []netip.Prefix{netip.PrefixFrom(addrA, 24)}})
	must(t, err)
	b, err = New(Config{Link: lb, Addrs: []netip.Prefix{netip.PrefixFrom(addrB, 24)}})
	must(t, err)
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}
