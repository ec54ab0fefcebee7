package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/net/proxy"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/forward"
)

// forward: tun2socks. Every TCP connection the kernel routes into the TUN
// device, whatever its destination, is terminated by the stack and relayed
// to an upstream: one fixed address, the original destination, or through
// a SOCKS5 proxy.

const forwardUsage = `usage: synstack forward --tun NAME --addr CIDR (--to HOST:PORT | --direct | --socks5 HOST:PORT)
                        [--deferred] [--host-addr CIDR] [--route CIDR] [--mark N] [--admin :PORT]
                        [--dial-timeout D] [--idle-timeout D] [--max-pending N]
                        [--max-relays N] [--max-relays-per-source N]

Creates the TUN device NAME (or attaches to it), gives the stack the address
CIDR and terminates every TCP connection routed into the device, to any
address, relaying it to the upstream: --to sends all to HOST:PORT, --direct
dials the original destination from the host, --socks5 goes through the SOCKS5
proxy HOST:PORT (asking it for the original destination). With --deferred the
client's SYN is answered only once the upstream has answered: a refusing
upstream refuses the client (RST), an unreachable or silent one draws ICMP
destination unreachable; without it the handshake completes at once and a
failed upstream resets the connection. --route adds a kernel route for CIDR
into the device (removed at exit); the kernel side may also be configured by
hand after forward has started.

Forward never makes a loop: before anything is dialed or accepted it refuses
(RST, counted in "loops") a connection to one of the stack's own addresses,
or one whose upstream the kernel would route back into the device (it asks
the kernel's routing, with --mark's mark, as ip route get ADDR mark N does).
To relay with --direct to destinations routed into the device, mark the
host's dials (--mark N sets SO_MARK) and route marked traffic elsewhere
(ip rule add fwmark N lookup TABLE). --max-relays bounds the connections
handled at once, --max-relays-per-source those of one client address; beyond
them clients are refused (RST) and counted.

SIGUSR1 prints the stack's and the forwarder's counters as one JSON line on
stderr; SIGINT or SIGTERM resets the relays and removes what forward created.
Needs root or CAP_NET_ADMIN: sudo "$(go env GOPATH)/bin/synstack" forward ...

flags:
`

func runForward(stderr io.Writer, args []string) error {
	fs := flag.NewFlagSet("forward", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var tf tunFlags
	tf.register(fs)
	to := fs.String("to", "", "relay every connection to `HOST:PORT`")
	direct := fs.Bool("direct", false, "dial each connection's original destination from the host")
	socks := fs.String("socks5", "", "relay through the SOCKS5 proxy at `HOST:PORT`")
	socksUser := fs.String("socks5-user", "", "SOCKS5 user name (the password comes from $SYNSTACK_SOCKS5_PASSWORD)")
	deferred := fs.Bool("deferred", false, "dial the upstream before answering the client's SYN")
	var routes prefixList
	fs.Var(&routes, "route", "add a kernel route for `CIDR` into the device (repeatable; removed at exit)")
	mark := fs.Int("mark", 0, "SO_MARK for the host's dials to upstreams (0: none)")
	dialTimeout := fs.Duration("dial-timeout", forward.DefaultDialTimeout, "how long a dial to the upstream may take")
	idleTimeout := fs.Duration("idle-timeout", 0, "reset connections idle this long both ways (0: never)")
	maxPending := fs.Int("max-pending", synstack.DefaultMaxPendingForwards, "connection requests waiting for their upstream, at most")
	maxRelays := fs.Int("max-relays", forward.DefaultMaxRelays, "connections handled at once (dial and relay), at most; more are refused (RST)")
	maxPerSource := fs.Int("max-relays-per-source", 0, "connections one client address may have handled at once (0: only --max-relays)")
	adminAddr := adminFlag(fs)
	fs.Usage = usageFunc(stderr, fs, forwardUsage)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("forward: unexpected argument %q (flags only; see synstack forward --help)", fs.Arg(0))
	}
	if err := tf.check(); err != nil {
		return fmt.Errorf("forward: %w", err)
	}
	n := 0
	for _, on := range []bool{*to != "", *direct, *socks != ""} {
		if on {
			n++
		}
	}
	if n != 1 {
		return errors.New("forward: say where to relay: one of --to HOST:PORT, --direct, --socks5 HOST:PORT")
	}
	for _, a := range []struct{ flag, v string }{{"to", *to}, {"socks5", *socks}} {
		if a.v == "" {
			continue
		}
		_, port, err := net.SplitHostPort(a.v)
		if err != nil {
			return fmt.Errorf("forward: --%s %s: want HOST:PORT, as 127.0.0.1:8080: %v", a.flag, a.v, err)
		}
		if _, err := checkPort(a.flag, a.v, port); err != nil {
			return fmt.Errorf("forward: %w", err)
		}
	}
	for _, v := range []struct {
		flag string
		n    int
	}{{"max-relays", *maxRelays}, {"max-relays-per-source", *maxPerSource}, {"max-pending", *maxPending}, {"mark", *mark}} {
		if v.n < 0 {
			return fmt.Errorf("forward: --%s %d: want 0 or more", v.flag, v.n)
		}
	}
	if *maxRelays == 0 {
		return errors.New("forward: --max-relays 0 would refuse every connection: want 1 or more")
	}
	var als net.Listener
	if *adminAddr != "" {
		var err error
		if als, err = listenAdmin(stderr, "forward", *adminAddr); err != nil {
			return fmt.Errorf("forward: %w", err)
		}
	}

	nd := &net.Dialer{}
	if *mark != 0 {
		m := *mark
		nd.Control = func(network, address string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_MARK, m)
			})
			if err != nil {
				return err
			}
			return serr
		}
	}
	fw := &forward.Forwarder{
		Dial:               nd.DialContext,
		Deferred:           *deferred,
		DialTimeout:        *dialTimeout,
		Relay:              forward.RelayOptions{IdleTimeout: *idleTimeout},
		MaxRelays:          *maxRelays,
		MaxRelaysPerSource: *maxPerSource,
	}
	// upstream is the address the host dials for a target: the proxy's
	// with --socks5, the target itself otherwise.
	upstream := func(target string) string { return target }
	what := "the original destination"
	switch {
	case *to != "":
		fw.Target = forward.To(*to)
		what = *to
	case *socks != "":
		upstream = func(string) string { return *socks }
		var auth *proxy.Auth
		if *socksUser != "" {
			auth = &proxy.Auth{User: *socksUser, Password: os.Getenv("SYNSTACK_SOCKS5_PASSWORD")}
		}
		fw.Dial = forward.SOCKS5(*socks, auth, nd.DialContext)
		what = "SOCKS5 proxy " + *socks
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)

	obs, cfg := adminConfig(als != nil)
	ts, err := openTunStack(stderr, "forward", &tf, cfg)
	if err != nil {
		if als != nil {
			als.Close()
		}
		return fmt.Errorf("forward: %w", err)
	}
	if als != nil {
		defer serveAdmin(ts, als, obs)()
	}
	guard := &loopGuard{dev: ts.ep.Index(), devName: ts.ep.Name(), mark: uint32(*mark)}
	for _, p := range tf.addrs {
		guard.own = append(guard.own, p.Addr())
	}
	fw.Check = func(req *synstack.ForwardRequest, target string) error {
		return guard.check(upstream(target))
	}
	ts.st.SetForwarder(fw, synstack.ForwardOptions{MaxPending: *maxPending})
	var added []*netlink.Route
	for _, p := range routes {
		r, err := addRoute(ts.ep.Index(), p)
		if err != nil {
			removeRoutes(ts, added)
			fw.Close()
			ts.close()
			return fmt.Errorf("forward: route %s: %w", p, err)
		}
		added = append(added, r)
		ts.logf("route %s into %s", p, ts.ep.Name())
	}
	mode := "immediate"
	if *deferred {
		mode = "deferred"
	}
	ts.logf("forwarding every TCP connection into %s to %s (%s handshake)", ts.ep.Name(), what, mode)

	watchCtx, stopWatch := context.WithCancel(ctx)
	var watchDone sync.WaitGroup
	watchDone.Add(1)
	go func() {
		defer watchDone.Done()
		ts.watchKernel(watchCtx)
	}()
	printStats := func() {
		st := fw.Stats()
		ts.printStats(stderr, st.Active, nil, &st)
	}
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-usr1:
			printStats()
		}
	}
	stop()
	stopWatch()
	watchDone.Wait()

	if st := fw.Stats(); st.Loops+st.LimitRefused+st.SourceLimitRefused > 0 {
		ts.logf("refused %d connections that would have looped, %d beyond --max-relays, %d beyond --max-relays-per-source",
			st.Loops, st.LimitRefused, st.SourceLimitRefused)
	}
	ts.logf("closing %d relays", fw.Stats().Active)
	removeRoutes(ts, added)
	ts.st.SetForwarder(nil, synstack.ForwardOptions{})
	fw.Close()
	ts.settle(time.Second)
	printStats()
	if err := ts.close(); err != nil {
		return fmt.Errorf("forward: %w", err)
	}
	return nil
}

