//go:build linux

package main

// Blind injection and every way of closing, between the kernel and
// synstack serve over TUN, each in a network namespace of its own (see
// tun_test.go). The kernel-side sockets (the client, a raw socket for the
// attacker and an AF_PACKET capture on the TUN device) are opened by this
// process from a thread moved into the namespace, so every packet stays
// there.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/synstack/synstack/wire"
)

// SYNSTACK_TEST_EXEC=holdclient: a kernel client that has the echo of its
// second line waiting unread when it is killed (so the kernel resets).
func init() {
	if os.Getenv("SYNSTACK_TEST_EXEC") != "holdclient" {
		return
	}
	c, err := net.DialTimeout("tcp", os.Args[1], 10*time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, "holdclient: error:", err)
		os.Exit(1)
	}
	buf := make([]byte, 6)
	if _, err = c.Write([]byte("hello\n")); err == nil {
		_, err = io.ReadFull(c, buf)
	}
	if err == nil {
		_, err = c.Write([]byte("unread\n"))
	}
	if err == nil {
		err = waitQueued(c.(*net.TCPConn), len("unread\n"))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "holdclient: error:", err)
		os.Exit(1)
	}
	fmt.Fprintln(os.Stderr, "holdclient: ready")
	time.Sleep(time.Minute)
	os.Exit(0)
}

// waitQueued waits until n bytes wait unread in c's receive queue: it
// peeks (MSG_PEEK), so they stay there.
func waitQueued(c *net.TCPConn, n int) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	c.SetReadDeadline(time.Now().Add(time.Minute)) // a hang, not a timing
	defer c.SetReadDeadline(time.Time{})
	buf := make([]byte, n)
	var perr error
	err = rc.Read(func(fd uintptr) bool {
		k, _, err := unix.Recvfrom(int(fd), buf, unix.MSG_PEEK|unix.MSG_DONTWAIT)
		switch {
		case err == unix.EAGAIN || err == nil && k > 0 && k < n:
			return false // wait for more to arrive
		case err == nil && k == 0:
			perr = io.ErrUnexpectedEOF
		default:
			perr = err
		}
		return true
	})
	if err != nil {
		return err
	}
	return perr
}

// in runs f on a thread that has entered the namespace: sockets f opens
// belong to the namespace for their whole life.
func (ns *netns) in(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		target, err := os.Open("/var/run/netns/" + ns.name)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns: %w", err)
			return
		}
		ferr := f()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns back: %w", err) // the thread stays locked and dies
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// startEcho starts serve --echo on port 7 with the kernel side configured.
func startEcho(t *testing.T, ns *netns) *proc {
	t.Helper()
	srv := ns.start("main", "serve", "--tun", nsDev, "--addr", nsStack+"/24", "--host-addr", nsKernel+"/24",
		"--listen", ":7", "--echo")
	srv.waitLog("kernel side of "+nsDev+" is up", 10*time.Second)
	return srv
}

