package engine

import (
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/synstack/synstack/nstat"
	"github.com/synstack/synstack/wire"
)

// UDP (RFC 768), with what RFC 8085 says a stack owes its users and what
// Linux does where they leave room:
//
//   - A datagram for a local address is delivered to the one socket whose
//     binding matches best: connected to its source, then bound to its
//     destination address, then to the wildcard. Sockets sharing a port
//     with SO_REUSEPORT are chosen among by a keyed hash of the 4-tuple, as
//     Linux spreads a reuseport group.
//   - A socket's receive queue holds at most SO_RCVBUF bytes, each datagram
//     charged its length and udpDatagramCost; beyond it the datagram is
//     dropped and counted (UdpRcvbufErrors, UdpInErrors). The sum over the
//     host is bounded too (udpMemHigh).
//   - A datagram for no socket draws an ICMP port unreachable, rate limited
//     as Linux's icmp_ratelimit and icmp_msgs_per_sec, and counts in
//     UdpNoPorts.
//   - An ICMP error about a datagram a connected socket sent is that
//     socket's pending error: the next call returns it (ECONNREFUSED after
//     a port unreachable). An unconnected socket ignores them, as Linux's
//     without IP_RECVERR.
//   - A datagram larger than the link MTU is sent in IP fragments (DF
//     clear); one over 65,507 bytes of payload (IPv4; 65,527 for IPv6)
//     fails with EMSGSIZE.
//
// Locks: the UDP table (Host.udp.mu, a reader-writer lock) guards which
// socket has which binding; it is a leaf taken after ctl and the shards,
// for reading on the receive path, for writing by bind, connect and close
// (under ctl). A socket's receive queue has a mutex of its own (udpSock.mu),
// taken last. So a datagram is delivered without ctl or a shard's lock.

// udpDatagramCost is what a queued datagram costs beyond its payload, as
// Linux charges an skb's truesize (the buffer and its metadata) against
// SO_RCVBUF.
const udpDatagramCost = 256

// UDP payload limits: what fits an IP datagram of 65,535 bytes.
const (
	udpMaxPayload4 = 0xffff - wire.IPv4HeaderLen - wire.UDPHeaderLen
	udpMaxPayload6 = 0xffff - wire.UDPHeaderLen
)

// udpDefaultRcvBuf and udpDefaultSndBuf are Linux's net.core.rmem_default
// and wmem_default: a UDP socket's buffers before SO_RCVBUF or SO_SNDBUF.
const (
	udpDefaultRcvBuf = 212992
	udpDefaultSndBuf = 212992
)

// dgramTable is a demultiplexing table of datagram sockets: UDP's by
// port, ping sockets' by echo identifier.
type dgramTable struct {
	mu    sync.RWMutex
	ports map[uint16][]*udpSock // bound sockets by local port (identifier)
	next  uint32                // the ephemeral port search's counter
}

// udpTable is the host's UDP demultiplexing table and counters.
type udpTable struct {
	dgramTable
	// mem is the bytes all UDP receive queues hold; high bounds it (Linux's
	// udp_mem[2], sized as tcp_mem's).
	mem  atomic.Int64
	high int64
	// icmp rate-limits port unreachables (Linux's icmp_ratelimit and
	// icmp_msgs_per_sec).
	icmp  icmpLimiter
	stats udpCounters
}

// udpCounters are the counters the receive path keeps without a lock,
// atomic: UDP's, the IP counts of the packets it takes there, and how
// transport checksums were dealt with.
type udpCounters struct {
	inDatagrams, noPorts, inErrors, outDatagrams, rcvbufErrors, sndbufErrors, inCsumErrors  [2]atomic.Uint64
	fwdRequests, fwdFlows, fwdDrops, fwdLimitDrops                                          atomic.Uint64
	csumVerified, csumTrusted                                                               atomic.Uint64
	ipInReceives, ipInDelivers, ipOutRequests, ipOutDiscards, ipInHdrErrors, ip6InHdrErrors atomic.Uint64
}

// addTo adds the UDP counters to st.
func (c *udpCounters) addTo(st *nstat.Counters) {
	st.UdpInDatagrams += c.inDatagrams[0].Load()
	st.UdpNoPorts += c.noPorts[0].Load()
	st.UdpInErrors += c.inErrors[0].Load()
	st.UdpInCsumErrors += c.inCsumErrors[0].Load()
	st.UdpOutDatagrams += c.outDatagrams[0].Load()
	st.UdpRcvbufErrors += c.rcvbufErrors[0].Load()
	st.UdpSndbufErrors += c.sndbufErrors[0].Load()
	st.Udp6InDatagrams += c.inDatagrams[1].Load()
	st.Udp6NoPorts += c.noPorts[1].Load()
	st.Udp6InErrors += c.inErrors[1].Load()
	st.Udp6InCsumErrors += c.inCsumErrors[1].Load()
	st.Udp6OutDatagrams += c.outDatagrams[1].Load()
	st.Udp6RcvbufErrors += c.rcvbufErrors[1].Load()
	st.Udp6SndbufErrors += c.sndbufErrors[1].Load()
	st.SynstackForwardUDPRequests += c.fwdRequests.Load()
	st.SynstackForwardUDPFlows += c.fwdFlows.Load()
	st.SynstackForwardUDPDrops += c.fwdDrops.Load()
	st.SynstackForwardUDPLimitDrops += c.fwdLimitDrops.Load()
	st.SynstackInCsumVerified += c.csumVerified.Load()
	st.SynstackInCsumTrusted += c.csumTrusted.Load()
	st.IpInReceives += c.ipInReceives.Load()
	st.IpInDelivers += c.ipInDelivers.Load()
	st.IpOutRequests += c.ipOutRequests.Load()
	st.IpOutDiscards += c.ipOutDiscards.Load()
	st.IpInHdrErrors += c.ipInHdrErrors.Load()
	st.Ip6InHdrErrors += c.ip6InHdrErrors.Load()
}

