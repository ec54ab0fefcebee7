package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/clock"
	"github.com/synstack/synstack/link"
	"github.com/synstack/synstack/link/pcap"
	"github.com/synstack/synstack/link/sim"
	"github.com/synstack/synstack/tcp"
	"github.com/synstack/synstack/trace"
	"github.com/synstack/synstack/wire"
)

// The demo runs scenarios between two stacks on one simulated link with a
// virtual clock (see demo_scenarios.go): everything is deterministic, a
// 60 s TIME_WAIT passes in microseconds, and every packet, state
// transition, timer and socket call goes to a trace.Tracer, printed as a
// ladder (or JSON lines) and optionally drawn as SVG and captured as pcap.

const (
	clientName = "client 10.0.0.2"
	serverName = "server 10.0.0.1"
	clientAddr = "10.0.0.2"
	serverAddr = "10.0.0.1"
	linkDelay  = 10 * time.Millisecond
	textWidth  = 80
)

// demoOptions are the outputs of one run.
type demoOptions struct {
	json   bool      // JSON lines instead of the ladder and explanation
	kernel bool      // the Linux kernel is the server, over a TUN device
	pcap   io.Writer // capture of the client's link, if not nil
	svg    io.Writer // SVG drawing, if not nil
}

func runDemo(w io.Writer, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(w)
	list := fs.Bool("list", false, "list the scenarios, one sentence each")
	jsonOut := fs.Bool("json", false, "print the events as JSON lines instead of the ladder")
	pcapFile := fs.String("pcap", "", "write the packets to `FILE` (pcap, raw IP)")
	svgFile := fs.String("svg", "", "draw the sequence and state diagrams to `FILE` (SVG)")
	kernel := fs.Bool("kernel", false, "run the scenario again with the Linux kernel as the server, over a TUN device in a new network namespace (root)")
	fs.Usage = func() {
		fmt.Fprintf(w, "usage: synstack demo [--list] [--json] [--kernel] [--pcap FILE] [--svg FILE] [SCENARIO]\n\n")
		fs.PrintDefaults()
		fmt.Fprintf(w, "\nWith no SCENARIO, the tour: a connection's whole life.\n")
	}
	// Flags may come before or after the scenario's name.
	var names []string
	for rest := args; ; {
		if err := fs.Parse(rest); err == flag.ErrHelp {
			return nil
		} else if err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		names = append(names, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if *list {
		for _, sc := range scenarios {
			fmt.Fprintf(w, "%-18s %s\n", sc.name, sc.summary)
		}
		if *kernel {
			fmt.Fprintln(w)
			listKernel(w)
		}
		return nil
	}
	if len(names) > 1 {
		return fmt.Errorf("demo: one scenario at a time (got %s)", strings.Join(names, ", "))
	}
	name := "tour"
	if len(names) == 1 {
		name = names[0]
	}
	sc := findScenario(name)
	if sc == nil {
		return fmt.Errorf("demo: unknown scenario %q (see synstack demo --list)", name)
	}
	if *kernel {
		if why := noKernel(sc); why != "" {
			return fmt.Errorf("demo: --kernel is not offered for %s: %s", sc.name, why)
		}
		if err := kernelAvailable(); err != nil {
			return err
		}
	}
	opts := demoOptions{json: *jsonOut}
	var files []*os.File
	for _, f := range []struct {
		name string
		dst  *io.Writer
	}{{*pcapFile, &opts.pcap}, {*svgFile, &opts.svg}} {
		if f.name == "" {
			continue
		}
		fh, err := os.Create(f.name)
		if err != nil {
			return err
		}
		files = append(files, fh)
		*f.dst = fh
	}
	err := runScenario(w, sc, opts)
	if err == nil && *kernel {
		fmt.Fprintln(w)
		opts.kernel = true
		// --pcap and --svg are the synstack run's: a second capture in
		// the same file would not be a pcap file.
		opts.pcap, opts.svg = nil, nil
		err = runScenario(w, sc, opts)
	}
	for _, fh := range files {
		if cerr := fh.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// runScenario runs one scenario and prints it.
func runScenario(w io.Writer, sc *scenario, opts demoOptions) error {
	newLab := newLab
	if opts.kernel {
		newLab = newKernelLab
	}
	l, err := newLab(w, sc, opts)
	if err != nil {
		return err
	}
	if !opts.json {
		if opts.kernel {
			fmt.Fprintf(w, "== %s, against the Linux kernel: the server is the kernel of a network namespace, over a TUN device, on the real clock\n\n", sc.name)
		} else {
			fmt.Fprintf(w, "== %s: %s\n\n", sc.name, sc.summary)
		}
		l.ladder = trace.NewLadder(w, l.client.name, l.server.name)
		l.ladder.Ports = sc.ports
		l.tr.Subscribe(l.ladder)
	} else {
		l.tr.Subscribe(trace.NewJSON(w))
	}
	var svg *trace.SVG
	if opts.svg != nil {
		svg = trace.NewSVG("synstack demo "+sc.name+": "+sc.summary, l.client.name, l.server.name)
		svg.Ports = sc.ports
		l.tr.Subscribe(svg)
	}
	runErr := l.runSafely(sc.run)
	l.close()
	if l.ladder != nil {
		l.ladder.Flush()
	}
	if l.kern != nil && len(l.failures) > 0 {
		// The description is synstack's; where the kernel differs, say so.
		l.facts = append(l.facts, "Where the kernel run differs from the description:\n  "+strings.Join(l.failures, "\n  "))
		l.failures = nil
	}
	if runErr == nil && len(l.failures) > 0 {
		runErr = fmt.Errorf("demo %s did not go as described:\n  %s", sc.name, strings.Join(l.failures, "\n  "))
	}
	if opts.json {
		if sc.explain != "" {
			l.tr.Emit(trace.Event{Time: l.clk.Now(), Kind: trace.Note, Text: sc.explain})
		}
	} else if opts.kernel {
		l.printKernelSummary(sc)
	} else {
		l.printSummary(sc)
	}
	if svg != nil {
		if _, err := svg.WriteTo(opts.svg); err != nil && runErr == nil {
			runErr = err
		}
	}
	if l.capture != nil && l.capture.Err() != nil && runErr == nil {
		runErr = l.capture.Err()
	}
	return runErr
}

// printSummary prints, after the ladder, the path each connection took,
// the scenario's facts and its explanation.
func (l *lab) printSummary(sc *scenario) {
	w := l.out
	fmt.Fprintln(w)
	if sc.name == "tour" {
		// One line per host: the tour has one connection.
		for _, h := range l.hosts {
			fmt.Fprintf(w, "%s: %s\n", h.name, strings.Join(h.path, " -> "))
		}
		return
	}
	fmt.Fprintln(w, "Paths taken:")
	const most = 8
	shown := 0
	for _, c := range l.conns {
		if shown == most {
			fmt.Fprintf(w, "  ... and %d more connections\n", len(l.conns)-most)
			break
		}
		fmt.Fprintf(w, "  %-16s %-28s %s\n", c.host.name, c.label(), strings.Join(c.path, " -> "))
		shown++
	}
	if len(l.facts) > 0 {
		fmt.Fprintln(w)
		for _, f := range l.facts {
			fmt.Fprintf(w, "%s\n", f)
		}
	}
	if sc.explain != "" {
		fmt.Fprintln(w)
		for _, para := range strings.Split(strings.TrimSpace(sc.explain), "\n\n") {
			for _, line := range trace.Wrap(strings.Join(strings.Fields(para), " "), textWidth) {
				fmt.Fprintln(w, line)
			}
			fmt.Fprintln(w)
		}
	}
}

// lab is two hosts on one simulated link with a virtual clock.
type lab struct {
	out     io.Writer
	clk     clock.Clock
	vclk    *clock.Virtual // nil against the kernel
	kern    *kernelPeer    // the kernel plays the server, or nil
	mu      sync.Mutex     // events come from several goroutines against the kernel
	stopped bool           // against the kernel: a long wait ended the scenario's waits
	t0      time.Time      // when the scenario starts
	tr      *trace.Tracer
	ladder  *trace.Ladder
	capture *pcap.Writer
	client  *host
	server  *host
	hosts   []*host

	flows   trace.Flows   // every packet sent, to tell which timer fired
	inCall  bool          // a socket call is running: its events wait in pending
	pending []trace.Event // events of the running call
	quiet   bool          // tearing down: no more events
	conns   []*connPath   // every connection, in order of first transition
	facts   []string      // lines printed after the paths
	tagged  []taggedPacket

	failures []string // what did not happen as the scenario says
}

// taggedPacket is a packet sent that trace.Flows tagged (retransmission,
// dup ack, probe), for scenarios that tell what the stack did.
type taggedPacket struct {
	at   time.Time
	host string
	tag  string
	seq  uint32 // relative
}

// connPath is the states one connection went through.
type connPath struct {
	host          *host
	local, remote netip.AddrPort // invalid for a listening socket
	path          []string
}

func (c *connPath) label() string {
	if !c.remote.IsValid() {
		return fmt.Sprintf("listener :%d", c.local.Port())
	}
	return fmt.Sprintf(":%d <> %s", c.local.Port(), c.remote)
}

// host is one machine of the lab: a stack behind a plug on the link.
type host struct {
	l    *lab
	name string
	addr netip.Addr
	cfg  synstack.Config
	st   *synstack.Stack
	so   sockAPI // synstack's Sockets, or the kernel's
	plug *plug   // nil for the kernel
	// setDrop makes the host's link lose the packets it sends for which
	// the function returns true.
	setDrop func(func(pkt []byte) bool)
	kernel  bool // the Linux kernel: no stack, no hooks

	path      []string     // the tour's one-line path
	listeners map[int]bool // descriptors that are listening
	timerAt   time.Time    // when the last Timer event of this host was emitted
	muted     bool         // crashing: what its stack does is not seen
}

// newLab builds the client and the server, each on one end of a simulated
// link; the client's end is tapped when a capture is asked for.
func newLab(w io.Writer, sc *scenario, opts demoOptions) (*lab, error) {
	clk := clock.NewVirtual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	l := &lab{out: w, clk: clk, vclk: clk, t0: clk.Now(), tr: trace.NewTracer(clk)}
	a, b := sim.Pair(sim.Options{Clock: clk, Delay: linkDelay})
	var cliLink link.Endpoint = a
	if opts.pcap != nil {
		pw, err := pcap.NewWriter(opts.pcap)
		if err != nil {
			return nil, err
		}
		l.capture = pw
		cliLink = pcap.NewTap(a, pw, clk)
	}
	var err error
	if l.client, err = l.addHost(clientName, clientAddr, cliLink, a.SetDrop, sc.config); err != nil {
		return nil, err
	}
	if l.server, err = l.addHost(serverName, serverAddr, b, b.SetDrop, sc.config); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *lab) addHost(name, addr string, ep link.Endpoint, setDrop func(func([]byte) bool), tweak func(name string, cfg *synstack.Config)) (*host, error) {
	h := &host{l: l, name: name, addr: netip.MustParseAddr(addr), setDrop: setDrop, listeners: map[int]bool{}}
	h.plug = &plug{ep: ep, h: h}
	h.cfg = synstack.Config{
		Link:         h.plug,
		Addrs:        []netip.Prefix{netip.PrefixFrom(h.addr, 24)},
		Clock:        l.clk,
		Seed:         uint64(len(l.hosts) + 1),
		OnTransition: h.onTransition,
		OnPacket:     h.onPacket,
	}
	if tweak != nil {
		tweak(name, &h.cfg)
	}
	if err := h.boot(); err != nil {
		return nil, err
	}
	l.hosts = append(l.hosts, h)
	return h, nil
}

// boot starts (or restarts) the host's stack.
func (h *host) boot() error {
	st, err := synstack.New(h.cfg)
	if err != nil {
		return err
	}
	h.st, h.so = st, synSockets{st.Sockets()}
	h.listeners = map[int]bool{}
	return nil
}

// close tears the lab down: the RSTs of the stacks' aborts are neither
// traced nor sent (nor captured).
func (l *lab) close() {
	l.quiet = true
	for _, h := range l.hosts {
		if h.kernel {
			continue
		}
		h.plug.setDown(true)
		h.st.Close()
	}
	if l.kern != nil {
		l.kern.close()
	}
}

// runSafely runs a scenario, turning a panic of a setup step into an error.
func (l *lab) runSafely(run func(l *lab)) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("demo failed: %v", r)
		}
	}()
	run(l)
	return nil
}

// run lets d of virtual time pass: packets cross the link, timers fire.
func (l *lab) run(d time.Duration) {
	if l.kern != nil {
		if !l.stopped {
			l.runReal(d)
		}
		return
	}
	l.vclk.Advance(d)
}

// note prints an explanation between the ladder's lines.
func (l *lab) note(format string, args ...any) {
	l.emit(nil, trace.Event{Kind: trace.Note, Text: fmt.Sprintf(format, args...)})
}

// fact records a line for after the ladder (counters, results).
func (l *lab) fact(format string, args ...any) {
	l.facts = append(l.facts, fmt.Sprintf(format, args...))
}

// check records a failure when a result is not what the scenario says.
func (l *lab) check(ok bool, format string, args ...any) {
	if !ok {
		l.failures = append(l.failures, fmt.Sprintf(format, args...))
	}
}

// emit sends an event to the tracer: at once, or after the running socket
// call's own line (see call).
func (l *lab) emit(h *host, ev trace.Event) {
	l.mu.Lock()
	if l.quiet || h != nil && h.muted {
		l.mu.Unlock()
		return
	}
	if ev.Time.IsZero() {
		ev.Time = l.clk.Now()
	}
	if h != nil {
		ev.Host = h.name
	}
	if l.inCall {
		l.pending = append(l.pending, ev)
		l.mu.Unlock()
		return
	}
	l.mu.Unlock()
	l.send(h, ev, h != nil && !h.kernel && !h.plug.delivering.Load())
}

// send hands an event to the tracer. An event of a host outside any socket
// call and any packet delivery (mayBeTimer) comes from one of its timers:
// a Timer event saying which goes first.
func (l *lab) send(h *host, ev trace.Event, mayBeTimer bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var p trace.Packet
	tag := ""
	isPacket := ev.Kind == trace.PacketOut
	if isPacket {
		var err error
		if p, err = trace.ParsePacket(ev.Packet); err == nil {
			var base uint32
			base, _, tag = l.flows.Observe(&p)
			if tag != "" {
				l.tagged = append(l.tagged, taggedPacket{ev.Time, ev.Host, tag, p.TCP.Seq - base})
			}
		} else {
			isPacket = false
		}
	}
	if mayBeTimer && (isPacket || ev.Kind == trace.Transition) && !h.timerAt.Equal(ev.Time) {
		h.timerAt = ev.Time
		l.tr.Emit(trace.Event{Time: ev.Time, Host: h.name, Kind: trace.Timer, Text: l.whichTimer(ev, &p, tag)})
	}
	l.tr.Emit(ev)
}

// whichTimer names the timer that made a host act on its own, from what it
// did (the stack does not report its timers yet).
func (l *lab) whichTimer(ev trace.Event, p *trace.Packet, tag string) string {
	if ev.Kind == trace.Transition {
		switch ev.Cause {
		case "timer 2MSL":
			return "TIME_WAIT's 2MSL timer expires"
		case "timer SYN retries":
			return "retransmission timer: SYN retries exhausted"
		case "timer SYN,ACK retries":
			return "retransmission timer: SYN,ACK retries exhausted"
		case "timer FIN_WAIT_2":
			return "FIN_WAIT_2 timer expires"
		}
		return strings.TrimPrefix(ev.Cause, "timer ") + " timer"
	}
	ack, win, acked := l.flows.Peer(p)
	switch {
	case tag == trace.TagRetransmission && acked && int32(p.TCP.Seq-ack) > 0 && p.TCP.Flags&wire.FlagSYN == 0:
		// Not the oldest unacknowledged segment (data before it is
		// unacknowledged too): the last one, resent to draw an ACK
		// (RFC 8985). An RTO resends from the oldest.
		return "probe timeout: tail loss probe (TLP)"
	case tag == trace.TagRetransmission:
		return "retransmission timeout (RTO)"
	case tag == trace.TagProbe:
		if acked && win == 0 {
			return "persist timer: probe the zero window"
		}
		return "keepalive timer"
	case p.TCP.Flags == wire.FlagACK && p.PayloadLen == 0:
		return "delayed-ACK timer"
	}
	return "timer"
}

// call runs one socket call of h and prints it with its result before what
// the call caused (transitions, packets).
func (h *host) call(f func() string) {
	l := h.l
	l.mu.Lock()
	l.inCall = true
	l.mu.Unlock()
	start := l.clk.Now()
	text := f()
	l.mu.Lock()
	l.inCall = false
	pending := l.pending
	l.pending = nil
	l.mu.Unlock()
	l.emit(h, trace.Event{Time: start, Kind: trace.Call, Text: text})
	for _, ev := range pending {
		l.send(h, ev, false)
	}
}

// onTransition is the stack's transition hook.
func (h *host) onTransition(local, remote netip.AddrPort, from, to tcp.State, cause tcp.Cause) {
	h.record(local, remote, from.String(), to.String())
	h.l.emit(h, trace.Event{Kind: trace.Transition, From: from.String(), To: to.String(),
		Cause: string(cause), Local: local, Remote: remote})
}

// record adds a transition to the paths.
func (h *host) record(local, remote netip.AddrPort, from, to string) {
	h.l.mu.Lock()
	defer h.l.mu.Unlock()
	if h.muted || h.l.quiet {
		return
	}
	if remote.IsValid() {
		if len(h.path) == 0 {
			h.path = append(h.path, from)
		}
		h.path = append(h.path, to)
	}
	for _, c := range h.l.conns {
		// A path that reached CLOSED is over: a new socket on the same
		// addresses starts its own.
		if last := c.path[len(c.path)-1]; c.host == h && c.local == local && c.remote == remote && last == from && last != "CLOSED" {
			c.path = append(c.path, to)
			return
		}
	}
	h.l.conns = append(h.l.conns, &connPath{host: h, local: local, remote: remote, path: []string{from, to}})
}

// onPacket is the stack's packet hook.
func (h *host) onPacket(dir string, pkt []byte) {
	if h.l.quiet || h.muted {
		return
	}
	k := trace.PacketIn
	if dir == "out" {
		k = trace.PacketOut
	}
	h.l.emit(h, trace.Event{Kind: k, Packet: append([]byte(nil), pkt...)})
}

// dropWhen makes the link lose the packets h sends for which lose returns
// true (nil: none), each shown as lost with why.
func (h *host) dropWhen(why string, lose func(p *trace.Packet) bool) {
	if lose == nil {
		h.setDrop(nil)
		return
	}
	h.setDrop(func(pkt []byte) bool {
		p, err := trace.ParsePacket(pkt)
		if err != nil || !lose(&p) {
			return false
		}
		h.l.emit(h, trace.Event{Kind: trace.Drop, Packet: append([]byte(nil), pkt...), Text: why})
		return true
	})
}

// inject writes a hand-built packet on h's link, bypassing its stack.
func (h *host) inject(pkt []byte) {
	if !h.l.quiet {
		h.l.send(h, trace.Event{Time: h.l.clk.Now(), Host: h.name, Kind: trace.PacketOut, Packet: append([]byte(nil), pkt...)}, false)
	}
	h.plug.ep.WritePacket(pkt)
}

// crash makes the host vanish: its stack is gone without a packet sent.
func (h *host) crash() {
	h.plug.setDown(true)
	h.muted = true
	h.st.Close()
	h.muted = false
	for _, c := range h.l.conns {
		if c.host == h && c.path[len(c.path)-1] != "CLOSED" {
			c.path = append(c.path, "(crash)")
		}
	}
}

// restart shuts the host's stack down (what it sends then is not shown, nor
// sent) and starts a new one, its configuration changed by tweak.
func (h *host) restart(tweak func(cfg *synstack.Config)) {
	for fd := range h.listeners {
		h.close(fd)
	}
	h.crash()
	tweak(&h.cfg)
	h.reboot()
}

// reboot starts a fresh stack on the host: no connections, no listeners.
func (h *host) reboot() {
	h.plug.setDown(false)
	if err := h.boot(); err != nil {
		panic(err)
	}
}

// plug sits between a host's stack and its end of the link: it tells the
// lab when a packet is being delivered (so the stack's reactions are not
// taken for timers), and can be pulled out (a crashed host), letting the
// host reboot with a new stack on the same link.
type plug struct {
	ep link.Endpoint
	h  *host

	mu         sync.Mutex
	d          link.Dispatcher
	attached   bool
	down       bool
	delivering atomic.Bool
}

func (p *plug) MTU() int { return p.ep.MTU() }

func (p *plug) Attach(d link.Dispatcher) {
	p.mu.Lock()
	p.d = d
	first := !p.attached
	p.attached = true
	p.mu.Unlock()
	if first {
		p.ep.Attach(p)
	}
}

func (p *plug) WritePacket(pkt []byte) error {
	p.mu.Lock()
	down := p.down
	p.mu.Unlock()
	if down {
		return nil
	}
	return p.ep.WritePacket(pkt)
}

// Close detaches the stack; the link stays, for a reboot.
func (p *plug) Close() error {
	p.mu.Lock()
	p.d = nil
	p.mu.Unlock()
	return nil
}

func (p *plug) setDown(down bool) {
	p.mu.Lock()
	p.down = down
	p.mu.Unlock()
}

// DeliverPacket hands a packet from the link to the stack, unless the host
// is down (then nothing answers it).
func (p *plug) DeliverPacket(pkt []byte) {
	p.mu.Lock()
	d, down := p.d, p.down
	p.mu.Unlock()
	if d == nil || down {
		return
	}
	p.delivering.Store(true)
	d.DeliverPacket(pkt)
	p.delivering.Store(false)
}

// Socket calls, each printed with its result in the host's column.

// socket creates a non-blocking TCP socket (not printed: the interesting
// calls are the ones that follow).
func (h *host) socket() int {
	fd, err := h.so.Socket(synstack.AF_INET, synstack.SOCK_STREAM|synstack.SOCK_NONBLOCK, 0)
	if err != nil {
		panic(fmt.Sprintf("%s: socket: %v", h.name, err))
	}
	return fd
}

// listenOn is socket, bind and listen in one, for scenarios where the
// listener is not the point. It returns the listening descriptor.
func (h *host) listenOn(port uint16, backlog int) int {
	fd := h.socket()
	if err := h.so.Bind(fd, netip.AddrPortFrom(h.addr, port)); err != nil {
		panic(fmt.Sprintf("%s: bind :%d: %v", h.name, port, err))
	}
	h.listen(fd, backlog)
	return fd
}

// setsockopt sets a SOL_SOCKET option to 1.
func (h *host) setsockopt(fd int, name string, opt int) error {
	return h.setsockoptInt(fd, name, opt, 1)
}

func (h *host) setsockoptInt(fd int, name string, opt, value int) error {
	var err error
	h.call(func() string {
		err = h.so.SetsockoptInt(fd, synstack.SOL_SOCKET, opt, value)
		return fmt.Sprintf("setsockopt(%d, SOL_SOCKET, %s, %d) = %s", fd, name, value, result(0, err))
	})
	return err
}

func (h *host) bind(fd int, port uint16) error {
	var err error
	h.call(func() string {
		err = h.so.Bind(fd, netip.AddrPortFrom(h.addr, port))
		return fmt.Sprintf("bind(%d, %s:%d) = %s", fd, h.addr, port, result(0, err))
	})
	return err
}

func (h *host) listen(fd, backlog int) error {
	var err error
	h.call(func() string {
		err = h.so.Listen(fd, backlog)
		if err == nil {
			h.listeners[fd] = true
			local, _ := h.so.Getsockname(fd)
			if len(h.path) == 0 {
				h.path = []string{"CLOSED", "LISTEN"}
			}
			h.record(local, netip.AddrPort{}, "CLOSED", "LISTEN")
			h.l.emit(h, trace.Event{Kind: trace.Transition, From: "CLOSED", To: "LISTEN", Cause: "call LISTEN", Local: local})
		}
		return fmt.Sprintf("listen(%d, %d) = %s", fd, backlog, result(0, err))
	})
	return err
}

func (h *host) connect(fd int, to string, port uint16) error {
	var err error
	h.call(func() string {
		err = h.so.Connect(fd, netip.AddrPortFrom(netip.MustParseAddr(to), port))
		return fmt.Sprintf("connect(%d, %s:%d) = %s", fd, to, port, result(0, err))
	})
	return err
}

func (h *host) accept(fd int) (int, error) {
	var nfd int
	var err error
	h.call(func() string {
		var peer netip.AddrPort
		nfd, peer, err = h.so.Accept(fd)
		if err != nil {
			return fmt.Sprintf("accept(%d) = %s", fd, result(-1, err))
		}
		// As accept4(SOCK_NONBLOCK): every call of the lab must return at
		// once, for the virtual clock only moves between calls.
		if _, err := h.so.Fcntl(nfd, synstack.F_SETFL, synstack.O_NONBLOCK); err != nil {
			panic(err)
		}
		return fmt.Sprintf("accept(%d) = %d  (from %s)", fd, nfd, peer)
	})
	return nfd, err
}

func (h *host) write(fd int, data string) (int, error) {
	var n int
	var err error
	h.call(func() string {
		n, err = h.so.Write(fd, []byte(data))
		if err != nil {
			return fmt.Sprintf("write(%d, %s) = %s", fd, quote(data), result(-1, err))
		}
		return fmt.Sprintf("write(%d, %s) = %d", fd, quote(data), n)
	})
	return n, err
}

// read reads up to max bytes.
func (h *host) read(fd, max int) (string, error) {
	buf := make([]byte, max)
	var n int
	var err error
	h.call(func() string {
		n, err = h.so.Read(fd, buf)
		switch {
		case err != nil:
			return fmt.Sprintf("read(%d) = %s", fd, result(-1, err))
		case n == 0:
			return fmt.Sprintf("read(%d) = 0  (end of stream)", fd)
		}
		return fmt.Sprintf("read(%d) = %d %s", fd, n, quote(string(buf[:n])))
	})
	return string(buf[:n]), err
}

var howNames = map[int]string{synstack.SHUT_RD: "SHUT_RD", synstack.SHUT_WR: "SHUT_WR", synstack.SHUT_RDWR: "SHUT_RDWR"}

func (h *host) shutdown(fd, how int) error {
	var err error
	h.call(func() string {
		err = h.so.Shutdown(fd, how)
		return fmt.Sprintf("shutdown(%d, %s) = %s", fd, howNames[how], result(0, err))
	})
	return err
}

func (h *host) close(fd int) error {
	var err error
	h.call(func() string {
		local, _ := h.so.Getsockname(fd)
		listening := h.listeners[fd]
		err = h.so.Close(fd)
		if err == nil && listening {
			delete(h.listeners, fd)
			h.record(local, netip.AddrPort{}, "LISTEN", "CLOSED")
			h.l.emit(h, trace.Event{Kind: trace.Transition, From: "LISTEN", To: "CLOSED", Cause: "call CLOSE", Local: local})
		}
		return fmt.Sprintf("close(%d) = %s", fd, result(0, err))
	})
	return err
}

func (h *host) dup(fd int) int {
	var nfd int
	var err error
	h.call(func() string {
		nfd, err = h.so.Dup(fd)
		return fmt.Sprintf("dup(%d) = %s", fd, result(nfd, err))
	})
	if err != nil {
		panic(err)
	}
	return nfd
}

// soError reads and clears the socket's pending error (SO_ERROR).
func (h *host) soError(fd int) syscall.Errno {
	var v int
	h.call(func() string {
		var err error
		v, err = h.so.GetsockoptInt(fd, synstack.SOL_SOCKET, synstack.SO_ERROR)
		if err != nil {
			return fmt.Sprintf("getsockopt(%d, SO_ERROR) = %s", fd, result(-1, err))
		}
		if v == 0 {
			return fmt.Sprintf("getsockopt(%d, SO_ERROR) = 0, error 0", fd)
		}
		return fmt.Sprintf("getsockopt(%d, SO_ERROR) = 0, error %s", fd, errnoName(syscall.Errno(v)))
	})
	return syscall.Errno(v)
}

// tcpInfo reads and prints the TCP state of the socket (TCP_INFO).
func (h *host) tcpInfo(fd int) string {
	var st string
	h.call(func() string {
		var err error
		st, err = h.so.TCPState(fd)
		if err != nil {
			st = err.Error()
			return fmt.Sprintf("getsockopt(%d, TCP_INFO) = %s", fd, result(-1, err))
		}
		return fmt.Sprintf("getsockopt(%d, TCP_INFO) = 0, tcpi_state %s", fd, st)
	})
	return st
}

// state returns the TCP state of the socket's connection (TCP_INFO), not printed.
func (h *host) state(fd int) string {
	st, err := h.so.TCPState(fd)
	if err != nil {
		return err.Error()
	}
	return st
}

// result formats a call's return: ok on success, else -1 and the errno.
func result(ok int, err error) string {
	if err == nil {
		return fmt.Sprint(ok)
	}
	return "-1 " + errText(err)
}

func errText(err error) string {
	var e syscall.Errno
	if errors.As(err, &e) {
		return errnoName(e)
	}
	return err.Error()
}

var errnoNames = map[syscall.Errno]string{
	syscall.EINPROGRESS:  "EINPROGRESS",
	syscall.EAGAIN:       "EAGAIN",
	syscall.ECONNREFUSED: "ECONNREFUSED",
	syscall.ECONNRESET:   "ECONNRESET",
	syscall.ETIMEDOUT:    "ETIMEDOUT",
	syscall.EADDRINUSE:   "EADDRINUSE",
	syscall.EPIPE:        "EPIPE",
	syscall.ENOTCONN:     "ENOTCONN",
	syscall.EINVAL:       "EINVAL",
	syscall.EBADF:        "EBADF",
	syscall.EISCONN:      "EISCONN",
	syscall.EALREADY:     "EALREADY",
}

func errnoName(e syscall.Errno) string {
	if n, ok := errnoNames[e]; ok {
		return n + " (" + e.Error() + ")"
	}
	return e.Error()
}

// quote shows data as a short Go string.
func quote(s string) string {
	const most = 24
	if len(s) > most {
		return fmt.Sprintf("%q... (%d bytes)", s[:most], len(s))
	}
	return fmt.Sprintf("%q", s)
}
