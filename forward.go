package synstack

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"

	"github.com/synstack/synstack/tcp"
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
}

// Defaults of ForwardOptions.
const (
	DefaultMaxPendingForwards          = 1024
	DefaultMaxPendingForwardsPerSource = 128
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
var ErrForwardDecided = errors.New("synstack: forward request already decided")

// ForwardRequest is a connection request offered to a Forwarder: a SYN
// from Remote to Local that no connection or listener took, not yet
// answered. Exactly one of Accept, AcceptContext, Refuse, Unreachable,
// Reject and Drop decides it; the others then return ErrForwardDecided.
// Its methods may be called from any goroutine.
type ForwardRequest struct {
	// Local is the original destination: the address and port the client
	// connects to. Remote is the client.
	Local, Remote netip.AddrPort

	s      *Stack
	syn    tcp.Segment // the SYN, its payload copied
	ctx    context.Context
	cancel context.CancelCauseFunc

	// Guarded by Stack.lock.
	decided bool
	err     error // why the request was withdrawn (client reset, stack closed), if it was
}

// forwardState is the stack's forwarding table. Guarded by Stack.lock
// except queued.
type forwardState struct {
	f          Forwarder
	maxPending int
	maxPerSrc  int
	pending    map[connKey]*ForwardRequest
	// perSrc counts the pending requests of each client address.
	perSrc map[netip.Addr]int
	// offers are the new requests to hand to f once lock is released;
	// queued says there are some (read without the lock by DeliverPacket).
	offers []*ForwardRequest
	queued atomic.Bool
}

// SetForwarder turns forwarding on with f as the handler (see Forwarder
// and ForwardRequest), or off with a nil f. While it is on, the stack
// accepts TCP packets, and ICMP errors, for any unicast destination.
// Turning it off leaves requests already offered to be decided.
func (s *Stack) SetForwarder(f Forwarder, opts ForwardOptions) {
	s.lock()
	defer s.unlock()
	s.fwd.f = f
	s.fwd.maxPending = opts.MaxPending
	if s.fwd.maxPending <= 0 {
		s.fwd.maxPending = DefaultMaxPendingForwards
	}
	s.fwd.maxPerSrc = opts.MaxPendingPerSource
	if s.fwd.maxPerSrc <= 0 {
		s.fwd.maxPerSrc = DefaultMaxPendingForwardsPerSource
	}
	s.fwd.maxPerSrc = min(s.fwd.maxPerSrc, s.fwd.maxPending)
	if s.fwd.pending == nil {
		s.fwd.pending = make(map[connKey]*ForwardRequest)
		s.fwd.perSrc = make(map[netip.Addr]int)
	}
}

// PendingForwards returns the number of requests offered and not yet
// decided.
func (s *Stack) PendingForwards() int {
	s.ctl.Lock()
	defer s.ctl.Unlock()
	return len(s.fwd.pending)
}

// forwardsToLocked reports whether a packet for dst, not one of the
// stack's addresses, is taken because forwarding is on: TCP, and the ICMP
// errors that may be about a forwarded connection, to a unicast address.
func (s *Stack) forwardsToLocked(dst netip.Addr, proto uint8, payload []byte) bool {
	if s.fwd.f == nil || dst.IsMulticast() || dst.IsUnspecified() || dst.IsLoopback() ||
		dst == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return false
	}
	switch {
	case proto == wire.ProtoTCP:
		return true
	case proto == wire.ProtoICMP && dst.Is4() && len(payload) > 0:
		t := payload[0]
		return t == wire.ICMPv4DestUnreachable || t == wire.ICMPv4TimeExceeded || t == icmpv4ParamProblem
	case proto == wire.ProtoICMPv6 && dst.Is6() && len(payload) > 0:
		t := payload[0]
		return t == wire.ICMPv6DestUnreachable || t == wire.ICMPv6PacketTooBig ||
			t == wire.ICMPv6TimeExceeded || t == wire.ICMPv6ParamProblem
	}
	return false
}

// foreignLocked reports whether local is an address only forwarding
// brings here: listeners never take it.
func (s *Stack) foreignLocked(local netip.Addr) bool {
	return s.fwd.f != nil && !s.isLocalAddr(local)
}

