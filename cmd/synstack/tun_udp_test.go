//go:build linux

package main

// UDP between synstack and the Linux kernel over a TUN device, in a
// namespace of the test's own (see tun_test.go): echo both ways with
// datagrams of 1 to 65,507 bytes, fragmented both ways at MTU 1500, and
// DNS both ways (the kernel's dig asking a server on synstack,
// Stack.Resolver asking a server on the kernel's sockets). Here the stack
// runs in the test's own process, on a device opened from a thread inside
// the namespace, so that the test reads its counters directly.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/link/tun"
)

// udpSizes are the datagram sizes the issue asks for: one byte, the most
// an IPv4 packet of 1,500 bytes carries, a jumbo frame's worth, and the
// largest IPv4 UDP payload.
var udpSizes = []int{1, 1472, 9000, 65507}

// udpGuard bounds one datagram's round trip: a hang guard, not a timing.
const udpGuard = 10 * time.Second

// tunStackInProcess opens a TUN device in ns (MTU 1500, offloads unless
// noOffload, the kernel's side nsKernel/24 and nsKern6/64) and starts a
// synstack.Stack on it in this process, at nsStack and nsStack6. It
// returns once the kernel routes both addresses through the device and
// picks its own address there as their source (an IPv6 address is
// tentative for a moment after it is added, even on a device that does
// no DAD: a socket opened then takes ::1). Both are closed when the test
// ends.
func (ns *netns) tunStackInProcess(t *testing.T, noOffload bool) *synstack.Stack {
	t.Helper()
	var ep *tun.Endpoint
	err := ns.in(func() (err error) {
		ep, err = tun.Open(tun.Options{Name: nsDev, MTU: 1500, NoOffload: noOffload, HostAddrs: []netip.Prefix{
			netip.MustParsePrefix(nsKernel + "/24"), netip.MustParsePrefix(nsKern6 + "/64")}})
		return err
	})
	if err != nil {
		t.Fatalf("open %s in %s: %v", nsDev, ns.name, err)
	}
	st, err := synstack.New(synstack.Config{Link: ep, Addrs: []netip.Prefix{
		netip.MustParsePrefix(nsStack + "/24"), netip.MustParsePrefix(nsStack6 + "/64")}})
	if err != nil {
		ep.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, a := range [][2]string{{nsStack, nsKernel}, {nsStack6, nsKern6}} {
		for end := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			ok, _ := ep.KernelReady(netip.MustParseAddr(a[0]))
			if ok && strings.Contains(ns.run("ip", "route", "get", a[0]), " src "+a[1]+" ") {
				break
			}
			if time.Now().After(end) {
				t.Fatalf("the kernel does not route %s through %s from %s", a[0], nsDev, a[1])
			}
		}
	}
	return st
}

// servePackets answers each datagram pc receives with what answer makes
// of it (nothing when answer returns nil), until pc is closed.
func servePackets(pc net.PacketConn, answer func(q []byte) []byte) {
	buf := make([]byte, 1<<16)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if a := answer(buf[:n]); a != nil {
			pc.WriteTo(a, from)
		}
	}
}

// udpEcho echoes every datagram pc receives to its sender, until pc is
// closed.
func udpEcho(pc net.PacketConn) { servePackets(pc, func(q []byte) []byte { return q }) }

// udpPayload is n pseudo-random bytes, the same for the same n and seed.
func udpPayload(n int, seed byte) []byte {
	p := make([]byte, n)
	rand.NewChaCha8([32]byte{'u', 'd', 'p', seed, byte(n), byte(n >> 8), byte(n >> 16)}).Read(p)
	return p
}

