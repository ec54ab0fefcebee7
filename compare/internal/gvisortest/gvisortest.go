// Package gvisortest joins a synstack stack and a gVisor netstack stack on
// one in-memory link, for interoperability tests: gVisor is the TCP/IP
// stack Go programs use today, so it is the first peer synstack must get
// along with.
//
// Only tests import this package: the library never depends on gVisor.
//
//	peer, err := gvisortest.New(1500, netip.MustParsePrefix("10.0.0.2/24"))
//	s, err := synstack.New(synstack.Config{Link: peer.Link(), Addrs: ...})
//	c, err := peer.Dial(ctx, netip.MustParseAddrPort("10.0.0.1:80")) // gVisor dials synstack
//	...
//	s.Close()     // closes the link
//	peer.Close()  // stops the gVisor stack
package gvisortest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"

	"github.com/synstack/synstack/compare/internal/gvisorhost"
	"github.com/synstack/synstack/link"
)

// queueLen is the number of packets each direction holds before it drops,
// as link/pipe's.
const queueLen = 1024

// Peer is a gVisor stack with one NIC, a channel endpoint, whose other end
// is a link.Endpoint for a synstack stack.
type Peer struct {
	// Stack is the gVisor stack, for tests that need more than Dial and
	// Listen.
	Stack *stack.Stack

	ch   *channel.Endpoint
	link *linkEnd
	once sync.Once
}

// Options adjust the gVisor stack.
type Options struct {
	// TimeWait is how long gVisor's connections stay in TIME_WAIT
	// (default 1 s, short so that tests see them end).
	TimeWait time.Duration
}

// New returns a gVisor stack with the given addresses on a link of the
// given MTU. The link's synstack end is Link.
func New(mtu int, addrs ...netip.Prefix) (*Peer, error) {
	return NewWithOptions(mtu, Options{}, addrs...)
}

// NewWithOptions is New with options.
func NewWithOptions(mtu int, opts Options, addrs ...netip.Prefix) (*Peer, error) {
	tw := opts.TimeWait
	if tw <= 0 {
		tw = time.Second
	}
	ch := gvisorhost.NewChannel(queueLen, mtu, false)
	s, err := gvisorhost.New(ch, gvisorhost.Options{IPv6: true, TimeWait: tw}, addrs...)
	if err != nil {
		ch.Close()
		return nil, fmt.Errorf("gvisortest: %w", err)
	}
	return &Peer{Stack: s, ch: ch, link: newLinkEnd(ch, mtu)}, nil
}

// Link returns the synstack end of the link. Closing it (a synstack
// Stack's Close does) stops its goroutines.
func (p *Peer) Link() link.Endpoint { return p.link }

// Close stops the gVisor stack and waits for its goroutines, and closes
// the link if it is still open.
func (p *Peer) Close() {
	p.once.Do(func() {
		p.link.Close()
		p.Stack.Destroy()
	})
}

// Conn is a gVisor TCP connection: gonet's net.Conn over the endpoint,
// which stays reachable for its state.
type Conn = gvisorhost.Conn

// Listener is a gVisor listening endpoint.
type Listener = gvisorhost.Listener

// Dial connects from the gVisor stack to addr.
func (p *Peer) Dial(ctx context.Context, addr netip.AddrPort) (*Conn, error) {
	return gvisorhost.Dial(ctx, p.Stack, netip.Addr{}, addr)
}

// Listen listens on addr on the gVisor stack, with a backlog of 16.
func (p *Peer) Listen(addr netip.AddrPort) (*Listener, error) {
	return gvisorhost.Listen(p.Stack, addr, 16)
}

// linkEnd is the synstack end of the link: packets written to it are
// injected into the channel endpoint by one goroutine, and packets gVisor
// writes to the channel are delivered to the dispatcher by another, so
// that neither stack ever runs inside the other's call.
type linkEnd struct {
	ch  *channel.Endpoint
	mtu int

	in     chan []byte // written by synstack, to inject into gVisor
	disp   chan link.Dispatcher
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	mu     sync.Mutex
	closed bool
}

func newLinkEnd(ch *channel.Endpoint, mtu int) *linkEnd {
	e := &linkEnd{ch: ch, mtu: mtu, in: make(chan []byte, queueLen), disp: make(chan link.Dispatcher, 1)}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	e.wg.Add(2)
	go e.inject()
	go e.deliver()
	return e
}

func (e *linkEnd) MTU() int { return e.mtu }

func (e *linkEnd) Attach(d link.Dispatcher) {
	select {
	case e.disp <- d:
	default: // attached already
	}
}

