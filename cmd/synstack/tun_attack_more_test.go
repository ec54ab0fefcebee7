//go:build linux

package main

// The attacks issue 14 found synstack already withstands, kept as tests so
// that it goes on withstanding them: malformed packets, ACK/RST/FIN
// floods, forged SYN-cookie ACKs, peers that stop reading or vanish, and
// slowloris. Each runs against serve over TUN in a namespace of its own
// (tun_test.go, tun_bounds_test.go) and asserts counters and memory;
// -synstack.attacklong makes them larger.

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/synstack/synstack/wire"
)

// heapGrowthLimit bounds how much serve's Go heap may grow under an
// attack that creates no connection: the attacks' packets must leave
// nothing behind.
const heapGrowthLimit = 16 << 20

// Broken IPv4 and TCP packets written onto the device as they are (no
// kernel fixes them): each is dropped, counted where Linux counts it, and
// answered by nothing; then random corruptions of valid segments (2,000,
// or 50,000 in the long form) leave serve alive, its echo exact and its
// heap bounded.
func TestTunAttackMalformed(t *testing.T) {
	ns := newNetns(t)
	srv := startEcho(t, ns)
	l := &ipLog{in: map[[2]netip.Addr]int{}}
	tp := ns.tap(t, l.handle)
	src, stack := netip.MustParseAddr(nsSpoof), netip.MustParseAddr(nsStack)
	valid := func() []byte {
		return tcpPacket(src, stack, wire.TCP{SrcPort: uint16(30000 + rand.IntN(1000)), DstPort: 7, Seq: rand.Uint32(), Flags: wire.FlagSYN, Window: 65535,
			Options: wire.TCPOptions{MSS: 1460}}, nil)
	}
	ipSum := func(b []byte) []byte { // recompute the header checksum after a change
		binary.BigEndian.PutUint16(b[10:], 0)
		binary.BigEndian.PutUint16(b[10:], wire.FoldChecksum(wire.Checksum(b[:int(b[0]&15)*4], 0)))
		return b
	}
	tcpSum := func(b []byte) []byte {
		wire.SetTCPChecksum(b[wire.IPv4HeaderLen:], src, stack)
		return b
	}
	ctr := func(f func(s statsLine) uint64) func(s statsLine) uint64 { return f }
	hdrErr := ctr(func(s statsLine) uint64 { return s.Stats.IpInHdrErrors })
	tcpErr := ctr(func(s statsLine) uint64 { return s.Stats.TcpInErrs })
	cases := []struct {
		name    string
		make    func() []byte
		counter string
		v       func(s statsLine) uint64
	}{
		{"IP header checksum wrong", func() []byte { b := valid(); b[10] ^= 0xff; return b }, "IpInHdrErrors", hdrErr},
		{"IP version 5", func() []byte { b := valid(); b[0] = 5<<4 | 5; return ipSum(b) }, "IpInHdrErrors", hdrErr},
		{"IP header length 16 bytes", func() []byte { b := valid(); b[0] = 4<<4 | 4; return ipSum(b) }, "IpInHdrErrors", hdrErr},
		{"IP header length beyond the packet", func() []byte { b := valid()[:22]; b[0] = 4<<4 | 15; return b }, "IpInHdrErrors", hdrErr},
		{"IP total length past the packet's end", func() []byte {
			b := valid()
			binary.BigEndian.PutUint16(b[2:], uint16(len(b)+100))
			return ipSum(b)
		}, "IpInHdrErrors", hdrErr},
		{"IP total length shorter than its header", func() []byte { b := valid(); binary.BigEndian.PutUint16(b[2:], 12); return ipSum(b) }, "IpInHdrErrors", hdrErr},
		{"TCP checksum wrong", func() []byte { b := valid(); b[wire.IPv4HeaderLen+16] ^= 0x5a; return b }, "TcpInCsumErrors",
			ctr(func(s statsLine) uint64 { return s.Stats.TcpInCsumErrors })},
		{"TCP data offset 4 words", func() []byte { b := valid(); b[wire.IPv4HeaderLen+12] = 4 << 4; return tcpSum(b) }, "TcpInErrs", tcpErr},
		{"TCP data offset past the segment", func() []byte { b := valid(); b[wire.IPv4HeaderLen+12] = 15 << 4; return tcpSum(b) }, "TcpInErrs", tcpErr},
		{"TCP header cut to 12 bytes", func() []byte {
			b := valid()[:wire.IPv4HeaderLen+12]
			binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
			return ipSum(b)
		}, "TcpInErrs", tcpErr},
		{"a fragment (MF set), held for reassembly", func() []byte { b := valid(); b[6] |= 0x20; return ipSum(b) }, "IpReasmReqds",
			ctr(func(s statsLine) uint64 { return s.Stats.IpReasmReqds })},
		{"protocol 200", func() []byte { b := valid(); b[9] = 200; return ipSum(b) }, "IpInUnknownProtos",
			ctr(func(s statsLine) uint64 { return s.Stats.IpInUnknownProtos })},
		{"to an address not the stack's", func() []byte {
			b := valid()
			copy(b[16:20], []byte{10, 99, 0, 50})
			return ipSum(b)
		}, "IpInAddrErrors", ctr(func(s statsLine) uint64 { return s.Stats.IpInAddrErrors })},
	}
	mark := l.sent()
	for _, c := range cases {
		before := srv.stats()
		b := c.make()
		arrived := l.arrived(src, b[9])
		if err := tp.write(b); err != nil {
			t.Fatalf("%s: AF_PACKET write: %v", c.name, err)
		}
		l.waitArrived(t, src, b[9], arrived)
		var after statsLine
		for end := time.Now().Add(2 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if after = srv.stats(); c.v(after) > c.v(before) || time.Now().After(end) {
				break
			}
		}
		t.Logf("%-40s -> %s +%d", c.name, c.counter, c.v(after)-c.v(before))
		if c.v(after) != c.v(before)+1 {
			t.Errorf("%s: %s rose by %d, want 1", c.name, c.counter, c.v(after)-c.v(before))
		}
		if after.Stats.TcpPassiveOpens != before.Stats.TcpPassiveOpens {
			t.Errorf("%s: a connection was opened", c.name)
		}
	}
	time.Sleep(300 * time.Millisecond)
	if a := l.answers(mark, netip.Addr{}); len(a) > 0 {
		t.Errorf("the stack answered malformed packets: %v", a)
	}

	// Random corruptions of valid segments: one to four bytes changed
	// anywhere, a length cut, or both.
	n := attackSize(2000, 50000)
	before := srv.stats()
	for i := range n {
		b := valid()
		if i%2 == 1 {
			b = tcpPacket(src, stack, wire.TCP{SrcPort: uint16(30000 + rand.IntN(1000)), DstPort: 7, Seq: rand.Uint32(), Ack: rand.Uint32(),
				Flags: wire.TCPFlags(rand.IntN(256)), Window: 65535}, bytes.Repeat([]byte{'x'}, rand.IntN(600)))
		}
		for range 1 + rand.IntN(4) {
			b[rand.IntN(len(b))] = byte(rand.IntN(256))
		}
		if rand.IntN(4) == 0 {
			b = b[:1+rand.IntN(len(b))]
		}
		tp.write(b) // the kernel may refuse a few (too short): that is no test of the stack
		if i%100 == 99 {
			time.Sleep(time.Millisecond) // the device's queue holds 500
		}
	}
	c := ns.dial(t)
	echoCheck(t, c, 64<<10)
	after := srv.stats()
	t.Logf("%d random corruptions: IpInReceives +%d, IpInHdrErrors +%d, TcpInErrs +%d, TcpInCsumErrors +%d, martians +%d; HeapInuse %s -> %s; echo exact after",
		n, after.Stats.IpInReceives-before.Stats.IpInReceives, after.Stats.IpInHdrErrors-before.Stats.IpInHdrErrors,
		after.Stats.TcpInErrs-before.Stats.TcpInErrs, after.Stats.TcpInCsumErrors-before.Stats.TcpInCsumErrors,
		after.Stats.SynstackInMartianSources+after.Stats.SynstackInMartianDestinations-before.Stats.SynstackInMartianSources-before.Stats.SynstackInMartianDestinations,
		mib(int64(before.HeapInuse)), mib(int64(after.HeapInuse)))
	if after.Stats.IpInReceives-before.Stats.IpInReceives < uint64(n)/2 {
		t.Errorf("only %d of %d corrupted packets reached the stack", after.Stats.IpInReceives-before.Stats.IpInReceives, n)
	}
	if after.HeapInuse > before.HeapInuse+heapGrowthLimit {
		t.Errorf("heap grew from %s to %s", mib(int64(before.HeapInuse)), mib(int64(after.HeapInuse)))
	}
	c.Close()
	srv.stop()
}