// roundTrip sends p on c (connected) and checks that the one datagram
// that comes back is p, byte for byte.
func roundTrip(t *testing.T, what string, c net.Conn, p []byte) {
	t.Helper()
	if _, err := c.Write(p); err != nil {
		t.Fatalf("%s: send %d bytes: %v", what, len(p), err)
	}
	buf := make([]byte, 1<<16+1)
	c.SetReadDeadline(time.Now().Add(udpGuard))
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("%s: echo of %d bytes: %v", what, len(p), err)
	}
	if !bytes.Equal(buf[:n], p) {
		t.Fatalf("%s: sent %d bytes, got back %d bytes that differ", what, len(p), n)
	}
}

// fragsOf is how many fragments an IP packet carrying a UDP payload of
// size bytes becomes at MTU 1500: 1 when it fits. Each fragment but the
// last carries the most data a multiple of 8 allows: 1,480 bytes after an
// IPv4 header, 1,448 after an IPv6 header and a Fragment header.
func fragsOf(size int, v6 bool) int {
	ipHdr, perFrag := 20, 1480
	if v6 {
		ipHdr, perFrag = 40, 1448
	}
	l := size + 8
	if ipHdr+l <= 1500 {
		return 1
	}
	return (l + perFrag - 1) / perFrag
}

