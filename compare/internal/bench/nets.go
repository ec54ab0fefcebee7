package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/link/pipe"
)

// Kind names what is measured: one of the two userspace stacks, or the
// kernel.
type Kind string

// The three kinds measured side by side.
const (
	Synstack Kind = "synstack"
	GVisor   Kind = "gvisor"
	Kernel   Kind = "kernel"
)

// Kinds lists the kinds in the order tables show them.
var Kinds = []Kind{Synstack, GVisor, Kernel}

// KernelMTU is the MTU of the loopback device the kernel is measured on
// (lo's default); the MTU asked for does not apply to it.
const KernelMTU = 65536

// serverPort is the port the server listens on in the userspace stacks.
const serverPort = 5001

// udpPort is the server's port for the first flow of the UDP figures in
// the userspace stacks; flow i uses udpPort+i.
const udpPort = 6001

// connsPerClientAddr bounds the connections one client address holds at
// once in the idle-connection figure: well under the 28,232 ports of
// Linux's ephemeral range, so that no stack hunts long for a free port.
// (A variable for the tests only.)
var connsPerClientAddr = 16000

// network is two hosts that reach each other: a server, which listens,
// and a client, which dials from one of its addresses. For the userspace
// stacks both are stacks of their own on one in-memory link; for the
// kernel both are the machine's loopback.
type network interface {
	// listen listens on the server and returns the address to dial.
	listen() (listener, netip.AddrPort, error)
	// dial connects from the client's address number i to raddr; with
	// i < 0 the host picks its source address.
	dial(ctx context.Context, i int, raddr netip.AddrPort) (net.Conn, error)
	// udpFlow opens flow number i of the UDP figures: a socket on the
	// server bound to a port of its own (rcv) and a socket on the
	// client connected to it (snd).
	udpFlow(i int) (snd, rcv net.Conn, err error)
	// segments returns the TCP segments both hosts have sent, if the
	// network counts them.
	segments() (uint64, bool)
	// close tears everything down, connections included.
	close()
}

// listener is a net.Listener whose accepted connections can be aborted:
// closed with a RST, as SO_LINGER 0 makes close do.
type listener interface {
	Accept() (net.Conn, error)
	Close() error
}

// abort closes c with a RST (SO_LINGER 0), leaving no TIME_WAIT behind.
func abort(c net.Conn) error {
	switch a := c.(type) {
	case interface{ SetLinger(int) error }:
		if err := a.SetLinger(0); err != nil {
			c.Close()
			return err
		}
	case interface{ Abort() }:
		a.Abort()
	default:
		c.Close()
		return fmt.Errorf("bench: %T cannot abort", c)
	}
	return c.Close()
}

// newNetwork builds a network of kind k whose link carries packets of mtu
// bytes (ignored by the kernel: loopback's is KernelMTU), with clients
// client addresses.
func newNetwork(k Kind, mtu, clients int) (network, error) {
	return newNetworkWith(k, mtu, clients, false)
}

// newNetworkWith is newNetwork with checksums: both userspace stacks
// compute and verify every TCP checksum (synstack's pipe and gVisor's
// channel without checksum offload), as over a link that does not vouch
// for its packets. The kernel's lo never checks them.
func newNetworkWith(k Kind, mtu, clients int, checksums bool) (network, error) {
	if clients < 1 {
		clients = 1
	}
	switch k {
	case Synstack:
		return newSynNetWith(mtu, clients, SynOptions{NoOffload: checksums})
	case GVisor:
		return newGVNet(mtu, clients, checksums)
	case Kernel:
		return kernelNet{}, nil
	}
	return nil, fmt.Errorf("bench: unknown kind %q", k)
}

// Addresses of the userspace stacks: the server is 10.0.0.1, the client's
// address number i is 10.0.1.0 plus i, all in 10.0.0.0/16.
var serverAddr = netip.MustParseAddr("10.0.0.1")

func clientAddr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, 0, byte(1 + i/256), byte(i % 256)})
}

func clientPrefixes(n int) []netip.Prefix {
	ps := make([]netip.Prefix, n)
	for i := range ps {
		ps[i] = netip.PrefixFrom(clientAddr(i), 16)
	}
	return ps
}

// synNet is two synstack stacks on a link/pipe.
type synNet struct {
	srv, cli *synstack.Stack
	dialer   synstack.Dialer
}

