package forward

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/clock"
	"github.com/synstack/synstack/internal/kernelnet"
)

// answerDNS is a DNS-like upstream: it answers a query q with "answer:"+q.
func answerDNS(q []byte) []byte { return append([]byte("answer:"), q...) }

// silent is an upstream that never answers.
func silent([]byte) []byte { return nil }

// udpTo is a UDP Target that sends every flow to addr.
func udpTo(addr string) func(*synstack.UDPForwardRequest) string {
	return func(*synstack.UDPForwardRequest) string { return addr }
}

// exchange sends q on c and reads the answer, which must be want.
func exchange(t *testing.T, c net.Conn, q, want string) {
	t.Helper()
	if _, err := c.Write([]byte(q)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(30 * time.Second)) // a hang guard
	buf := make([]byte, 2000)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != want {
		t.Fatalf("read %q, %v: want %q", buf[:n], err, want)
	}
}

// A DNS-like exchange through the forwarder, IPv4 and IPv6: the upstream
// on the host's loopback answers, the client hears the answer from the
// original destination, several queries share one flow, and the counters
// say so. Forwarder.Close closes the flows still open.
func TestForwardUDPExchange(t *testing.T) {
	up := kernelnet.ServeUDP(t, answerDNS)
	var (
		mu      sync.Mutex
		targets []string
	)
	fw := &Forwarder{UDP: UDPOptions{Target: func(req *synstack.UDPForwardRequest) string {
		mu.Lock()
		defer mu.Unlock()
		targets = append(targets, req.Local.String())
		return up
	}}}
	client, fwd := setup(t, fw, synstack.ForwardOptions{})
	dsts := []string{"198.18.0.53:53", "[fd99::53]:53"}
	var up1, down1 uint64
	for _, dst := range dsts {
		c, err := client.Dial("udp", dst)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for i := range 3 {
			q := fmt.Sprintf("query %d for %s", i, dst)
			exchange(t, c, q, "answer:"+q)
			up1 += uint64(len(q))
			down1 += uint64(len("answer:" + q))
		}
		if ra := c.RemoteAddr().String(); ra != dst {
			t.Errorf("remote address %s, want %s", ra, dst)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(targets) != fmt.Sprint(dsts) {
		t.Errorf("flows offered for %v, want %v", targets, dsts)
	}
	// The counts are added once a write returned: the answer may be back,
	// and read, before either.
	waitFor(t, func() bool { st := fw.Stats(); return st.UDPDatagramsUp == 6 && st.UDPDatagramsDown == 6 })
	st := fw.Stats()
	if st.UDPRequests != 2 || st.UDPFlows != 2 || st.UDPActive != 2 || st.UDPDatagramsUp != 6 || st.UDPDatagramsDown != 6 ||
		st.UDPBytesUp != up1 || st.UDPBytesDown != down1 {
		t.Errorf("stats %+v: want 2 requests, 2 flows active, 6 datagrams and %d bytes up, 6 and %d down", st.UDPStats, up1, down1)
	}
	if n := fwd.UDPFlows(); n != 2 {
		t.Errorf("the stack holds %d flows, want 2", n)
	}
	fw.Close()
	if n := fwd.UDPFlows(); n != 0 {
		t.Errorf("the stack holds %d flows after Forwarder.Close, want 0", n)
	}
	if st := fw.Stats(); st.UDPActive != 0 || st.UDPExpired != 0 {
		t.Errorf("after Close: %d active, %d expired; want 0 and 0", st.UDPActive, st.UDPExpired)
	}
}

// The idle timeouts, on a virtual clock: a flow whose upstream never
// answered closes after Timeout (30 s) and not before, one that was
// answered after StreamTimeout (120 s) from its last datagram and not
// before; each counts as expired and gives its place in the stack back.
func TestForwardUDPExpiry(t *testing.T) {
	vc := clock.NewVirtual(time.Unix(1e9, 0))
	answering := kernelnet.ServeUDP(t, answerDNS)
	quiet := kernelnet.ServeUDP(t, silent)
	fw := &Forwarder{UDP: UDPOptions{Clock: vc, Target: func(req *synstack.UDPForwardRequest) string {
		if req.Local.Port() == 53 {
			return answering
		}
		return quiet
	}}}
	client, fwd := setup(t, fw, synstack.ForwardOptions{})

	// Unanswered.
	c, err := client.Dial("udp", "198.18.0.1:9")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("hello?"))
	waitFor(t, func() bool { return fw.Stats().UDPDatagramsUp == 1 })
	vc.Advance(DefaultUDPTimeout - time.Second)
	if st := fw.Stats(); st.UDPExpired != 0 || fwd.UDPFlows() != 1 {
		t.Fatalf("after 29 s: %d expired, %d flows; want 0 and 1", st.UDPExpired, fwd.UDPFlows())
	}
	vc.Advance(time.Second)
	if st := fw.Stats(); st.UDPExpired != 1 || fwd.UDPFlows() != 0 {
		t.Fatalf("after 30 s: %d expired, %d flows; want 1 and 0", st.UDPExpired, fwd.UDPFlows())
	}
	waitFor(t, func() bool { return fw.Stats().UDPActive == 0 })

	// Answered: 120 s from the last datagram, which came 10 s in.
	d, err := client.Dial("udp", "198.18.0.1:53")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	exchange(t, d, "q1", "answer:q1")
	vc.Advance(10 * time.Second)
	exchange(t, d, "q2", "answer:q2")
	vc.Advance(DefaultUDPStreamTimeout - time.Second)
	if st := fw.Stats(); st.UDPExpired != 1 || fwd.UDPFlows() != 1 {
		t.Fatalf("119 s after the last answer: %d expired, %d flows; want 1 and 1", st.UDPExpired, fwd.UDPFlows())
	}
	vc.Advance(time.Second)
	if st := fw.Stats(); st.UDPExpired != 2 || fwd.UDPFlows() != 0 {
		t.Fatalf("120 s after the last answer: %d expired, %d flows; want 2 and 0", st.UDPExpired, fwd.UDPFlows())
	}
	waitFor(t, func() bool { return fw.Stats().UDPActive == 0 })

	// The client's next datagram opens a new flow.
	exchange(t, d, "q3", "answer:q3")
	if st := fw.Stats(); st.UDPFlows != 3 {
		t.Errorf("%d flows relayed, want 3", st.UDPFlows)
	}
}

// Dial errors: a refused or unreachable upstream refuses the flow (the
// client's connected socket reads ECONNREFUSED), another error drops it;
// an upstream that answers with ICMP port unreachable ends the flow;
// Disabled refuses every flow; Check refuses loops.
func TestForwardUDPRefused(t *testing.T) {
	closed := func() string {
		pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		return pc.LocalAddr().String()
	}()
	fw := &Forwarder{
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			switch addr {
			case "198.18.0.1:1", "[fd99::1]:1":
				return nil, &net.OpError{Op: "dial", Net: network, Err: syscall.ECONNREFUSED}
			case "198.18.0.1:2":
				return nil, &net.OpError{Op: "dial", Net: network, Err: syscall.ENETUNREACH}
			case "198.18.0.1:3":
				return nil, errors.New("no")
			case "198.18.0.1:4":
				addr = closed
			}
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
		UDP: UDPOptions{Check: func(req *synstack.UDPForwardRequest, target string) error {
			if req.Local.Port() == 5 {
				return fmt.Errorf("back into the device: %w", ErrLoop)
			}
			return nil
		}},
	}
	client, fwd := setup(t, fw, synstack.ForwardOptions{})
	// read sends a datagram to dst and reads, waiting at most wait.
	read := func(dst string, wait time.Duration) error {
		c, err := client.Dial("udp", dst)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("x"))
		c.SetReadDeadline(time.Now().Add(wait))
		_, err = c.Read(make([]byte, 10))
		return err
	}
	for _, dst := range []string{"198.18.0.1:1", "[fd99::1]:1", "198.18.0.1:2", "198.18.0.1:5"} {
		if err := read(dst, 30*time.Second); !errors.Is(err, syscall.ECONNREFUSED) { // a hang guard
			t.Errorf("%s: %v, want ECONNREFUSED", dst, err)
		}
	}
	if err := read("198.18.0.1:3", 300*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) { // outcome: no answer
		t.Errorf("a dropped flow: %v, want no answer", err)
	}
	waitFor(t, func() bool { return fw.Stats().UDPDialDrops == 1 })
	read("198.18.0.1:4", 300*time.Millisecond)
	waitFor(t, func() bool { return fw.Stats().UDPUpstreamRefused == 1 })
	waitFor(t, func() bool { return fwd.UDPFlows() == 0 })
	st := fw.Stats()
	if st.UDPRefused != 3 || st.UDPDialDrops != 1 || st.UDPLoops != 1 || st.UDPFlows != 1 || st.UDPActive != 0 {
		t.Errorf("stats %+v: want 3 refused, 1 dropped, 1 loop, 1 flow ended", st.UDPStats)
	}

	off := &Forwarder{UDP: UDPOptions{Disabled: true}}
	client2, _ := setup(t, off, synstack.ForwardOptions{})
	c, err := client2.Dial("udp", "198.18.0.1:53")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("x"))
	c.SetReadDeadline(time.Now().Add(30 * time.Second)) // a hang guard
	if _, err := c.Read(make([]byte, 10)); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("UDP disabled: %v, want ECONNREFUSED", err)
	}
}

