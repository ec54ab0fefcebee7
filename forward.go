package synstack

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"

	"github.com/synstack/synstack/internal/engine"
	"github.com/synstack/synstack/wire"
)

// Forwarding (tun2socks-style): with a Forwarder set (Stack.SetForwarder),
// the stack takes IP packets for any destination, not only its own
// addresses, and offers every connection request that no connection and no
// listener takes (a SYN to any address and port, IPv4 or IPv6) to the
// Forwarder as a ForwardRequest carrying the 4-tuple. Nothing is answered
// until the handler decides: the handshake is deferred, so a forwarder can
// dial the real destination first and then
//
//   - Accept: complete the handshake (SYN,ACK) and get the connection;
//   - Refuse: answer the SYN with RST (the client's connect fails with
//     ECONNREFUSED at once);
//   - Unreachable: answer with an ICMP or ICMPv6 destination unreachable
//     (the client's connect fails with ENETUNREACH, EHOSTUNREACH,
//     ECONNREFUSED...);
//   - Reject: pick one of these from the upstream's dial error;
//   - Drop: ignore the SYN (the client's retransmission is a new request).
//
// A forwarder that wants the other order (complete the handshake, then
// dial) calls Accept at once. Requests waiting for a decision are bounded
// (ForwardOptions.MaxPending); SYNs beyond the bound are dropped and
// counted (Stats.SynstackForwardPendingDrops), as a full SYN queue drops
// them, and a retransmitted SYN for a request already waiting is absorbed,
// not offered twice. A request costs a few hundred bytes and no goroutine
// of the stack's; the handler must decide every request it is given (the
// slot is held until it does, until the client resets, or until the stack
// closes).
//
// Listeners keep the stack's own addresses: a SYN to one of them goes to
// its listener, or is answered with RST when none listens, and is never
// forwarded (dialled from the host, it could be routed back into the same
// device and forwarded again, without end); a SYN to any other address is
// forwarded, whatever the listeners. Requests from one client address are
// bounded too (ForwardOptions.MaxPendingPerSource). Package forward has a Forwarder that dials
// upstream and relays.

// Forwarder is offered the connection requests the stack forwards (see
// Stack.SetForwarder).
type Forwarder interface {
	// Forward is called once per request, without the stack's lock, on
	// the goroutine that delivered the SYN (the link's): it must not
	// block for long, and typically starts a goroutine that decides.
	Forward(req *ForwardRequest)
}

// ForwarderFunc adapts a function to a Forwarder.
type ForwarderFunc func(req *ForwardRequest)

// Forward calls f(req).
func (f ForwarderFunc) Forward(req *ForwardRequest) { f(req) }

// ForwardOptions configure forwarding.
type ForwardOptions struct {
	// MaxPending bounds the requests offered and not yet decided.
	// Default DefaultMaxPendingForwards.
	MaxPending int
	// MaxPendingPerSource bounds the requests from one client address
	// among them, so that one client whose destinations never answer
	// cannot fill the table for everybody else. Default
	// DefaultMaxPendingForwardsPerSource (never more than MaxPending).
	MaxPendingPerSource int
	// MaxUDPFlows bounds the UDP flows (pending and accepted, until their
	// UDPConn is closed); a datagram that would open one more is dropped
	// and counted (Stats.SynstackForwardUDPLimitDrops). Default
	// DefaultMaxUDPFlows.
	MaxUDPFlows int
	// MaxUDPFlowsPerSource bounds those of one client address. Default
	// DefaultMaxUDPFlowsPerSource (never more than MaxUDPFlows).
	MaxUDPFlowsPerSource int
	// MaxPendingPings bounds the echo requests offered to a PingForwarder
	// and not yet decided; beyond it they are dropped
	// (Stats.SynstackForwardPingDrops). Default DefaultMaxPendingPings.
	MaxPendingPings int
}

// Defaults of ForwardOptions.
const (
	DefaultMaxPendingForwards          = 1024
	DefaultMaxPendingForwardsPerSource = 128
	DefaultMaxUDPFlows                 = 4096
	DefaultMaxUDPFlowsPerSource        = 512
	DefaultMaxPendingPings             = 256
)