// kernelUDP opens a UDP socket on the kernel's side, in the namespace:
// dialed to raddr if it is set, else listening on laddr.
func (ns *netns) kernelUDP(t *testing.T, laddr, raddr string) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	err := ns.in(func() error {
		var pc net.Conn
		var err error
		if raddr != "" {
			pc, err = net.Dial("udp", raddr)
		} else {
			var l net.PacketConn
			l, err = net.ListenPacket("udp", laddr)
			pc, _ = l.(net.Conn)
		}
		if err != nil {
			return err
		}
		c = pc.(*net.UDPConn)
		return c.SetReadBuffer(1 << 20)
	})
	if err != nil {
		t.Fatalf("kernel UDP socket %s%s: %v", laddr, raddr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// kernelEcho starts a UDP echo on the kernel's side at addr (host:port):
// socat (its UDP-LISTEN, answering the first peer, into a PIPE that sends
// each datagram back whole) when it is installed, else a Go socket of
// the kernel's. It returns once the port is bound.
func (ns *netns) kernelEcho(t *testing.T, host string, port int) string {
	t.Helper()
	addr := net.JoinHostPort(host, fmt.Sprint(port))
	if _, err := exec.LookPath("socat"); err != nil {
		t.Logf("socat not installed (apt-get install socat): a Go socket of the kernel's echoes instead")
		go udpEcho(ns.kernelUDP(t, addr, ""))
		return "a Go socket"
	}
	kind, bind := "UDP4-LISTEN", host
	if strings.Contains(host, ":") {
		kind, bind = "UDP6-LISTEN", "["+host+"]"
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := ns.command(ctx, "socat", "-b", "65536", fmt.Sprintf("%s:%d,bind=%s,rcvbuf=1048576", kind, port, bind), "PIPE")
	var log logBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("socat: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
	})
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		out, _ := ns.command(context.Background(), "ss", "-Hunl", fmt.Sprintf("sport = :%d", port)).CombinedOutput()
		if strings.Contains(string(out), fmt.Sprintf(":%d", port)) {
			return "socat"
		}
		if time.Now().After(end) {
			t.Fatalf("socat did not bind %s within 10 s: %s", addr, log.String())
		}
	}
}

// UDP echo both ways between synstack and the kernel over TUN, IPv4 and
// IPv6: the kernel's socket sends to an echo on synstack, synstack's
// UDPConn sends to socat's echo on the kernel; 1, 1,472, 9,000 and 65,507
// bytes, byte-exact, the larger ones fragmented both ways at MTU 1500;
// synstack's counters account for each datagram and fragment. With the
// device's offloads (virtio header, checksums left to complete) and
// without.
func TestTunUDPEcho(t *testing.T) {
	for _, noOffload := range []bool{false, true} {
		t.Run(map[bool]string{false: "offload", true: "no-offload"}[noOffload], func(t *testing.T) { tunUDPEcho(t, noOffload) })
	}
}

// tunUDPEcho is TestTunUDPEcho on a device with or without offloads.
func tunUDPEcho(t *testing.T, noOffload bool) {
	ns := newNetns(t)
	st := ns.tunStackInProcess(t, noOffload)
	pc, err := st.ListenPacket("udp", ":7")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go udpEcho(pc)
	for _, fam := range []struct {
		name          string
		stack, kernel string
		v6            bool
	}{{"ipv4", nsStack, nsKernel, false}, {"ipv6", nsStack6, nsKern6, true}} {
		t.Run(fam.name, func(t *testing.T) {
			echo := ns.kernelEcho(t, fam.kernel, 9)
			kc := ns.kernelUDP(t, "", net.JoinHostPort(fam.stack, "7"))
			sc, err := st.Dial("udp", net.JoinHostPort(fam.kernel, "9"))
			if err != nil {
				t.Fatal(err)
			}
			defer sc.Close()
			if err := sc.(*synstack.UDPConn).SetReadBuffer(1 << 20); err != nil {
				t.Fatal(err)
			}
			before := st.Stats()
			frags, fragmented := 0, 0
			for _, size := range udpSizes {
				roundTrip(t, "kernel to synstack's echo", kc, udpPayload(size, 1))
				roundTrip(t, "synstack to "+echo+"'s echo on the kernel", sc, udpPayload(size, 2))
				if n := fragsOf(size, fam.v6); n > 1 {
					frags += n
					fragmented++
				}
			}
			after := st.Stats()
			// Each size crossed four times, twice each way: synstack
			// received two datagrams (the kernel's request, socat's
			// echo) and sent two.
			n, fr, fd := uint64(len(udpSizes)), uint64(frags), uint64(fragmented)
			for _, c := range []struct {
				name string // the IPv4 counter's
				get  func(s *synstack.Stats) (v4, v6 uint64)
				want uint64
			}{
				{"UdpInDatagrams", func(s *synstack.Stats) (uint64, uint64) { return s.UdpInDatagrams, s.Udp6InDatagrams }, 2 * n},
				{"UdpOutDatagrams", func(s *synstack.Stats) (uint64, uint64) { return s.UdpOutDatagrams, s.Udp6OutDatagrams }, 2 * n},
				{"IpReasmReqds", func(s *synstack.Stats) (uint64, uint64) { return s.IpReasmReqds, s.Ip6ReasmReqds }, 2 * fr},
				{"IpReasmOKs", func(s *synstack.Stats) (uint64, uint64) { return s.IpReasmOKs, s.Ip6ReasmOKs }, 2 * fd},
				{"IpFragOKs", func(s *synstack.Stats) (uint64, uint64) { return s.IpFragOKs, s.Ip6FragOKs }, 2 * fd},
				{"IpFragCreates", func(s *synstack.Stats) (uint64, uint64) { return s.IpFragCreates, s.Ip6FragCreates }, 2 * fr},
				{"IpReasmFails", func(s *synstack.Stats) (uint64, uint64) { return s.IpReasmFails, s.Ip6ReasmFails }, 0},
				{"UdpInErrors", func(s *synstack.Stats) (uint64, uint64) { return s.UdpInErrors, s.Udp6InErrors }, 0},
			} {
				a4, a6 := c.get(&after)
				b4, b6 := c.get(&before)
				got, other, name := a4-b4, a6-b6, c.name
				if fam.v6 {
					got, other = other, got
					name = strings.Replace(strings.Replace(name, "Ip", "Ip6", 1), "Udp", "Udp6", 1)
				}
				t.Logf("%-17s +%d", name, got)
				if got != c.want || other != 0 {
					t.Errorf("%s rose by %d (the other family's by %d), want %d (and 0)", name, got, other, c.want)
				}
			}
		})
	}
}

// dnsAnswers answers DNS queries on pc from names (A and AAAA records by
// name; other types get an empty answer, unknown names NXDOMAIN), until
// pc is closed.
func dnsAnswers(pc net.PacketConn, names map[string][]netip.Addr) {
	servePackets(pc, func(q []byte) []byte {
		msg, _ := dnsAnswer(q, names)
		return msg
	})
}

// dnsAnswer is the answer to the query q, if it is one.
func dnsAnswer(q []byte, names map[string][]netip.Addr) ([]byte, bool) {
	var p dnsmessage.Parser
	h, err := p.Start(q)
	if err != nil || h.Response {
		return nil, false
	}
	qn, err := p.Question()
	if err != nil {
		return nil, false
	}
	addrs, known := names[strings.ToLower(qn.Name.String())]
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired}
	if !known {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	b.StartQuestions()
	b.Question(qn)
	b.StartAnswers()
	rr := dnsmessage.ResourceHeader{Name: qn.Name, Class: dnsmessage.ClassINET, TTL: 60}
	for _, a := range addrs {
		switch {
		case qn.Type == dnsmessage.TypeA && a.Is4():
			b.AResource(rr, dnsmessage.AResource{A: a.As4()})
		case qn.Type == dnsmessage.TypeAAAA && a.Is6():
			b.AAAAResource(rr, dnsmessage.AAAAResource{AAAA: a.As16()})
		}
	}
	msg, err := b.Finish()
	return msg, err == nil
}

// dig asks the server at server (an IP address) for name's records of
// type typ from inside the namespace, and returns its short answer.
func (ns *netns) dig(t *testing.T, server, name, typ string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := ns.command(ctx, "dig", "@"+server, "+short", "+tries=3", "+time=5", name, typ).CombinedOutput()
	if err != nil {
		t.Fatalf("dig @%s %s %s: %v\n%s", server, name, typ, err, out)
	}
	return strings.TrimSpace(string(out))
}

// DNS over UDP both ways between synstack and the kernel, over TUN: the
// kernel's dig asks a DNS server on synstack (x/net's dnsmessage on a
// synstack UDPConn), over IPv4 and IPv6; Stack.Resolver, the standard
// library's resolver dialing through synstack, asks a DNS server on the
// kernel's sockets in the namespace.
func TestTunUDPDNS(t *testing.T) {
	ns := newNetns(t)
	st := ns.tunStackInProcess(t, false)
	t.Run("dig-to-synstack", func(t *testing.T) {
		if _, err := exec.LookPath("dig"); err != nil {
			t.Skip("skipped: needs dig (apt-get install bind9-dnsutils)")
		}
		pc, err := st.ListenPacket("udp", ":53")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		go dnsAnswers(pc, map[string][]netip.Addr{
			"synstack.test.": {netip.MustParseAddr("192.0.2.7"), netip.MustParseAddr("2001:db8::7")},
		})
		before := st.Stats()
		for _, c := range []struct{ server, typ, want string }{
			{nsStack, "A", "192.0.2.7"},
			{nsStack, "AAAA", "2001:db8::7"},
			{nsStack6, "A", "192.0.2.7"},
			{nsStack6, "AAAA", "2001:db8::7"},
		} {
			if got := ns.dig(t, c.server, "synstack.test.", c.typ); got != c.want {
				t.Errorf("dig @%s synstack.test. %s: %q, want %q", c.server, c.typ, got, c.want)
			}
		}
		if got := ns.dig(t, nsStack, "nobody.test.", "A"); got != "" {
			t.Errorf("dig for an unknown name: %q, want nothing", got)
		}
		after := st.Stats()
		if in := after.UdpInDatagrams + after.Udp6InDatagrams - before.UdpInDatagrams - before.Udp6InDatagrams; in < 5 {
			t.Errorf("synstack received %d DNS queries, want at least 5", in)
		}
	})
	t.Run("resolver-to-kernel", func(t *testing.T) {
		names := map[string][]netip.Addr{
			"kernel.test.": {netip.MustParseAddr("192.0.2.9"), netip.MustParseAddr("2001:db8::9")},
		}
		go dnsAnswers(ns.kernelUDP(t, net.JoinHostPort(nsKernel, "53"), ""), names)
		go dnsAnswers(ns.kernelUDP(t, net.JoinHostPort(nsKern6, "53"), ""), names)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, server := range []string{nsKernel, nsKern6} {
			before := st.Stats()
			r := st.Resolver(netip.AddrPortFrom(netip.MustParseAddr(server), 53))
			got, err := r.LookupNetIP(ctx, "ip", "kernel.test.")
			if err != nil {
				t.Fatalf("LookupNetIP through %s: %v", server, err)
			}
			slices.SortFunc(got, netip.Addr.Compare)
			if want := names["kernel.test."]; !slices.Equal(got, want) {
				t.Errorf("LookupNetIP through %s: %v, want %v", server, got, want)
			}
			if _, err := r.LookupNetIP(ctx, "ip4", "nobody.test."); err == nil {
				t.Errorf("an unknown name resolved through %s", server)
			} else if de := (*net.DNSError)(nil); !errors.As(err, &de) || !de.IsNotFound {
				t.Errorf("an unknown name through %s: %v, want a DNSError that is not found", server, err)
			}
			after := st.Stats()
			out := after.UdpOutDatagrams + after.Udp6OutDatagrams - before.UdpOutDatagrams - before.Udp6OutDatagrams
			in := after.UdpInDatagrams + after.Udp6InDatagrams - before.UdpInDatagrams - before.Udp6InDatagrams
			if out < 3 || in < 3 {
				t.Errorf("through %s: synstack sent %d and received %d datagrams: want the queries and answers over the stack", server, out, in)
			}
		}
	})
}

// get's --dns is checked before any device is touched (no root needed):
// an address with a port or not, and a host name needs it.
func TestGetDNSArgs(t *testing.T) {
	for _, c := range []struct {
		in   string
		want netip.AddrPort
		ok   bool
	}{
		{"", netip.AddrPort{}, true},
		{"10.99.0.1", netip.MustParseAddrPort("10.99.0.1:53"), true},
		{"10.99.0.1:5353", netip.MustParseAddrPort("10.99.0.1:5353"), true},
		{"2001:db8::1", netip.MustParseAddrPort("[2001:db8::1]:53"), true},
		{"[2001:db8::1]", netip.MustParseAddrPort("[2001:db8::1]:53"), true},
		{"[2001:db8::1]:54", netip.MustParseAddrPort("[2001:db8::1]:54"), true},
		{"::ffff:10.99.0.1", netip.MustParseAddrPort("10.99.0.1:53"), true},
		{"dns.example", netip.AddrPort{}, false},
		{"10.99.0.1:0", netip.AddrPort{}, false},
		{"10.99.0.1:x", netip.AddrPort{}, false},
	} {
		got, err := parseDNSServer(c.in)
		if got != c.want || (err == nil) != c.ok {
			t.Errorf("parseDNSServer(%q) = %v, %v; want %v, ok %v", c.in, got, err, c.want, c.ok)
		}
	}
	base := []string{"--tun", "x", "--addr", "10.99.0.2/24"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--dns", "dns.example", "http://files.test/"}, "--dns dns.example: want the DNS server's IP address"},
		{[]string{"http://files.test/"}, "give --dns ADDR"},
	} {
		var out bytes.Buffer
		err := runGet(&out, &out, append(slices.Clone(base), c.args...))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("get %q: %v, want %q", c.args, err, c.want)
		}
	}
}

