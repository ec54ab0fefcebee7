package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/forward"
	"github.com/synstack/synstack/link/tun"
	"github.com/synstack/synstack/tcp"
)

// What serve, forward and get share: a stack on a TUN device, the flags
// that describe them, its admin endpoints, waiting for the kernel's side
// of the device (and watching it until a signal), and a close that lets
// connections finish before it removes the device.

// prefixList is a flag taking one or more prefixes (10.99.0.2/24),
// repeated or separated by commas.
type prefixList []netip.Prefix

func (l *prefixList) String() string {
	s := make([]string, len(*l))
	for i, p := range *l {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

func (l *prefixList) Set(v string) error {
	for _, f := range strings.Split(v, ",") {
		p, err := netip.ParsePrefix(strings.TrimSpace(f))
		if err != nil {
			return fmt.Errorf("want an address with its prefix length, as 10.99.0.2/24: %w", err)
		}
		*l = append(*l, netip.PrefixFrom(p.Addr().Unmap(), p.Bits()))
	}
	return nil
}

// tunFlags are the flags of a command that runs a stack on a TUN device.
type tunFlags struct {
	name      string
	addrs     prefixList
	hostAddrs prefixList
	mtu       int
	noOffload bool
	queues    int
	tcpMem    byteSize
}

func (f *tunFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.name, "tun", "", "TUN device `NAME` (created if it does not exist, removed at exit if created)")
	fs.Var(&f.addrs, "addr", "the stack's address with its prefix, `CIDR` as 10.99.0.2/24 (repeatable)")
	fs.Var(&f.hostAddrs, "host-addr", "give the kernel's side of the device this address, `CIDR` as 10.99.0.1/24 (repeatable; removed at exit)")
	fs.IntVar(&f.mtu, "mtu", tun.DefaultMTU, "the device's MTU")
	fs.BoolVar(&f.noOffload, "no-offload", false, "plain TUN device: no virtio header, no large packets, no checksum offload")
	fs.IntVar(&f.queues, "queues", 1, "`N` queues (IFF_MULTI_QUEUE): the kernel spreads flows over them and the stack takes them on N goroutines")
	fs.Var(&f.tcpMem, "tcp-mem", "the most the connections' send and receive queues hold together, `SIZE` as 64M (tcp_mem's high mark; pressure at 2/3 of it, low at 1/2; default: sized from the machine's memory as Linux sizes tcp_mem)")
}

// byteSize is a flag of bytes, with an optional K, M or G (powers of 1024).
type byteSize int64

func (b *byteSize) String() string {
	if *b == 0 {
		return "0"
	}
	return strconv.FormatInt(int64(*b), 10)
}

func (b *byteSize) Set(s string) error {
	mult := int64(1)
	switch strings.ToUpper(s[len(s)-min(1, len(s)):]) {
	case "K":
		mult = 1 << 10
	case "M":
		mult = 1 << 20
	case "G":
		mult = 1 << 30
	}
	if mult > 1 {
		s = s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/mult {
		return errors.New("want a number of bytes, with K, M or G after it if you like (64M)")
	}
	*b = byteSize(n * mult)
	return nil
}

// memoryLimits are the stack's Config.TCPMem from --tcp-mem: zero (the
// stack's default) when it is not given.
func (f *tunFlags) memoryLimits() tcp.MemoryLimits {
	high := int64(f.tcpMem)
	if high == 0 {
		return tcp.MemoryLimits{}
	}
	return tcp.MemoryLimits{Low: high / 2, Pressure: high / 3 * 2, High: high}
}

// check checks the flags against each other, before anything is created:
// the device is named, the stack has an address, and the kernel's
// addresses, if given, are on the stack's subnets, so that the kernel
// routes the stack's addresses through the device.
func (f *tunFlags) check() error {
	if f.name == "" {
		return errors.New("--tun NAME is required: the TUN device to create or attach to, as --tun syn0 (never a default: tun0 is often a VPN's)")
	}
	if len(f.addrs) == 0 {
		return errors.New("--addr is required (the stack's address, as 10.99.0.2/24)")
	}
	if f.mtu < 576 || f.mtu > 65535 {
		return fmt.Errorf("--mtu %d: want 576 to 65535 (IPv6 needs 1280)", f.mtu)
	}
	if f.queues < 1 || f.queues > 256 {
		return fmt.Errorf("--queues %d: want 1 to 256", f.queues)
	}
	for _, h := range f.hostAddrs {
		for _, a := range f.addrs {
			if h.Addr() == a.Addr() {
				return fmt.Errorf("--host-addr %s is the stack's own address (--addr %s): give the kernel another address of the subnet, as %s", h, a, f.hint(a))
			}
		}
	}
	if len(f.hostAddrs) == 0 {
		return nil
	}
	for _, a := range f.addrs {
		routed := false
		for _, h := range f.hostAddrs {
			routed = routed || h.Masked().Contains(a.Addr())
		}
		if !routed {
			return fmt.Errorf("--addr %s is outside every --host-addr's subnet (%s): the kernel would not route it through the device; give the kernel an address in %s, as --host-addr %s",
				a, f.hostAddrs.String(), a.Masked(), f.hint(a))
		}
	}
	return nil
}

// hint is an address of a's subnet other than a, with a's prefix length,
// for the kernel's side.
func (f *tunFlags) hint(a netip.Prefix) netip.Prefix {
	peer := a.Addr().Prev()
	if !a.Contains(peer) || peer == a.Masked().Addr() {
		peer = a.Addr().Next()
	}
	return netip.PrefixFrom(peer, a.Bits())
}

// openTun opens the TUN device (a variable so that tests can see that no
// device is opened before the arguments are checked).
var openTun = tun.Open

// errNotRoot explains a refusal to create a TUN device.
func errNotRoot(cmd string, err error) error {
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
		return fmt.Errorf("needs root or CAP_NET_ADMIN to create a TUN device (run it as sudo \"$(go env GOPATH)/bin/synstack\" %s ...): %w", cmd, err)
	}
	return err
}

// tunStack is a stack on a TUN device.
type tunStack struct {
	log   io.Writer
	cmd   string
	flags *tunFlags
	ep    *tun.Endpoint
	st    *synstack.Stack
}

// openTunStack opens the device and starts a stack on it.
func openTunStack(log io.Writer, cmd string, f *tunFlags, cfg synstack.Config) (*tunStack, error) {
	ep, err := openTun(tun.Options{Name: f.name, MTU: f.mtu, NoOffload: f.noOffload, HostAddrs: f.hostAddrs, Queues: f.queues})
	if err != nil {
		return nil, errNotRoot(cmd, err)
	}
	cfg.Link = ep
	cfg.Addrs = f.addrs
	cfg.TCPMem = f.memoryLimits()
	st, err := synstack.New(cfg)
	if err != nil {
		ep.Close()
		return nil, err
	}
	how := "attached"
	if ep.Created() {
		how = "created"
	}
	ts := &tunStack{log: log, cmd: cmd, flags: f, ep: ep, st: st}
	ts.logf("device %s (%s, mtu %d, offloads: %s, queues: %d), stack %s", ep.Name(), how, ep.MTU(), ep.Offload(), max(f.queues, 1), f.addrs.String())
	if len(f.hostAddrs) > 0 {
		ts.logf("kernel side of %s: %s", ep.Name(), f.hostAddrs.String())
	}
	return ts, nil
}

// tunRun is a command that runs on a stack over a TUN device until a
// signal (serve, forward): the stack, the signals, and its admin
// endpoints.
type tunRun struct {
	ts        *tunStack
	sig       *runSignals
	stopAdmin func() // nil without --admin
}

// startTunRun does what serve and forward do first: it takes the --admin
// port (adminAddr, "" for none) before the device is made, so that a busy
// port fails the command with nothing to undo; starts catching the
// signals; and opens the stack on the device, with the admin endpoints if
// asked. The caller defers stop.
func startTunRun(log io.Writer, cmd string, f *tunFlags, adminAddr string) (*tunRun, error) {
	als, err := listenAdmin(log, cmd, adminAddr)
	if err != nil {
		return nil, err
	}
	sig := notifySignals()
	obs, cfg := adminConfig(als != nil)
	ts, err := openTunStack(log, cmd, f, cfg)
	if err != nil {
		if als != nil {
			als.Close()
		}
		sig.stopSignals()
		return nil, err
	}
	r := &tunRun{ts: ts, sig: sig}
	if als != nil {
		r.stopAdmin = serveAdmin(ts, als, obs)
	}
	return r, nil
}

// stop stops the admin endpoints and the catching of signals.
func (r *tunRun) stop() {
	if r.stopAdmin != nil {
		r.stopAdmin()
	}
	r.sig.stopSignals()
}

// untilSignal watches the kernel's side of the device and calls onUsr1 at
// each SIGUSR1 until SIGINT or SIGTERM. It then stops catching the signals,
// so that a second Ctrl-C ends the program at once, and returns once the
// watch has ended.
func (r *tunRun) untilSignal(onUsr1 func()) {
	watchCtx, stopWatch := context.WithCancel(r.sig.ctx)
	var watchDone sync.WaitGroup
	watchDone.Add(1)
	go func() {
		defer watchDone.Done()
		r.ts.watchKernel(watchCtx)
	}()
	r.sig.wait(onUsr1)
	r.sig.stopSignals()
	stopWatch()
	watchDone.Wait()
}

func (ts *tunStack) logf(format string, args ...any) {
	fmt.Fprintf(ts.log, "synstack %s: %s\n", ts.cmd, fmt.Sprintf(format, args...))
}

// ready reports whether the kernel routes every address of the stack
// through the device.
func (ts *tunStack) ready() bool {
	for _, p := range ts.flags.addrs {
		if ok, err := ts.ep.KernelReady(p.Addr()); !ok || err != nil {
			return false
		}
	}
	return true
}

// hint is the command that would configure the kernel's side by hand.
func (ts *tunStack) hint() string {
	p := ts.flags.addrs[0]
	if p.Bits() == p.Addr().BitLen() {
		return fmt.Sprintf("ip link set %s up; ip route add %s dev %s", ts.ep.Name(), p, ts.ep.Name())
	}
	return fmt.Sprintf("ip addr add %s dev %s; ip link set %s up", ts.flags.hint(p), ts.ep.Name(), ts.ep.Name())
}

// waitKernel waits until the kernel routes the stack's addresses through
// the device, saying once what it waits for. It returns ctx's error if ctx
// ends first.
func (ts *tunStack) waitKernel(ctx context.Context) error {
	if ts.ready() {
		ts.logf("kernel side of %s is up: the kernel routes %s through it", ts.ep.Name(), ts.flags.addrs.String())
		return nil
	}
	ts.logf("waiting for the kernel side of %s (for example: %s)", ts.ep.Name(), ts.hint())
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			if ts.ready() {
				ts.logf("kernel side of %s is up: the kernel routes %s through it", ts.ep.Name(), ts.flags.addrs.String())
				return nil
			}
		}
	}
}

