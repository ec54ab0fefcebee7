package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// gVisor is set up as internal/gvisortest sets it up (IPv4, TCP with
// SACK) plus receive-buffer moderation, as Go programs on gVisor usually
// configure it and as the TUN benchmark does. Two gVisor stacks are joined
// by gVisor's own in-memory link, two channel endpoints, with one
// goroutine per direction handing each packet over, copied once, as
// link/pipe copies each packet once for synstack. (Handing over the
// sender's buffer by reference, without the copy, stalled bulk transfers
// for tens of seconds at a time: the sender keeps using that buffer.)

// gvQueueLen is the packets each channel endpoint holds, as link/pipe's
// QueueLen.
const gvQueueLen = 1024

const gvNIC tcpip.NICID = 1

// gvNet is two gVisor stacks on joined channel endpoints.
type gvNet struct {
	srv, cli  *stack.Stack
	chS, chC  *channel.Endpoint
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

func newGVStack(mtu int, addrs []netip.Prefix) (*stack.Stack, *channel.Endpoint, error) {
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol},
	})
	ch := channel.New(gvQueueLen, uint32(mtu), "")
	// Memory does not corrupt packets: gVisor skips TCP checksums both
	// ways, as synstack does over its pipe and the kernel over lo.
	ch.LinkEPCapabilities |= stack.CapabilityTXChecksumOffload | stack.CapabilityRXChecksumOffload
	fail := func(what string, err tcpip.Error) (*stack.Stack, *channel.Endpoint, error) {
		s.Destroy()
		return nil, nil, fmt.Errorf("bench: gvisor: %s: %s", what, err)
	}
	if err := s.CreateNIC(gvNIC, ch); err != nil {
		return fail("CreateNIC", err)
	}
	for _, a := range addrs {
		pa := tcpip.ProtocolAddress{
			Protocol:          ipv4.ProtocolNumber,
			AddressWithPrefix: tcpip.AddressWithPrefix{Address: tcpip.AddrFromSlice(a.Addr().AsSlice()), PrefixLen: a.Bits()},
		}
		if err := s.AddProtocolAddress(gvNIC, pa, stack.AddressProperties{}); err != nil {
			return fail("AddProtocolAddress", err)
		}
	}
	s.SetRouteTable([]tcpip.Route{{Destination: header.IPv4EmptySubnet, NIC: gvNIC}})
	sack := tcpip.TCPSACKEnabled(true)
	if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, &sack); err != nil {
		return fail("SACK", err)
	}
	mod := tcpip.TCPModerateReceiveBufferOption(true)
	if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, &mod); err != nil {
		return fail("receive buffer moderation", err)
	}
	return s, ch, nil
}

func newGVNet(mtu, clients int) (*gvNet, error) {
	srv, chS, err := newGVStack(mtu, []netip.Prefix{netip.PrefixFrom(serverAddr, 16)})
	if err != nil {
		return nil, err
	}
	cli, chC, err := newGVStack(mtu, clientPrefixes(clients))
	if err != nil {
		srv.Destroy()
		return nil, err
	}
	n := &gvNet{srv: srv, cli: cli, chS: chS, chC: chC}
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	n.wg.Add(2)
	go n.carry(ctx, chS, chC)
	go n.carry(ctx, chC, chS)
	return n, nil
}

// carry hands every packet from's stack sends to to's stack.
func (n *gvNet) carry(ctx context.Context, from, to *channel.Endpoint) {
	defer n.wg.Done()
	for {
		pb := from.ReadContext(ctx)
		if pb == nil {
			return
		}
		in := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithView(pb.ToView())})
		proto := pb.NetworkProtocolNumber
		pb.DecRef()
		to.InjectInbound(proto, in)
		in.DecRef()
	}
}

func gvAddr(ap netip.AddrPort) tcpip.FullAddress {
	return tcpip.FullAddress{NIC: gvNIC, Addr: tcpip.AddrFromSlice(ap.Addr().AsSlice()), Port: ap.Port()}
}

func (n *gvNet) listen() (listener, netip.AddrPort, error) {
	ap := netip.AddrPortFrom(serverAddr, serverPort)
	l := &gvListener{closed: make(chan struct{})}
	ep, terr := n.srv.NewEndpoint(tcp.ProtocolNumber, ipv4.ProtocolNumber, &l.wq)
	if terr != nil {
		return nil, ap, errors.New(terr.String())
	}
	if terr := ep.Bind(gvAddr(ap)); terr != nil {
		ep.Close()
		return nil, ap, errors.New(terr.String())
	}
	if terr := ep.Listen(4096); terr != nil {
		ep.Close()
		return nil, ap, errors.New(terr.String())
	}
	l.ep = ep
	return l, ap, nil
}

func (n *gvNet) dial(ctx context.Context, i int, raddr netip.AddrPort) (net.Conn, error) {
	var local tcpip.FullAddress
	if i >= 0 {
		local = gvAddr(netip.AddrPortFrom(clientAddr(i), 0))
	}
	return gonet.DialTCPWithBind(ctx, n.cli, local, gvAddr(raddr), ipv4.ProtocolNumber)
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

// gvListener accepts gVisor connections as gonet's listener does, but
// keeps each one's endpoint, so that it can be aborted.
type gvListener struct {
	ep     tcpip.Endpoint
	wq     waiter.Queue
	closed chan struct{}
	once   sync.Once
}

func (l *gvListener) Accept() (net.Conn, error) {
	entry, notify := waiter.NewChannelEntry(waiter.ReadableEvents)
	l.wq.EventRegister(&entry)
	defer l.wq.EventUnregister(&entry)
	for {
		ep, wq, terr := l.ep.Accept(nil)
		if terr == nil {
			return &gvConn{gonet.NewTCPConn(wq, ep), ep}, nil
		}
		if _, ok := terr.(*tcpip.ErrWouldBlock); !ok {
			return nil, errors.New(terr.String())
		}
		select {
		case <-notify:
		case <-l.closed:
			return nil, net.ErrClosed
		}
	}
}

func (l *gvListener) Close() error {
	l.once.Do(func() {
		close(l.closed)
		l.ep.Close()
	})
	return nil
}

// gvConn is gonet's net.Conn with its endpoint.
type gvConn struct {
	*gonet.TCPConn
	ep tcpip.Endpoint
}

func (c *gvConn) abort() {
	c.ep.SocketOptions().SetLinger(tcpip.LingerOption{Enabled: true, Timeout: 0})
}
