package synstack

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/synstack/synstack/wire"
)

// collect is a Forwarder that keeps the requests for the test to decide.
type collect struct {
	mu   sync.Mutex
	reqs []*ForwardRequest
}

func (c *collect) Forward(req *ForwardRequest) {
	c.mu.Lock()
	c.reqs = append(c.reqs, req)
	c.mu.Unlock()
}

func (c *collect) take(t *testing.T, want int) []*ForwardRequest {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.reqs) != want {
		t.Fatalf("%d requests offered, want %d", len(c.reqs), want)
	}
	r := c.reqs
	c.reqs = nil
	return r
}

// connectNB starts a non-blocking connect from st to dst.
func connectNB(t *testing.T, st *Stack, dst netip.AddrPort) int {
	t.Helper()
	fam := AF_INET
	if dst.Addr().Is6() {
		fam = AF_INET6
	}
	fd, err := st.Sockets().Socket(fam, SOCK_STREAM|SOCK_NONBLOCK, 0)
	must(t, err)
	wantErr(t, "connect", st.Sockets().Connect(fd, dst), syscall.EINPROGRESS)
	return fd
}

// connectResult is the connect's outcome once it ended (SO_ERROR).
func connectResult(t *testing.T, st *Stack, fd int) syscall.Errno {
	t.Helper()
	v, err := st.Sockets().GetsockoptInt(fd, SOL_SOCKET, SO_ERROR)
	must(t, err)
	return syscall.Errno(v)
}

// Deferred handshake, refused: nothing answers the SYN until the handler
// decides; a retransmitted SYN is absorbed; Refuse sends RST and the
// client's connect fails with ECONNREFUSED at once. IPv4 and IPv6.
func TestForwardRefuse(t *testing.T) {
	for _, dst := range []string{"198.18.0.7:80", "[fd99::7]:443"} {
		t.Run(dst, func(t *testing.T) {
			n := newVnet(t, nil)
			var fw collect
			n.b.SetForwarder(&fw, ForwardOptions{})
			d := netip.MustParseAddrPort(dst)
			fd := connectNB(t, n.a, d)
			n.pump()
			req := fw.take(t, 1)[0]
			if req.Local != d || req.Remote.Addr() != map[bool]netip.Addr{true: addrA, false: addr6A}[d.Addr().Is4()] {
				t.Fatalf("request %v <- %v", req.Local, req.Remote)
			}
			if req.SYNOptions().MSS == 0 {
				t.Error("SYN options not kept")
			}
			n.advance(1500 * time.Millisecond) // the client retransmits its SYN
			fw.take(t, 0)
			if st := n.b.Stats(); st.SynstackForwardRequests != 1 || n.b.PendingForwards() != 1 {
				t.Fatalf("requests %d pending %d, want 1 and 1", st.SynstackForwardRequests, n.b.PendingForwards())
			}
			if st := n.a.Stats(); st.TcpRetransSegs == 0 {
				t.Fatal("the client did not retransmit its SYN")
			}
			must(t, req.Refuse())
			n.pump()
			if e := connectResult(t, n.a, fd); e != syscall.ECONNREFUSED {
				t.Fatalf("connect: %v, want ECONNREFUSED", e)
			}
			if err := req.Refuse(); err != ErrForwardDecided {
				t.Errorf("second decision: %v", err)
			}
			if req.Context().Err() == nil {
				t.Error("request context not done after the decision")
			}
			st := n.b.Stats()
			if st.SynstackForwardRefused != 1 || n.b.PendingForwards() != 0 || st.IpInAddrErrors != 0 {
				t.Errorf("refused %d pending %d addr errors %d", st.SynstackForwardRefused, n.b.PendingForwards(), st.IpInAddrErrors)
			}
		})
	}
}

