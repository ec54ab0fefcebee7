package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
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
                        [--deferred] [--host-addr CIDR] [--route CIDR] [--mark N]
                        [--dial-timeout D] [--idle-timeout D] [--max-pending N]

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
hand after forward has started. With --direct, the host's dials must not be
routed back into the device: mark them (--mark N sets SO_MARK) and keep marked
traffic out of the routes into the device (ip rule add fwmark N lookup main).
SIGUSR1 prints the stack's and the forwarder's counters as one JSON line on stderr; SIGINT or SIGTERM resets
the relays and removes what forward created. Needs root (CAP_NET_ADMIN).

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
	fs.Usage = func() {
		fmt.Fprint(stderr, forwardUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("forward: unexpected argument %q", fs.Arg(0))
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
		Dial:        nd.DialContext,
		Deferred:    *deferred,
		DialTimeout: *dialTimeout,
		Relay:       forward.RelayOptions{IdleTimeout: *idleTimeout},
	}
	what := "the original destination"
	switch {
	case *to != "":
		fw.Target = forward.To(*to)
		what = *to
	case *socks != "":
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

	ts, err := openTunStack(stderr, "forward", &tf, synstack.Config{})
	if err != nil {
		return fmt.Errorf("forward: %w", err)
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
		ts.printStats(stderr, st.Active, &st)
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
