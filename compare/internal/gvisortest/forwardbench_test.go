package gvisortest_test

// BenchmarkForwardConnect and BenchmarkForwardRelay: synstack's forwarder
// (Stack.SetForwarder with package forward's Forwarder) next to gVisor's
// (tcp.NewForwarder, through gvisortest.Peer.Forward) in one run, set up
// the same way:
//
//	client stack --in-memory link (MTU 1500)--> forwarding stack --kernel socket--> 127.0.0.1 listener
//
// Both forwarders dial the upstream before they answer the client's SYN
// (deferred handshake) and relay with the same code, forward.Relay (32 KiB
// buffer each way, half-close passed on), so what differs is the stack.
// The client is a synstack stack or a gVisor stack, the same for both
// forwarders of a pair of results. The links are what each pairing has:
// link/pipe between two synstack stacks, gvisortest's channel link between
// synstack and gVisor, two channel links joined between two gVisor stacks
// (one more goroutine hand-off per packet there). Run with
//
//	go test -run '^$' -bench 'BenchmarkForward(Connect|Relay)' -benchtime 2s -count 3 ./internal/gvisortest/
//
// docs/forwarding.md holds the figures of one run, as ratios.

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/compare/internal/gvisortest"
	sfwd "github.com/synstack/synstack/forward"
	"github.com/synstack/synstack/internal/kernelnet"
	"github.com/synstack/synstack/link"
	"github.com/synstack/synstack/link/pipe"
)

const (
	fwdMTU     = 1500
	fwdPending = 1024 // undecided requests: synstack's default MaxPending, gVisor's maxInFlight
)

var (
	fwdClientAddr = netip.MustParsePrefix("10.0.0.2/24")
	fwdStackAddr  = netip.MustParsePrefix("10.0.0.1/24")
)

// fwdDst is the i-th original destination: addresses in 198.18.0.0/16
// (RFC 2544's benchmarking range), so that successive connections have
// different 4-tuples whatever the client's port choice.
func fwdDst(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), 80)
}

// fwdPath is a client stack joined to a forwarding stack whose forwarder
// relays every connection to one upstream.
type fwdPath struct {
	dial   func(ctx context.Context, dst netip.AddrPort) (net.Conn, error)
	active func() int64 // relays running
	// timeouts counts retransmission timeouts (SYN ones included) in both
	// stacks: a figure taken with some is one that loss, not speed, set.
	timeouts func() uint64
	stops    []func()
}

// close tears the path down, forwarder first.
func (p *fwdPath) close() {
	for i := len(p.stops) - 1; i >= 0; i-- {
		p.stops[i]()
	}
}

// gvisorForwarder is the gVisor arm's handler, shaped as package
// forward's deferred mode: dial the upstream, then complete the handshake
// (or refuse), then forward.Relay.
type gvisorForwarder struct {
	up     string
	ctx    context.Context
	cancel context.CancelFunc
	active atomic.Int64

	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

func newGvisorForwarder(up string) *gvisorForwarder {
	f := &gvisorForwarder{up: up}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	return f
}

func (f *gvisorForwarder) handle(r *gvisortest.ForwardRequest) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		r.Refuse()
		return
	}
	f.wg.Add(1)
	f.mu.Unlock()
	defer f.wg.Done()
	dctx, cancel := context.WithTimeout(f.ctx, sfwd.DefaultDialTimeout)
	up, err := (&net.Dialer{}).DialContext(dctx, "tcp", f.up)
	cancel()
	if err != nil {
		r.Refuse()
		return
	}
	c, err := r.Accept()
	if err != nil {
		up.Close()
		return
	}
	f.active.Add(1)
	defer f.active.Add(-1)
	sfwd.Relay(f.ctx, c, up, sfwd.RelayOptions{})
}

// close resets the relays and waits for the handlers.
func (f *gvisorForwarder) close() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.cancel()
	f.wg.Wait()
}