// SynOptions vary the synstack network of a measurement.
type SynOptions struct {
	// NoOffload turns checksum offload off on the pipe: the stacks
	// compute and verify every TCP checksum, as over a link without
	// offload (link/sim, a TUN device without virtio-net headers). By
	// default it is on, as on gVisor's link here and the kernel's lo:
	// memory does not corrupt packets.
	NoOffload bool
	// Shards is both stacks' Config.Shards (0: the default; 1: a single
	// lock per stack).
	Shards int
	// Queues is the pipe's receive queues per end (pipe.Options.Queues;
	// 0 is 1: each stack is handed all its packets from one goroutine).
	// On 2 cores, 2 queues moved 2% less in MultiBulk than 1: the
	// cores are busy either way.
	Queues int
}

// newSynNetWith is newSynNet with options.
func newSynNetWith(mtu, clients int, o SynOptions) (*synNet, error) {
	a, b := pipe.NewWithOptions(pipe.Options{MTU: mtu, ChecksumOffload: !o.NoOffload, Queues: o.Queues})
	srv, err := synstack.New(synstack.Config{Link: a, Shards: o.Shards, Addrs: []netip.Prefix{netip.PrefixFrom(serverAddr, 16)}})
	if err != nil {
		a.Close()
		b.Close()
		return nil, err
	}
	cli, err := synstack.New(synstack.Config{Link: b, Shards: o.Shards, Addrs: clientPrefixes(clients)})
	if err != nil {
		srv.Close()
		b.Close()
		return nil, err
	}
	return &synNet{srv: srv, cli: cli, dialer: synstack.Dialer{Stack: cli}}, nil
}

func (n *synNet) listen() (listener, netip.AddrPort, error) {
	ap := netip.AddrPortFrom(serverAddr, serverPort)
	lc := synstack.ListenConfig{Stack: n.srv, Backlog: 4096}
	ln, err := lc.Listen(context.Background(), "tcp4", ap.String())
	if err != nil {
		return nil, ap, err
	}
	return ln, ap, nil
}

func (n *synNet) dial(ctx context.Context, i int, raddr netip.AddrPort) (net.Conn, error) {
	d := n.dialer
	if i >= 0 {
		d.LocalAddr = &net.TCPAddr{IP: clientAddr(i).AsSlice()}
	}
	return d.DialContext(ctx, "tcp4", raddr.String())
}

func (n *synNet) udpFlow(i int) (net.Conn, net.Conn, error) {
	ap := net.UDPAddrFromAddrPort(netip.AddrPortFrom(serverAddr, udpPort+uint16(i)))
	rcv, err := n.srv.ListenUDP("udp4", ap)
	if err != nil {
		return nil, nil, err
	}
	snd, err := n.cli.DialUDP("udp4", nil, ap)
	if err != nil {
		rcv.Close()
		return nil, nil, err
	}
	return snd, rcv, nil
}

func (n *synNet) segments() (uint64, bool) {
	return n.srv.Stats().TcpOutSegs + n.cli.Stats().TcpOutSegs, true
}

func (n *synNet) close() {
	n.cli.Close()
	n.srv.Close()
}

// kernelNet is the kernel's loopback, through package net.
type kernelNet struct{}

func (kernelNet) listen() (listener, netip.AddrPort, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return nil, netip.AddrPort{}, err
	}
	return ln, ln.Addr().(*net.TCPAddr).AddrPort(), nil
}

func (kernelNet) dial(ctx context.Context, i int, raddr netip.AddrPort) (net.Conn, error) {
	var d net.Dialer
	if i >= 0 {
		// All of 127.0.0.0/8 is on lo.
		d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, byte(1+i/256), byte(i%256))}
	}
	return d.DialContext(ctx, "tcp4", raddr.String())
}

func (kernelNet) udpFlow(int) (net.Conn, net.Conn, error) {
	rcv, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, nil, err
	}
	snd, err := net.DialUDP("udp4", nil, rcv.LocalAddr().(*net.UDPAddr))
	if err != nil {
		rcv.Close()
		return nil, nil, err
	}
	return snd, rcv, nil
}

func (kernelNet) segments() (uint64, bool) { return 0, false }

func (kernelNet) close() {}

// errTimeout reports a step that took longer than its bound.
var errTimeout = errors.New("bench: timed out")

// stepTimeout bounds any single blocking step (a dial, an accept, a read
// waiting for a reply) so that a lost packet or a bug fails the run
// instead of hanging it.
const stepTimeout = 10 * time.Second