// hping3's ACK, RST and FIN floods at the echo port, from a spoofed
// address, while a kernel client's connection lives: the stack takes them
// all (TcpInSegs), opens nothing, the client's connection is untouched and
// its echo exact, and the heap does not grow.
func TestTunAttackFloods(t *testing.T) {
	ns := newNetns(t, "hping3")
	srv := startEcho(t, ns)
	c := ns.dial(t)
	echoCheck(t, c, 4096)
	count := attackSize(20000, 200000)
	for _, f := range []struct{ name, flag string }{{"ACK", "-A"}, {"RST", "-R"}, {"FIN", "-F"}} {
		before := srv.stats()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		out, err := ns.command(ctx, "hping3", f.flag, "-p", "7", "-a", nsSpoof, "-i", "u20", "-c", strconv.Itoa(count), "-q", nsStack).CombinedOutput()
		cancel()
		m := regexp.MustCompile(`(\d+) packets transmitted`).FindSubmatch(out)
		if m == nil {
			t.Fatalf("hping3 %s: %v\n%s", f.flag, err, out)
		}
		sent, _ := strconv.Atoi(string(m[1]))
		time.Sleep(500 * time.Millisecond)
		echoCheck(t, c, 64<<10)
		after := srv.stats()
		in := after.Stats.TcpInSegs - before.Stats.TcpInSegs
		t.Logf("%s flood: hping3 sent %d; TcpInSegs +%d, TcpOutRsts +%d, TcpPassiveOpens +%d, TcpEstabResets +%d; HeapInuse %s -> %s; serve %d open; echo exact",
			f.name, sent, in, after.Stats.TcpOutRsts-before.Stats.TcpOutRsts, after.Stats.TcpPassiveOpens-before.Stats.TcpPassiveOpens,
			after.Stats.TcpEstabResets-before.Stats.TcpEstabResets, mib(int64(before.HeapInuse)), mib(int64(after.HeapInuse)), after.Conns)
		if sent < count || in < uint64(sent)/2 {
			t.Errorf("%s flood: %d sent, %d taken by the stack", f.name, sent, in)
		}
		if after.Stats.TcpPassiveOpens != before.Stats.TcpPassiveOpens || after.Stats.TcpEstabResets != before.Stats.TcpEstabResets || after.Conns != 1 {
			t.Errorf("%s flood opened or reset connections: before %+v, after %+v", f.name, before.Stats, after.Stats)
		}
		if after.HeapInuse > before.HeapInuse+heapGrowthLimit {
			t.Errorf("%s flood: heap grew from %s to %s", f.name, mib(int64(before.HeapInuse)), mib(int64(after.HeapInuse)))
		}
	}
	c.Close()
	waitNoConns(t, srv)
	srv.stop()
}

