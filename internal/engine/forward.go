package engine

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"

	"github.com/synstack/synstack/tcp"
	"github.com/synstack/synstack/wire"
)

// Forwarding (tun2socks-style; synstack.Stack.SetForwarder says what the
// user sees): with a forwarder set, the host takes packets for any
// unicast destination and offers each SYN that no connection and no
// listener takes, and that is not for one of its own addresses, as a
// ForwardRequest, answering nothing until the request is decided.
// Requests waiting are bounded in all and per client address; the offers
// are handed to the forwarder after the packet's locks are released
// (offerForwards).

// ErrForwardDecided is returned by the methods of a ForwardRequest that
// has already been decided.
var ErrForwardDecided = errors.New("synstack: forward request already decided")

// ForwardRequest is a SYN offered to the forwarder, not yet answered.
type ForwardRequest struct {
	// Local is the original destination.
	Local netip.AddrPort
	// Remote is the client.
	Remote netip.AddrPort

	h      *Host
	syn    tcp.Segment // the SYN, its payload copied
	ctx    context.Context
	cancel context.CancelCauseFunc

	// Guarded by ctl.
	// +checklocks:h.ctl
	decided bool
	// +checklocks:h.ctl
	err error // why the request was withdrawn (client reset, host closed), if it was
}

// forwardState is the stack's forwarding table. Guarded by ctl
// except queued.
type forwardState struct {
	f          func(*ForwardRequest)
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

// SetForwarder turns forwarding on with f as the handler, or off with a
// nil f; maxPending and maxPerSource (positive) bound the requests
// waiting. Requests already offered stay to be decided.
func (s *Host) SetForwarder(f func(*ForwardRequest), maxPending, maxPerSource int) {
	s.lock()
	defer s.unlock()
	s.fwd.f = f
	s.fwd.maxPending = maxPending
	s.fwd.maxPerSrc = min(maxPerSource, maxPending)
	if s.fwd.pending == nil {
		s.fwd.pending = make(map[connKey]*ForwardRequest)
		s.fwd.perSrc = make(map[netip.Addr]int)
	}
}

// PendingForwards returns the number of requests offered and not yet
// decided.
func (s *Host) PendingForwards() int {
	s.ctl.Lock()
	defer s.ctl.Unlock()
	return len(s.fwd.pending)
}

// forwardsToLocked reports whether a packet for dst, not one of the
// stack's addresses, is taken because forwarding is on: TCP, and the ICMP
// errors that may be about a forwarded connection, to a unicast address.
func (s *Host) forwardsToLocked(dst netip.Addr, proto uint8, payload []byte) bool {
	if s.fwd.f == nil || // +checklocksignore: f, written under Host.lock, is read under a shard's
		dst.IsMulticast() || dst.IsUnspecified() || dst.IsLoopback() ||
		dst == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return false
	}
	switch {
	case proto == wire.ProtoTCP:
		return true
	case proto == wire.ProtoICMP && dst.Is4() && len(payload) > 0:
		t := payload[0]
		return t == wire.ICMPv4DestUnreachable || t == wire.ICMPv4TimeExceeded || t == icmpv4ParamProblem ||
			t == wire.ICMPv4EchoRequest && s.pingFwd.f != nil
	case proto == wire.ProtoICMPv6 && dst.Is6() && len(payload) > 0:
		t := payload[0]
		return t == wire.ICMPv6DestUnreachable || t == wire.ICMPv6PacketTooBig ||
			t == wire.ICMPv6TimeExceeded || t == wire.ICMPv6ParamProblem ||
			t == wire.ICMPv6EchoRequest && s.pingFwd.f != nil
	}
	return false
}

// foreignLocked reports whether local is an address only forwarding
// brings here: listeners never take it.
//
// +checklocks:s.ctl
func (s *Host) foreignLocked(local netip.Addr) bool {
	return s.fwd.f != nil && !s.isLocalAddr(local)
}

