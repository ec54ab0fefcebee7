//go:build linux

package main

// synstack forward relaying UDP against the Linux kernel over TUN: the
// kernel's dig and iperf3 -u, in a namespace of the test's own, reach
// servers in a second namespace through forward --direct (see farNetns).

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/synstack/synstack/forward"
	"github.com/synstack/synstack/internal/kernelnet"
)

// dnsServer answers A queries for every name with answer, counting the
// bytes it received and sent.
type dnsServer struct {
	answer   netip.Addr
	mu       sync.Mutex
	queries  int
	in, out  int
	names    []string
	failures []string
}

func (d *dnsServer) serve(q []byte) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.in += len(q)
	var m dnsmessage.Message
	if err := m.Unpack(q); err != nil || len(m.Questions) != 1 {
		d.failures = append(d.failures, "unparsable query")
		return nil
	}
	d.queries++
	question := m.Questions[0]
	d.names = append(d.names, question.Name.String())
	m.Header.Response, m.Header.Authoritative, m.Header.RCode = true, true, dnsmessage.RCodeSuccess
	m.Answers = []dnsmessage.Resource{{
		Header: dnsmessage.ResourceHeader{Name: question.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 60},
		Body:   &dnsmessage.AResource{A: d.answer.As4()},
	}}
	m.Additionals = nil // dig's EDNS OPT record is not echoed
	a, err := m.Pack()
	if err != nil {
		d.failures = append(d.failures, err.Error())
		return nil
	}
	d.out += len(a)
	return a
}

// Issue 17: forward relays the kernel's dig to a DNS server in another
// namespace, with --direct (the forwarder's marked dials reach it, the
// kernel's own traffic to the subnet goes into the device) and through a
// SOCKS5 proxy there (UDP ASSOCIATE, with a password): each query is a
// flow, its answer comes back, the forwarder's byte counts are the
// server's, and every flow expires after --udp-stream-timeout.
func TestTunForwardUDPDig(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		socks bool
	}{
		{"direct", []string{"--direct", "--mark", "7"}, false},
		{"socks5", []string{"--socks5", "192.0.2.2:1080", "--socks5-user", "u"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := newNetns(t, "dig")
			far := farNetns(t, ns)
			dns := &dnsServer{answer: netip.MustParseAddr("192.0.2.99")}
			var pc *net.UDPConn
			if err := far.in(func() (err error) {
				pc, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(fwdFar+":53")))
				return err
			}); err != nil {
				t.Fatalf("DNS server in the far namespace: %v", err)
			}
			kernelnet.ServePacket(t, pc, dns.serve)
			asked := make(chan netip.AddrPort, 10)
			if tc.socks {
				farSOCKS(t, far, asked)
				t.Setenv("SYNSTACK_SOCKS5_PASSWORD", "p")
			}
			args := append([]string{"forward", "--tun", nsDev, "--addr", nsStack + "/24", "--host-addr", nsKernel + "/24",
				"--route", fwdSubnet, "--udp-timeout", "1s", "--udp-stream-timeout", "1s"}, tc.args...)
			fwd := ns.start("main", args...)
			fwd.waitLog("forwarding every UDP flow into "+nsDev, 10*time.Second)
			fwd.waitLog("(idle 1s, 1s once answered", 10*time.Second)
			fwd.waitLog("kernel side of "+nsDev+" is up", 10*time.Second)
			digThrough(t, ns, fwd, dns)
			if tc.socks {
				for range 3 {
					if a := <-asked; a.String() != fwdFar+":53" {
						t.Errorf("the proxy was asked for %s, want %s:53", a, fwdFar)
					}
				}
			}
			fwd.stop()
		})
	}
}

// farSOCKS runs a SOCKS5 UDP server (user u, password p) on the far
// namespace's 192.0.2.2:1080, its association sockets in that namespace.
func farSOCKS(t *testing.T, far *netns, asked chan<- netip.AddrPort) {
	t.Helper()
	var ln net.Listener
	if err := far.in(func() (err error) {
		ln, err = net.Listen("tcp", "192.0.2.2:1080")
		return err
	}); err != nil {
		t.Fatalf("SOCKS5 server in the far namespace: %v", err)
	}
	s := &kernelnet.SOCKS5UDP{User: "u", Password: "p", Asked: func(dst netip.AddrPort) { asked <- dst },
		ListenUDP: func() (c *net.UDPConn, err error) {
			err = far.in(func() (err error) {
				c, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4zero})
				return err
			})
			return c, err
		}}
	s.Serve(t, ln)
}

