package main

import (
	"fmt"
	"io"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/clock"
	"github.com/synstack/synstack/link"
	"github.com/synstack/synstack/link/pcap"
	"github.com/synstack/synstack/trace"
)

// demo --kernel runs a scenario a second time with the Linux kernel as the
// server: the scenario's steps are the same, written against sockAPI, which
// synstack's Sockets and the kernel's sockets (demo_kernel_linux.go) both
// implement. The synstack client's link is the kernel's TUN device; what
// crosses it is traced there (the kernel's packets as they arrive, the
// client's as they leave, and losses made on that link), and the kernel's
// states are polled from its /proc/net/tcp.

// sockAPI is the socket interface the scenarios use.
type sockAPI interface {
	Socket(domain, typ, proto int) (int, error)
	Bind(fd int, addr netip.AddrPort) error
	Listen(fd, backlog int) error
	Connect(fd int, addr netip.AddrPort) error
	Accept(fd int) (int, netip.AddrPort, error)
	Read(fd int, p []byte) (int, error)
	Write(fd int, p []byte) (int, error)
	Shutdown(fd, how int) error
	Close(fd int) error
	Dup(fd int) (int, error)
	Fcntl(fd, cmd, arg int) (int, error)
	Getsockname(fd int) (netip.AddrPort, error)
	SetsockoptInt(fd, level, opt, value int) error
	GetsockoptInt(fd, level, opt int) (int, error)
	// TCPState is tcpi_state of TCP_INFO, by its RFC name (ESTABLISHED).
	TCPState(fd int) (string, error)
}

// synSockets is sockAPI on a synstack stack.
type synSockets struct{ *synstack.Sockets }

func (s synSockets) TCPState(fd int) (string, error) {
	info, err := s.GetsockoptTCPInfo(fd)
	if err != nil {
		return "", err
	}
	return info.State.String(), nil
}

const kernelName = "kernel 10.0.0.1"

// kernelScenarios are the scenarios --kernel runs; kernelRefusals say why
// the others are not offered.
var kernelScenarios = map[string]bool{
	"tour": true, "handshake": true, "refused": true, "active-close": true, "passive-close": true,
	"time-wait": true, "reuseaddr": true, "half-close": true, "shutdown-rd": true, "shutdown-rdwr": true,
	"close-vs-shutdown": true, "retransmission": true, "zero-window": true,
}

var kernelRefusals = map[string]string{
	"connect-timeout":    "it waits 127 s of SYN retries, and the real clock cannot be sped up",
	"simultaneous-open":  "the two SYNs must cross on the wire, which needs the virtual clock's exact timing",
	"simultaneous-close": "the two FINs must cross on the wire, which needs the virtual clock's exact timing",
	"reuseport":          "the spread between listeners is the kernel's own hash; the scenario checks synstack's",
	"half-open":          "the server crashes and reboots, which the kernel of the namespace cannot do",
	"syn-flood":          "it reads the server's counters and restarts it with other settings, and waits 63 s of SYN,ACK retries",
	"backlog-overflow":   "it reads the server's counters, and the kernel's accept queue timing differs (it drops the final ACK, not the SYN)",
}

// noKernel says why --kernel is not offered for sc, or "".
func noKernel(sc *scenario) string {
	if kernelScenarios[sc.name] {
		return ""
	}
	if why := kernelRefusals[sc.name]; why != "" {
		return why
	}
	return "not converted"
}

// listKernel prints which scenarios --kernel runs.
func listKernel(w io.Writer) {
	var yes []string
	for _, sc := range scenarios {
		if noKernel(sc) == "" {
			yes = append(yes, sc.name)
		}
	}
	fmt.Fprintf(w, "--kernel runs: %s\n", strings.Join(yes, ", "))
	for _, sc := range scenarios {
		if why := noKernel(sc); why != "" {
			fmt.Fprintf(w, "  not %s: %s\n", sc.name, why)
		}
	}
}

// kernelWait is the most real time one step of a scenario waits: the
// scenarios' timers are scaled down to this.
const kernelWait = 1500 * time.Millisecond

// kernelWaitScale stretches every real-time wait of runReal. Tests set it
// (a test-only hook): on a loaded machine a 100 ms step may not be long
// enough for the packets and the /proc poll to happen.
var kernelWaitScale time.Duration = 1

// runReal lets d pass on the real clock, at most kernelWait. A wait for
// TIME_WAIT (a minute) is cut short: the kernel's cannot be shortened, so
// the namespace's sockets are shown instead.
func (l *lab) runReal(d time.Duration) {
	if d >= 30*time.Second {
		time.Sleep(200 * time.Millisecond * kernelWaitScale)
		l.note("The scenario waits %v here; on the real clock the demo stops waiting. The kernel's sockets now (ss -tano in the namespace):", d)
		for _, line := range strings.Split(l.kern.ss(), "\n") {
			l.note("  %s", line)
		}
		l.note("Linux keeps TIME_WAIT for 60 s (TCP_TIMEWAIT_LEN, not tunable); synstack's client would keep its own 60 s too.")
		l.stopped = true
		return
	}
	time.Sleep(min(d, kernelWait) * kernelWaitScale)
}