// Unreachable answers with the ICMP code asked for; the client's connect
// fails with the errno Linux maps it to. Reject maps dial errors.
func TestForwardUnreachable(t *testing.T) {
	cases := []struct {
		dst    string
		decide func(r *ForwardRequest) error
		want   syscall.Errno
	}{
		{"198.18.0.1:80", func(r *ForwardRequest) error { return r.Unreachable(UnreachNet) }, syscall.ENETUNREACH},
		{"198.18.0.1:80", func(r *ForwardRequest) error { return r.Unreachable(UnreachHost) }, syscall.EHOSTUNREACH},
		{"198.18.0.1:80", func(r *ForwardRequest) error { return r.Unreachable(UnreachPort) }, syscall.ECONNREFUSED},
		{"198.18.0.1:80", func(r *ForwardRequest) error { return r.Unreachable(UnreachAdmin) }, syscall.EHOSTUNREACH},
		{"[fd99::1]:80", func(r *ForwardRequest) error { return r.Unreachable(UnreachNet) }, syscall.ENETUNREACH},
		{"[fd99::1]:80", func(r *ForwardRequest) error { return r.Unreachable(UnreachHost) }, syscall.EHOSTUNREACH},
		{"[fd99::1]:80", func(r *ForwardRequest) error { return r.Unreachable(UnreachPort) }, syscall.ECONNREFUSED},
		{"[fd99::1]:80", func(r *ForwardRequest) error { return r.Unreachable(UnreachAdmin) }, syscall.EACCES},
		{"198.18.0.1:80", func(r *ForwardRequest) error { return r.Reject(context.DeadlineExceeded) }, syscall.EHOSTUNREACH},
		{"198.18.0.1:80", func(r *ForwardRequest) error { return r.Reject(&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}) }, syscall.ECONNREFUSED},
		{"[fd99::1]:80", func(r *ForwardRequest) error { return r.Reject(syscall.ENETUNREACH) }, syscall.ENETUNREACH},
		{"[fd99::1]:80", func(r *ForwardRequest) error { return r.Reject(errors.New("socks: general failure")) }, syscall.ECONNREFUSED},
	}
	for i, tc := range cases {
		n := newVnet(t, nil)
		var fw collect
		n.b.SetForwarder(&fw, ForwardOptions{})
		fd := connectNB(t, n.a, netip.MustParseAddrPort(tc.dst))
		n.pump()
		must(t, tc.decide(fw.take(t, 1)[0]))
		n.pump()
		if e := connectResult(t, n.a, fd); e != tc.want {
			t.Errorf("case %d (%s): connect %v, want %v", i, tc.dst, e, tc.want)
		}
	}
	// The timeout counts as a timeout, not as an unreachable.
	n := newVnet(t, nil)
	var fw collect
	n.b.SetForwarder(&fw, ForwardOptions{})
	connectNB(t, n.a, netip.MustParseAddrPort("198.18.0.1:80"))
	n.pump()
	must(t, fw.take(t, 1)[0].Reject(context.DeadlineExceeded))
	n.pump()
	if st := n.b.Stats(); st.SynstackForwardTimeouts != 1 || st.SynstackForwardUnreachables != 0 ||
		st.IcmpOutDestUnreachs != 1 || st.IcmpOutMsgs != 1 {
		t.Errorf("timeouts %d unreachables %d icmp out %d/%d", st.SynstackForwardTimeouts,
			st.SynstackForwardUnreachables, st.IcmpOutDestUnreachs, st.IcmpOutMsgs)
	}
}

// Without forwarding, packets for other addresses are dropped as before;
// with it, listeners keep the stack's own addresses (a wildcard listener
// does not take a foreign destination) and a SYN to one of its own
// addresses without a listener is forwarded too.
func TestForwardListenersAndAddresses(t *testing.T) {
	n := newVnet(t, nil)
	fd := connectNB(t, n.a, netip.MustParseAddrPort("198.18.0.7:80"))
	n.pump()
	if st := n.b.Stats(); st.IpInAddrErrors != 1 {
		t.Fatalf("IpInAddrErrors %d without forwarding, want 1", st.IpInAddrErrors)
	}
	n.a.Sockets().Close(fd)

	var fw collect
	n.b.SetForwarder(&fw, ForwardOptions{})
	lfd := listenOn(t, n.b, netip.AddrPortFrom(netip.IPv4Unspecified(), 80), 8, true)
	cfd, sfd := n.connect(netip.AddrPortFrom(addrB, 80), lfd) // own address: the listener
	fw.take(t, 0)
	_, _ = cfd, sfd
	connectNB(t, n.a, netip.MustParseAddrPort("198.18.0.7:80")) // foreign: forwarded despite the wildcard listener
	own := connectNB(t, n.a, netip.AddrPortFrom(addrB, 81))     // own address, no listener: refused, never forwarded
	n.pump()
	reqs := fw.take(t, 1)
	if reqs[0].Local.String() != "198.18.0.7:80" {
		t.Errorf("request for %v", reqs[0].Local)
	}
	if e := connectResult(t, n.a, own); e != syscall.ECONNREFUSED {
		t.Errorf("connect to the stack's own address with no listener: %v, want ECONNREFUSED", e)
	}
	// ICMP echo to a foreign address is not answered.
	if st := n.b.Stats(); st.IcmpOutMsgs != 0 {
		t.Errorf("ICMP sent: %d", st.IcmpOutMsgs)
	}
}