// UnreachableCode says which ICMP destination unreachable a request is
// answered with (ForwardRequest.Unreachable).
type UnreachableCode uint8

// The unreachable codes, with the ICMPv4 and ICMPv6 codes they are sent as
// and the errno a Linux client's connect gets.
const (
	UnreachNet   UnreachableCode = iota // ICMPv4 net unreachable (0), ICMPv6 no route (0): ENETUNREACH
	UnreachHost                         // ICMPv4 host unreachable (1), ICMPv6 address unreachable (3): EHOSTUNREACH
	UnreachPort                         // ICMPv4 port unreachable (3), ICMPv6 port unreachable (4): ECONNREFUSED
	UnreachAdmin                        // ICMPv4 communication administratively prohibited (13), ICMPv6 administratively prohibited (1): EHOSTUNREACH, EACCES for IPv6
)

// icmpv4AdminProhibited is ICMPv4's "communication administratively
// prohibited" code (RFC 1812).
const icmpv4AdminProhibited = 13

// icmpCodes are the ICMPv4 and ICMPv6 codes of an UnreachableCode.
func (c UnreachableCode) icmpCodes() (v4, v6 uint8) {
	codes := [...][2]uint8{
		UnreachNet:   {wire.ICMPv4NetUnreachable, wire.ICMPv6NoRoute},
		UnreachHost:  {wire.ICMPv4HostUnreachable, wire.ICMPv6AddrUnreachable},
		UnreachPort:  {wire.ICMPv4PortUnreachable, wire.ICMPv6PortUnreachable},
		UnreachAdmin: {icmpv4AdminProhibited, wire.ICMPv6AdminProhibited},
	}
	p := codes[min(int(c), len(codes)-1)]
	return p[0], p[1]
}

// String names the code.
func (c UnreachableCode) String() string {
	switch c {
	case UnreachNet:
		return "net unreachable"
	case UnreachHost:
		return "host unreachable"
	case UnreachPort:
		return "port unreachable"
	case UnreachAdmin:
		return "administratively prohibited"
	}
	return "unreachable"
}

// ErrForwardDecided is returned by the methods of a ForwardRequest that
// has already been decided.
var ErrForwardDecided = engine.ErrForwardDecided

// ForwardRequest is a connection request offered to a Forwarder: a SYN
// from Remote to Local that no connection or listener took, not yet
// answered. Exactly one of Accept, AcceptContext, Refuse, Unreachable,
// Reject and Drop decides it; the others then return ErrForwardDecided.
// Its methods may be called from any goroutine.
type ForwardRequest struct {
	// Local is the original destination: the address and port the client
	// connects to. Remote is the client.
	Local, Remote netip.AddrPort

	s *Stack
	r *engine.ForwardRequest
}

// SetForwarder turns forwarding on with f as the handler (see Forwarder
// and ForwardRequest), or off with a nil f. While it is on, the stack
// accepts TCP packets, and ICMP errors, for any unicast destination.
// Turning it off leaves requests already offered to be decided.
func (s *Stack) SetForwarder(f Forwarder, opts ForwardOptions) {
	var offer func(*engine.ForwardRequest)
	if f != nil {
		offer = func(r *engine.ForwardRequest) {
			f.Forward(&ForwardRequest{Local: r.Local, Remote: r.Remote, s: s, r: r})
		}
	}
	s.h.SetForwarder(offer, orDefault(opts.MaxPending, DefaultMaxPendingForwards),
		orDefault(opts.MaxPendingPerSource, DefaultMaxPendingForwardsPerSource))
	var offerUDP func(*engine.UDPForwardRequest)
	if uf, ok := f.(UDPForwarder); ok {
		offerUDP = func(r *engine.UDPForwardRequest) {
			uf.ForwardUDP(&UDPForwardRequest{Local: r.Local, Remote: r.Remote, s: s, r: r})
		}
	}
	s.h.SetUDPForwarder(offerUDP, orDefault(opts.MaxUDPFlows, DefaultMaxUDPFlows),
		orDefault(opts.MaxUDPFlowsPerSource, DefaultMaxUDPFlowsPerSource))
	var offerPing func(*engine.PingForwardRequest)
	if pf, ok := f.(PingForwarder); ok {
		offerPing = func(r *engine.PingForwardRequest) { pf.ForwardPing(&PingForwardRequest{r}) }
	}
	s.h.SetPingForwarder(offerPing, orDefault(opts.MaxPendingPings, DefaultMaxPendingPings))
}