// newKernelLab builds the lab of --kernel: the synstack client on the
// TUN device, the kernel as the server.
func newKernelLab(w io.Writer, sc *scenario, opts demoOptions) (*lab, error) {
	k, err := startKernelPeer(serverAddr)
	if err != nil {
		return nil, err
	}
	clk := clock.Real{}
	l := &lab{out: w, clk: clk, t0: clk.Now(), tr: trace.NewTracer(clk), kern: k}
	srv := &host{l: l, name: kernelName, addr: netip.MustParseAddr(serverAddr), so: k.so, kernel: true, listeners: map[int]bool{}}
	l.server = srv
	kl := &kernLink{ep: k.link(), onIn: func(pkt []byte) {
		if len(pkt) == 0 || pkt[0]>>4 != 4 {
			return // IPv6 is off in the namespace; just in case
		}
		l.emit(srv, trace.Event{Kind: trace.PacketOut, Packet: append([]byte(nil), pkt...)})
	}}
	var cliLink link.Endpoint = kl
	if opts.pcap != nil {
		pw, err := pcap.NewWriter(opts.pcap)
		if err != nil {
			k.close()
			return nil, err
		}
		l.capture = pw
		cliLink = pcap.NewTap(kl, pw, clk)
	}
	if l.client, err = l.addHost(clientName, clientAddr, cliLink, kl.setDrop, sc.config); err != nil {
		k.close()
		return nil, err
	}
	l.hosts = append(l.hosts, srv)
	k.watch(func(local, remote netip.AddrPort, from, to string) {
		if from == "" {
			from = "CLOSED"
			if l.kernListening(local.Port()) {
				from = "LISTEN"
			}
		}
		if to == "" {
			to = "CLOSED"
		}
		srv.record(local, remote, from, to)
		l.emit(srv, trace.Event{Kind: trace.Transition, From: from, To: to, Cause: "seen in /proc/net/tcp", Local: local, Remote: remote})
	})
	return l, nil
}

// kernListening reports whether the kernel listens on port (a listener the
// scenario opened).
func (l *lab) kernListening(port uint16) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		if c.host == l.server && !c.remote.IsValid() && c.local.Port() == port && c.path[len(c.path)-1] == "LISTEN" {
			return true
		}
	}
	return false
}

// printKernelSummary is printSummary for the kernel run: the paths (the
// kernel's as polled), and what differed.
func (l *lab) printKernelSummary(sc *scenario) {
	w := l.out
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Paths taken:")
	for _, c := range l.conns {
		fmt.Fprintf(w, "  %-16s %-28s %s\n", c.host.name, c.label(), strings.Join(c.path, " -> "))
	}
	fmt.Fprintln(w)
	for _, line := range trace.Wrap("The kernel's states are polled from its /proc/net/tcp every millisecond: they show a little after the packet that caused them, and a state that lasted less (SYN_RCVD, often) can be missed. The kernel's packets are those that reached the client's side of the TUN device.", textWidth) {
		fmt.Fprintln(w, line)
	}
	for _, f := range l.facts {
		fmt.Fprintf(w, "\n%s\n", f)
	}
}

// kernLink is the synstack client's link to the kernel: it shows the
// packets the kernel sends as they arrive, and loses the client's packets
// on demand.
type kernLink struct {
	ep   link.Endpoint
	onIn func(pkt []byte)
	mu   sync.Mutex
	drop func(pkt []byte) bool
}

func (k *kernLink) MTU() int     { return k.ep.MTU() }
func (k *kernLink) Close() error { return k.ep.Close() }

func (k *kernLink) Attach(d link.Dispatcher) { k.ep.Attach(kernDispatcher{k, d}) }

func (k *kernLink) WritePacket(pkt []byte) error {
	k.mu.Lock()
	drop := k.drop
	k.mu.Unlock()
	if drop != nil && drop(pkt) {
		return nil
	}
	return k.ep.WritePacket(pkt)
}

func (k *kernLink) setDrop(f func(pkt []byte) bool) {
	k.mu.Lock()
	k.drop = f
	k.mu.Unlock()
}

type kernDispatcher struct {
	k *kernLink
	d link.Dispatcher
}

func (kd kernDispatcher) DeliverPacket(pkt []byte) {
	kd.k.onIn(pkt)
	kd.d.DeliverPacket(pkt)
}