// MaxFlows and MaxFlowsPerSource: flows beyond them are dropped and
// counted, nothing dialed; a closed flow frees its slot.
func TestForwardUDPLimits(t *testing.T) {
	vc := clock.NewVirtual(time.Unix(1e9, 0))
	up := kernelnet.ServeUDP(t, silent)
	fw := &Forwarder{UDP: UDPOptions{Clock: vc, Target: udpTo(up), MaxFlows: 3, MaxFlowsPerSource: 2}}
	client, _ := setup(t, fw, synstack.ForwardOptions{})
	other := func(addr string) *synstack.UDPConn { // a second client address
		c, err := client.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	v4, v6 := other("10.0.0.2:0"), other("[fd00::2]:0")
	for i := range 3 {
		v4.WriteToUDPAddrPort([]byte("x"), netip.MustParseAddrPort(fmt.Sprintf("198.18.0.1:%d", 100+i)))
	}
	waitFor(t, func() bool { st := fw.Stats(); return st.UDPFlows+st.UDPSourceLimitDrops == 3 })
	for i := range 2 {
		v6.WriteToUDPAddrPort([]byte("x"), netip.MustParseAddrPort(fmt.Sprintf("[fd99::1]:%d", 100+i)))
	}
	waitFor(t, func() bool { st := fw.Stats(); return st.UDPFlows+st.UDPLimitDrops == 4 })
	st := fw.Stats()
	if st.UDPFlows != 3 || st.UDPSourceLimitDrops != 1 || st.UDPLimitDrops != 1 {
		t.Fatalf("stats %+v: want 3 flows, 1 dropped per source, 1 for the bound", st.UDPStats)
	}
	waitFor(t, func() bool { return fw.Stats().UDPDatagramsUp == 3 }) // the timers are armed
	vc.Advance(DefaultUDPTimeout)
	waitFor(t, func() bool { return fw.Stats().UDPActive == 0 })
	v6.WriteToUDPAddrPort([]byte("x"), netip.MustParseAddrPort("[fd99::1]:101"))
	waitFor(t, func() bool { return fw.Stats().UDPFlows == 4 })
}

// udpMany is the number of distinct 5-tuples TestForwardUDPManyFlows
// opens (fewer under the race detector, which makes each one slow).
var udpMany = 100_000

// raceEnabled is set under the race detector.
var raceEnabled bool

// 100,000 distinct 5-tuples, each answered once and expired after a tiny
// timeout, at most a window of them open at once: every flow closes (the
// stack's count is back to 0), no goroutine is left, and the heap after
// them (after GC) is what it was after the first thousand.
func TestForwardUDPManyFlows(t *testing.T) {
	if testing.Short() {
		t.Skip("short: skipping 100,000 flows")
	}
	up := kernelnet.ServeUDP(t, kernelnet.EchoUDP)
	// A flow lives until its answer (at most 50 ms), then 1 ms more.
	fw := &Forwarder{UDP: UDPOptions{Target: udpTo(up), Timeout: 50 * time.Millisecond, StreamTimeout: time.Millisecond}}
	client, fwd := setup(t, fw, synstack.ForwardOptions{})
	c, err := client.ListenUDP("udp4", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// At most window flows open and transit datagrams on their way to
	// the forwarding stack (the pipe drops what overflows its queue).
	const window, transit = 256, 64
	arrived := func() int { return int(fwd.Stats().UdpInDatagrams) }
	flows := func(from, to int) {
		for i := from; i < to; i++ {
			for i-arrived() >= transit || fwd.UDPFlows() >= window {
				time.Sleep(50 * time.Microsecond)
			}
			dst := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), uint16(1000+i>>16))
			if _, err := c.WriteToUDPAddrPort([]byte("x"), dst); err != nil {
				t.Fatal(err)
			}
		}
		for start := time.Now(); ; time.Sleep(5 * time.Millisecond) {
			st := fw.Stats()
			if arrived() >= to-transit && st.UDPActive == 0 && fwd.UDPFlows() == 0 {
				break
			}
			if time.Since(start) > time.Minute { // a hang guard
				t.Fatalf("flows %d to %d not all ended in a minute: %d in the stack, %+v\nstack: %+v", from, to, fwd.UDPFlows(), st.UDPStats, fwd.Stats())
			}
		}
	}
	heap := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	flows(0, 1000)
	before := heap()
	flows(1000, udpMany)
	after := heap()
	st := fw.Stats()
	t.Logf("%d flows: %d relayed, %d expired, %d datagrams down; heap in use %d KiB after 1000, %d KiB after all",
		udpMany, st.UDPFlows, st.UDPExpired, st.UDPDatagramsDown, before>>10, after>>10)
	if st.UDPFlows < uint64(udpMany)*99/100 || st.UDPExpired != st.UDPFlows {
		t.Errorf("%d flows relayed, %d expired: want (nearly) all %d, each expired", st.UDPFlows, st.UDPExpired, udpMany)
	}
	if fwd.UDPFlows() != 0 || st.UDPActive != 0 {
		t.Errorf("%d flows in the stack, %d active, want 0", fwd.UDPFlows(), st.UDPActive)
	}
	const slack = 4 << 20
	if after > before+slack {
		t.Errorf("heap in use grew from %d KiB to %d KiB over %d flows (more than %d KiB)", before>>10, after>>10, udpMany, slack>>10)
	}
}