// fam is the index of a family in udpCounters: 0 IPv4, 1 IPv6.
func fam(a netip.Addr) int {
	if a.Is4() {
		return 0
	}
	return 1
}

// udpSock is the UDP part of a Socket.
type udpSock struct {
	sk *Socket

	// Written under ctl and udp.mu, read under either.
	local     netip.AddrPort // bound address and port; port 0 until bound
	remote    netip.AddrPort // connected peer, or invalid
	reuse     bool           // SO_REUSEADDR when bound
	reuseport bool           // SO_REUSEPORT when bound
	v6only    bool           // an IPv6 wildcard that takes no IPv4
	hashed    bool           // in its table's ports
	ping      bool           // a ping socket (ping.go): ICMP echo, by identifier
	forwarded bool           // a forwarded flow (udpforward.go): bound to another host's address
	recvErr   atomic.Bool    // IP_RECVERR: ICMP errors reach it unconnected too
	rxStamp   atomic.Bool    // SO_TIMESTAMPING asks for receive stamps: datagrams keep their arrival time
	txStamp   atomic.Bool    // SO_TIMESTAMPING asks for transmit stamps (errqueue.go)
	eq        errQueueHolder // the error queue (errqueue.go), made at its first use

	mu     sync.Mutex // guards what follows, and the socket's wait queue
	q      dgramRing  // the receive queue, oldest first
	qBytes int        // what q is charged
	rcvBuf int        // SO_RCVBUF, as the receive path reads it
	err    syscall.Errno
	shutRd bool
	closed bool // Close was called
	chans  chanPool
}

// usable returns EBADF once the socket or the host is closed. Under u.mu.
func (u *udpSock) usable() error {
	if u.closed || isDone(u.sk.h.done) {
		return syscall.EBADF
	}
	return nil
}

// datagram is a received datagram: its source and payload, in a buffer
// of the host's pool (buffers.go) that goes back when it is read.
type datagram struct {
	from netip.AddrPort
	data []byte
	at   time.Time // arrival, when the socket asks for receive stamps
}

// dgramRing is a receive queue of datagrams: a ring that grows by
// doubling and keeps its array, so a steady flow allocates nothing.
type dgramRing struct {
	buf        []datagram
	head, size int
}

func (r *dgramRing) len() int { return r.size }

// push appends d.
func (r *dgramRing) push(d datagram) {
	if r.size == len(r.buf) {
		grown := make([]datagram, max(4, 2*len(r.buf)))
		for i := range r.size {
			grown[i] = r.buf[(r.head+i)%len(r.buf)]
		}
		r.buf, r.head = grown, 0
	}
	r.buf[(r.head+r.size)%len(r.buf)] = d
	r.size++
}

// front returns the oldest datagram; the ring is not empty.
func (r *dgramRing) front() *datagram { return &r.buf[r.head] }

// pop drops the oldest datagram; the ring is not empty.
func (r *dgramRing) pop() {
	r.buf[r.head] = datagram{}
	r.head = (r.head + 1) % len(r.buf)
	r.size--
}

// NewUDPSocket returns an unbound UDP socket of family (AF_INET or
// AF_INET6); EBADF once the host is closed.
func (s *Host) NewUDPSocket(family int) (*Socket, error) {
	sk, err := s.NewSocket(family)
	if err != nil {
		return nil, err
	}
	sk.udp = &udpSock{sk: sk, rcvBuf: udpDefaultRcvBuf}
	return sk, nil
}

// table is the table the socket is demultiplexed by.
func (u *udpSock) table() *dgramTable {
	if u.ping {
		return &u.sk.h.pings
	}
	return &u.sk.h.udp.dgramTable
}

// UDP reports whether the socket is a datagram socket: UDP, or ping.
func (sk *Socket) UDP() bool { return sk.udp != nil }

// udpBindLocked binds a UDP socket to addr (port 0: an ephemeral port).
// Under ctl.
func (u *udpSock) bindLocked(addr netip.AddrPort) error {
	sk, s := u.sk, u.sk.h
	a, err := sk.localAddr(addr.Addr(), syscall.EINVAL)
	if err != nil {
		return err
	}
	if !a.IsUnspecified() && !s.isLocalAddr(a) && !sk.opts.FreeBind {
		return syscall.EADDRNOTAVAIL
	}
	if u.hashed {
		return syscall.EINVAL
	}
	return u.hashLocked(netip.AddrPortFrom(a, addr.Port()))
}