// newFwdPath builds the client ("synstack" or "gvisor") and forwarder
// ("synstack" or "gvisor") pair relaying to up.
func newFwdPath(tb testing.TB, client, fwder, up string) *fwdPath {
	tb.Helper()
	p := &fwdPath{}
	fail := func(err error) {
		p.close()
		tb.Fatal(err)
	}
	var timeouts []func() uint64
	p.timeouts = func() uint64 {
		var n uint64
		for _, f := range timeouts {
			n += f()
		}
		return n
	}
	stack := func(l link.Endpoint, addr netip.Prefix) *synstack.Stack {
		s, err := synstack.New(synstack.Config{Link: l, Addrs: []netip.Prefix{addr}})
		if err != nil {
			fail(err)
		}
		p.stops = append(p.stops, func() { s.Close() })
		timeouts = append(timeouts, func() uint64 { return s.Stats().TcpExtTCPTimeouts })
		return s
	}
	peer := func(addr netip.Prefix) *gvisortest.Peer {
		g, err := gvisortest.New(fwdMTU, addr)
		if err != nil {
			fail(err)
		}
		p.stops = append(p.stops, g.Close)
		timeouts = append(timeouts, g.Stack.Stats().TCP.Timeouts.Value)
		return g
	}

	// The client's end of the link, and the forwarder's.
	var (
		clientLink, fwdLink link.Endpoint
		clientPeer, fwdPeer *gvisortest.Peer
	)
	switch client + "/" + fwder {
	case "synstack/synstack":
		a, b := pipe.New(fwdMTU)
		clientLink, fwdLink = a, b
	case "synstack/gvisor":
		fwdPeer = peer(fwdStackAddr)
		clientLink = fwdPeer.Link()
	case "gvisor/synstack":
		clientPeer = peer(fwdClientAddr)
		fwdLink = clientPeer.Link()
	case "gvisor/gvisor":
		clientPeer = peer(fwdClientAddr)
		fwdPeer = peer(fwdStackAddr)
		clientPeer.Link().Attach(forward{fwdPeer.Link()})
		fwdPeer.Link().Attach(forward{clientPeer.Link()})
	default:
		tb.Fatalf("no path %s/%s", client, fwder)
	}

	if fwdPeer == nil {
		s := stack(fwdLink, fwdStackAddr)
		fw := &sfwd.Forwarder{Deferred: true, Target: sfwd.To(up)}
		s.SetForwarder(fw, synstack.ForwardOptions{MaxPending: fwdPending})
		p.stops = append(p.stops, func() { fw.Close() })
		p.active = func() int64 { return fw.Stats().Active }
	} else {
		fw := newGvisorForwarder(up)
		if err := fwdPeer.Forward(fwdPending, fw.handle); err != nil {
			fail(err)
		}
		p.stops = append(p.stops, fw.close)
		p.active = fw.active.Load
	}

	if clientPeer == nil {
		s := stack(clientLink, fwdClientAddr)
		p.dial = func(ctx context.Context, dst netip.AddrPort) (net.Conn, error) {
			return s.DialContext(ctx, "tcp", dst.String())
		}
	} else {
		p.dial = func(ctx context.Context, dst netip.AddrPort) (net.Conn, error) {
			return clientPeer.Dial(ctx, dst)
		}
	}
	return p
}

// sinkUpstream reads to the end of the stream, then answers with the
// number of bytes it read (8 bytes, big-endian).
func sinkUpstream(c *net.TCPConn) {
	n, _ := io.Copy(io.Discard, c)
	binary.Write(c, binary.BigEndian, n)
}

// sourceUpstream reads a byte count (8 bytes, big-endian) and sends that
// many bytes, then closes.
func sourceUpstream(c *net.TCPConn) {
	var n int64
	if binary.Read(c, binary.BigEndian, &n) != nil {
		return
	}
	buf := make([]byte, 64<<10)
	for n > 0 {
		k := min(n, int64(len(buf)))
		if _, err := c.Write(buf[:k]); err != nil {
			return
		}
		n -= k
	}
}

// connectOnce is one short connection through the forwarder: connect, a
// 1-byte request, its 1-byte echo, the client's FIN and the upstream's.
func connectOnce(ctx context.Context, p *fwdPath, i int) error {
	c, err := p.dial(ctx, fwdDst(i))
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Write([]byte{byte(i)}); err != nil {
		return err
	}
	if err := c.(closeWriter).CloseWrite(); err != nil {
		return err
	}
	got, err := io.ReadAll(c)
	if err != nil {
		return err
	}
	if len(got) != 1 || got[0] != byte(i) {
		return fmt.Errorf("echo %x, want %02x", got, byte(i))
	}
	return nil
}

// relayUp sends n bytes through the forwarder to sinkUpstream and checks
// the count it answers.
func relayUp(ctx context.Context, p *fwdPath, n int64, buf []byte) error {
	c, err := p.dial(ctx, fwdDst(0))
	if err != nil {
		return err
	}
	defer c.Close()
	for left := n; left > 0; {
		k, err := c.Write(buf[:min(left, int64(len(buf)))])
		left -= int64(k)
		if err != nil {
			return err
		}
	}
	if err := c.(closeWriter).CloseWrite(); err != nil {
		return err
	}
	var got int64
	if err := binary.Read(c, binary.BigEndian, &got); err != nil {
		return err
	}
	if got != n {
		return fmt.Errorf("upstream read %d bytes, want %d", got, n)
	}
	return nil
}

