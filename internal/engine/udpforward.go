package engine

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Forwarding UDP (tun2socks-style, beside forward.go's TCP): with a UDP
// forwarder set, a datagram for another address than the host's opens a
// flow, one per 5-tuple. The first datagram of a flow is offered as a
// UDPForwardRequest; the handler accepts it (a UDP socket bound to the
// original destination and connected to the client, with the datagram
// queued) or refuses it (an ICMP port unreachable) or drops it. Until it
// decides, later datagrams of the flow are dropped (the client
// retransmits, as its DNS resolver does). Flows are bounded in all
// (maxFlows, pending ones included) and per client address, so that a
// flood of new 5-tuples cannot grow memory; a flow ends when its socket is
// closed (the handler closes it after an idle timeout, as conntrack's).
type udpForward struct {
	on atomic.Bool // a handler is set: read without a lock on the receive path

	mu       sync.Mutex // a leaf: guards what follows
	f        func(*UDPForwardRequest)
	maxFlows int
	maxPer   int
	flows    int                            // pending requests and accepted flows
	perSrc   map[netip.Addr]int             // of those, by client address
	pending  map[[2]netip.AddrPort]bool     // requests not yet decided
	offers   offerQueue[*UDPForwardRequest] // to hand to f after the packet's locks
}

// UDPForwardRequest is the first datagram of a UDP flow for another
// address, offered to the UDP forwarder.
type UDPForwardRequest struct {
	// Local is the original destination; Remote is the client.
	Local, Remote netip.AddrPort
	h             *Host
	first         []byte // the first datagram's payload
	decided       atomic.Bool
}

// SetUDPForwarder turns UDP forwarding on with f as the handler, or off
// with a nil f; maxFlows and maxPerSource (positive) bound the flows.
func (s *Host) SetUDPForwarder(f func(*UDPForwardRequest), maxFlows, maxPerSource int) {
	t := &s.udpFwd
	t.mu.Lock()
	defer t.mu.Unlock()
	t.f, t.maxFlows, t.maxPer = f, maxFlows, min(maxPerSource, maxFlows)
	if t.perSrc == nil {
		t.perSrc = make(map[netip.Addr]int)
		t.pending = make(map[[2]netip.AddrPort]bool)
	}
	t.on.Store(f != nil)
}

// UDPFlows returns the UDP flows forwarded and not yet closed, pending
// requests included.
func (s *Host) UDPFlows() int {
	t := &s.udpFwd
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.flows
}

// udpForwardInput takes a datagram for another address while UDP
// forwarding is on: a new flow is offered (within the bounds), a
// datagram of a pending one dropped. It holds no lock but the
// forwarding table's.
func (s *Host) udpForwardInput(dst, src netip.AddrPort, data []byte) {
	t := &s.udpFwd
	st := &s.udp.stats
	t.mu.Lock()
	defer t.mu.Unlock()
	key := [2]netip.AddrPort{dst, src}
	switch {
	case t.f == nil, t.pending[key]:
		st.fwdDrops.Add(1)
		return
	case t.flows >= t.maxFlows, t.perSrc[src.Addr()] >= t.maxPer:
		st.fwdDrops.Add(1)
		st.fwdLimitDrops.Add(1)
		return
	}
	t.flows++
	t.perSrc[src.Addr()]++
	t.pending[key] = true
	t.offers.push(&UDPForwardRequest{Local: dst, Remote: src, h: s, first: append([]byte(nil), data...)})
	st.fwdRequests.Add(1)
}

// offerUDPForwards hands the queued requests to the handler, with no lock
// held (DeliverPackets defers it).
func (s *Host) offerUDPForwards() {
	t := &s.udpFwd
	if !t.offers.queued.Load() {
		return
	}
	t.mu.Lock()
	reqs, f := t.offers.take(), t.f
	t.mu.Unlock()
	give(reqs, f)
}

// offerQueue holds the requests a delivery made for a forwarder, to be
// handed over once the delivery's locks are released; queued says there
// are some (read without the lock that guards the rest).
type offerQueue[R interface{ Drop() error }] struct {
	reqs   []R
	queued atomic.Bool
}

// push queues r.
func (q *offerQueue[R]) push(r R) {
	q.reqs = append(q.reqs, r)
	q.queued.Store(true)
}

// take returns the queued requests and empties the queue.
func (q *offerQueue[R]) take() []R {
	reqs := q.reqs
	q.reqs = nil
	q.queued.Store(false)
	return reqs
}

// give hands each request to f, with no lock held; with no handler (it
// was removed meanwhile) the requests are dropped.
func give[R interface{ Drop() error }](reqs []R, f func(R)) {
	for _, r := range reqs {
		if f == nil {
			r.Drop()
		} else {
			f(r)
		}
	}
}

// decide marks the request decided, once: false if it already was.
func (r *UDPForwardRequest) decide() bool {
	if !r.decided.CompareAndSwap(false, true) {
		return false
	}
	t := &r.h.udpFwd
	t.mu.Lock()
	delete(t.pending, [2]netip.AddrPort{r.Local, r.Remote})
	t.mu.Unlock()
	return true
}

// endFlow gives back a flow's place in the bounds.
func (s *Host) endFlow(src netip.Addr) {
	t := &s.udpFwd
	t.mu.Lock()
	defer t.mu.Unlock()
	t.flows--
	if t.perSrc[src]--; t.perSrc[src] <= 0 {
		delete(t.perSrc, src)
	}
}

// Accept opens the flow: a UDP socket bound to Local (the original
// destination) and connected to Remote, the first datagram queued on it.
// Closing the socket ends the flow. ErrForwardDecided if the request was
// decided; net.ErrClosed after the host closed.
func (r *UDPForwardRequest) Accept() (*Socket, error) {
	if !r.decide() {
		return nil, ErrForwardDecided
	}
	s := r.h
	family := AF_INET
	if r.Local.Addr().Is6() {
		family = AF_INET6
	}
	sk, err := s.NewUDPSocket(family)
	if err != nil {
		s.endFlow(r.Remote.Addr())
		return nil, net.ErrClosed
	}
	u := sk.udp
	if err := sk.openFlow(r.Local, r.Remote); err != nil {
		sk.Close()
		s.endFlow(r.Remote.Addr())
		return nil, err
	}
	u.deliver(r.Remote, r.first, &s.udp.stats.inDatagrams[fam(r.Local.Addr())])
	s.udp.stats.fwdFlows.Add(1)
	return sk, nil
}

// openFlow binds sk, the new socket of a forwarded flow, to local and
// connects it to remote, under ctl.
func (sk *Socket) openFlow(local, remote netip.AddrPort) error {
	var l locks
	defer sk.h.releaseCtl(&l)
	if err := sk.lock(ctlOnly, &l); err != nil {
		return err
	}
	u := sk.udp
	u.forwarded = true
	if err := u.hashLocked(local); err != nil {
		u.forwarded = false
		return err
	}
	u.setRemote(remote)
	return nil
}

// Refuse answers the first datagram with an ICMP port unreachable, as a
// host with no socket on the port would.
func (r *UDPForwardRequest) Refuse() error {
	if !r.decide() {
		return ErrForwardDecided
	}
	s := r.h
	s.endFlow(r.Remote.Addr())
	s.ctl.Lock()
	defer s.ctl.Unlock()
	if s.closed {
		return net.ErrClosed
	}
	pkt := appendUDPQuote(make([]byte, 0, 64), r.Remote, r.Local, r.first)
	s.sendPortUnreachableLocked(r.Local.Addr(), r.Remote.Addr(), pkt)
	return nil
}

// Drop decides the request without answering.
func (r *UDPForwardRequest) Drop() error {
	if !r.decide() {
		return ErrForwardDecided
	}
	r.h.endFlow(r.Remote.Addr())
	return nil
}

// appendUDPQuote appends to b the datagram from src to dst with the
// start of payload, as an ICMP error quotes it (the IP and UDP headers and
// 8 bytes of data are all RFC 792 asks for).
func appendUDPQuote(b []byte, src, dst netip.AddrPort, payload []byte) []byte {
	payload = payload[:min(len(payload), 8)]
	n := udpPacketLen(dst.Addr().Is6(), len(payload))
	b = append(b, make([]byte, n)...)
	emitUDP(b[len(b)-n:], src, dst, payload, 0, false)
	return b
}