// PingForwarder is offered the echo requests (pings) for the addresses
// the stack forwards: a Forwarder that also implements it gets them
// (Stack.SetForwarder); without it the stack answers them itself, as if
// every destination were up.
type PingForwarder interface {
	// ForwardPing is called once per echo request, without the stack's
	// locks, on the goroutine that delivered it: it must not block for
	// long.
	ForwardPing(req *PingForwardRequest)
}

// PingForwardRequest is an echo request for an address that is not the
// stack's. Reply or Drop decides it; the other then returns
// ErrForwardDecided.
type PingForwardRequest struct {
	r *engine.PingForwardRequest
}

// Src is the client that pings; Dst the address it pings.
func (r *PingForwardRequest) Src() netip.Addr { return r.r.Src }

// Dst is the address pinged.
func (r *PingForwardRequest) Dst() netip.Addr { return r.r.Dst }

// Ident is the echo request's identifier.
func (r *PingForwardRequest) Ident() uint16 { return r.r.Ident }

// Seq is the echo request's sequence number.
func (r *PingForwardRequest) Seq() uint16 { return r.r.Seq }

// Data is the echo request's data (a copy: it stays valid).
func (r *PingForwardRequest) Data() []byte { return r.r.Data }

// Reply answers with an echo reply from Dst, as Dst would: the forwarder
// has pinged the real destination and it answered (or the forwarder
// answers for it).
func (r *PingForwardRequest) Reply() error { return r.r.Reply() }

// Drop decides the request without an answer: the destination did not
// answer.
func (r *PingForwardRequest) Drop() error { return r.r.Drop() }

// UDPForwarder is offered the UDP flows the stack forwards: a Forwarder
// that also implements it gets them (Stack.SetForwarder). A flow is a
// 5-tuple; its first datagram for an address that is not the stack's is
// offered as a UDPForwardRequest, and later ones are dropped until the
// request is decided (a client retransmits, as a DNS resolver does).
type UDPForwarder interface {
	// ForwardUDP is called once per new flow, without the stack's locks,
	// on the goroutine that delivered the datagram: it must not block
	// for long.
	ForwardUDP(req *UDPForwardRequest)
}

// UDPForwardRequest is a new UDP flow offered to a UDPForwarder: a
// datagram from Remote to Local (the original destination) that no
// socket of the stack takes. Exactly one of Accept, Refuse and Drop
// decides it; the others then return ErrForwardDecided.
type UDPForwardRequest struct {
	// Local is the original destination; Remote is the client.
	Local, Remote netip.AddrPort

	s *Stack
	r *engine.UDPForwardRequest
}

// Accept opens the flow and returns it as a UDPConn bound to Local and
// connected to Remote, the first datagram ready to be read: what the
// forwarder reads came from the client, what it writes goes to the client
// from Local. The flow holds its place in the bounds until the UDPConn is
// closed: the forwarder closes it after an idle time (Linux's conntrack
// keeps a UDP flow 30 s, 120 s once it was answered).
func (r *UDPForwardRequest) Accept() (*UDPConn, error) {
	sk, err := r.r.Accept()
	if err != nil {
		if err == ErrForwardDecided {
			return nil, err
		}
		return nil, udpOpError("accept", "udp", r.Local, r.Remote, mapErr("accept", err, false))
	}
	fd, err := r.s.sockets.open(sk, false)
	if err != nil {
		return nil, udpOpError("accept", "udp", r.Local, r.Remote, net.ErrClosed)
	}
	return &UDPConn{descriptor: descriptor{s: r.s, fd: int32(fd)}, sk: sk, network: "udp", local: r.Local, remote: r.Remote}, nil
}

// Refuse answers the first datagram with an ICMP (v6) port unreachable
// from Local, as a host with no socket on the port would.
func (r *UDPForwardRequest) Refuse() error { return r.r.Refuse() }