// ACKs with random sequence and acknowledgment numbers at a listener
// that is sending SYN cookies (its SYN queue full of spoofed SYNs): each
// fails the cookie check and is counted (TcpExtSyncookiesFailed), none
// opens a connection, the heap does not grow.
func TestTunAttackForgedCookies(t *testing.T) {
	ns := newNetns(t)
	srv := ns.start("main", "serve", "--tun", nsDev, "--addr", nsStack+"/24", "--host-addr", nsKernel+"/24",
		"--listen", ":7", "--echo", "--backlog", "1")
	srv.waitLog("kernel side of "+nsDev+" is up", 10*time.Second)
	in := ns.injector(t)
	in.src = netip.MustParseAddr(nsSpoof)
	syns := func(k int) {
		for range k {
			in.send(t, wire.TCP{SrcPort: uint16(40000 + rand.IntN(20000)), DstPort: 7, Seq: rand.Uint32(), Flags: wire.FlagSYN, Window: 65535}, nil)
		}
	}
	syns(16)
	for end := time.Now().Add(5 * time.Second); srv.stats().Stats.TcpExtSyncookiesSent == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("no SYN cookies sent with the SYN queue full")
		}
	}
	time.Sleep(200 * time.Millisecond)
	before := srv.stats()
	n := attackSize(2000, 18000)
	nsyn := 0
	for i := range n {
		in.send(t, wire.TCP{SrcPort: uint16(40000 + rand.IntN(20000)), DstPort: 7, Seq: rand.Uint32(), Ack: rand.Uint32(), Flags: wire.FlagACK, Window: 502}, nil)
		if i%20 == 19 {
			time.Sleep(time.Millisecond) // the device's queue holds 500
		}
		if i%500 == 499 {
			syns(1) // cookies stay in use
			nsyn++
		}
	}
	time.Sleep(500 * time.Millisecond)
	after := srv.stats()
	// Every forged ACK the stack took (those the device did not drop:
	// about all segments in but the SYNs) failed its cookie check.
	failed := after.Stats.TcpExtSyncookiesFailed - before.Stats.TcpExtSyncookiesFailed
	took := after.Stats.TcpInSegs - before.Stats.TcpInSegs - uint64(nsyn)
	t.Logf("%d forged ACKs, %d taken by the stack: TcpExtSyncookiesFailed +%d, TcpExtSyncookiesRecv +%d, TcpExtSyncookiesSent +%d, TcpOutRsts +%d, TcpCurrEstab %d; HeapInuse %s -> %s",
		n, took, failed, after.Stats.TcpExtSyncookiesRecv-before.Stats.TcpExtSyncookiesRecv, after.Stats.TcpExtSyncookiesSent-before.Stats.TcpExtSyncookiesSent,
		after.Stats.TcpOutRsts-before.Stats.TcpOutRsts, after.Stats.TcpCurrEstab, mib(int64(before.HeapInuse)), mib(int64(after.HeapInuse)))
	if failed > uint64(n) || failed < uint64(n)/2 || max(failed, took)-min(failed, took) > uint64(n)/100 {
		t.Errorf("TcpExtSyncookiesFailed rose by %d for %d forged ACKs taken (%d sent)", failed, took, n)
	}
	if after.Stats.TcpExtSyncookiesRecv != before.Stats.TcpExtSyncookiesRecv || after.Stats.TcpCurrEstab != 0 || after.Conns != 0 {
		t.Errorf("a forged ACK opened a connection: TcpExtSyncookiesRecv +%d, TcpCurrEstab %d, serve %d open",
			after.Stats.TcpExtSyncookiesRecv-before.Stats.TcpExtSyncookiesRecv, after.Stats.TcpCurrEstab, after.Conns)
	}
	if after.HeapInuse > before.HeapInuse+heapGrowthLimit {
		t.Errorf("heap grew from %s to %s", mib(int64(before.HeapInuse)), mib(int64(after.HeapInuse)))
	}
	srv.stop()
}