// synPacket builds an IPv4 SYN (or another segment) from src to dst.
func synPacket(src, dst netip.AddrPort, sq uint32, flags wire.TCPFlags) []byte {
	th := wire.TCP{SrcPort: src.Port(), DstPort: dst.Port(), Seq: sq, Flags: flags, Window: 65535,
		Options: wire.TCPOptions{MSS: 1460}}
	b := make([]byte, wire.IPv4HeaderLen+th.HeaderLen())
	th.Emit(b[wire.IPv4HeaderLen:])
	wire.SetTCPChecksum(b[wire.IPv4HeaderLen:], src.Addr(), dst.Addr())
	ih := wire.IPv4{TTL: 64, Protocol: wire.ProtoTCP, Src: src.Addr(), Dst: dst.Addr()}
	ih.Emit(b, th.HeaderLen())
	return b
}

// A SYN flood towards a forwarder that never decides (a black-hole
// upstream) holds at most MaxPending requests: the rest are dropped and
// counted, and the heap does not grow with the flood.
func TestForwardPendingBound(t *testing.T) {
	n := newVnet(t, nil)
	var offered int
	n.b.SetForwarder(ForwarderFunc(func(*ForwardRequest) { offered++ }), ForwardOptions{MaxPending: 256})
	flood := func(from, count int) {
		for i := from; i < from+count; i++ {
			src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{172, 16, byte(i >> 8), byte(i)}), uint16(1024+i%50000))
			dst := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), 80)
			n.b.DeliverPacket(synPacket(src, dst, uint32(i), wire.FlagSYN))
		}
		n.mu.Lock()
		n.q = nil // the forwarder answers nothing: nothing to deliver
		n.mu.Unlock()
	}
	flood(0, 1000)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	flood(1000, 100_000)
	runtime.GC()
	runtime.ReadMemStats(&after)
	st := n.b.Stats()
	if offered != 256 || n.b.PendingForwards() != 256 {
		t.Fatalf("offered %d pending %d, want 256", offered, n.b.PendingForwards())
	}
	if st.SynstackForwardPendingDrops != 101_000-256 || st.SynstackForwardRequests != 256 {
		t.Fatalf("pending drops %d requests %d", st.SynstackForwardPendingDrops, st.SynstackForwardRequests)
	}
	if grow := int64(after.HeapInuse) - int64(before.HeapInuse); grow > 1<<20 {
		t.Errorf("heap grew by %d bytes during a flood of 100000 SYNs", grow)
	}
	if st.TcpOutSegs != 0 {
		t.Errorf("%d segments sent to a flood that was never answered", st.TcpOutSegs)
	}
}