// synstack get --dns resolves the URL's host name with a DNS server on
// the kernel's side (a Go server on a socket of the namespace), through
// the stack, and downloads from the address it names, byte for byte; a
// name the server does not know fails the download, saying so.
func TestTunGetDNS(t *testing.T) {
	ns := newNetns(t)
	dir := t.TempDir()
	want := testFile(t, filepath.Join(dir, "f.bin"), 1<<20)
	fsrv := ns.start("fileserver", "0.0.0.0:"+nsPort, dir)
	fsrv.waitLog("fileserver: listening", 10*time.Second)
	dns := ns.kernelUDP(t, "0.0.0.0:53", "")
	go dnsAnswers(dns, map[string][]netip.Addr{"files.test.": {netip.MustParseAddr(nsKernel)}})

	getFrom := func(host string) (*proc, string) {
		out := filepath.Join(t.TempDir(), "got.bin")
		p := ns.start("main", "get", "--tun", nsDev, "--addr", nsStack+"/24", "--host-addr", nsKernel+"/24",
			"--dns", nsKernel, "http://"+host+":"+nsPort+"/f.bin", "-o", out)
		select {
		case <-p.done:
		case <-time.After(2 * time.Minute):
			t.Fatalf("get did not finish in 2 minutes:\n%s", p.log.String())
		}
		return p, out
	}
	p, out := getFrom("files.test")
	if p.err != nil {
		t.Fatalf("get: %v\n%s", p.err, p.log.String())
	}
	if got, n := fileHash(t, out); got != want || n != 1<<20 {
		t.Fatalf("get wrote %d bytes, sha256 %s; want %d, %s\n%s", n, got, 1<<20, want, p.log.String())
	}
	if log := p.log.String(); !strings.Contains(log, "files.test is ["+nsKernel+"] (DNS server "+nsKernel+":53)") {
		t.Errorf("get did not say what it resolved:\n%s", log)
	}
	p, _ = getFrom("nobody.test")
	if log := p.log.String(); p.err == nil || !strings.Contains(log, "no such host") {
		t.Errorf("get of an unknown name: %v, want it to fail with no such host:\n%s", p.err, log)
	}
}