// hashLocked enters the socket in the table at local (port 0: a free
// ephemeral port), with its reuse options as they are now. Under ctl.
func (u *udpSock) hashLocked(local netip.AddrPort) error {
	s, o := u.sk.h, u.sk.opts
	t := u.table()
	t.mu.Lock()
	defer t.mu.Unlock()
	b := binding{addr: local.Addr(), port: local.Port(), v6only: local.Addr().Is6() && o.V6Only,
		reuse: o.ReuseAddr, reuseport: o.ReusePort}
	if b.port == 0 {
		if b.port = t.pickPortLocked(s.key, &b); b.port == 0 {
			return syscall.EADDRINUSE
		}
	} else if !u.forwarded {
		// A forwarded flow's address is another host's: it shares no
		// port with the stack's own sockets.
		for _, v := range t.ports[b.port] {
			if vb := v.binding(); !v.forwarded && conflicts(&b, &vb) {
				return syscall.EADDRINUSE
			}
		}
	}
	u.local = netip.AddrPortFrom(b.addr, b.port)
	u.reuse, u.reuseport, u.v6only = b.reuse, b.reuseport, b.v6only
	if t.ports == nil {
		t.ports = make(map[uint16][]*udpSock)
	}
	t.ports[b.port] = append(t.ports[b.port], u)
	u.hashed = true
	return nil
}

// binding is the socket's claim as the port rules see it.
func (u *udpSock) binding() binding {
	return binding{addr: u.local.Addr(), port: u.local.Port(), v6only: u.v6only, reuse: u.reuse, reuseport: u.reuseport}
}

// pickPortLocked picks a free ephemeral port for b, scanning from a
// keyed-hash offset (as bind with port 0). Under t.mu.
func (t *dgramTable) pickPortLocked(key secret, b *binding) uint16 {
	off := uint32(key.hashAddrs(domainBindPort, netip.AddrPortFrom(b.addr, 1), netip.AddrPort{}, uint64(t.next)))
	t.next++
	for i := uint32(0); i < numEphemeral; i++ {
		port := uint16(EphemeralPortFirst + (off+i)%numEphemeral)
		if !slices.ContainsFunc(t.ports[port], func(v *udpSock) bool { vb := v.binding(); return overlap(b, &vb) }) {
			return port
		}
	}
	return 0
}

// unhashLocked takes the socket out of the table. Under ctl.
func (u *udpSock) unhashLocked() {
	if !u.hashed {
		return
	}
	t := u.table()
	t.mu.Lock()
	defer t.mu.Unlock()
	removeFrom(t.ports, u.local.Port(), u)
	u.hashed = false
}

// connectLocked sets the socket's peer (an invalid addr disconnects, as
// connect with AF_UNSPEC), binding it first if it is not. Under ctl.
func (u *udpSock) connectLocked(addr netip.AddrPort) error {
	sk, s := u.sk, u.sk.h
	if !addr.IsValid() {
		u.setRemote(netip.AddrPort{})
		return nil
	}
	dst, err := sk.localAddr(addr.Addr(), syscall.ENETUNREACH)
	if err != nil {
		return err
	}
	if dst.IsUnspecified() {
		return syscall.ENETUNREACH
	}
	if !u.hashed {
		src, ok := s.sourceAddrFor(dst)
		if !ok {
			return syscall.ENETUNREACH
		}
		// As Linux, an unbound socket is bound to the route's source
		// address and an ephemeral port.
		if err := u.hashLocked(netip.AddrPortFrom(src, 0)); err != nil {
			return syscall.EAGAIN
		}
	} else if u.local.Addr().IsUnspecified() && u.local.Addr().Is4() != dst.Is4() && !(u.local.Addr().Is6() && !u.v6only) {
		return syscall.EINVAL
	}
	u.setRemote(netip.AddrPortFrom(dst, addr.Port()))
	return nil
}

// setRemote sets the connected peer under udp.mu (the receive path reads
// it) and clears the pending error (a new association).
func (u *udpSock) setRemote(r netip.AddrPort) {
	t := u.table()
	t.mu.Lock()
	u.remote = r
	t.mu.Unlock()
	u.mu.Lock()
	u.err = 0
	u.mu.Unlock()
}

// closeLocked closes the socket: it leaves the table, its queue is freed,
// and blocked calls wake. Under ctl.
func (u *udpSock) closeLocked() {
	u.unhashLocked()
	if u.forwarded {
		u.sk.h.endFlow(u.remote.Addr())
	}
	u.mu.Lock()
	u.closed = true
	u.sk.h.udp.mem.Add(-int64(u.qBytes))
	for u.q.len() > 0 {
		buffers.Put(u.q.front().data)
		u.q.pop()
	}
	u.q, u.qBytes = dgramRing{}, 0
	u.sk.wake()
	u.mu.Unlock()
}

// udpLookup returns the socket a datagram from src to dst goes to, or nil:
// the best match (connected, then bound to dst's address, then a
// wildcard), a reuseport group spread by a keyed hash of the 4-tuple.
// Under udp.mu, read.
func (s *Host) udpLookup(dst, src netip.AddrPort) *udpSock {
	// Two passes, so that nothing is allocated: the best score and how
	// many reuseport sockets share it, then the one the hash picks.
	list := s.udp.ports[dst.Port()]
	var first *udpSock
	best, ties := 0, 0
	for _, u := range list {
		switch score := u.match(dst.Addr(), src); {
		case score > best:
			first, best, ties = u, score, 1
		case score == best && score > 0 && u.reuseport && first.reuseport:
			ties++
		}
	}
	if ties <= 1 {
		return first
	}
	k := int(s.key.hashAddrs(domainUDPReuseport, dst, src, 0) % uint64(ties))
	for _, u := range list {
		if u.reuseport && u.match(dst.Addr(), src) == best {
			if k == 0 {
				return u
			}
			k--
		}
	}
	return first
}

// udpFlow returns the forwarded flow of a datagram from src to dst, another
// host's address, or nil. Under udp.mu, read.
func (s *Host) udpFlow(dst, src netip.AddrPort) *udpSock {
	for _, u := range s.udp.ports[dst.Port()] {
		if u.forwarded && u.local == dst && u.remote == src {
			return u
		}
	}
	return nil
}