// digThrough runs three digs in ns to fwdFar through the forward process
// and checks the answers, the server's log and the forwarder's counters,
// once every flow has expired.
func digThrough(t *testing.T, ns *netns, fwd *proc, dns *dnsServer) {
	t.Helper()
	names := []string{"one.fwd.test.", "two.fwd.test.", "three.fwd.test."}
	for _, name := range names {
		out := ns.run("dig", "@"+fwdFar, "-p", "53", name, "A", "+short", "+tries=1", "+time=10")
		if strings.TrimSpace(out) != "192.0.2.99" {
			t.Fatalf("dig %s: %q, want 192.0.2.99\nforward:\n%s", name, out, fwd.log.String())
		}
	}
	dns.mu.Lock()
	in, out, got, failures := dns.in, dns.out, strings.Join(dns.names, " "), dns.failures
	dns.mu.Unlock()
	if got != strings.Join(names, " ") || len(failures) > 0 {
		t.Errorf("the server was asked %q (failures %q), want %q", got, failures, names)
	}

	// Every flow ends by its idle timeout (a hang guard, not a timing).
	var st forward.Stats
	for end := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		st = fwd.forwardStats()
		if st.UDPActive == 0 || time.Now().After(end) {
			break
		}
	}
	t.Logf("forward stats: %+v", st.UDPStats)
	n := uint64(len(names))
	if st.UDPRequests != n || st.UDPFlows != n || st.UDPExpired != n || st.UDPActive != 0 {
		t.Errorf("%d flows offered, %d relayed, %d expired, %d active; want %d, %d, %d, 0",
			st.UDPRequests, st.UDPFlows, st.UDPExpired, st.UDPActive, n, n, n)
	}
	if st.UDPDatagramsUp != n || st.UDPDatagramsDown != n || st.UDPBytesUp != uint64(in) || st.UDPBytesDown != uint64(out) {
		t.Errorf("relayed %d datagrams (%d bytes) up, %d (%d bytes) down; the server got %d bytes in %d queries and sent %d",
			st.UDPDatagramsUp, st.UDPBytesUp, st.UDPDatagramsDown, st.UDPBytesDown, in, n, out)
	}
	if s := fwd.stats().Stats; s.SynstackForwardUDPFlows != n {
		t.Errorf("the stack opened %d UDP flows, want %d", s.SynstackForwardUDPFlows, n)
	}
}

// iperf3Sum is one of iperf3 --json's sums.
type iperf3Sum struct {
	Bytes       int64   `json:"bytes"`
	Packets     int64   `json:"packets"`
	LostPercent float64 `json:"lost_percent"`
}

// iperf3Result is what the test reads of iperf3 --json: with
// --get-server-output, sum_received is the server's report.
type iperf3Result struct {
	End struct {
		Sent     iperf3Sum `json:"sum_sent"`
		Received iperf3Sum `json:"sum_received"`
	} `json:"end"`
	Error string `json:"error"`
}

// Issue 17: forward --direct relays iperf3 -u for a few seconds (its
// control connection over TCP, its data over UDP) to a server in another
// namespace: the bytes the forwarder relayed up lie between what the
// server received and what the client sent.
func TestTunForwardUDPIperf(t *testing.T) {
	ns := newNetns(t, "iperf3")
	far := farNetns(t, ns)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := far.command(ctx, "iperf3", "-s", "-1", "--forceflush", "-B", fwdFar, "-p", "5201")
	var srvLog logBuffer
	srv.Stdout, srv.Stderr = &srvLog, &srvLog
	if err := srv.Start(); err != nil {
		t.Fatalf("iperf3 -s: %v", err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })

	fwd := ns.start("main", "forward", "--tun", nsDev, "--addr", nsStack+"/24", "--host-addr", nsKernel+"/24",
		"--route", fwdSubnet, "--direct", "--mark", "7")
	fwd.waitLog("kernel side of "+nsDev+" is up", 10*time.Second)
	// The server listens once its socket is bound: wait for it to say so.
	for end := time.Now().Add(10 * time.Second); !strings.Contains(srvLog.String(), "Server listening"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("iperf3 -s did not start:\n%s", srvLog.String())
		}
	}

	const seconds = 3
	out, err := ns.command(ctx, "iperf3", "-c", fwdFar, "-p", "5201", "-u", "-b", "20M", "-l", "1200",
		"-t", strconv.Itoa(seconds), "--get-server-output", "--json").Output()
	var res iperf3Result
	if jerr := json.Unmarshal(out, &res); err != nil || jerr != nil || res.Error != "" {
		t.Fatalf("iperf3 -c: %v %v %s\n%s\nforward:\n%s", err, jerr, res.Error, out, fwd.log.String())
	}
	sent, got := res.End.Sent.Bytes, res.End.Received.Bytes
	st := fwd.forwardStats()
	t.Logf("iperf3 -u: client sent %d bytes in %d datagrams, server received %d (%.1f%% lost); forwarder relayed %d datagrams (%d bytes) up, %d down",
		sent, res.End.Sent.Packets, got, res.End.Received.LostPercent, st.UDPDatagramsUp, st.UDPBytesUp, st.UDPDatagramsDown)
	if sent < seconds*(20e6/8)/2 {
		t.Errorf("the client sent %d bytes in %d s at 20 Mbit/s, want at least half of that", sent, seconds)
	}
	if got < sent/2 {
		t.Errorf("the server received %d bytes of %d sent", got, sent)
	}
	// Besides the data, iperf3 exchanges a few small datagrams to open
	// its UDP stream.
	if st.UDPBytesUp < uint64(got) || st.UDPBytesUp > uint64(sent)+1024 {
		t.Errorf("the forwarder relayed %d bytes up: want between the %d the server received and the %d the client sent",
			st.UDPBytesUp, got, sent)
	}
	if st.UDPFlows == 0 || st.Forwarded == 0 {
		t.Errorf("forwarder relayed %d UDP flows and %d TCP connections, want both (data and control)", st.UDPFlows, st.Forwarded)
	}
	fwd.stop()
}