// Relaying a datagram each way allocates nothing in steady state: the
// relay's buffers are pooled and its reads and writes go straight
// between the two sockets (the client's stack and the host's loopback
// echo counted in).
func TestForwardUDPDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop buffers")
	}
	up := kernelnet.ServeUDP(t, kernelnet.EchoUDP)
	fw := &Forwarder{UDP: UDPOptions{Target: udpTo(up)}}
	client, _ := setup(t, fw, synstack.ForwardOptions{})
	c, err := client.Dial("udp", "198.18.0.53:53")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	q := []byte("a query of some length")
	buf := make([]byte, 100)
	roundTrip := func() {
		if _, err := c.Write(q); err != nil {
			t.Fatal(err)
		}
		if n, err := c.Read(buf); err != nil || n != len(q) {
			t.Fatalf("read %d bytes, %v", n, err)
		}
	}
	c.SetReadDeadline(time.Now().Add(time.Minute)) // a hang guard
	roundTrip()
	if n := testing.AllocsPerRun(1000, roundTrip); n > 0 {
		t.Errorf("%.2f allocations per datagram each way, want 0", n)
	}
}

// A flood of new 5-tuples to an upstream that never answers: the stack
// offers MaxUDPFlows flows and drops the rest (counted), the heap grows by
// those flows' buffers and no more, and once their timeout passes (a
// virtual clock) every flow is closed and the heap is back.
func TestForwardUDPFlood(t *testing.T) {
	vc := clock.NewVirtual(time.Unix(1e9, 0))
	up := kernelnet.ServeUDP(t, silent)
	fw := &Forwarder{UDP: UDPOptions{Clock: vc, Target: udpTo(up)}}
	const maxFlows, flood = 256, 20000
	client, fwd := setup(t, fw, synstack.ForwardOptions{MaxUDPFlows: maxFlows})
	c, err := client.ListenUDP("udp4", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	heap := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.GC() // sync.Pool keeps what it held until the second
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	before := heap()
	for i := range flood {
		dst := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), 53)
		c.WriteToUDPAddrPort([]byte("x"), dst)
		if i%1000 == 999 {
			time.Sleep(time.Millisecond) // let the link's queue drain: a flood the forwarder sees
		}
	}
	// The link delivers in order: once a marker sent after the flood has
	// reached a socket of the forwarding stack, no datagram of the flood
	// is still on its way (a marker the full queue dropped is sent again).
	mark, err := fwd.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 9999})
	if err != nil {
		t.Fatal(err)
	}
	defer mark.Close()
	for try := 0; ; try++ {
		if try == 600 { // a hang guard
			t.Fatal("no marker through the link in a minute")
		}
		c.WriteToUDPAddrPort([]byte("marker"), netip.MustParseAddrPort("10.0.0.1:9999"))
		mark.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if _, _, err := mark.ReadFromUDPAddrPort(make([]byte, 10)); err == nil {
			break
		}
	}
	// Each flow's timer is armed, and its datagram relayed, before the
	// clock moves.
	waitFor(t, func() bool { return fw.Stats().UDPDatagramsUp == maxFlows })
	full := heap()
	st, sst := fw.Stats(), fwd.Stats()
	t.Logf("%d new 5-tuples sent: %d offered, %d dropped for MaxUDPFlows; heap in use %d KiB before, %d KiB with %d flows open (%d bytes each)",
		flood, st.UDPRequests, sst.SynstackForwardUDPLimitDrops, before>>10, full>>10, maxFlows, (int64(full)-int64(before))/maxFlows)
	if st.UDPRequests != maxFlows || fwd.UDPFlows() != maxFlows || sst.SynstackForwardUDPLimitDrops == 0 {
		t.Errorf("%d flows offered, %d in the stack, %d dropped: want %d, %d, some", st.UDPRequests, fwd.UDPFlows(),
			sst.SynstackForwardUDPLimitDrops, maxFlows, maxFlows)
	}
	// One buffer a flow (two where the upstream's side cannot wait
	// without one), and a little for its sockets (the stack's and the
	// host's).
	buffers := 2
	if runtime.GOOS == "linux" {
		buffers = 1
	}
	if bound := uint64(maxFlows * (buffers*(DefaultUDPBufSize+1) + 32<<10)); full > before+bound {
		t.Errorf("heap in use grew by %d KiB for %d flows, more than %d KiB", (full-before)>>10, maxFlows, bound>>10)
	}
	vc.Advance(DefaultUDPTimeout)
	waitFor(t, func() bool { return fw.Stats().UDPActive == 0 && fwd.UDPFlows() == 0 })
	if st := fw.Stats(); st.UDPExpired != maxFlows {
		t.Errorf("%d flows expired, want %d", st.UDPExpired, maxFlows)
	}
	if after := heap(); after > before+4<<20 {
		t.Errorf("heap in use %d KiB after the flows expired, %d KiB before", after>>10, before>>10)
	}
}