// A datagram to a port nobody has draws an ICMP port unreachable, both
// ways over TUN, and a connected socket that sent it gets ECONNREFUSED:
// the kernel's socket from synstack's answer, synstack's UDPConn from the
// kernel's. synstack counts it (UdpNoPorts, IcmpOutDestUnreachs).
func TestTunUDPPortUnreachable(t *testing.T) {
	ns := newNetns(t)
	st := ns.tunStackInProcess(t, false)
	for _, fam := range []struct{ name, stack, kernel string }{{"ipv4", nsStack, nsKernel}, {"ipv6", nsStack6, nsKern6}} {
		t.Run(fam.name, func(t *testing.T) {
			before := st.Stats()
			kc := ns.kernelUDP(t, "", net.JoinHostPort(fam.stack, "9999"))
			kc.Write([]byte("anyone?"))
			kc.SetReadDeadline(time.Now().Add(udpGuard))
			if _, err := kc.Read(make([]byte, 16)); !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("the kernel's socket, after sending to synstack's port 9999: %v, want ECONNREFUSED", err)
			}
			after := st.Stats()
			no := after.UdpNoPorts + after.Udp6NoPorts - before.UdpNoPorts - before.Udp6NoPorts
			icmp := after.IcmpOutDestUnreachs + after.Icmp6OutDestUnreachs - before.IcmpOutDestUnreachs - before.Icmp6OutDestUnreachs
			if no != 1 || icmp != 1 {
				t.Errorf("UdpNoPorts +%d, ICMP destination unreachables sent +%d: want 1 and 1", no, icmp)
			}

			sc, err := st.Dial("udp", net.JoinHostPort(fam.kernel, "9999"))
			if err != nil {
				t.Fatal(err)
			}
			defer sc.Close()
			if _, err := sc.Write([]byte("anyone?")); err != nil {
				t.Fatal(err)
			}
			sc.SetReadDeadline(time.Now().Add(udpGuard))
			if _, err := sc.Read(make([]byte, 16)); !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("synstack's UDPConn, after sending to the kernel's port 9999: %v, want ECONNREFUSED", err)
			}
		})
	}
}