// forwardInputLocked handles a segment that found no connection and no
// listener while forwarding is on. It reports whether it took the segment;
// if not, the caller answers it as before (RST).
func (s *Stack) forwardInputLocked(local, remote netip.AddrPort, seg *tcp.Segment) bool {
	if s.fwd.f == nil || s.isLocalAddr(local.Addr()) {
		// The stack's own addresses are never forwarded: a port with no
		// listener is answered with RST, as without forwarding. Dialled
		// upstream from the host, such a connection could come back into
		// the same device and be forwarded again, without end.
		return false
	}
	key := connKey{local, remote}
	if req := s.fwd.pending[key]; req != nil {
		if seg.Flags&wire.FlagRST != 0 && (seg.SEQ == req.syn.SEQ.Add(1) || seg.SEQ == req.syn.SEQ) {
			// The client gave up on the request.
			s.withdrawForwardLocked(req, syscall.ECONNRESET)
		}
		// A retransmitted SYN (or anything else) waits for the decision.
		return true
	}
	if !isPlainSYN(seg) {
		return false
	}
	if s.connLimitLocked(nil) {
		return true
	}
	if len(s.fwd.pending) >= s.fwd.maxPending {
		s.g().stats.SynstackForwardPendingDrops++
		return true
	}
	if s.fwd.perSrc[remote.Addr()] >= s.fwd.maxPerSrc {
		s.g().stats.SynstackForwardPendingDrops++
		s.g().stats.SynstackForwardSourceDrops++
		return true
	}
	req := &ForwardRequest{Local: local, Remote: remote, s: s, syn: *seg}
	if len(seg.Payload) > 0 {
		req.syn.Payload = append([]byte(nil), seg.Payload...)
	}
	req.ctx, req.cancel = context.WithCancelCause(context.Background())
	s.fwd.pending[key] = req
	s.fwd.perSrc[remote.Addr()]++
	s.fwd.offers = append(s.fwd.offers, req)
	s.fwd.queued.Store(true)
	s.g().stats.SynstackForwardRequests++
	return true
}

// forwardTimeWaitLocked takes a new incarnation's SYN for a connection in
// TIME_WAIT when no listener does and forwarding is on: the old connection
// goes and the SYN is a new request.
func (s *Stack) forwardTimeWaitLocked(ep *endpoint, local, remote netip.AddrPort, seg *tcp.Segment) bool {
	if s.fwd.f == nil {
		return false
	}
	s.unhashLocked(ep)
	if ep.sock != nil {
		s.wakeSocketLocked(ep.sock)
	}
	return s.forwardInputLocked(local, remote, seg)
}

// offerForwards hands the requests queued by the last packet to the
// Forwarder, without the stack's lock. DeliverPacket defers it.
func (s *Stack) offerForwards() {
	if !s.fwd.queued.Load() {
		return
	}
	s.ctl.Lock()
	offers, f := s.fwd.offers, s.fwd.f
	s.fwd.offers = nil
	s.fwd.queued.Store(false)
	s.ctl.Unlock()
	for _, req := range offers {
		if f == nil {
			_ = req.Drop()
			continue
		}
		f.Forward(req)
	}
}

// withdrawForwardLocked ends a pending request that was not decided.
func (s *Stack) withdrawForwardLocked(req *ForwardRequest, err error) {
	s.unpendLocked(req)
	req.decided = true
	req.err = err
	req.cancel(err)
}

// unpendLocked takes a request out of the pending table.
func (s *Stack) unpendLocked(req *ForwardRequest) {
	delete(s.fwd.pending, connKey{req.Local, req.Remote})
	src := req.Remote.Addr()
	if s.fwd.perSrc[src]--; s.fwd.perSrc[src] <= 0 {
		delete(s.fwd.perSrc, src)
	}
}

// closeForwardsLocked withdraws every pending request (Stack.Close).
func (s *Stack) closeForwardsLocked() {
	for _, req := range s.fwd.pending {
		s.withdrawForwardLocked(req, net.ErrClosed)
	}
	s.fwd.offers = nil
}