// relayDown asks sourceUpstream for n bytes through the forwarder and
// reads them to the end of the stream.
func relayDown(ctx context.Context, p *fwdPath, n int64, buf []byte) error {
	c, err := p.dial(ctx, fwdDst(0))
	if err != nil {
		return err
	}
	defer c.Close()
	if err := binary.Write(c, binary.BigEndian, n); err != nil {
		return err
	}
	var got int64
	for {
		k, err := c.Read(buf)
		got += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if got != n {
		return fmt.Errorf("read %d bytes, want %d", got, n)
	}
	return nil
}

// waitIdle waits (up to 10 s) until no relay runs.
func waitIdle(tb testing.TB, p *fwdPath) {
	tb.Helper()
	for start := time.Now(); p.active() != 0; time.Sleep(time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			tb.Fatalf("%d relays still running", p.active())
		}
	}
}

var (
	fwdClients = []string{"synstack", "gvisor"}
	fwdStacks  = []string{"synstack", "gvisor"}
)

// BenchmarkForwardConnect: new connections per second through each
// forwarder, one client at a time and 8 at once; each connection is a
// 1-byte request and its echo from the kernel upstream, then both FINs.
// conns/s is the figure; ns/op its inverse.
func BenchmarkForwardConnect(b *testing.B) {
	for _, workers := range []int{1, 8} {
		for _, client := range fwdClients {
			for _, fwder := range fwdStacks {
				name := fmt.Sprintf("clients=%d/client=%s/forwarder=%s", workers, client, fwder)
				b.Run(name, func(b *testing.B) {
					up := kernelnet.Serve(b, kernelnet.Echo)
					p := newFwdPath(b, client, fwder, up)
					defer p.close()
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					defer cancel()
					if err := connectOnce(ctx, p, 0); err != nil {
						b.Fatal(err)
					}
					var next atomic.Int64
					var wg sync.WaitGroup
					b.ResetTimer()
					for range workers {
						wg.Add(1)
						go func() {
							defer wg.Done()
							for {
								i := int(next.Add(1))
								if i > b.N {
									return
								}
								if err := connectOnce(ctx, p, i); err != nil {
									b.Errorf("connection %d: %v", i, err)
									cancel()
									return
								}
							}
						}()
					}
					wg.Wait()
					b.StopTimer()
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "conns/s")
					b.ReportMetric(float64(p.timeouts()), "RTOs")
					waitIdle(b, p)
				})
			}
		}
	}
}

// BenchmarkForwardRelay: one bulk stream through each forwarder, client to
// upstream ("up") and upstream to client ("down"), 1 MiB per op (MB/s).
func BenchmarkForwardRelay(b *testing.B) {
	const chunk = 1 << 20
	for _, dir := range []string{"up", "down"} {
		for _, client := range fwdClients {
			for _, fwder := range fwdStacks {
				name := fmt.Sprintf("%s/client=%s/forwarder=%s", dir, client, fwder)
				b.Run(name, func(b *testing.B) {
					handle, move := sinkUpstream, relayUp
					if dir == "down" {
						handle, move = sourceUpstream, relayDown
					}
					up := kernelnet.Serve(b, handle)
					p := newFwdPath(b, client, fwder, up)
					defer p.close()
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
					defer cancel()
					buf := make([]byte, 64<<10)
					b.SetBytes(chunk)
					b.ResetTimer()
					if err := move(ctx, p, int64(b.N)*chunk, buf); err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					b.ReportMetric(float64(p.timeouts()), "RTOs")
					waitIdle(b, p)
				})
			}
		}
	}
}

// TestForwardBenchPaths runs each path of the benchmarks briefly, so that
// the default suite keeps them working: a few connections and 1 MiB each
// way through both forwarders from both clients.
func TestForwardBenchPaths(t *testing.T) {
	for _, client := range fwdClients {
		for _, fwder := range fwdStacks {
			t.Run("client="+client+"/forwarder="+fwder, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				buf := make([]byte, 64<<10)
				for _, c := range []struct {
					handle func(*net.TCPConn)
					run    func(p *fwdPath) error
				}{
					{kernelnet.Echo, func(p *fwdPath) error {
						for i := range 5 {
							if err := connectOnce(ctx, p, i); err != nil {
								return err
							}
						}
						return nil
					}},
					{sinkUpstream, func(p *fwdPath) error { return relayUp(ctx, p, 1<<20, buf) }},
					{sourceUpstream, func(p *fwdPath) error { return relayDown(ctx, p, 1<<20, buf) }},
				} {
					p := newFwdPath(t, client, fwder, kernelnet.Serve(t, c.handle))
					err := c.run(p)
					if err == nil {
						waitIdle(t, p)
					}
					p.close()
					if err != nil {
						t.Fatal(err)
					}
				}
			})
		}
	}
}