// BenchmarkForwardUDP: round trips of a datagram of 64 and 1,400 bytes
// through the forwarder (client stack, link/pipe, forwarding stack, the
// relay, the host's loopback echo and back), one flow; beside them, the
// anchor: the same round trip from a host socket straight to the echo.
func BenchmarkForwardUDP(b *testing.B) {
	for _, size := range []int{64, 1400} {
		for _, via := range []string{"forwarder", "kernel"} {
			b.Run(fmt.Sprintf("%s/%d", via, size), func(b *testing.B) { benchUDPRoundTrip(b, via == "kernel", size) })
		}
	}
}

func benchUDPRoundTrip(b *testing.B, kernel bool, size int) {
	up := kernelnet.ServeUDP(b, kernelnet.EchoUDP)
	var c net.Conn
	var err error
	if kernel {
		c, err = net.Dial("udp", up)
	} else {
		fw := &Forwarder{UDP: UDPOptions{Target: udpTo(up)}}
		client, _ := setup(b, fw, synstack.ForwardOptions{})
		c, err = client.Dial("udp", "198.18.0.53:53")
	}
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	q, buf := make([]byte, size), make([]byte, size+1)
	c.SetReadDeadline(time.Now().Add(time.Hour)) // a hang guard
	b.SetBytes(int64(2 * size))
	b.ReportAllocs()
	for b.Loop() {
		c.Write(q)
		if n, err := c.Read(buf); err != nil || n != size {
			b.Fatalf("read %d bytes, %v", n, err)
		}
	}
}