// match scores how well the socket's binding matches a datagram to dst
// from src: 0 not at all; more for a bound address than a wildcard, and
// for a connected peer.
func (u *udpSock) match(dst netip.Addr, src netip.AddrPort) int {
	if u.forwarded {
		return 0 // found by udpFlow alone
	}
	b := u.binding()
	if !b.covers(dst) {
		return 0
	}
	score := 1
	if !b.addr.IsUnspecified() {
		score += 2
	}
	if u.remote.IsValid() {
		if u.remote != src {
			return 0
		}
		score += 4
	}
	return score
}

// udpInput delivers a prepared UDP datagram to its socket, or answers it
// with an ICMP port unreachable. It takes udp.mu for reading and the
// socket's mutex; no other lock is held.
func (s *Host) udpInput(p *rxPacket) {
	st := &s.udp.stats
	f := fam(p.dst)
	if !p.reassembled {
		st.ipInReceives.Add(1)
		s.packetHook("in", p.pkt)
	}
	st.ipInDelivers.Add(1)
	if !s.checksumOK(p, wire.UDPChecksumValid) {
		st.inErrors[f].Add(1)
		st.inCsumErrors[f].Add(1)
		return
	}
	h, data, err := wire.ParseUDP(p.payload)
	if err != nil {
		st.inErrors[f].Add(1)
		return
	}
	dst, src := netip.AddrPortFrom(p.dst, h.DstPort), netip.AddrPortFrom(p.src, h.SrcPort)
	s.udp.mu.RLock()
	var u *udpSock
	if p.local {
		u = s.udpLookup(dst, src)
	} else {
		u = s.udpFlow(dst, src)
	}
	s.udp.mu.RUnlock()
	if u == nil && !p.local {
		s.udpForwardInput(dst, src, data)
		return
	}
	if u == nil {
		st.noPorts[f].Add(1)
		if !p.dst.IsMulticast() {
			s.udpUnreachable(p)
		}
		return
	}
	if !u.deliver(src, data, &st.inDatagrams[f]) {
		st.rcvbufErrors[f].Add(1)
		st.inErrors[f].Add(1)
	}
}

// deliver queues a datagram on the socket and counts it in queued (if
// not nil) before a reader can see it; false when the queue (or the
// host's datagram budget) is full, and the caller counts the drop.
func (u *udpSock) deliver(from netip.AddrPort, data []byte, queued *atomic.Uint64) bool {
	t := &u.sk.h.udp
	cost := len(data) + udpDatagramCost
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed || u.shutRd || u.qBytes+cost > u.rcvBuf && u.q.len() > 0 || t.mem.Load()+int64(cost) > t.high {
		return false
	}
	b := buffers.Get(len(data))
	d := datagram{from: from, data: b[:copy(b, data)]}
	if u.rxStamp.Load() {
		d.at = u.sk.h.clock.Now()
	}
	u.q.push(d)
	u.qBytes += cost
	t.mem.Add(int64(cost))
	if queued != nil {
		queued.Add(1)
	}
	u.sk.wake()
	return true
}

// RecvFrom takes the next datagram (see synstack.Sockets.Recvfrom): its
// bytes up to len(p), its source, and its whole length (what did not fit
// is discarded; the caller says so with MSG_TRUNC, as Linux does). With peek it stays
// queued. A pending error (an ICMP error on a connected socket) is
// returned first, once. A blocking call waits for a datagram or cancel
// (ErrCanceled); a non-blocking one returns EAGAIN.
func (sk *Socket) RecvFrom(p []byte, peek, nonblock bool, cancel <-chan struct{}) (n int, from netip.AddrPort, full int, err error) {
	ri, err := sk.recvDatagram(p, peek, nonblock, cancel)
	return ri.N, ri.From, ri.Full, err
}

// recvDatagram is RecvFrom, reporting what recvmsg learns (RecvInfo).
func (sk *Socket) recvDatagram(p []byte, peek, nonblock bool, cancel <-chan struct{}) (RecvInfo, error) {
	u := sk.udp
	u.mu.Lock()
	defer u.mu.Unlock()
	for {
		if err := u.usable(); err != nil {
			return RecvInfo{}, err
		}
		if isDone(cancel) {
			return RecvInfo{}, ErrCanceled
		}
		if e := u.err; e != 0 {
			u.err = 0
			return RecvInfo{}, e
		}
		if u.q.len() > 0 {
			d := *u.q.front()
			ri := RecvInfo{N: copy(p, d.data), From: sk.sockAddr(d.from), Full: len(d.data), Stamp: d.at}
			if !peek {
				u.q.pop()
				cost := len(d.data) + udpDatagramCost
				u.qBytes -= cost
				sk.h.udp.mem.Add(-int64(cost))
				buffers.Put(d.data)
			}
			return ri, nil
		}
		if u.shutRd {
			return RecvInfo{}, nil
		}
		if nonblock {
			return RecvInfo{}, syscall.EAGAIN
		}
		u.waitLocked(cancel)
	}
}

// shutdownLocked shuts the socket's reading side, writing side or both:
// a blocked RecvFrom returns 0, a SendTo EPIPE. As Linux, ENOTCONN on a
// socket that is not connected, though the shutdown takes effect. Under
// every lock.
func (u *udpSock) shutdownLocked(how int) error {
	if how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR {
		return syscall.EINVAL
	}
	u.mu.Lock()
	u.shutRd = u.shutRd || how != SHUT_WR
	u.sk.shutWr = u.sk.shutWr || how != SHUT_RD
	u.sk.wake()
	u.mu.Unlock()
	if !u.remote.IsValid() {
		return syscall.ENOTCONN
	}
	return nil
}