// Context returns a context that is done once the request is decided or
// withdrawn: the client reset it (context.Cause is ECONNRESET) or the
// stack closed (net.ErrClosed). A forwarder dials the upstream within it
// so that a dial nobody waits for any more is abandoned.
func (r *ForwardRequest) Context() context.Context { return r.ctx }

// SYNOptions returns the TCP options of the client's SYN (MSS, window
// scale, SACK permitted, timestamps).
func (r *ForwardRequest) SYNOptions() wire.TCPOptions { return r.syn.Options }

// decideLocked marks the request decided; it fails if it already is, or
// if it was withdrawn (with why) or the stack is closed.
func (r *ForwardRequest) decideLocked() error {
	s := r.s
	switch {
	case r.err != nil:
		return r.err
	case r.decided:
		return ErrForwardDecided
	case s.closed:
		return net.ErrClosed
	}
	r.decided = true
	s.unpendLocked(r)
	r.cancel(ErrForwardDecided)
	return nil
}

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
	s := r.s
	// ctl and the shard of the connection to be (waitLocked may change
	// l, which the deferred release reads when it runs).
	l := locks{ctl: true, sh: s.shardOf(r.Local, r.Remote)}
	s.acquire(&l)
	defer s.release(&l)
	if err := r.decideLocked(); err != nil {
		return nil, r.opErr(err)
	}
	if l.sh.conns.get(r.Local, r.Remote) != nil {
		return nil, r.opErr(syscall.EADDRINUSE)
	}
	fam := uint8(AF_INET)
	if r.Local.Addr().Is6() {
		fam = AF_INET6
	}
	sk := &socket{family: fam, state: ssConnecting, opts: s.defaultOpts()}
	s.setOptsLocked(sk, func(o *sockOpts) { o.noDelay = true })
	ep := s.newForwardEndpointLocked(r.Local, r.Remote, sk.opts)
	ep.sock = sk
	sk.ep = ep
	t := s.sockets
	fd := t.allocLocked(sk)
	drop := func() {
		if t.fds[fd] == sk {
			t.freeLocked(fd)
			sk.refs--
			s.releaseSocketLocked(sk)
		}
	}
	now := s.clock.Now()
	ep.conn.Listen()
	ep.conn.Input(now, &r.syn)
	s.afterLocked(ep)
	for {
		if err := t.usable(sk); err != nil {
			drop()
			return nil, r.opErr(net.ErrClosed)
		}
		if err := ctx.Err(); err != nil {
			s.setOptsLocked(sk, func(o *sockOpts) { o.linger.Onoff, o.linger.Linger = 1, 0 })
			drop()
			return nil, r.opErr(ctxError(err))
		}
		st := ep.conn.State()
		if st == tcp.SynRcvd {
			s.waitLocked(sk, ctx.Done(), &l)
			continue
		}
		if st == tcp.Closed || ep.finished() {
			errno := ep.conn.TakeErr()
			if errno == 0 {
				errno = syscall.ECONNRESET
			}
			drop()
			return nil, r.opErr(errno)
		}
		break
	}
	sk.state = ssConnected
	s.g().stats.SynstackForwarded++
	return s.newTCPConnLocked(fd, sk, "tcp"), nil
}

// newForwardEndpointLocked creates a forwarded connection, as
// newEndpointLocked does a passive one, but without a claim on the local
// port (the address is usually not the stack's) and counting its resets.
func (s *Stack) newForwardEndpointLocked(local, remote netip.AddrPort, o *sockOpts) *endpoint {
	ep := &endpoint{s: s, local: local, remote: remote, heapIndex: -1, passive: true, forwarded: true}
	s.hashLocked(ep, o, s.isn(local, remote))
	return ep
}

// isResetCause reports whether a transition to CLOSED was a reset, sent
// or received.
func isResetCause(c tcp.Cause) bool {
	switch c {
	case "rcv RST", "call ABORT", "call CLOSE with unread data":
		return true
	}
	return false
}

// Refuse answers the SYN with RST: the client's connect fails with
// ECONNREFUSED at once.
func (r *ForwardRequest) Refuse() error {
	s := r.s
	s.ctl.Lock()
	defer s.ctl.Unlock()
	if err := r.decideLocked(); err != nil {
		return err
	}
	s.g().stats.SynstackForwardRefused++
	s.sendResetLocked(r.Local, r.Remote, &r.syn)
	return nil
}