// Peers that stop taking data, against serve --echo --idle-timeout 3s:
// kernel clients with a 4 KiB receive buffer that send and never read (the
// stack's echo meets a zero window and waits in persist), and peers at
// spoofed addresses that send once and then vanish (the stack's echo is
// never acknowledged: it retransmits into the void). The idle timeout ends
// every one of them with a reset, the kernel's clients see it, and the
// stack's queue memory comes back to nothing.
func TestTunAttackStalledPeers(t *testing.T) {
	k := attackSize(1, 20)
	ns := newNetns(t)
	srv := ns.start("main", "serve", "--tun", nsDev, "--addr", nsStack+"/24", "--host-addr", nsKernel+"/24",
		"--listen", ":7", "--echo", "--idle-timeout", "3s")
	srv.waitLog("kernel side of "+nsDev+" is up", 10*time.Second)
	before := srv.stats()

	// The vanished peers share one tap.
	in := ns.injector(t)
	peers := make([]*spoofedPeer, k)
	for i := range peers {
		peers[i] = &spoofedPeer{in: in, src: netip.AddrFrom4([4]byte{10, 99, 0, byte(100 + i)}), port: uint16(20000 + i), synack: make(chan uint32, 1)}
	}
	var rsts atomic.Int64
	ns.tap(t, func(toStack bool, b []byte) {
		for _, p := range peers {
			p.handle(toStack, b)
		}
		if ip, payload, err := wire.ParseIPv4(b); err == nil && !toStack && ip.Protocol == wire.ProtoTCP {
			if h, _, err := wire.ParseTCP(payload); err == nil && h.Flags.Has(wire.FlagRST) && ip.Dst.As4()[3] >= 100 {
				rsts.Add(1)
			}
		}
	})
	for _, p := range peers {
		p.connect(t)
		if err := p.send(wire.TCP{Seq: p.isn + 1, Ack: p.iss + 1, Flags: wire.FlagACK | wire.FlagPSH, Window: 65535}, bytes.Repeat([]byte("vanish "), 100)); err != nil {
			t.Fatal(err)
		}
	}
	// The zero-window clients.
	stalled := ns.dialN(t, k, nsStack+":7", 4096)
	werrs := make(chan error, k)
	for _, c := range stalled {
		go func() {
			c.SetWriteDeadline(time.Now().Add(30 * time.Second))
			_, err := c.Write(make([]byte, 4<<20))
			werrs <- err
		}()
	}
	// serve counts a connection once it has accepted it, which may come
	// after the kernel's connect returned: wait for that, then look.
	loaded := srv.stats()
	for guard := time.Now().Add(10 * time.Second); loaded.Conns < int64(2*k) && time.Now().Before(guard); time.Sleep(20 * time.Millisecond) {
		loaded = srv.stats()
	}
	var end statsLine
	for guard := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		end = srv.stats()
		if end.Conns == 0 && end.Stats.TcpCurrEstab == 0 && end.Stats.SynstackTCPMemBytes == 0 {
			break
		}
		if time.Now().After(guard) {
			t.Fatalf("a minute on: serve %d open, TcpCurrEstab %d, queue memory %d", end.Conns, end.Stats.TcpCurrEstab, end.Stats.SynstackTCPMemBytes)
		}
	}
	closed := 0
	for _, c := range stalled {
		if _, ok, _ := closedByPeer(c, time.Now().Add(10*time.Second)); ok {
			closed++
		}
		if err := <-werrs; err == nil {
			t.Errorf("a zero-window client wrote 4 MiB although it never read")
		}
	}
	t.Logf("%d zero-window clients and %d vanished peers: serve had %d open, queue memory %s; then idle_closed +%d, TcpRetransSegs +%d, RSTs to the vanished %d, zero-window clients reset %d; queue memory %d, TcpCurrEstab %d",
		k, k, loaded.Conns, mib(int64(loaded.Stats.SynstackTCPMemBytes)), end.IdleClosed-before.IdleClosed,
		end.Stats.TcpRetransSegs-before.Stats.TcpRetransSegs, rsts.Load(), closed, end.Stats.SynstackTCPMemBytes, end.Stats.TcpCurrEstab)
	if loaded.Conns != int64(2*k) {
		t.Errorf("serve had %d connections, want %d", loaded.Conns, 2*k)
	}
	if end.IdleClosed-before.IdleClosed != uint64(2*k) || closed != k || rsts.Load() < int64(k) {
		t.Errorf("want all %d connections ended by the idle timeout, the kernel's %d reset, and a RST to each of the %d vanished peers", 2*k, k, k)
	}
	if end.Stats.TcpRetransSegs == before.Stats.TcpRetransSegs {
		t.Errorf("the stack never retransmitted to the vanished peers")
	}
	srv.stop()
}

