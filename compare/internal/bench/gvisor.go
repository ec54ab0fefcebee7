package bench

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/synstack/synstack/compare/internal/gvisorhost"
)

// gVisor is set up by internal/gvisorhost, as internal/gvisortest sets it
// up (IPv4, TCP with SACK; UDP, for the UDP figures) plus receive-buffer
// moderation, as Go programs on gVisor usually configure it and as the
// TUN benchmark does. Two gVisor stacks are joined by gVisor's own
// in-memory link, two channel endpoints, with one goroutine per direction
// handing each packet over (gvisorhost.Carry), copied once, as link/pipe
// copies each packet once for synstack. (Handing over the sender's buffer
// by reference, without the copy, stalled bulk transfers for tens of
// seconds at a time.)

// gvQueueLen is the packets each channel endpoint holds, as link/pipe's
// QueueLen.
const gvQueueLen = 1024

// gvNet is two gVisor stacks on joined channel endpoints.
type gvNet struct {
	srv, cli  *stack.Stack
	chS, chC  *channel.Endpoint
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

func newGVStack(mtu int, addrs []netip.Prefix, checksums bool) (*stack.Stack, *channel.Endpoint, error) {
	// Memory does not corrupt packets: unless checksums asks for them,
	// gVisor skips TCP checksums both ways, as synstack does over its
	// pipe and the kernel over lo.
	ch := gvisorhost.NewChannel(gvQueueLen, mtu, !checksums)
	s, err := gvisorhost.New(ch, gvisorhost.Options{ModerateReceiveBuffer: true, UDP: true}, addrs...)
	if err != nil {
		ch.Close()
		return nil, nil, fmt.Errorf("bench: gvisor: %w", err)
	}
	return s, ch, nil
}

func newGVNet(mtu, clients int, checksums bool) (*gvNet, error) {
	srv, chS, err := newGVStack(mtu, []netip.Prefix{netip.PrefixFrom(serverAddr, 16)}, checksums)
	if err != nil {
		return nil, err
	}
	cli, chC, err := newGVStack(mtu, clientPrefixes(clients), checksums)
	if err != nil {
		srv.Destroy()
		chS.Close()
		return nil, err
	}
	n := &gvNet{srv: srv, cli: cli, chS: chS, chC: chC}
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	n.wg.Add(2)
	go func() { defer n.wg.Done(); gvisorhost.Carry(ctx, chS, chC) }()
	go func() { defer n.wg.Done(); gvisorhost.Carry(ctx, chC, chS) }()
	return n, nil
}

func (n *gvNet) listen() (listener, netip.AddrPort, error) {
	ap := netip.AddrPortFrom(serverAddr, serverPort)
	l, err := gvisorhost.Listen(n.srv, ap, 4096)
	if err != nil {
		return nil, ap, err
	}
	return gvListener{l}, ap, nil
}

func (n *gvNet) dial(ctx context.Context, i int, raddr netip.AddrPort) (net.Conn, error) {
	var local netip.Addr
	if i >= 0 {
		local = clientAddr(i)
	}
	c, err := gvisorhost.Dial(ctx, n.cli, local, raddr)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (n *gvNet) udpFlow(i int) (net.Conn, net.Conn, error) {
	la, proto := gvisorhost.FullAddr(netip.AddrPortFrom(serverAddr, udpPort+uint16(i)))
	rcv, err := gonet.DialUDP(n.srv, &la, nil, proto)
	if err != nil {
		return nil, nil, err
	}
	snd, err := gonet.DialUDP(n.cli, nil, &la, proto)
	if err != nil {
		rcv.Close()
		return nil, nil, err
	}
	return snd, rcv, nil
}

func (n *gvNet) segments() (uint64, bool) {
	return n.srv.Stats().TCP.SegmentsSent.Value() + n.cli.Stats().TCP.SegmentsSent.Value(), true
}

func (n *gvNet) close() {
	n.closeOnce.Do(func() {
		n.cancel()
		n.wg.Wait()
		n.cli.Destroy()
		n.srv.Destroy()
		n.chS.Close()
		n.chC.Close()
	})
}

// gvListener is gvisorhost's listener as a listener: its connections
// (*gvisorhost.Conn) can be aborted.
type gvListener struct{ *gvisorhost.Listener }

func (l gvListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept(context.Background())
	if err != nil {
		return nil, err
	}
	return c, nil
}