// events are the socket's poll events: readable with a datagram queued, a
// pending error or the reading side shut; always writable.
func (u *udpSock) events() Events {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.usable() != nil {
		return 0
	}
	ev := EventOut
	if u.q.len() > 0 || u.shutRd {
		ev |= EventIn
	}
	if u.shutRd && u.sk.shutWr {
		ev |= EventHup
	}
	if u.err != 0 || u.sk.errQueueLen() > 0 {
		ev |= EventErr
	}
	return ev
}

// queueLen is udp_ioctl's: SIOCINQ is the size of the next datagram (0
// with none), SIOCOUTQ 0 (a datagram leaves as it is sent); other
// requests ENOTTY.
func (u *udpSock) queueLen(which int) (int, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if err := u.usable(); err != nil {
		return 0, err
	}
	switch which {
	case QueueIn:
		if u.q.len() > 0 {
			return len(u.q.front().data), nil
		}
		return 0, nil
	case QueueOut:
		return 0, nil
	}
	return 0, syscall.ENOTTY
}

// waitLocked waits, with u.mu released, until the socket changes or cancel
// closes. Under u.mu.
//
// +checklocks:u.mu
func (u *udpSock) waitLocked(cancel <-chan struct{}) {
	sk := u.sk
	w := u.chans.get()
	sk.waiters = append(sk.waiters, w)
	u.mu.Unlock()
	select {
	case <-w:
	case <-cancel:
	case <-sk.h.done:
	}
	u.mu.Lock()
	sk.waiters.remove(w)
	select {
	case <-w:
	default:
	}
	u.chans.put(w)
}

// SendTo sends p as one datagram to addr, or to the connected peer when
// addr is not valid (see synstack.Sockets.Sendto): EDESTADDRREQ on an
// unconnected socket without addr, EISCONN never (Linux lets a connected
// socket send elsewhere), EMSGSIZE beyond what an IP datagram carries. An
// unbound socket is bound to an ephemeral port first. A pending error is
// returned first, once.
func (sk *Socket) SendTo(p []byte, addr netip.AddrPort) (int, error) {
	u, s := sk.udp, sk.h
	src, dst, fits, err := sk.prepareSend(p, addr)
	switch {
	case err != nil:
		return 0, err
	case fits && !u.ping:
		// One packet, built in a pooled buffer: no lock of the host's.
		s.sendSmallUDP(src, dst, p)
		if u.txStamp.Load() {
			sk.stampDatagram(p)
		}
		return len(p), nil
	}
	var l locks
	defer s.releaseCtl(&l)
	if err := sk.lock(ctlOnly, &l); err != nil {
		return 0, err
	}
	send := s.sendUDPLocked
	if u.ping {
		send = s.sendEchoLocked
	}
	if err := send(src, dst, p); err != nil {
		return 0, err
	}
	if u.txStamp.Load() {
		sk.stampDatagram(p)
	}
	return len(p), nil
}

// prepareSend does what SendTo does under ctl before the datagram is
// built: the automatic bind, the pending error, the checks of the
// destination and the size, and the choice of the source address. It
// reports whether the datagram fits the path in one packet.
func (sk *Socket) prepareSend(p []byte, addr netip.AddrPort) (src, dst netip.AddrPort, fits bool, err error) {
	u := sk.udp
	s := sk.h
	var l locks
	defer s.releaseCtl(&l)
	if err := sk.lock(ctlOnly, &l); err != nil {
		return src, dst, false, err
	}
	a, d, err := sk.sendAddrsLocked(p, addr)
	if err != nil {
		return src, dst, false, err
	}
	fits = udpPacketLen(d.Addr().Is6(), len(p)) <= s.pathMTUToLocked(d.Addr())
	return netip.AddrPortFrom(a, u.local.Port()), d, fits, nil
}

// sendAddrsLocked is prepareSend under ctl: the source address and the
// destination, or the call's error.
func (sk *Socket) sendAddrsLocked(p []byte, addr netip.AddrPort) (netip.Addr, netip.AddrPort, error) {
	u := sk.udp
	s := sk.h
	var none netip.AddrPort
	if !u.hashed {
		// As Linux's inet_send_prepare: bound first, whatever comes of
		// the send.
		if err := u.hashLocked(netip.AddrPortFrom(sk.wildcard(), 0)); err != nil {
			return netip.Addr{}, none, syscall.EAGAIN
		}
	}
	u.mu.Lock()
	e := u.err
	u.err = 0
	shutWr := sk.shutWr
	u.mu.Unlock()
	switch {
	case e != 0:
		return netip.Addr{}, none, e
	case shutWr:
		return netip.Addr{}, none, syscall.EPIPE
	}
	dst := u.remote
	if addr.IsValid() {
		a, err := sk.localAddr(addr.Addr(), syscall.ENETUNREACH)
		if err != nil {
			return netip.Addr{}, none, err
		}
		dst = netip.AddrPortFrom(a, addr.Port())
	}
	if !dst.IsValid() {
		return netip.Addr{}, none, syscall.EDESTADDRREQ
	}
	if dst.Port() == 0 && !u.ping || dst.Addr().IsUnspecified() {
		return netip.Addr{}, none, syscall.EINVAL
	}
	maxLen := udpMaxPayload6
	if dst.Addr().Is4() {
		maxLen = udpMaxPayload4
	}
	if u.ping {
		maxLen += wire.UDPHeaderLen // an ICMP message has no UDP header
	}
	if len(p) > maxLen {
		return netip.Addr{}, none, syscall.EMSGSIZE
	}
	src := u.local.Addr()
	if src.IsUnspecified() || src.Is4() != dst.Addr().Is4() {
		var ok bool
		if src, ok = s.sourceAddrFor(dst.Addr()); !ok {
			return netip.Addr{}, none, syscall.ENETUNREACH
		}
	}
	return src, dst, nil
}