// Drop decides the request without answering.
func (r *UDPForwardRequest) Drop() error { return r.r.Drop() }

// UDPFlows returns the UDP flows forwarded and not yet closed, pending
// requests included.
func (s *Stack) UDPFlows() int { return s.h.UDPFlows() }

// PendingForwards returns the number of requests offered and not yet
// decided.
func (s *Stack) PendingForwards() int { return s.h.PendingForwards() }

// Context returns a context that is done once the request is decided or
// withdrawn: the client reset it (context.Cause is ECONNRESET) or the
// stack closed (net.ErrClosed). A forwarder dials the upstream within it
// so that a dial nobody waits for any more is abandoned.
func (r *ForwardRequest) Context() context.Context { return r.r.Context() }

// SYNOptions returns the TCP options of the client's SYN (MSS, window
// scale, SACK permitted, timestamps).
func (r *ForwardRequest) SYNOptions() wire.TCPOptions { return r.r.SYNOptions() }

// Accept completes the handshake (SYN,ACK, then the client's ACK) and
// returns the connection: its LocalAddr is Local, the original
// destination. It waits for the client's ACK, at most as long as the
// SYN,ACK retransmissions last (tcp.Config.SynAckRetries); it fails if the
// client resets, if the handshake times out, or if the stack closes
// (net.ErrClosed). As package net's accepted connections, it has
// TCP_NODELAY set; keepalive is off.
func (r *ForwardRequest) Accept() (*TCPConn, error) {
	return r.AcceptContext(context.Background())
}

// AcceptContext is Accept within ctx: if ctx is done before the handshake
// completes, the connection is reset and the error wraps ctx's.
func (r *ForwardRequest) AcceptContext(ctx context.Context) (*TCPConn, error) {
	sk, err := r.r.Accept(ctx)
	switch {
	case err == ctx.Err() && err != nil:
		return nil, r.opErr(ctxError(err))
	case err != nil:
		return nil, r.opErr(err)
	}
	c, err := r.s.newTCPConn(sk, "tcp")
	if err != nil {
		return nil, r.opErr(net.ErrClosed)
	}
	return c, nil
}

// Refuse answers the SYN with RST: the client's connect fails with
// ECONNREFUSED at once.
func (r *ForwardRequest) Refuse() error { return r.r.Refuse() }

// Drop decides the request without answering: the client retransmits its
// SYN, which is then offered as a new request.
func (r *ForwardRequest) Drop() error { return r.r.Drop() }

// Unreachable answers the SYN with an ICMP (IPv4) or ICMPv6 destination
// unreachable of the given code, sent from Local's address and quoting the
// SYN, as a router (or the destination) would.
func (r *ForwardRequest) Unreachable(code UnreachableCode) error {
	v4, v6 := code.icmpCodes()
	return r.r.Unreachable(v4, v6, false)
}

// Reject answers the SYN as the upstream's dial error says: RST for
// ECONNREFUSED (and for any error it does not recognise), ICMP net
// unreachable for ENETUNREACH, host unreachable for EHOSTUNREACH and
// EHOSTDOWN, administratively prohibited for EACCES and EPERM; a timeout
// (ETIMEDOUT, context.DeadlineExceeded, a net.Error whose Timeout is true)
// counts in Stats.SynstackForwardTimeouts (not SynstackForwardUnreachables)
// and is answered with host unreachable, what a router says of a host that
// does not answer.
func (r *ForwardRequest) Reject(err error) error {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return r.Refuse()
	case errors.Is(err, syscall.ENETUNREACH):
		return r.Unreachable(UnreachNet)
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.EHOSTDOWN):
		return r.Unreachable(UnreachHost)
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return r.Unreachable(UnreachAdmin)
	case errors.Is(err, syscall.ETIMEDOUT), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		v4, v6 := UnreachHost.icmpCodes()
		return r.r.Unreachable(v4, v6, true)
	}
	return r.Refuse()
}

// opErr wraps an error of Accept as package net does.
func (r *ForwardRequest) opErr(err error) error {
	if err == ErrForwardDecided {
		return err
	}
	return opError("accept", "tcp", tcpAddr(r.Local), tcpAddr(r.Remote), mapErr("accept", err, false))
}