// Slowloris: HTTP clients that send their request header one byte a
// second are closed by --read-header-timeout, every one of them, and
// serve holds nothing afterwards.
func TestTunAttackSlowloris(t *testing.T) {
	n := attackSize(100, 1000)
	raiseNoFile(t, uint64(n+1024))
	ns := newNetns(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := ns.start("main", "serve", "--tun", nsDev, "--addr", nsStack+"/24", "--host-addr", nsKernel+"/24",
		"--listen", ":"+nsPort, "--http", dir, "--read-header-timeout", "2s", "--max-conns", "0")
	srv.waitLog("kernel side of "+nsDev+" is up", 10*time.Second)
	conns := ns.dialN(t, n, nsStack+":"+nsPort, 0)
	for _, c := range conns {
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\n", nsStack)
	}
	stop := make(chan struct{})
	var bytesSent atomic.Int64
	go func() {
		header := "X-Slow: " + strings.Repeat("a", 100)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(time.Second):
			}
			for _, c := range conns {
				c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
				if _, err := c.Write([]byte{header[i%len(header)]}); err == nil {
					bytesSent.Add(1)
				}
			}
		}
	}()
	var closed atomic.Int64
	readBy := time.Now().Add(30 * time.Second)
	eachConn(conns, func(i int, c net.Conn) {
		if _, ok, err := closedByPeer(c, readBy); ok {
			closed.Add(1)
		} else {
			t.Errorf("slowloris connection %d: %v", i, err)
		}
	})
	close(stop)
	st := waitNoConns(t, srv)
	t.Logf("%d slowloris clients sent %d header bytes a second apart; %d closed by serve; then serve %d open, TcpCurrEstab %d, HeapInuse %s",
		n, bytesSent.Load(), closed.Load(), st.Conns, st.Stats.TcpCurrEstab, mib(int64(st.HeapInuse)))
	if closed.Load() != int64(n) {
		t.Errorf("%d of %d slowloris connections closed", closed.Load(), n)
	}
	if bytesSent.Load() == 0 {
		t.Errorf("the clients sent no header byte after the first line: no slowloris")
	}
	srv.stop()
}