// watchKernel reports changes of the kernel side's readiness until ctx
// ends: waits for it first, then says when it goes away and comes back.
func (ts *tunStack) watchKernel(ctx context.Context) {
	if ts.waitKernel(ctx) != nil {
		return
	}
	up := true
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r := ts.ready()
			switch {
			case up && !r:
				ts.logf("kernel side of %s is down or has lost its route; waiting (%s)", ts.ep.Name(), ts.hint())
			case !up && r:
				ts.logf("kernel side of %s is up again", ts.ep.Name())
			}
			up = r
		}
	}
}

// settle waits, at most d, until no connection of the stack is
// ESTABLISHED or in CLOSE_WAIT, then a little more so that the last FINs
// are acknowledged.
func (ts *tunStack) settle(d time.Duration) {
	end := time.Now().Add(d)
	for ts.st.Stats().TcpCurrEstab > 0 && time.Now().Before(end) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(min(200*time.Millisecond, time.Until(end)))
}

// close closes the stack (resetting what is still open) and the device.
func (ts *tunStack) close() error {
	name, created := ts.ep.Name(), ts.ep.Created()
	err := ts.st.Close() // closes the link too
	if err != nil {
		return err
	}
	if created {
		ts.logf("device %s removed", name)
	} else if len(ts.flags.hostAddrs) > 0 {
		ts.logf("device %s left as it was", name)
	}
	return nil
}