// WritePacket queues a copy of pkt for gVisor; a full queue drops it.
func (e *linkEnd) WritePacket(pkt []byte) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return errors.New("gvisortest: link closed")
	}
	if len(pkt) > e.mtu {
		return nil
	}
	select {
	case e.in <- append([]byte(nil), pkt...):
	default:
	}
	return nil
}

func (e *linkEnd) inject() {
	defer e.wg.Done()
	for {
		select {
		case <-e.ctx.Done():
			return
		case pkt := <-e.in:
			proto := ipv4.ProtocolNumber
			if pkt[0]>>4 == 6 {
				proto = ipv6.ProtocolNumber
			}
			pb := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(pkt)})
			e.ch.InjectInbound(proto, pb)
			pb.DecRef()
		}
	}
}

func (e *linkEnd) deliver() {
	defer e.wg.Done()
	var d link.Dispatcher
	select {
	case d = <-e.disp:
	case <-e.ctx.Done():
		return
	}
	// Hand the stack what is waiting in one call when it takes batches
	// (link.BatchDispatcher), as link/pipe does.
	bd, _ := d.(link.BatchDispatcher)
	var pbs [32]*stack.PacketBuffer
	var views [32]*buffer.View
	var pkts [32][]byte
	for {
		pb := e.ch.ReadContext(e.ctx)
		if pb == nil {
			return // cancelled, or the channel closed
		}
		n := 1
		pbs[0] = pb
		for bd != nil && n < len(pbs) {
			if pbs[n] = e.ch.Read(); pbs[n] == nil {
				break
			}
			n++
		}
		for i := range n {
			views[i] = pbs[i].ToView()
			pkts[i] = views[i].AsSlice()
		}
		if n > 1 {
			bd.DeliverPackets(pkts[:n])
		} else {
			d.DeliverPacket(pkts[0])
		}
		for i := range n {
			views[i].Release()
			pbs[i].DecRef()
			pbs[i], views[i], pkts[i] = nil, nil, nil
		}
	}
}

// Close stops both goroutines and waits for them.
func (e *linkEnd) Close() error {
	e.once.Do(func() {
		e.mu.Lock()
		e.closed = true
		e.mu.Unlock()
		e.cancel()
		e.wg.Wait()
	})
	return nil
}

// ForwardRequest is a connection request gVisor's TCP forwarder
// (tcp.NewForwarder) offers: a SYN to any address and port, not yet
// answered. Exactly one of Accept and Refuse decides it.
type ForwardRequest struct {
	// Local is the original destination, Remote the client.
	Local, Remote netip.AddrPort

	r *tcp.ForwarderRequest
}

// Accept completes the handshake (gVisor's CreateEndpoint) and returns the
// connection; if it fails the client is reset.
func (r *ForwardRequest) Accept() (*Conn, error) {
	wq := new(waiter.Queue)
	ep, terr := r.r.CreateEndpoint(wq)
	if terr != nil {
		r.r.Complete(true)
		return nil, fmt.Errorf("gvisortest: forward %v: %s", r.Local, terr)
	}
	r.r.Complete(false)
	return gvisorhost.NewConn(wq, ep), nil
}

// Refuse answers the SYN with RST.
func (r *ForwardRequest) Refuse() { r.r.Complete(true) }

// Forward makes the Peer a forwarding stack the way tun2socks-style users
// of gVisor build one: its NIC promiscuous and spoofing (it takes packets
// for any address and answers from them), and gVisor's TCP forwarder
// (tcp.NewForwarder, default receive window) as the TCP protocol handler,
// which calls handle on a goroutine of its own for every new connection
// request, at most maxInFlight undecided at once. handle must decide the
// request. It is the anchor synstack's forwarder is measured against.
func (p *Peer) Forward(maxInFlight int, handle func(*ForwardRequest)) error {
	if err := p.Stack.SetPromiscuousMode(gvisorhost.NIC, true); err != nil {
		return fmt.Errorf("gvisortest: promiscuous mode: %s", err)
	}
	if err := p.Stack.SetSpoofing(gvisorhost.NIC, true); err != nil {
		return fmt.Errorf("gvisortest: spoofing: %s", err)
	}
	fwd := tcp.NewForwarder(p.Stack, 0, maxInFlight, func(r *tcp.ForwarderRequest) {
		id := r.ID()
		handle(&ForwardRequest{
			Local:  gvisorhost.AddrPort(id.LocalAddress, id.LocalPort),
			Remote: gvisorhost.AddrPort(id.RemoteAddress, id.RemotePort),
			r:      r,
		})
	})
	p.Stack.SetTransportProtocolHandler(tcp.ProtocolNumber, fwd.HandlePacket)
	return nil
}