// sendSmallUDP sends a datagram that fits the path in one packet, built
// in a buffer of the host's pool: it takes no lock of the host's, so the
// datagrams of different sockets leave in parallel.
func (s *Host) sendSmallUDP(src, dst netip.AddrPort, payload []byte) {
	st := &s.udp.stats
	total := udpPacketLen(dst.Addr().Is6(), len(payload))
	buf := buffers.Get(total)
	defer buffers.Put(buf)
	pkt := buf[:total]
	if emitUDP(pkt, src, dst, payload, uint16(s.udpIPID.Add(1)), true) != nil {
		st.ipOutDiscards.Add(1)
		return
	}
	st.outDatagrams[fam(dst.Addr())].Add(1)
	s.packetHook("out", pkt)
	if s.link.WritePacket(pkt) != nil {
		st.ipOutDiscards.Add(1)
		return
	}
	st.ipOutRequests.Add(1)
}

// sendUDPLocked builds the datagram from src to dst carrying payload and
// sends it, in fragments if it is larger than the MTU. Under ctl (the
// control plane's buffer and fragmenter).
func (s *Host) sendUDPLocked(src, dst netip.AddrPort, payload []byte) error {
	st := &s.udp.stats
	f := fam(dst.Addr())
	v6 := dst.Addr().Is6()
	total := udpPacketLen(v6, len(payload))
	g := s.g()
	if cap(g.outBuf) < total {
		g.outBuf = make([]byte, max(total, s.mtu))
	}
	pkt := g.outBuf[:total]
	var id uint16
	if !v6 {
		g.ipID++
		id = g.ipID
	}
	if emitUDP(pkt, src, dst, payload, id, true) != nil {
		st.ipOutDiscards.Add(1)
		return syscall.EINVAL
	}
	st.outDatagrams[f].Add(1)
	if err := s.sendIPLocked(pkt, v6); err != nil {
		st.sndbufErrors[f].Add(1)
		return err
	}
	return nil
}

// udpPacketLen is the length of the IP packet that carries a datagram of n
// bytes of payload.
func udpPacketLen(v6 bool, n int) int {
	if v6 {
		return wire.IPv6HeaderLen + wire.UDPHeaderLen + n
	}
	return wire.IPv4HeaderLen + wire.UDPHeaderLen + n
}

// emitUDP builds in pkt, udpPacketLen bytes long, the IP packet carrying
// the datagram from src to dst with payload: the payload copied in, the
// UDP header with its checksum if sum (an ICMP error's quote goes
// without), the IP header with the IPv4 identification id.
func emitUDP(pkt []byte, src, dst netip.AddrPort, payload []byte, id uint16, sum bool) error {
	v6 := dst.Addr().Is6()
	dgram := pkt[len(pkt)-wire.UDPHeaderLen-len(payload):]
	copy(dgram[wire.UDPHeaderLen:], payload)
	h := wire.UDP{SrcPort: src.Port(), DstPort: dst.Port()}
	if _, err := h.Emit(dgram, len(payload)); err != nil {
		return err
	}
	if sum {
		wire.SetUDPChecksum(dgram, src.Addr(), dst.Addr())
	}
	var err error
	if v6 {
		ih := wire.IPv6{NextHeader: wire.ProtoUDP, HopLimit: ipTTL, Src: src.Addr(), Dst: dst.Addr()}
		_, err = ih.Emit(pkt, len(dgram))
	} else {
		ih := wire.IPv4{ID: id, TTL: ipTTL, Protocol: wire.ProtoUDP, Src: src.Addr(), Dst: dst.Addr()}
		_, err = ih.Emit(pkt, len(dgram))
	}
	return err
}

// sendIPLocked sends an IP packet built in the control plane's buffer, in
// fragments if it is larger than the MTU or the path MTU learned for its
// destination (its DF is clear); EMSGSIZE if it cannot be cut. Under ctl.
func (s *Host) sendIPLocked(pkt []byte, v6 bool) error {
	mtu := s.pathMTULocked(pkt, v6)
	if len(pkt) <= mtu {
		s.writeIPLocked(pkt, nil)
		return nil
	}
	emit := func(hdr, data []byte) error {
		s.writeIPLocked(hdr, data)
		return nil
	}
	var err error
	if v6 {
		s.udpFragID++
		err = s.fragmenter.FragmentIPv6(pkt, mtu, s.udpFragID, emit)
	} else {
		err = s.fragmenter.FragmentIPv4(pkt, mtu, emit)
	}
	if err != nil {
		return syscall.EMSGSIZE
	}
	return nil
}

// pathMTU is what an ICMP packet too big (or fragmentation needed) taught
// the host of the path to a destination, for the datagrams it sends there
// (TCP connections keep their own, in their MSS): Linux's route
// exceptions, kept pmtuExpiry as its mtu_expires.
type pathMTU struct {
	mtu     int
	expires time.Time
}