// One client whose destinations never answer holds at most
// MaxPendingPerSource requests: the others' SYNs are still offered.
func TestForwardPendingPerSource(t *testing.T) {
	n := newVnet(t, nil)
	var offered []*ForwardRequest
	n.b.SetForwarder(ForwarderFunc(func(r *ForwardRequest) { offered = append(offered, r) }), ForwardOptions{MaxPending: 64, MaxPendingPerSource: 8})
	greedy := netip.MustParseAddr("172.16.0.1")
	for i := range 100 {
		dst := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 0, byte(i)}), 80)
		n.b.DeliverPacket(synPacket(netip.AddrPortFrom(greedy, uint16(2000+i)), dst, uint32(i), wire.FlagSYN))
	}
	for i := range 20 {
		src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{172, 16, 1, byte(i)}), 3000)
		n.b.DeliverPacket(synPacket(src, netip.MustParseAddrPort("198.18.1.1:80"), 1, wire.FlagSYN))
	}
	st := n.b.Stats()
	if len(offered) != 28 || st.SynstackForwardSourceDrops != 92 || st.SynstackForwardPendingDrops != 92 {
		t.Fatalf("offered %d, source drops %d, pending drops %d: want 8 + 20 offered, 92 dropped", len(offered), st.SynstackForwardSourceDrops, st.SynstackForwardPendingDrops)
	}
	// A decision frees the client's slot.
	must(t, offered[0].Drop())
	n.b.DeliverPacket(synPacket(netip.AddrPortFrom(greedy, 5000), netip.MustParseAddrPort("198.18.2.1:80"), 1, wire.FlagSYN))
	if len(offered) != 29 {
		t.Fatalf("after one decision: %d offered, want 29", len(offered))
	}
}

// A RST from the client withdraws its pending request: the context is
// done with ECONNRESET, the slot is free, and decisions fail. Stack.Close
// withdraws the rest with net.ErrClosed.
func TestForwardWithdraw(t *testing.T) {
	n := newVnet(t, nil)
	var fw collect
	n.b.SetForwarder(&fw, ForwardOptions{})
	src := netip.MustParseAddrPort("172.16.0.1:5000")
	dst := netip.MustParseAddrPort("198.18.0.1:80")
	n.b.DeliverPacket(synPacket(src, dst, 1000, wire.FlagSYN))
	n.b.DeliverPacket(synPacket(netip.MustParseAddrPort("172.16.0.1:5001"), dst, 1000, wire.FlagSYN))
	reqs := fw.take(t, 2)
	n.b.DeliverPacket(synPacket(src, dst, 1001, wire.FlagRST))
	if err := context.Cause(reqs[0].Context()); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("context cause %v, want ECONNRESET", err)
	}
	if n.b.PendingForwards() != 1 {
		t.Fatalf("pending %d", n.b.PendingForwards())
	}
	if _, err := reqs[0].Accept(); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("Accept after the client's RST: %v", err)
	}
	n.b.Close()
	if err := context.Cause(reqs[1].Context()); err != net.ErrClosed {
		t.Fatalf("context cause after Close: %v", err)
	}
	if _, err := reqs[1].Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v", err)
	}
}

// Accept completes the handshake: the connection's local address is the
// original destination, data flows both ways, a reset is counted. Real
// clock, link/pipe.
func TestForwardAccept(t *testing.T) {
	a, b := pipeStacks(t)
	accepted := make(chan *TCPConn, 1)
	b.SetForwarder(ForwarderFunc(func(req *ForwardRequest) {
		go func() {
			c, err := req.Accept()
			if err != nil {
				t.Error(err)
				close(accepted)
				return
			}
			accepted <- c
		}()
	}), ForwardOptions{})
	c, err := a.Dial("tcp", "203.0.113.9:443")
	must(t, err)
	defer c.Close()
	s := <-accepted
	if s == nil {
		t.FailNow()
	}
	defer s.Close()
	if s.LocalAddr().String() != "203.0.113.9:443" || s.RemoteAddr().String() != c.LocalAddr().String() {
		t.Fatalf("forwarded connection %v <- %v, client %v", s.LocalAddr(), s.RemoteAddr(), c.LocalAddr())
	}
	_, err = c.Write([]byte("ping"))
	must(t, err)
	buf := make([]byte, 4)
	_, err = io.ReadFull(s, buf)
	must(t, err)
	_, err = s.Write([]byte("pong"))
	must(t, err)
	_, err = io.ReadFull(c, buf)
	must(t, err)
	if string(buf) != "pong" {
		t.Fatalf("read %q", buf)
	}
	must(t, c.(*TCPConn).SetLinger(0))
	c.Close()
	if _, err := s.Read(buf); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after the client's reset: %v", err)
	}
	if st := b.Stats(); st.SynstackForwarded != 1 || st.SynstackForwardResets != 1 {
		t.Errorf("forwarded %d resets %d", st.SynstackForwarded, st.SynstackForwardResets)
	}
}
