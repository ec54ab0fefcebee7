package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/net/proxy"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/forward"
)

// forward: tun2socks. Every TCP connection the kernel routes into the TUN
// device, whatever its destination, is terminated by the stack and relayed
// to an upstream: one fixed address, the original destination, or through
// a SOCKS5 proxy. UDP flows are relayed to the original destination,
// directly or through the proxy.

const forwardUsage = `usage: synstack forward --tun NAME --addr CIDR (--to HOST:PORT | --direct | --socks5 HOST:PORT)
                        [--deferred] [--host-addr CIDR] [--route CIDR] [--mark N] [--admin :PORT]
                        [--dial-timeout D] [--idle-timeout D] [--max-pending N]
                        [--max-relays N] [--max-relays-per-source N]
                        [--udp-timeout D] [--udp-stream-timeout D]
                        [--max-udp-flows N] [--max-udp-flows-per-source N]
                        [--ping host|local|off]

Creates the TUN device NAME (or attaches to it), gives the stack the address
CIDR and terminates every TCP connection routed into the device, to any
address, relaying it to the upstream: --to sends all to HOST:PORT, --direct
dials the original destination from the host, --socks5 goes through the SOCKS5
proxy HOST:PORT (asking it for the original destination). With --deferred the
client's SYN is answered only once the upstream has answered: a refusing
upstream refuses the client (RST), an unreachable or silent one draws ICMP
destination unreachable; without it the handshake completes at once and a
failed upstream resets the connection.

UDP is relayed too, with --direct (a socket of the host per flow) and
--socks5 (a UDP ASSOCIATE of the proxy per flow): each 5-tuple is a flow,
closed once idle as Linux's conntrack closes it, --udp-timeout (30s) while the
upstream has never answered, --udp-stream-timeout (120s) after; an upstream
that cannot be dialed refuses the client (ICMP port unreachable). At most
--max-udp-flows flows are open at once, --max-udp-flows-per-source from one
client address; beyond them datagrams that would open more are dropped and
counted. With --to, UDP is refused (ICMP port unreachable).

Pings (ICMP and ICMPv6 echo requests) to forwarded addresses are answered as
--ping says: host (the default) pings the destination from the host with an
unprivileged ICMP socket carrying --mark's mark and answers once it answers
(the host's net.ipv4.ping_group_range must include forward's group); local
answers every ping at once; off answers none.

--route adds a kernel route for CIDR into the device (removed at exit); the
kernel side may also be configured by hand after forward has started.

Forward never makes a loop: before anything is dialed or accepted it refuses
(RST, counted in "loops"; for a UDP flow ICMP port unreachable, "UDPLoops") a
connection to one of the stack's own addresses, or one whose upstream the
kernel would route back into the device (it asks
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

// forwardConfig is what forward's command line asks for.
type forwardConfig struct {
	tf           tunFlags
	to           string // --to HOST:PORT
	direct       bool
	socks        string // --socks5 HOST:PORT
	socksUser    string
	deferred     bool
	routes       prefixList
	mark         int
	dialTimeout  time.Duration
	idleTimeout  time.Duration
	maxPending   int
	maxRelays    int
	maxPerSource int
	admin        string
	udpTimeout   time.Duration // idle, upstream never answered
	udpStream    time.Duration // idle, once answered
	maxUDP       int
	maxUDPSource int
	ping         string // --ping host, local or off
}

// parseForward parses and checks forward's arguments; nothing is created.
func parseForward(stderr io.Writer, args []string) (*forwardConfig, error) {
	fs := flag.NewFlagSet("forward", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &forwardConfig{}
	c.tf.register(fs)
	fs.StringVar(&c.to, "to", "", "relay every connection to `HOST:PORT`")
	fs.BoolVar(&c.direct, "direct", false, "dial each connection's original destination from the host")
	fs.StringVar(&c.socks, "socks5", "", "relay through the SOCKS5 proxy at `HOST:PORT`")
	fs.StringVar(&c.socksUser, "socks5-user", "", "SOCKS5 user name (the password comes from $SYNSTACK_SOCKS5_PASSWORD)")
	fs.BoolVar(&c.deferred, "deferred", false, "dial the upstream before answering the client's SYN")
	fs.Var(&c.routes, "route", "add a kernel route for `CIDR` into the device (repeatable; removed at exit)")
	fs.IntVar(&c.mark, "mark", 0, "SO_MARK for the host's dials to upstreams (0: none)")
	fs.DurationVar(&c.dialTimeout, "dial-timeout", forward.DefaultDialTimeout, "how long a dial to the upstream may take")
	fs.DurationVar(&c.idleTimeout, "idle-timeout", 0, "reset connections idle this long both ways (0: never)")
	fs.IntVar(&c.maxPending, "max-pending", synstack.DefaultMaxPendingForwards, "connection requests waiting for their upstream, at most")
	fs.IntVar(&c.maxRelays, "max-relays", forward.DefaultMaxRelays, "connections handled at once (dial and relay), at most; more are refused (RST)")
	fs.IntVar(&c.maxPerSource, "max-relays-per-source", 0, "connections one client address may have handled at once (0: only --max-relays)")
	fs.DurationVar(&c.udpTimeout, "udp-timeout", forward.DefaultUDPTimeout, "close a UDP flow idle this long while its upstream never answered")
	fs.DurationVar(&c.udpStream, "udp-stream-timeout", forward.DefaultUDPStreamTimeout, "close a UDP flow idle this long once its upstream answered")
	fs.IntVar(&c.maxUDP, "max-udp-flows", forward.DefaultMaxUDPFlows, "UDP flows open at once, at most; datagrams opening more are dropped")
	fs.IntVar(&c.maxUDPSource, "max-udp-flows-per-source", 0, "UDP flows of one client address, at most (0: the stack's default, "+
		strconv.Itoa(synstack.DefaultMaxUDPFlowsPerSource)+")")
	fs.StringVar(&c.ping, "ping", "host", "answer pings to forwarded addresses by pinging from the `host`, `local`ly at once, or `off`: never")
	adminAddr := adminFlag(fs)
	fs.Usage = usageFunc(stderr, fs, forwardUsage)
	if err := parseFlagsOnly(fs, "forward", args); err != nil {
		return nil, err
	}
	c.admin = *adminAddr
	if err := c.check(); err != nil {
		return nil, err
	}
	return c, nil
}

// check checks the flags' values, alone and together.
func (c *forwardConfig) check() error {
	if err := c.tf.check(); err != nil {
		return err
	}
	if !exactlyOne(c.to != "", c.direct, c.socks != "") {
		return errors.New("say where to relay: one of --to HOST:PORT, --direct, --socks5 HOST:PORT")
	}
	for _, a := range []struct{ flag, v string }{{"to", c.to}, {"socks5", c.socks}} {
		if a.v == "" {
			continue
		}
		_, port, err := net.SplitHostPort(a.v)
		if err != nil {
			return fmt.Errorf("--%s %s: want HOST:PORT, as 127.0.0.1:8080: %v", a.flag, a.v, err)
		}
		if _, err := checkPort(a.flag, a.v, port); err != nil {
			return err
		}
	}
	for _, v := range []struct {
		flag string
		n    int
	}{{"max-relays", c.maxRelays}, {"max-relays-per-source", c.maxPerSource}, {"max-pending", c.maxPending}, {"mark", c.mark},
		{"max-udp-flows-per-source", c.maxUDPSource}} {
		if v.n < 0 {
			return fmt.Errorf("--%s %d: want 0 or more", v.flag, v.n)
		}
	}
	if c.maxRelays == 0 {
		return errors.New("--max-relays 0 would refuse every connection: want 1 or more")
	}
	if c.maxUDP <= 0 {
		return fmt.Errorf("--max-udp-flows %d: want 1 or more", c.maxUDP)
	}
	switch c.ping {
	case "host", "local", "off":
	default:
		return fmt.Errorf("--ping %q: want host, local or off", c.ping)
	}
	if c.udpTimeout <= 0 || c.udpStream <= 0 {
		return fmt.Errorf("--udp-timeout %v, --udp-stream-timeout %v: want both above 0", c.udpTimeout, c.udpStream)
	}
	return nil
}

// forwarder returns the Forwarder the flags ask for, without its loop
// check. upstream is the address the host dials for a target: the proxy's
// with --socks5, the target itself otherwise; what names the upstream for
// the log.
func (c *forwardConfig) forwarder() (fw *forward.Forwarder, upstream func(target string) string, what string) {
	nd := markedDialer(c.mark)
	fw = &forward.Forwarder{
		Dial:               nd.DialContext,
		Deferred:           c.deferred,
		DialTimeout:        c.dialTimeout,
		Relay:              forward.RelayOptions{IdleTimeout: c.idleTimeout},
		MaxRelays:          c.maxRelays,
		MaxRelaysPerSource: c.maxPerSource,
		UDP: forward.UDPOptions{
			Timeout: c.udpTimeout, StreamTimeout: c.udpStream,
			MaxFlows: c.maxUDP, MaxFlowsPerSource: c.maxUDPSource,
		},
		Ping: forward.PingOptions{Local: c.ping == "local", Off: c.ping == "off"},
	}
	if c.mark != 0 {
		mark := c.mark
		fw.Ping.Listen = func(network, address string) (net.PacketConn, error) {
			return listenPingMarked(network, address, mark)
		}
	}
	upstream = func(target string) string { return target }
	what = "the original destination"
	switch {
	case c.to != "":
		fw.Target = forward.To(c.to)
		fw.UDP.Disabled = true // one fixed address is a TCP service's
		what = c.to
	case c.socks != "":
		socks := c.socks
		upstream = func(string) string { return socks }
		var auth *proxy.Auth
		if c.socksUser != "" {
			auth = &proxy.Auth{User: c.socksUser, Password: os.Getenv("SYNSTACK_SOCKS5_PASSWORD")}
		}
		fw.Dial = forward.SOCKS5(c.socks, auth, nd.DialContext)
		what = "SOCKS5 proxy " + c.socks
	}
	return fw, upstream, what
}

// forwardOptions are the stack's bounds the flags ask for: the UDP flows'
// are the forwarder's, so that the stack does not offer flows the
// forwarder would drop.
func (c *forwardConfig) forwardOptions() synstack.ForwardOptions {
	return synstack.ForwardOptions{MaxPending: c.maxPending, MaxUDPFlows: c.maxUDP, MaxUDPFlowsPerSource: c.maxUDPSource}
}

// markedDialer is the host's dialer to upstreams: its sockets carry
// SO_MARK mark, unless mark is 0.
func markedDialer(mark int) *net.Dialer {
	nd := &net.Dialer{}
	if mark == 0 {
		return nd
	}
	nd.Control = func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = setMark(fd, mark)
		})
		if err != nil {
			return err
		}
		return serr
	}
	return nd
}

// runForward is synstack forward: it relays every connection routed into
// the device until SIGINT or SIGTERM.
func runForward(stderr io.Writer, args []string) error {
	c, err := parseForward(stderr, args)
	if err != nil {
		return commandError("forward", err)
	}
	run, err := startTunRun(stderr, "forward", &c.tf, c.admin)
	if err != nil {
		return fmt.Errorf("forward: %w", err)
	}
	defer run.stop()
	ts := run.ts
	fw, upstream, what := c.forwarder()
	guard := &loopGuard{dev: ts.ep.Index(), devName: ts.ep.Name(), mark: uint32(c.mark)}
	for _, p := range c.tf.addrs {
		guard.own = append(guard.own, p.Addr())
	}
	fw.Check = func(req *synstack.ForwardRequest, target string) error {
		return guard.check(upstream(target))
	}
	fw.UDP.Check = func(req *synstack.UDPForwardRequest, target string) error {
		return guard.check(upstream(target))
	}
	fw.Ping.Check = guard.checkAddr
	ts.st.SetForwarder(fw, c.forwardOptions())
	added, err := addRoutes(ts, c.routes)
	if err != nil {
		fw.Close()
		ts.close()
		return fmt.Errorf("forward: %w", err)
	}
	mode := "immediate"
	if c.deferred {
		mode = "deferred"
	}
	ts.logf("forwarding every TCP connection into %s to %s (%s handshake)", ts.ep.Name(), what, mode)
	if fw.UDP.Disabled {
		ts.logf("refusing UDP flows (--to relays TCP only)")
	} else {
		ts.logf("forwarding every UDP flow into %s to %s (idle %v, %v once answered; at most %d flows)",
			ts.ep.Name(), what, c.udpTimeout, c.udpStream, c.maxUDP)
	}
	ts.logf("answering pings into %s %s", ts.ep.Name(), map[string]string{
		"host": "once the host's own ping is answered", "local": "at once, locally", "off": "never"}[c.ping])

	printStats := func() {
		st := fw.Stats()
		ts.printStats(stderr, st.Active, nil, &st)
	}
	run.untilSignal(printStats)

	if st := fw.Stats(); st.UDPLoops+st.UDPLimitDrops+st.UDPSourceLimitDrops > 0 {
		ts.logf("refused %d UDP flows that would have looped, dropped %d beyond --max-udp-flows, %d beyond --max-udp-flows-per-source",
			st.UDPLoops, st.UDPLimitDrops, st.UDPSourceLimitDrops)
	}
	if st := fw.Stats(); st.PingLoops+st.PingFailures+st.PingLimitDrops > 0 {
		ts.logf("dropped %d pings that would have looped, %d the host could not send, %d beyond the pings in flight",
			st.PingLoops, st.PingFailures, st.PingLimitDrops)
	}
	if st := fw.Stats(); st.Loops+st.LimitRefused+st.SourceLimitRefused > 0 {
		ts.logf("refused %d connections that would have looped, %d beyond --max-relays, %d beyond --max-relays-per-source",
			st.Loops, st.LimitRefused, st.SourceLimitRefused)
	}
	ts.logf("closing %d relays and %d UDP flows", fw.Stats().Active, fw.Stats().UDPActive)
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
	return g.checkAddr(ap.Addr())
}

// checkAddr is check for an address: the host's ping of a, or its dial.
func (g *loopGuard) checkAddr(a netip.Addr) error {
	a = a.Unmap()
	for _, o := range g.own {
		if a == o {
			return fmt.Errorf("%s is the stack's own address: %w", a, forward.ErrLoop)
		}
	}
	return g.checkRoute(a)
}