// Path MTU cache bounds: entries live 10 minutes (net.ipv4.route.mtu_expires);
// at most pmtuEntries destinations are remembered.
const (
	pmtuExpiry  = 10 * time.Minute
	pmtuEntries = 4096
)

// pathMTULocked is the MTU for pkt's destination: the link's, or less if
// the path said so. Under ctl.
func (s *Host) pathMTULocked(pkt []byte, v6 bool) int {
	if len(s.pmtu) == 0 || len(pkt) < wire.IPv6HeaderLen {
		return s.mtu
	}
	if v6 {
		return s.pathMTUToLocked(netip.AddrFrom16([16]byte(pkt[24:40])))
	}
	return s.pathMTUToLocked(netip.AddrFrom4([4]byte(pkt[16:20])))
}

// pathMTUToLocked is the MTU of the path to dst: the link's, or less if
// the path said so; an expired entry goes. Under ctl.
func (s *Host) pathMTUToLocked(dst netip.Addr) int {
	p, ok := s.pmtu[dst]
	switch {
	case !ok:
		return s.mtu
	case s.clock.Now().After(p.expires):
		delete(s.pmtu, dst)
		return s.mtu
	}
	return min(s.mtu, p.mtu)
}

// learnPathMTULocked records that the path to dst carries at most mtu
// bytes. Under ctl (the ICMP path).
func (s *Host) learnPathMTULocked(dst netip.Addr, mtu int) {
	if mtu >= s.mtu {
		return
	}
	if s.pmtu == nil {
		s.pmtu = make(map[netip.Addr]pathMTU)
	}
	if _, ok := s.pmtu[dst]; !ok && len(s.pmtu) >= pmtuEntries {
		clear(s.pmtu) // start over: the entries are hints, each relearned at the next packet too big
	}
	s.pmtu[dst] = pathMTU{mtu: mtu, expires: s.clock.Now().Add(pmtuExpiry)}
}

// writeIPLocked hands a packet the control plane built (or a fragment of
// one: a header and its data) to OnPacket and the link, and counts it.
// Under ctl.
func (s *Host) writeIPLocked(hdr, data []byte) {
	st := &s.udp.stats
	pkt := hdr
	if len(data) > 0 {
		if s.gather != nil && s.onPacket == nil {
			if s.gather.WritePacketGather(hdr, data) != nil {
				st.ipOutDiscards.Add(1)
				return
			}
			st.ipOutRequests.Add(1)
			return
		}
		s.udpJoin = append(append(s.udpJoin[:0], hdr...), data...)
		pkt = s.udpJoin
	}
	s.packetHook("out", pkt)
	if s.link.WritePacket(pkt) != nil {
		st.ipOutDiscards.Add(1)
		return
	}
	st.ipOutRequests.Add(1)
}

// udpUnreachable answers a datagram for no socket with an ICMP port
// unreachable quoting it, if the rate limits allow (Linux's icmp_ratelimit
// per destination, icmp_msgs_per_sec for the host).
func (s *Host) udpUnreachable(p *rxPacket) {
	if !s.udp.icmp.allow(p.src, s.clock.Now()) {
		return
	}
	s.ctl.Lock()
	defer s.ctl.Unlock()
	if s.closed {
		return
	}
	s.sendPortUnreachableLocked(p.dst, p.src, p.pkt)
}

// sendPortUnreachableLocked sends an ICMP (v6) port unreachable from local
// to remote quoting as much of the offending packet as the minimum MTU
// allows (RFC 1812 4.3.2.3: 576 bytes in all; RFC 4443: 1280). Under ctl.
//
// +checklocks:s.ctl
func (s *Host) sendPortUnreachableLocked(local, remote netip.Addr, pkt []byte) {
	v6 := local.Is6()
	h := wire.ICMP{Type: wire.ICMPv4DestUnreachable, Code: wire.ICMPv4PortUnreachable}
	if v6 {
		h = wire.ICMP{Type: wire.ICMPv6DestUnreachable, Code: wire.ICMPv6PortUnreachable}
	}
	if !s.sendICMPErrorLocked(local, remote, h, pkt) {
		return
	}
	if v6 {
		s.g().stats.Icmp6OutDestUnreachs++
	} else {
		s.g().stats.IcmpOutDestUnreachs++
	}
}

// sendICMPErrorLocked sends the ICMP (v6) error h from local to remote
// quoting as much of the offending packet pkt as the minimum MTU allows
// (RFC 1812 4.3.2.3: 576 bytes in all; RFC 4443: 1280), and reports
// whether it went out. Under ctl.
//
// +checklocks:s.ctl
func (s *Host) sendICMPErrorLocked(local, remote netip.Addr, h wire.ICMP, pkt []byte) bool {
	v6 := local.Is6()
	limit := 576 - wire.IPv4HeaderLen - wire.ICMPHeaderLen
	if v6 {
		limit = 1280 - wire.IPv6HeaderLen - wire.ICMPHeaderLen
	}
	quote := pkt[:min(len(pkt), limit)]
	buf, ipLen, ok := s.icmpBufLocked(v6, len(quote))
	if !ok {
		return false
	}
	copy(buf[ipLen+wire.ICMPHeaderLen:], quote)
	return s.sendICMPLocked(buf, ipLen, h, local, remote)
}