// statsLine is what serve and forward print on SIGUSR1 and at exit: one
// JSON object on one line, written in one write, so that a reader never
// sees half a report or two reports of one signal.
type statsLine struct {
	Stats synstack.Stats `json:"stats"`
	Link  tun.Stats      `json:"link"`
	Conns int64          `json:"conns"` // connections the server has open (forward: relays running)
	// ConnsRefused counts the connections serve refused (RST) beyond
	// --max-conns, IdleClosed those it reset after --idle-timeout of
	// silence (echo and discard).
	ConnsRefused uint64 `json:"conns_refused"`
	IdleClosed   uint64 `json:"idle_closed"`
	HeapInuse    uint64 `json:"heap_inuse"`
	Goroutines   int    `json:"goroutines"`
	// Forward holds the forwarder's counters (forward only).
	Forward *forward.Stats `json:"forward,omitempty"`
}

// printStats writes the stack's counters, and fw's when it is not nil, as
// one line in one write.
func (ts *tunStack) printStats(w io.Writer, conns int64, srv *server, fw *forward.Stats) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	line := statsLine{
		Stats:      ts.st.Stats(),
		Link:       ts.ep.Stats(),
		Conns:      conns,
		HeapInuse:  ms.HeapInuse,
		Goroutines: runtime.NumGoroutine(),
		Forward:    fw,
	}
	if srv != nil {
		line.ConnsRefused = srv.refused.Load()
		line.IdleClosed = srv.idleClosed.Load()
	}
	b, _ := json.Marshal(line)
	w.Write(append(b, '\n'))
}

// parseInterleaved parses args with fs, allowing flags after the
// positional arguments, which it returns.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}
}