// forwardInputLocked handles a segment that found no connection and no
// listener while forwarding is on. It reports whether it took the segment;
// if not, the caller answers it as before (RST).
//
// +checklocks:s.ctl
func (s *Host) forwardInputLocked(local, remote netip.AddrPort, seg *tcp.Segment) bool {
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
	req := &ForwardRequest{Local: local, Remote: remote, h: s, syn: *seg}
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
//
// +checklocks:s.ctl
func (s *Host) forwardTimeWaitLocked(ep *endpoint, local, remote netip.AddrPort, seg *tcp.Segment) bool {
	if s.fwd.f == nil {
		return false
	}
	s.unhashLocked(ep) // +checklocksignore: ep.sh is the shard whose lock the caller holds, under another name
	if ep.sock != nil {
		ep.sock.wake()
	}
	return s.forwardInputLocked(local, remote, seg)
}

// offerForwards hands the requests queued by the last packet to the
// Forwarder, without the stack's lock. DeliverPacket defers it.
func (s *Host) offerForwards() {
	if !s.fwd.queued.Load() { // +checklocksignore: queued is atomic
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
		f(req)
	}
}

// withdrawForwardLocked ends a pending request that was not decided.
//
// +checklocks:s.ctl
func (s *Host) withdrawForwardLocked(req *ForwardRequest, err error) {
	s.unpendLocked(req)
	req.decided = true // +checklocksignore: req is in s's table, so req.h is s
	req.err = err      // +checklocksignore: as above
	req.cancel(err)
}

// unpendLocked takes a request out of the pending table.
//
// +checklocks:s.ctl
func (s *Host) unpendLocked(req *ForwardRequest) {
	delete(s.fwd.pending, connKey{req.Local, req.Remote})
	src := req.Remote.Addr()
	if s.fwd.perSrc[src]--; s.fwd.perSrc[src] <= 0 {
		delete(s.fwd.perSrc, src)
	}
}

// closeForwardsLocked withdraws every pending request (Host.Close).
//
// +checklocks:s.ctl
func (s *Host) closeForwardsLocked() {
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
//
// +checklocks:r.h.ctl
func (r *ForwardRequest) decideLocked() error {
	s := r.h
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
// returns the connected socket, whose local address is Local. It waits for
// the client's ACK; it fails if the client resets (ECONNRESET), if the
// handshake times out, if the host closes (net.ErrClosed) or if ctx is
// done first (ctx's error; the connection is then reset).
func (r *ForwardRequest) Accept(ctx context.Context) (*Socket, error) {
	s := r.h
	// ctl and the shard of the connection to be (waitLocked may change
	// l, which the deferred release reads when it runs).
	l := locks{ctl: true, sh: s.shardOf(r.Local, r.Remote)}
	s.acquireCtl(&l)
	defer s.releaseCtl(&l)
	if err := r.decideLocked(); err != nil {
		return nil, err
	}
	if l.sh.conns.get(r.Local, r.Remote) != nil { // +checklocksignore: l names the shard (acquire)
		return nil, syscall.EADDRINUSE
	}
	fam := uint8(AF_INET)
	if r.Local.Addr().Is6() {
		fam = AF_INET6
	}
	sk := &Socket{h: s, family: fam, state: ssConnecting, opts: s.defaultOpts()}
	s.setOptsLocked(sk, func(o *Options) { o.NoDelay = true })
	ep := s.newForwardEndpointLocked(r.Local, r.Remote, sk.opts)
	ep.sock = sk
	sk.ep = ep
	now := s.clock.Now()
	ep.conn.Listen()
	ep.conn.Input(now, &r.syn)
	s.afterLocked(ep)
	for {
		if sk.usable() != nil {
			sk.releaseLocked() // +checklocksignore: sk.h is s, whose ctl is held
			return nil, net.ErrClosed
		}
		if err := ctx.Err(); err != nil {
			s.setOptsLocked(sk, func(o *Options) { o.Linger.Onoff, o.Linger.Linger = 1, 0 })
			sk.releaseLocked() // +checklocksignore: sk.h is s, whose ctl is held
			return nil, err
		}
		st := ep.conn.State()
		if st == tcp.SynRcvd {
			sk.waitLocked(ctx.Done(), &l)
			continue
		}
		if st == tcp.Closed || ep.finished() {
			errno := ep.conn.TakeErr()
			if errno == 0 {
				errno = syscall.ECONNRESET
			}
			sk.releaseLocked() // +checklocksignore: sk.h is s, whose ctl is held
			return nil, errno
		}
		break
	}
	sk.state = ssConnected
	s.g().stats.SynstackForwarded++
	return sk, nil
}

// newForwardEndpointLocked creates a forwarded connection, as
// newEndpointLocked does a passive one, but without a claim on the local
// port (the address is usually not the stack's) and counting its resets.
func (s *Host) newForwardEndpointLocked(local, remote netip.AddrPort, o *Options) *endpoint {
	ep := &endpoint{local: local, remote: remote, heapIndex: -1, passive: true, forwarded: true}
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
	s := r.h
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
	s := r.h
	s.ctl.Lock()
	defer s.ctl.Unlock()
	return r.decideLocked()
}

// Unreachable answers the SYN with an ICMP destination unreachable (code
// v4 for IPv4, v6 for IPv6), sent from Local's address and quoting the
// SYN, as a router (or the destination) would. It is counted as a
// timeout when timeout is set (the upstream did not answer).
func (r *ForwardRequest) Unreachable(v4, v6 uint8, timeout bool) error {
	s := r.h
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
	s.sendUnreachableLocked(r, v4, v6)
	return nil
}

// sendUnreachableLocked sends the ICMP destination unreachable answering
// r's SYN. The quoted packet is rebuilt from the SYN: its IP header and
// its TCP header with options (enough for any receiver: RFC 792 asks for 8
// bytes of it).
//
// +checklocks:s.ctl
func (s *Host) sendUnreachableLocked(r *ForwardRequest, v4, v6code uint8) {
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
	h := wire.ICMP{Type: wire.ICMPv4DestUnreachable, Code: v4}
	if v6 {
		h = wire.ICMP{Type: wire.ICMPv6DestUnreachable, Code: v6code}
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