// TestForwardPingThroughStack: the stack offers an echo request for
// another address to the Forwarder (synstack.PingForwarder), which
// answers it locally with PingOptions.Local; the client's ping socket
// reads the reply from the address it pinged.
func TestForwardPingThroughStack(t *testing.T) {
	fw := &Forwarder{Ping: PingOptions{Local: true}}
	client, _ := setup(t, fw, synstack.ForwardOptions{})
	pc, err := client.ListenPing("ping4", netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	pc.SetReadDeadline(time.Now().Add(30 * time.Second)) // a hang guard
	echo := []byte{8, 0, 0, 0, 0, 0, 0, 3, 'f', 'w'}     // type, code, checksum, ident, seq 3, data
	if _, err := pc.WriteTo(echo, &net.IPAddr{IP: net.IPv4(198, 18, 0, 9)}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	n, from, err := pc.ReadFrom(buf)
	if err != nil || from.String() != "198.18.0.9" || n != len(echo) || buf[0] != 0 || buf[7] != 3 {
		t.Fatalf("read % x from %v, %v: want the echo reply from 198.18.0.9", buf[:n], from, err)
	}
	if st := fw.Stats().PingStats; st.PingRequests != 1 || st.PingReplies != 1 {
		t.Errorf("forwarder ping stats %+v", st)
	}
}