// udpICMPError applies an ICMP error quoting a datagram we sent from local
// to remote: the pending error of the socket connected to remote, or of
// an unconnected one bound to local with IP_RECVERR. With IP_RECVERR the
// error also goes on the socket's error queue, with its sender, type and
// code and the quoted datagram's payload, as Linux's ip_icmp_error; the
// pending error stays too, as Linux sets sk_err either way. Under
// Host.lock (the ICMP path).
func (s *Host) udpICMPError(local, remote netip.AddrPort, errno syscall.Errno, from icmpFrom, quote []byte) bool {
	s.udp.mu.RLock()
	var u *udpSock
	for _, v := range s.udp.ports[local.Port()] {
		vb := v.binding()
		if vb.covers(local.Addr()) && (v.remote == remote || !v.remote.IsValid() && v.recvErr.Load()) {
			u = v
			break
		}
	}
	s.udp.mu.RUnlock()
	if u == nil {
		return false
	}
	if u.recvErr.Load() {
		origin := uint8(SO_EE_ORIGIN_ICMP)
		if from.src.Is6() {
			origin = SO_EE_ORIGIN_ICMP6
		}
		u.sk.queueICMPError(ErrMsg{
			Err: SockExtendedErr{Errno: uint32(errno), Origin: origin, Type: from.h.Type,
				Code: from.h.Code, Info: from.info},
			Offender: from.src,
			Name:     u.sk.sockAddr(remote),
			Data:     quotedPayload(local.Addr().Is6(), quote),
		})
	}
	u.mu.Lock()
	u.err = errno
	u.sk.wake()
	u.mu.Unlock()
	return true
}

// quotedPayload is the payload of the UDP datagram an ICMP error quotes
// (what of it the quote holds), copied.
func quotedPayload(v6 bool, quote []byte) []byte {
	hl := wire.IPv6HeaderLen
	if !v6 {
		if len(quote) < 1 {
			return nil
		}
		hl = int(quote[0]&0x0f) * 4
	}
	hl += wire.UDPHeaderLen
	if len(quote) <= hl {
		return nil
	}
	return append([]byte(nil), quote[hl:]...)
}

// icmpLimiter is Linux's pair of ICMP rate limits for the errors it
// sends: a token bucket for the host (icmp_msgs_per_sec 1000, burst 50)
// and one per destination (icmp_ratelimit 1 s, burst 6, inet_peer's
// XRLIM_BURST_FACTOR), the latter in a table of at most icmpPeers entries.
type icmpLimiter struct {
	mu     sync.Mutex
	global bucket
	peers  map[netip.Addr]*bucket
}

// bucket is a token bucket: tokens, as of last.
type bucket struct {
	tokens float64
	last   time.Time
}

// ICMP rate limits, Linux's defaults.
const (
	icmpMsgsPerSec = 1000
	icmpMsgsBurst  = 50
	icmpPeerPeriod = time.Second
	icmpPeerBurst  = 6
	icmpPeers      = 4096
)

// take refills b at rate tokens per second up to burst and takes one, if
// there is one.
func (b *bucket) take(now time.Time, rate, burst float64) bool {
	if b.last.IsZero() {
		b.tokens = burst
	} else if d := now.Sub(b.last).Seconds(); d > 0 {
		b.tokens = min(burst, b.tokens+d*rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// allow reports whether an ICMP error to dst may be sent now, and takes
// its tokens.
func (l *icmpLimiter) allow(dst netip.Addr, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.peers[dst]
	if p == nil {
		if len(l.peers) >= icmpPeers {
			// A full table is emptied: the peers' limits start over,
			// the host's still holds (Linux's inet_peer pool evicts
			// its oldest entries).
			clear(l.peers)
		}
		if l.peers == nil {
			l.peers = make(map[netip.Addr]*bucket)
		}
		p = &bucket{}
		l.peers[dst] = p
	}
	probe := *p
	if !probe.take(now, 1/icmpPeerPeriod.Seconds(), icmpPeerBurst) {
		*p = probe
		return false
	}
	if !l.global.take(now, icmpMsgsPerSec, icmpMsgsBurst) {
		return false
	}
	*p = probe
	return true
}

// ReadFromConn is a net.PacketConn's ReadFrom: RecvFrom, blocking, cut off
// by the deadline rd (ErrCanceled). A UDP socket's deadlines are guarded
// by its mutex.
func (sk *Socket) ReadFromConn(p []byte, rd *Deadline) (int, netip.AddrPort, int, error) {
	u := sk.udp
	u.mu.Lock()
	cancel := rd.waitLocked()
	u.mu.Unlock()
	return sk.RecvFrom(p, false, false, cancel)
}

// WriteToConn is a net.PacketConn's WriteTo: SendTo, unless the deadline
// wd has passed (ErrCanceled). A datagram never waits for room.
func (sk *Socket) WriteToConn(p []byte, to netip.AddrPort, wd *Deadline) (int, error) {
	u := sk.udp
	u.mu.Lock()
	passed := wd.passedLocked()
	u.mu.Unlock()
	if passed {
		return 0, ErrCanceled
	}
	return sk.SendTo(p, to)
}

// SetUDPDeadline sets the deadlines ds of a UDP socket's net.PacketConn to
// t on the host's clock: the zero time means none.
func (sk *Socket) SetUDPDeadline(t time.Time, ds ...*Deadline) {
	u := sk.udp
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, d := range ds {
		d.setLocked(sk.h.clock, t)
	}
}

// CloseUDPDeadline cuts off, for good, the calls the deadlines ds cut
// off: the net.PacketConn's Close.
func (sk *Socket) CloseUDPDeadline(ds ...*Deadline) {
	u := sk.udp
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, d := range ds {
		d.closeLocked()
	}
}
