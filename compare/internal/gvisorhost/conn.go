package gvisorhost

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// Conn is a gVisor TCP connection: gonet's net.Conn over the endpoint,
// which stays reachable for its state and for Abort.
type Conn struct {
	*gonet.TCPConn
	// EP is the connection's gVisor endpoint.
	EP tcpip.Endpoint
}

// NewConn wraps an endpoint and its wait queue as a Conn.
func NewConn(wq *waiter.Queue, ep tcpip.Endpoint) *Conn {
	return &Conn{gonet.NewTCPConn(wq, ep), ep}
}

// State returns the endpoint's TCP state, as gVisor names it
// ("ESTABLISHED", "TIME-WAIT", "CLOSED"...).
func (c *Conn) State() string { return tcp.EndpointState(c.EP.State()).String() }

// Abort makes the next Close reset the connection (SO_LINGER 0).
func (c *Conn) Abort() {
	c.EP.SocketOptions().SetLinger(tcpip.LingerOption{Enabled: true, Timeout: 0})
}

// Dial connects from s to raddr, from local if it is valid (the stack
// picks the source address otherwise). It gives up when ctx ends. Errors
// are *net.OpError with gVisor's text in Err.
func Dial(ctx context.Context, s *stack.Stack, local netip.Addr, raddr netip.AddrPort) (*Conn, error) {
	fa, proto := FullAddr(raddr)
	opErr := func(err error) error {
		return &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(raddr), Err: err}
	}
	var wq waiter.Queue
	ep, terr := s.NewEndpoint(tcp.ProtocolNumber, proto, &wq)
	if terr != nil {
		return nil, opErr(errors.New(terr.String()))
	}
	entry, notify := waiter.NewChannelEntry(waiter.WritableEvents)
	wq.EventRegister(&entry)
	defer wq.EventUnregister(&entry)
	if err := ctx.Err(); err != nil {
		ep.Close()
		return nil, opErr(err)
	}
	if local.IsValid() {
		la, _ := FullAddr(netip.AddrPortFrom(local, 0))
		if terr := ep.Bind(la); terr != nil {
			ep.Close()
			return nil, opErr(errors.New(terr.String()))
		}
	}
	terr = ep.Connect(fa)
	if _, ok := terr.(*tcpip.ErrConnectStarted); ok {
		select {
		case <-ctx.Done():
			ep.Close()
			return nil, opErr(ctx.Err())
		case <-notify:
		}
		terr = ep.LastError()
	}
	if terr != nil {
		ep.Close()
		return nil, opErr(errors.New(terr.String()))
	}
	return NewConn(&wq, ep), nil
}

// Listener is a listening gVisor endpoint whose connections come as Conn.
type Listener struct {
	ep     tcpip.Endpoint
	wq     waiter.Queue
	closed chan struct{}
	once   sync.Once
}

// Listen listens on addr on s with room for backlog connections not yet
// accepted.
func Listen(s *stack.Stack, addr netip.AddrPort, backlog int) (*Listener, error) {
	fa, proto := FullAddr(addr)
	l := &Listener{closed: make(chan struct{})}
	opErr := func(terr tcpip.Error) error {
		return &net.OpError{Op: "listen", Net: "tcp", Addr: net.TCPAddrFromAddrPort(addr), Err: errors.New(terr.String())}
	}
	ep, terr := s.NewEndpoint(tcp.ProtocolNumber, proto, &l.wq)
	if terr != nil {
		return nil, opErr(terr)
	}
	if terr := ep.Bind(fa); terr != nil {
		ep.Close()
		return nil, opErr(terr)
	}
	if terr := ep.Listen(backlog); terr != nil {
		ep.Close()
		return nil, opErr(terr)
	}
	l.ep = ep
	return l, nil
}

// Accept waits for a connection until ctx ends or the listener closes
// (net.ErrClosed).
func (l *Listener) Accept(ctx context.Context) (*Conn, error) {
	entry, notify := waiter.NewChannelEntry(waiter.ReadableEvents)
	l.wq.EventRegister(&entry)
	defer l.wq.EventUnregister(&entry)
	for {
		select {
		case <-l.closed:
			return nil, net.ErrClosed
		default:
		}
		ep, wq, terr := l.ep.Accept(nil)
		if terr == nil {
			return NewConn(wq, ep), nil
		}
		if _, ok := terr.(*tcpip.ErrWouldBlock); !ok {
			return nil, &net.OpError{Op: "accept", Net: "tcp", Err: errors.New(terr.String())}
		}
		select {
		case <-notify:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-l.closed:
			return nil, net.ErrClosed
		}
	}
}

// Close stops listening; a blocked Accept returns net.ErrClosed.
func (l *Listener) Close() error {
	l.once.Do(func() {
		close(l.closed)
		l.ep.Close()
	})
	return nil
}