// Drop decides the request without answering: the client retransmits its
// SYN, which is then offered as a new request.
func (r *ForwardRequest) Drop() error {
	s := r.s
	s.ctl.Lock()
	defer s.ctl.Unlock()
	return r.decideLocked()
}

// Unreachable answers the SYN with an ICMP (IPv4) or ICMPv6 destination
// unreachable of the given code, sent from Local's address and quoting the
// SYN, as a router (or the destination) would.
func (r *ForwardRequest) Unreachable(code UnreachableCode) error {
	return r.unreachable(code, false)
}

func (r *ForwardRequest) unreachable(code UnreachableCode, timeout bool) error {
	s := r.s
	s.ctl.Lock()
	defer s.ctl.Unlock()
	if err := r.decideLocked(); err != nil {
		return err
	}
	if timeout {
		s.g().stats.SynstackForwardTimeouts++
	} else {
		s.g().stats.SynstackForwardUnreachables++
	}
	s.sendUnreachableLocked(r, code)
	return nil
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
		return r.unreachable(UnreachHost, true)
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

// sendUnreachableLocked sends the ICMP destination unreachable answering
// r's SYN. The quoted packet is rebuilt from the SYN: its IP header and
// its TCP header with options (enough for any receiver: RFC 792 asks for 8
// bytes of it).
func (s *Stack) sendUnreachableLocked(r *ForwardRequest, code UnreachableCode) {
	src, dst := r.Local.Addr(), r.Remote.Addr()
	v6 := src.Is6()
	th := wire.TCP{
		SrcPort: r.Remote.Port(),
		DstPort: r.Local.Port(),
		Seq:     uint32(r.syn.SEQ),
		Ack:     uint32(r.syn.ACK),
		Flags:   r.syn.Flags,
		Window:  r.syn.WND,
		Options: r.syn.Options,
	}
	qipLen := wire.IPv4HeaderLen
	if v6 {
		qipLen = wire.IPv6HeaderLen
	}
	tcpLen := th.HeaderLen()
	buf, ipLen, ok := s.icmpBufLocked(v6, qipLen+tcpLen)
	if !ok {
		return
	}
	quote := buf[ipLen+wire.ICMPHeaderLen:]
	var err error
	if _, err = th.Emit(quote[qipLen:]); err == nil {
		wire.SetTCPChecksum(quote[qipLen:], dst, src)
		if v6 {
			qh := wire.IPv6{NextHeader: wire.ProtoTCP, HopLimit: ipTTL, Src: dst, Dst: src}
			_, err = qh.Emit(quote, tcpLen)
		} else {
			qh := wire.IPv4{DontFragment: true, TTL: ipTTL, Protocol: wire.ProtoTCP, Src: dst, Dst: src}
			_, err = qh.Emit(quote, tcpLen)
		}
	}
	if err != nil {
		s.g().stats.IpOutDiscards++
		return
	}
	var h wire.ICMP
	if v6 {
		codes := [...]uint8{UnreachNet: wire.ICMPv6NoRoute, UnreachHost: wire.ICMPv6AddrUnreachable,
			UnreachPort: wire.ICMPv6PortUnreachable, UnreachAdmin: wire.ICMPv6AdminProhibited}
		h = wire.ICMP{Type: wire.ICMPv6DestUnreachable, Code: codes[min(int(code), len(codes)-1)]}
	} else {
		codes := [...]uint8{UnreachNet: wire.ICMPv4NetUnreachable, UnreachHost: wire.ICMPv4HostUnreachable,
			UnreachPort: wire.ICMPv4PortUnreachable, UnreachAdmin: icmpv4AdminProhibited}
		h = wire.ICMP{Type: wire.ICMPv4DestUnreachable, Code: codes[min(int(code), len(codes)-1)]}
	}
	if !s.sendICMPLocked(buf, ipLen, h, src, dst) {
		return
	}
	if v6 {
		s.g().stats.Icmp6OutDestUnreachs++
	} else {
		s.g().stats.IcmpOutDestUnreachs++
	}
}