// dial opens a kernel TCP connection to serve from inside the namespace.
func (ns *netns) dial(t *testing.T) *net.TCPConn {
	t.Helper()
	var c net.Conn
	err := ns.in(func() (err error) {
		c, err = net.DialTimeout("tcp", nsStack+":7", 10*time.Second)
		return err
	})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// waitNoConns waits until serve has no connection open and the stack none
// established, and returns its counters then.
func waitNoConns(t *testing.T, srv *proc) statsLine {
	t.Helper()
	for end := time.Now().Add(time.Minute); ; { // a hang guard, not a timing
		st := srv.stats()
		if st.Conns == 0 && st.Stats.TcpCurrEstab == 0 {
			return st
		}
		if time.Now().After(end) {
			t.Fatalf("connection left after a minute: serve has %d open, TcpCurrEstab %d", st.Conns, st.Stats.TcpCurrEstab)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pkt is a captured TCP segment on the TUN device.
type pkt struct {
	at      time.Time
	toStack bool // written by the kernel (PACKET_OUTGOING), else by synstack
	ip      wire.IPv4
	tcp     wire.TCP
	n       int // payload length
}

func (p pkt) String() string {
	dir := "kernel->stack"
	if !p.toStack {
		dir = "stack->kernel"
	}
	return fmt.Sprintf("%s %s %s:%d > %s:%d [%v] seq %d ack %d win %d len %d", p.at.Format("15:04:05.000000"), dir,
		p.ip.Src, p.tcp.SrcPort, p.ip.Dst, p.tcp.DstPort, p.tcp.Flags, p.tcp.Seq, p.tcp.Ack, p.tcp.Window, p.n)
}

// capture records the TCP segments crossing the TUN device, both ways,
// with an AF_PACKET socket in the namespace.
type tunCapture struct {
	fd   int
	mu   sync.Mutex
	pkts []pkt
	stop chan struct{}
	done chan struct{}
}

func (ns *netns) tunCapture(t *testing.T) *tunCapture {
	t.Helper()
	proto := int(htons(unix.ETH_P_ALL))
	cp := &tunCapture{fd: -1, stop: make(chan struct{}), done: make(chan struct{})}
	err := ns.in(func() error {
		ifi, err := net.InterfaceByName(nsDev)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return err
		}
		cp.fd = fd
		tv := unix.Timeval{Usec: 100000}
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index})
	})
	if err != nil {
		if cp.fd >= 0 {
			unix.Close(cp.fd)
		}
		t.Skipf("skipped: cannot capture on %s with AF_PACKET: %v", nsDev, err)
	}
	go cp.loop()
	t.Cleanup(cp.close)
	return cp
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (cp *tunCapture) loop() {
	defer close(cp.done)
	buf := make([]byte, 1<<16)
	for {
		select {
		case <-cp.stop:
			return
		default:
		}
		n, from, err := unix.Recvfrom(cp.fd, buf, 0)
		if err != nil {
			continue // timeout: look at stop again
		}
		ll, _ := from.(*unix.SockaddrLinklayer)
		ip, payload, err := wire.ParseIPv4(buf[:n])
		if err != nil || ip.Protocol != wire.ProtoTCP {
			continue
		}
		tcp, data, err := wire.ParseTCP(payload)
		if err != nil {
			continue
		}
		cp.mu.Lock()
		cp.pkts = append(cp.pkts, pkt{at: time.Now(), toStack: ll != nil && ll.Pkttype == unix.PACKET_OUTGOING, ip: ip, tcp: tcp, n: len(data)})
		cp.mu.Unlock()
	}
}

func (cp *tunCapture) close() {
	select {
	case <-cp.stop:
		return
	default:
	}
	close(cp.stop)
	<-cp.done
	unix.Close(cp.fd)
}

// since returns the segments of the connection with kernel port port
// captured from index i on.
func (cp *tunCapture) since(i int, port uint16) []pkt {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	var out []pkt
	for _, p := range cp.pkts[min(i, len(cp.pkts)):] {
		if p.tcp.SrcPort == port || p.tcp.DstPort == port {
			out = append(out, p)
		}
	}
	return out
}

// kernelEnd says how the kernel ended its connections to port 7 seen from
// index i on: "FIN", "RST" or both, in order.
func (cp *tunCapture) kernelEnd(i int) string {
	var out []string
	for _, p := range cp.since(i, 7) {
		if p.toStack && p.tcp.DstPort == 7 && p.tcp.Flags&(wire.FlagFIN|wire.FlagRST) != 0 {
			out = append(out, map[bool]string{true: "RST", false: "FIN"}[p.tcp.Flags.Has(wire.FlagRST)])
		}
	}
	return strings.Join(out, ",")
}

func (cp *tunCapture) len() int {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return len(cp.pkts)
}

// injector writes hand-made IPv4 packets from a raw socket (IPPROTO_RAW,
// so IP_HDRINCL) in the namespace.
type injector struct {
	fd       int
	src, dst netip.Addr
}

func (ns *netns) injector(t *testing.T) *injector {
	t.Helper()
	in := &injector{fd: -1, src: netip.MustParseAddr(nsKernel), dst: netip.MustParseAddr(nsStack)}
	err := ns.in(func() (err error) {
		in.fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
		return err
	})
	if err != nil {
		t.Skipf("skipped: no raw socket in the namespace: %v", err)
	}
	t.Cleanup(func() { unix.Close(in.fd) })
	return in
}

func (in *injector) send(t *testing.T, h wire.TCP, payload []byte) {
	t.Helper()
	b := make([]byte, wire.IPv4HeaderLen+wire.TCPMaxOptionsLen+wire.TCPHeaderLen+len(payload))
	tl, err := h.Emit(b[wire.IPv4HeaderLen:])
	if err != nil {
		t.Fatal(err)
	}
	seg := b[wire.IPv4HeaderLen : wire.IPv4HeaderLen+tl+copy(b[wire.IPv4HeaderLen+tl:], payload)]
	wire.SetTCPChecksum(seg, in.src, in.dst)
	ip := wire.IPv4{TTL: 64, Protocol: wire.ProtoTCP, Src: in.src, Dst: in.dst, ID: uint16(rand.IntN(1 << 16))}
	if _, err := ip.Emit(b, len(seg)); err != nil {
		t.Fatal(err)
	}
	pktLen := wire.IPv4HeaderLen + len(seg)
	if err := unix.Sendto(in.fd, b[:pktLen], 0, &unix.SockaddrInet4{Addr: in.dst.As4()}); err != nil {
		t.Fatalf("raw send: %v", err)
	}
}

// attackGap separates injections: longer than the per-connection limit on
// challenge ACKs and answers out of the window (500 ms in the stack and
// Linux), so each one may draw its own answer.
const attackGap = 1100 * time.Millisecond

// Blind injection from a raw socket on the kernel side against a live
// echo connection: RSTs, a SYN and data with in-window but wrong sequence
// numbers or implausible ACKs, and out-of-window ones. None may reset or
// corrupt the connection; challenge ACKs (RFC 5961) go out for the
// in-window RSTs, the SYN and the too-old ACK (seen on the TUN device; at
// least one in all, as they are rate-limited), the out-of-window RSTs get
// nothing, out-of-window data a duplicate ACK, and every answer is a bare
// ACK carrying the connection's true SND.NXT and RCV.NXT.
func TestTunAttackBlindInjection(t *testing.T) {
	ns := newNetns(t)
	srv := startEcho(t, ns)
	cp := ns.tunCapture(t)
	inj := ns.injector(t)
	c := ns.dial(t)
	port := uint16(c.LocalAddr().(*net.TCPAddr).Port)
	echoCheck(t, c, 3000)

	// RCV.NXT and SND.NXT of the stack, from its last segment, once the
	// kernel has acknowledged all of it (the last ACKs have crossed).
	var last *pkt
	for end := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) { // a hang guard, not a timing
		last = nil
		acked := false
		for _, p := range cp.since(0, port) {
			switch {
			case !p.toStack:
				last = &p
				acked = acked && p.n == 0 // a bare ACK leaves SND.NXT where it was
			case last != nil && p.tcp.Flags&wire.FlagACK != 0 && p.tcp.Ack == last.tcp.Seq+uint32(last.n):
				acked = true
			}
		}
		if acked {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("the kernel did not acknowledge the stack's last segment (%v) in a minute", last)
		}
	}
	rcvNxt, sndNxt := last.tcp.Ack, last.tcp.Seq+uint32(last.n)
	t.Logf("connection 10.99.0.1:%d <-> %s:7: stack RCV.NXT %d, SND.NXT %d", port, nsStack, rcvNxt, sndNxt)
	before := srv.stats()

	evil := bytes.Repeat([]byte("INJECTED"), 16)
	type attack struct {
		name  string
		h     wire.TCP
		data  []byte
		reply string // "challenge", "dupack", "none", "any"
	}
	base := wire.TCP{SrcPort: port, DstPort: 7, Window: 502}
	with := func(seq, ack uint32, f wire.TCPFlags) wire.TCP {
		h := base
		h.Seq, h.Ack, h.Flags = seq, ack, f
		return h
	}
	attacks := []attack{
		{"RST in window, seq RCV.NXT+1000", with(rcvNxt+1000, 0, wire.FlagRST), nil, "challenge"},
		{"RST,ACK in window, seq RCV.NXT+1", with(rcvNxt+1, sndNxt, wire.FlagRST|wire.FlagACK), nil, "challenge"},
		{"RST out of window, seq RCV.NXT+2^30", with(rcvNxt+1<<30, 0, wire.FlagRST), nil, "none"},
		{"RST out of window, seq RCV.NXT-2^20", with(rcvNxt-1<<20, sndNxt, wire.FlagRST|wire.FlagACK), nil, "none"},
		{"SYN in window, seq RCV.NXT+500", with(rcvNxt+500, 0, wire.FlagSYN), nil, "challenge"},
		{"data in window at RCV.NXT+1000, ACK of unsent data", with(rcvNxt+1000, sndNxt+1<<20, wire.FlagACK|wire.FlagPSH), evil, "any"},
		{"data in window at RCV.NXT-10 (overlapping), ACK too old", with(rcvNxt-10, sndNxt-1<<30, wire.FlagACK|wire.FlagPSH), evil, "challenge"},
		{"data in window at RCV.NXT+3000, no ACK flag", with(rcvNxt+3000, 0, wire.FlagPSH), evil, "any"},
		{"data out of window, seq RCV.NXT+2^30", with(rcvNxt+1<<30, sndNxt, wire.FlagACK|wire.FlagPSH), evil, "dupack"},
		{"data out of window, seq RCV.NXT-2^20 (old)", with(rcvNxt-1<<20, sndNxt, wire.FlagACK|wire.FlagPSH), evil, "dupack"},
	}
	var trace []string
	challenges := 0
	for _, a := range attacks {
		i := cp.len()
		inj.send(t, a.h, a.data)
		time.Sleep(attackGap)
		if a.reply == "dupack" {
			// The one answer that must come: a loaded machine may be late.
			for end := time.Now().Add(time.Minute); time.Now().Before(end) && !slices.ContainsFunc(cp.since(i, port), func(p pkt) bool { return !p.toStack }); {
				time.Sleep(10 * time.Millisecond)
			}
		}
		var acks []pkt
		trace = append(trace, "--- "+a.name)
		for _, p := range cp.since(i, port) {
			trace = append(trace, p.String())
			if !p.toStack {
				acks = append(acks, p)
			}
		}
		// Challenge ACKs are rate-limited per connection: each one is
		// only logged, their sum must be non-zero.
		bad := len(acks) == 0 && a.reply == "dupack" || len(acks) > 0 && a.reply == "none"
		for _, p := range acks {
			// Every answer is a bare ACK carrying the true numbers.
			if p.tcp.Flags != wire.FlagACK || p.n != 0 || p.tcp.Seq != sndNxt || p.tcp.Ack != rcvNxt {
				bad = true
			}
		}
		if a.reply == "challenge" {
			challenges += len(acks)
		}
		t.Logf("%-58s -> %d ACKs from the stack", a.name, len(acks))
		if bad {
			t.Errorf("%s: want %s, the stack answered with %d segments: %v", a.name, a.reply, len(acks), acks)
		}
	}
	t.Logf("packet trace of the injections (kernel->stack includes the raw socket's):\n%s", strings.Join(trace, "\n"))

	// The connection lives on and its data is untouched: the injected
	// bytes never show up, and new data is echoed exactly.
	echoCheck(t, c, 64<<10)
	after := srv.stats()
	t.Logf("after: serve %d open, TcpCurrEstab %d, TcpEstabResets %d (before %d), TcpOutRsts %d (before %d), %d challenge ACKs",
		after.Conns, after.Stats.TcpCurrEstab, after.Stats.TcpEstabResets, before.Stats.TcpEstabResets,
		after.Stats.TcpOutRsts, before.Stats.TcpOutRsts, challenges)
	if after.Conns != 1 || after.Stats.TcpCurrEstab != 1 || after.Stats.TcpEstabResets != before.Stats.TcpEstabResets ||
		after.Stats.TcpOutRsts != before.Stats.TcpOutRsts {
		t.Errorf("the connection did not survive untouched: before %+v, after %+v", before.Stats, after.Stats)
	}
	if challenges == 0 {
		t.Errorf("no challenge ACKs")
	}
	c.Close()
	waitNoConns(t, srv)
	srv.stop()
}

// The kernel closing in every way, and synstack closing with data the
// kernel has not read, each seen correctly on the other side.
func TestTunClose(t *testing.T) {
	ns := newNetns(t)
	srv := startEcho(t, ns)
	cp := ns.tunCapture(t)

	t.Run("fin", func(t *testing.T) {
		// shutdown(SHUT_WR) once the echo is in: serve sees EOF, closes,
		// the kernel reads EOF.
		before := srv.stats()
		c := ns.dial(t)
		echoCheck(t, c, 1000)
		if err := c.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := c.Read(make([]byte, 10))
		t.Logf("kernel after its FIN: read %d bytes, %v", n, err)
		if n != 0 || err != io.EOF {
			t.Errorf("kernel read %d bytes, %v after its FIN; want EOF", n, err)
		}
		c.Close()
		st := waitNoConns(t, srv)
		if st.Stats.TcpEstabResets != before.Stats.TcpEstabResets || st.Stats.TcpOutRsts != before.Stats.TcpOutRsts {
			t.Errorf("a FIN close reset something: before %+v, after %+v", before.Stats, st.Stats)
		}
	})

	t.Run("half-close", func(t *testing.T) {
		// The kernel writes 1 MiB and shuts down its side at once, then
		// reads: all the echo, byte for byte, then EOF.
		before := srv.stats()
		c := ns.dial(t)
		msg := make([]byte, 1<<20)
		for i := range msg {
			msg[i] = byte(rand.IntN(256))
		}
		werr := make(chan error, 1)
		go func() {
			_, err := c.Write(msg)
			if err == nil {
				err = c.CloseWrite()
			}
			werr <- err
		}()
		c.SetReadDeadline(time.Now().Add(15 * time.Second))
		got, err := io.ReadAll(c)
		if werr := <-werr; werr != nil {
			t.Fatalf("write and shutdown: %v", werr)
		}
		t.Logf("kernel after shutdown(SHUT_WR): read %d bytes (sent %d), then %v", len(got), len(msg), err)
		if err != nil || !bytes.Equal(got, msg) {
			t.Errorf("half-closed kernel read %d bytes (exact: %v), %v; want the %d bytes it sent, then EOF", len(got), bytes.Equal(got, msg), err, len(msg))
		}
		c.Close()
		st := waitNoConns(t, srv)
		if st.Stats.TcpEstabResets != before.Stats.TcpEstabResets || st.Stats.TcpOutRsts != before.Stats.TcpOutRsts {
			t.Errorf("a half-close reset something: before %+v, after %+v", before.Stats, st.Stats)
		}
	})

	t.Run("rst", func(t *testing.T) {
		// SO_LINGER 0 and close: the kernel resets, serve's connection ends.
		before := srv.stats()
		c := ns.dial(t)
		echoCheck(t, c, 1000)
		if st := srv.stats(); st.Conns != 1 {
			t.Fatalf("serve has %d connections open, want 1", st.Conns)
		}
		c.SetLinger(0)
		c.Close()
		st := waitNoConns(t, srv)
		t.Logf("after the kernel's RST: serve %d open, TcpEstabResets %d -> %d", st.Conns, before.Stats.TcpEstabResets, st.Stats.TcpEstabResets)
		if st.Stats.TcpEstabResets != before.Stats.TcpEstabResets+1 {
			t.Errorf("TcpEstabResets %d -> %d, want one reset", before.Stats.TcpEstabResets, st.Stats.TcpEstabResets)
		}
		if st.Stats.TcpOutRsts != before.Stats.TcpOutRsts {
			t.Errorf("the stack answered the RST with a RST: TcpOutRsts %d -> %d", before.Stats.TcpOutRsts, st.Stats.TcpOutRsts)
		}
	})

	t.Run("killed", func(t *testing.T) {
		// kill -9 of a client with nothing unread: the kernel sends FIN.
		before := srv.stats()
		i0 := cp.len()
		p := ns.start("echoclient", nsStack+":7")
		p.waitLog("echoclient: echoed", 10*time.Second)
		if st := srv.stats(); st.Conns != 1 {
			t.Fatalf("serve has %d connections open, want 1", st.Conns)
		}
		p.cmd.Process.Kill()
		<-p.done
		st := waitNoConns(t, srv)
		if e := cp.kernelEnd(i0); e != "FIN" {
			t.Errorf("the kernel ended the killed client's connection with %q, want FIN", e)
		}
		t.Logf("after kill -9 (kernel sent %s): serve %d open, TcpCurrEstab %d, TcpEstabResets %d -> %d", cp.kernelEnd(i0), st.Conns, st.Stats.TcpCurrEstab,
			before.Stats.TcpEstabResets, st.Stats.TcpEstabResets)
		if st.Stats.TcpEstabResets != before.Stats.TcpEstabResets {
			t.Errorf("a killed client with nothing unread ended in a reset")
		}
	})

	t.Run("killed-unread", func(t *testing.T) {
		// kill -9 of a client with an echo unread: the kernel sends RST.
		before := srv.stats()
		i0 := cp.len()
		p := ns.start("holdclient", nsStack+":7")
		p.waitLog("holdclient: ready", time.Minute)
		if st := srv.stats(); st.Conns != 1 {
			t.Fatalf("serve has %d connections open, want 1", st.Conns)
		}
		p.cmd.Process.Kill()
		<-p.done
		st := waitNoConns(t, srv)
		if e := cp.kernelEnd(i0); e != "RST" {
			t.Errorf("the kernel ended the killed client's connection with %q, want RST", e)
		}
		t.Logf("after kill -9 with unread data (kernel sent %s): serve %d open, TcpCurrEstab %d, TcpEstabResets %d -> %d", cp.kernelEnd(i0), st.Conns, st.Stats.TcpCurrEstab,
			before.Stats.TcpEstabResets, st.Stats.TcpEstabResets)
		if st.Stats.TcpEstabResets != before.Stats.TcpEstabResets+1 {
			t.Errorf("TcpEstabResets %d -> %d, want one reset", before.Stats.TcpEstabResets, st.Stats.TcpEstabResets)
		}
	})

	t.Run("synstack-closes-unread", func(t *testing.T) {
		// The reverse: the kernel writes without reading until both
		// directions stall, then serve is stopped, so synstack closes
		// with data it has not read. The kernel reads what was echoed
		// (a prefix of what it sent) and then the end: synstack resets
		// (as Linux does when closing with unread data), and the kernel
		// reports ECONNRESET once, to its reader or its writer, whichever
		// asks first (the other then sees EOF or EPIPE).
		c := ns.dial(t)
		port := uint16(c.LocalAddr().(*net.TCPAddr).Port)
		i0 := cp.len()
		echoCheck(t, c, 1000)
		msg := make([]byte, 16<<20)
		for i := range msg {
			msg[i] = byte(i * 7)
		}
		c.SetWriteDeadline(time.Now().Add(time.Minute)) // a hang guard, not a timing
		werr := make(chan error, 1)
		go func() { _, err := c.Write(msg); werr <- err }()
		// Both ways fill up: the stack's zero window says its receive
		// buffer is full of data the echo server has not read.
		zeroWindow := func() bool {
			for _, p := range cp.since(i0, port) {
				if !p.toStack && p.tcp.Window == 0 && p.tcp.Flags&wire.FlagRST == 0 {
					return true
				}
			}
			return false
		}
		for !zeroWindow() {
			select {
			case err := <-werr:
				t.Fatalf("16 MiB written without the kernel reading (%v): nothing stalled", err)
			case <-time.After(10 * time.Millisecond):
			}
		}
		srv.stop()
		c.SetReadDeadline(time.Now().Add(time.Minute)) // a hang guard, not a timing
		got, err := io.ReadAll(c)
		werrv := <-werr
		t.Logf("kernel after synstack closed: read %d bytes (a prefix of what it sent: %v), then %v; its write: %v",
			len(got), bytes.Equal(got, msg[:min(len(got), len(msg))]), err, werrv)
		if !bytes.Equal(got, msg[:min(len(got), len(msg))]) {
			t.Errorf("the echo the kernel read is not what it sent")
		}
		if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(werrv, syscall.ECONNRESET) {
			t.Errorf("kernel read ended with %v, write with %v: want ECONNRESET in one (synstack closed with unread data)", err, werrv)
		}
		if werrv == nil {
			t.Errorf("the kernel's write of 16 MiB succeeded although synstack went away")
		}
		var ends []string
		rst := false
		for _, p := range cp.since(i0, port) {
			if !p.toStack && p.tcp.Flags&(wire.FlagFIN|wire.FlagRST) != 0 {
				ends = append(ends, p.String())
				rst = rst || p.tcp.Flags.Has(wire.FlagRST)
			}
		}
		t.Logf("synstack's closing segments:\n%s", strings.Join(ends, "\n"))
		if !rst {
			t.Errorf("synstack closed with unread data without a RST")
		}
		log := srv.log.String()
		if !strings.Contains(log, "closing 1 connections") {
			t.Errorf("serve's log:\n%s", log)
		}
	})
}