// addRoute routes p into the device with the given index.
func addRoute(index int, p interface{ String() string }) (*netlink.Route, error) {
	_, dst, err := net.ParseCIDR(p.String())
	if err != nil {
		return nil, err
	}
	r := &netlink.Route{LinkIndex: index, Dst: dst, Scope: netlink.SCOPE_LINK}
	if err := netlink.RouteAdd(r); err != nil {
		return nil, err
	}
	return r, nil
}

func removeRoutes(ts *tunStack, routes []*netlink.Route) {
	for _, r := range routes {
		if err := netlink.RouteDel(r); err != nil {
			ts.logf("removing route %s: %v", r.Dst, err)
		}
	}
}

// loopGuard refuses upstreams that would bring a connection back into the
// stack: one of the stack's own addresses, or an address the kernel routes
// into the stack's device. It asks the kernel's routing (RTM_GETROUTE, as
// ip route get ADDR mark N) with the mark the dials carry, so policy rules
// that route marked traffic elsewhere are honoured; a route that changes
// between the check and the dial is the only gap, and the check runs again
// for every connection.
type loopGuard struct {
	dev     int // the device's interface index
	devName string
	own     []netip.Addr
	mark    uint32
}

// check returns an error wrapping forward.ErrLoop if dialing upstream
// ("host:port") would loop, the route lookup's error (ENETUNREACH...) if
// the kernel has no route, or nil. Host names are not checked (the
// stack's dials of them are the resolver's business).
func (g *loopGuard) check(upstream string) error {
	ap, err := netip.ParseAddrPort(upstream)
	if err != nil {
		return nil
	}
	a := ap.Addr().Unmap()
	for _, o := range g.own {
		if a == o {
			return fmt.Errorf("%s is the stack's own address: %w", a, forward.ErrLoop)
		}
	}
	routes, err := netlink.RouteGetWithOptions(a.AsSlice(), &netlink.RouteGetOptions{Mark: g.mark})
	if err != nil {
		return &net.OpError{Op: "route", Net: "ip", Addr: &net.IPAddr{IP: a.AsSlice()}, Err: err}
	}
	for _, r := range routes {
		if r.LinkIndex == g.dev {
			return fmt.Errorf("the kernel routes %s back into %s: %w", a, g.devName, forward.ErrLoop)
		}
	}
	return nil
}