// UDP never loops either: with --direct and no mark, a flow to an address
// the kernel routes back into the device is refused (ICMP port
// unreachable: the kernel's connected socket reads ECONNREFUSED) and
// counted as a loop, and nothing is relayed.
func TestTunForwardUDPNoLoop(t *testing.T) {
	ns := newNetns(t)
	fwd := ns.start("main", "forward", "--tun", nsDev, "--addr", nsStack+"/24", "--host-addr", nsKernel+"/24",
		"--route", fwdSubnet, "--direct")
	fwd.waitLog("kernel side of "+nsDev+" is up", 10*time.Second)
	fwd.waitLog("route "+fwdSubnet+" into "+nsDev, 10*time.Second)
	var c net.Conn
	if err := ns.in(func() (err error) {
		c, err = net.Dial("udp", "198.18.0.5:53")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("query"))
	c.SetReadDeadline(time.Now().Add(10 * time.Second)) // a hang guard
	if _, err := c.Read(make([]byte, 100)); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("a UDP flow that would loop: %v, want ECONNREFUSED\n%s", err, fwd.log.String())
	}
	st := fwd.forwardStats()
	if st.UDPRequests != 1 || st.UDPLoops != 1 || st.UDPFlows != 0 {
		t.Errorf("%d flows offered, %d loops, %d relayed; want 1, 1, 0", st.UDPRequests, st.UDPLoops, st.UDPFlows)
	}
	fwd.stop()
	if !strings.Contains(fwd.log.String(), "refused 1 UDP flows that would have looped") {
		t.Errorf("forward's exit lines do not count the loop:\n%s", fwd.log.String())
	}
}

// Issue 17: forward answers the kernel's ping(8) to forwarded addresses
// as --ping says. host, with --mark: the forwarder pings the far
// namespace from the host (an unprivileged ICMP socket carrying the mark,
// which policy routing takes out of the device) and answers once it is
// answered; an address nobody has goes unanswered (timeouts). host
// without --mark: the host's ping would come back into the device, so
// the loop guard drops it. local: every address answers. off: none does.
func TestTunForwardPing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		dst   string
		reply bool
		want  func(forward.PingStats) bool
	}{
		{"host", []string{"--mark", "7"}, fwdFar, true,
			func(s forward.PingStats) bool { return s.PingReplies == 3 && s.PingTimeouts == 0 }},
		{"host-silent", []string{"--mark", "7"}, "198.18.0.99", false,
			func(s forward.PingStats) bool { return s.PingReplies == 0 && s.PingTimeouts+s.PingFailures == 3 }},
		{"host-loop", nil, fwdFar, false,
			func(s forward.PingStats) bool { return s.PingReplies == 0 && s.PingLoops == 3 }},
		{"local", []string{"--ping", "local"}, "198.18.0.99", true,
			func(s forward.PingStats) bool { return s.PingReplies == 3 }},
		{"off", []string{"--ping", "off"}, fwdFar, false,
			func(s forward.PingStats) bool { return s.PingReplies == 0 && s.PingDropped == 3 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := newNetns(t, "ping")
			farNetns(t, ns)
			// Unprivileged ICMP sockets for every group, in this namespace
			// only (the sysctl is per namespace).
			ns.run("sysctl", "-q", "-w", "net.ipv4.ping_group_range=0 2147483647")
			args := append([]string{"forward", "--tun", nsDev, "--addr", nsStack + "/24", "--host-addr", nsKernel + "/24",
				"--route", fwdSubnet, "--direct"}, tc.args...)
			fwd := ns.start("main", args...)
			fwd.waitLog("answering pings into "+nsDev, 10*time.Second)
			fwd.waitLog("kernel side of "+nsDev+" is up", 10*time.Second)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			out, err := ns.command(ctx, "ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", tc.dst).CombinedOutput()
			got := strings.Contains(string(out), " 3 received")
			if got != tc.reply || (err == nil) != tc.reply {
				t.Errorf("ping %s: %v, want replies %v\n%s\nforward:\n%s", tc.dst, err, tc.reply, out, fwd.log.String())
			}
			// Requests whose host ping is still waiting finish within the
			// ping timeout (a hang guard, not a timing).
			var st forward.Stats
			for end := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
				st = fwd.forwardStats()
				if st.PingRequests == st.PingReplies+st.PingTimeouts+st.PingFailures+st.PingLoops+st.PingDropped+st.PingLimitDrops ||
					time.Now().After(end) {
					break
				}
			}
			t.Logf("ping stats: %+v", st.PingStats)
			if st.PingRequests != 3 || !tc.want(st.PingStats) {
				t.Errorf("ping stats %+v: want 3 requests, %s's outcome", st.PingStats, tc.name)
			}
			fwd.stop()
		})
	}
}
