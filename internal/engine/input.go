package engine

import (
	"net/netip"
	"time"

	"github.com/synstack/synstack/link"
	"github.com/synstack/synstack/tcp"
	"github.com/synstack/synstack/tcp/seq"
	"github.com/synstack/synstack/wire"
)

// DeliverPacket processes one received IP packet (the stack is the link's
// Dispatcher): TCP segments, and ICMP (see icmp.go). Malformed packets,
// packets for other addresses (unless forwarding takes them, see
// SetForwarder) and segments with a bad checksum are dropped and counted.
// pkt is not kept.
//
// What needs no state of the stack (parsing the IP and TCP headers,
// verifying the TCP checksum) is done before any lock is taken; a segment
// for a connection is then processed under its shard's lock alone, and
// anything else under Host.lock (see locks.go).
func (s *Host) DeliverPacket(pkt []byte) { s.deliverOne(pkt, false) }

// deliverOne processes one packet; verified says its link vouched for its
// TCP or UDP checksum.
func (s *Host) deliverOne(pkt []byte, verified bool) {
	defer s.offer() // after the unlock: new forwarding requests, if any
	var batch [1]rxPacket
	s.prepare(&batch[0], pkt, verified)
	s.inputBatch(batch[:])
}

var (
	_ link.BatchDispatcher    = (*Host)(nil)
	_ link.VerifiedDispatcher = (*Host)(nil)
)

// DeliverVerified implements link.VerifiedDispatcher: DeliverPacket for a
// packet whose TCP or UDP checksum the link vouches for, so it is not
// checked again (the kernel verified it, or made the packet on this host
// and left its checksum partial).
func (s *Host) DeliverVerified(pkt []byte) { s.deliverOne(pkt, true) }

// offer hands the forwarders what the packets just processed brought:
// connection requests, UDP flows, pings. It runs after every lock of the
// delivery is released, on the link's goroutine.
func (s *Host) offer() {
	s.offerForwards()
	s.offerUDPForwards()
	s.offerPingForwards()
}

// rxBatch is how many packets DeliverPackets prepares before it takes a
// lock (link/pipe hands over at most 32 at a time).
const rxBatch = 32

// DeliverPackets implements link.BatchDispatcher: the packets a link found
// waiting, processed in order. Each run of up to rxBatch packets is
// prepared (headers parsed, checksums verified) without a lock, then
// processed with one reading of the clock (they had all arrived when the
// batch began), consecutive segments for one shard under one taking of
// its lock. It may be called from several goroutines at once (a link
// with several receive queues): segments of connections in different
// shards are then processed in parallel.
func (s *Host) DeliverPackets(pkts [][]byte) { s.deliverBatch(pkts, false) }

// DeliverVerifiedPackets implements link.VerifiedBatchDispatcher:
// DeliverPackets for packets whose TCP or UDP checksums the link vouches
// for (DeliverVerified's, several at once).
func (s *Host) DeliverVerifiedPackets(pkts [][]byte) { s.deliverBatch(pkts, true) }

var _ link.VerifiedBatchDispatcher = (*Host)(nil)

// deliverBatch is DeliverPackets; verified says the link vouched for
// every packet's checksum.
func (s *Host) deliverBatch(pkts [][]byte, verified bool) {
	defer s.offer()
	var batch [rxBatch]rxPacket
	for len(pkts) > 0 {
		n := min(len(pkts), rxBatch)
		for i, pkt := range pkts[:n] {
			s.prepare(&batch[i], pkt, verified)
		}
		if !s.inputBatch(batch[:n]) {
			return
		}
		pkts = pkts[n:]
	}
}

// inputBatch processes prepared packets in order. It reports false if
// the stack is closed. A TCP segment for a connection is processed under
// its shard's lock alone (taken once for a run of packets for one shard:
// inputRun); a segment for a listener or a child in its SYN queue under
// ctl and the shard; anything else (ICMP, a malformed packet...) under
// Host.lock.
func (s *Host) inputBatch(batch []rxPacket) bool {
	// now is when the batch began, for reassembly and UDP. TCP reads
	// the clock again once it holds the lock it sends under: a timer or
	// a writer may have sent on the connection meanwhile, and a segment
	// stamped before theirs would carry an older TSval, which the peer's
	// PAWS drops (RFC 7323 5.3; Linux refreshes tcp_mstamp likewise).
	now := s.clock.Now()
	sh := s.headShard(batch) // batch[0]'s shard, nil if it has none
	for len(batch) > 0 {
		var (
			local, remote netip.AddrPort
			seg           tcp.Segment
			stop          = runIP
		)
		p := &batch[0]
		frag := sh == nil && p.ip == rxFragment && p.local
		if frag || sh == nil && p.ip == rxOK && p.proto == wire.ProtoUDP && (p.local || s.udpFwd.on.Load()) {
			// Reassembly and UDP take locks of their own and no
			// shard's (UDP may take ctl, for an ICMP answer); a
			// datagram reassembly completes goes through the path
			// from the top.
			if frag {
				if whole := s.reassemble(p, now); whole != nil {
					var q [1]rxPacket
					s.prepare(&q[0], whole, false)
					q[0].reassembled = true
					if !s.inputBatch(q[:]) {
						return false
					}
				}
			} else {
				s.udpInput(p)
			}
			batch = batch[1:]
			sh = s.headShard(batch)
			continue
		}
		if sh != nil {
			held, n := sh, 0
			held.mu.Lock()
			now = s.clock.Now()
			n, sh, stop = s.inputRun(held, batch, now, &local, &remote, &seg)
			held.mu.Unlock()
			batch = batch[n:]
			switch stop {
			case runClosed:
				return false
			case runNext:
				continue
			}
		}
		// Escalate: a segment the connection's shard cannot take
		// alone goes on under ctl and that shard, anything else under
		// the whole stack's lock.
		if stop == runDemux {
			s.ctl.Lock()
			sh.mu.Lock()
			now = s.clock.Now()
			closed := s.closed
			if !closed && s.md5DemuxLocked(sh, &batch[0], local, remote) {
				s.demuxLocked(local, remote, &seg, now)
			}
			sh.mu.Unlock()
			s.ctl.Unlock()
			if closed {
				return false
			}
		} else {
			s.lock()
			now = s.clock.Now()
			closed := s.closed
			if !closed {
				s.ipInputLocked(&batch[0], now)
			}
			s.unlock()
			if closed {
				return false
			}
		}
		batch = batch[1:]
		sh = s.headShard(batch)
	}
	return true
}

// headShard is the shard of batch's first packet (shardForPacket), nil if
// it has none or batch is empty.
func (s *Host) headShard(batch []rxPacket) *shard {
	if len(batch) == 0 {
		return nil
	}
	return s.shardForPacket(&batch[0])
}

// runStop is why inputRun stopped.
type runStop uint8

const (
	// runNext: the packets it did not take are for another shard, or
	// for none.
	runNext runStop = iota
	// runDemux: the first it did not take is a segment for sh but for no
	// connection in its table: demuxLocked's, under ctl and sh.
	runDemux
	// runIP: the first it did not take goes to ipInputLocked (a packet
	// for another address that the forwarder does not take).
	runIP
	// runClosed: the host is closed.
	runClosed
)

// inputRun processes, under sh's lock, the packets at the head of batch
// for as long as they are segments for connections of sh, and returns
// how many it took, why it stopped and, for runNext, the shard of the
// next packet (nil if it has none) and for runDemux the segment
// (local, remote, seg) and that shard (sh). batch[0] is for sh.
//
// Consecutive in-order segments of one connection in a batch get one ACK
// for the run (tcp.Conn.HoldACK), as Linux acknowledges a GRO aggregate
// once.
//
// +checklocks:sh.mu
func (s *Host) inputRun(sh *shard, batch []rxPacket, now time.Time, local, remote *netip.AddrPort, seg *tcp.Segment) (int, *shard, runStop) {
	// run is the connection whose ACK waits for the rest of its run of
	// segments (the next packet is one of them); it is flushed before
	// another connection's segment, and before the lock is released.
	var run *endpoint
	n, next, stop := len(batch), (*shard)(nil), runNext
loop:
	for i := range batch {
		p := &batch[i]
		if i > 0 {
			if next = s.shardForPacket(p); next != sh {
				n = i
				break
			}
		}
		switch {
		case s.closed:
			n, next, stop = i, nil, runClosed
			break loop
		case !p.local && !s.forwardsToLocked(p.dst, p.proto, p.payload):
			// To another address than the stack's, only if the
			// forwarder takes it: else it is dropped, and counted, by
			// ipInputLocked.
			n, next, stop = i, sh, runIP
			break loop
		}
		st := &sh.stats
		if !p.reassembled { // its fragments were counted, and seen
			st.IpInReceives++
			s.packetHook("in", p.pkt)
		}
		st.IpInDelivers++
		st.TcpInSegs++
		*local, *remote, *seg = p.segment()
		ep := s.shardConn(sh, *local, *remote, seg)
		if ep == nil {
			n, next, stop = i, sh, runDemux
			break
		}
		if (p.th.Options.HasMD5 || ep.conn.MD5Key() != nil) && !sh.md5ConnInbound(p, ep) {
			continue
		}
		if run != ep && run != nil {
			run.conn.FlushACK(now)
			s.afterLocked(run)
		}
		hold := i+1 < len(batch) && sameFlow(p, &batch[i+1])
		ep.conn.HoldACK(hold)
		ep.conn.Input(now, seg)
		if hold {
			run = ep
		} else {
			ep.conn.FlushACK(now)
			run = nil
		}
		s.afterLocked(ep)
	}
	if run != nil {
		run.conn.FlushACK(now)
		s.afterLocked(run)
	}
	return n, next, stop
}

// sameFlow reports whether b is a well-formed TCP segment of the same
// connection as a.
func sameFlow(a, b *rxPacket) bool {
	return b.ip == rxOK && b.proto == wire.ProtoTCP && b.tcp == rxOK &&
		a.th.SrcPort == b.th.SrcPort && a.th.DstPort == b.th.DstPort && a.src == b.src && a.dst == b.dst
}

// shardForPacket returns the shard of a well-formed TCP segment, one that
// ipInputLocked would hand to the demultiplexer if it is to one of the
// stack's addresses or the forwarder takes it (forwardsToLocked, which
// the caller asks under the shard's lock); nil for any other packet.
func (s *Host) shardForPacket(p *rxPacket) *shard {
	if p.ip != rxOK || p.proto != wire.ProtoTCP || p.tcp != rxOK || !p.tcpAcceptable() {
		return nil
	}
	return s.shardOf(netip.AddrPortFrom(p.dst, p.th.DstPort), netip.AddrPortFrom(p.src, p.th.SrcPort))
}

// tcpAcceptable reports whether a parsed segment may be processed: no
// connection has port 0, and nothing may answer a multicast, broadcast or
// unspecified source.
func (p *rxPacket) tcpAcceptable() bool {
	src := p.src
	return p.th.SrcPort != 0 && p.th.DstPort != 0 && !src.IsMulticast() && !src.IsUnspecified() &&
		src != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// segment returns the parsed segment of p and its local and remote ends.
func (p *rxPacket) segment() (local, remote netip.AddrPort, seg tcp.Segment) {
	h := &p.th
	seg = tcp.Segment{
		SEQ:     seq.Value(h.Seq),
		ACK:     seq.Value(h.Ack),
		Flags:   h.Flags,
		WND:     h.Window,
		Options: h.Options,
		Payload: p.data,
		ECN:     p.ecn,
		UP:      h.Urgent,
	}
	return netip.AddrPortFrom(p.dst, h.DstPort), netip.AddrPortFrom(p.src, h.SrcPort), seg
}

// packetHook calls OnPacket, if set, under hookMu.
func (s *Host) packetHook(dir string, pkt []byte) {
	if s.onPacket != nil {
		s.hookMu.Lock()
		s.onPacket(dir, pkt)
		s.hookMu.Unlock()
	}
}

// rxPacket is a received packet as far as it can be read without the
// stack's lock: prepare fills it from the bytes and the stack's read-only
// configuration (its addresses, checksum offload); ipInputLocked then
// counts and acts on it, in the same order of checks as if it had all
// been done under the lock.
type rxPacket struct {
	pkt      []byte
	ip       rxVerdict
	src, dst netip.Addr
	proto    uint8
	ecn      uint8 // the IP header's ECN field (RFC 3168)
	local    bool  // dst is one of the stack's addresses
	verified bool  // the link vouches for the transport checksum (DeliverVerified)
	// reassembled marks a datagram made of fragments: those were counted
	// in IpInReceives and seen by OnPacket, the datagram is not again.
	reassembled bool
	payload     []byte // the IP payload
	// For TCP (tcp != rxUnchecked): the parsed header and the segment's
	// data.
	tcp  rxVerdict
	th   wire.TCP
	data []byte
}

// rxVerdict is what preparing a packet found of one of its headers.
type rxVerdict uint8

const (
	rxUnchecked rxVerdict = iota // not looked at (yet)
	rxOK
	rxBadHeader   // malformed (IP: bad header checksum included)
	rxFragment    // an IP fragment (reassemble)
	rxBadChecksum // TCP checksum wrong
	rxMartianSrc  // from an address no packet on a link comes from (martian.go)
	rxMartianDst  // to an address no packet on a link goes to
)

// prepare reads pkt into p without a lock: the IP header, and for TCP the
// checksum and the TCP header. Whether a packet to another address than
// the stack's is taken (by the forwarder) is for later, under a lock.
func (s *Host) prepare(p *rxPacket, pkt []byte, verified bool) {
	*p = rxPacket{pkt: pkt, ip: rxBadHeader, verified: verified}
	if len(pkt) == 0 {
		return
	}
	var err error
	switch pkt[0] >> 4 {
	case 4:
		var h wire.IPv4
		h, p.payload, err = wire.ParseIPv4(pkt)
		p.src, p.dst, p.proto, p.ecn = h.Src, h.Dst, h.Protocol, h.TOS&3
	case 6:
		var h wire.IPv6
		h, p.payload, err = wire.ParseIPv6(pkt)
		p.src, p.dst, p.proto, p.ecn = h.Src, h.Dst, h.NextHeader, h.TrafficClass&3
	default:
		return
	}
	fragment := err == wire.ErrFragment
	if err != nil && !fragment {
		return
	}
	switch {
	case s.martianSource(p.src):
		p.ip = rxMartianSrc
		return
	case s.martianDestination(p.dst):
		p.ip = rxMartianDst
		return
	}
	p.ip = rxOK
	p.local = s.isLocalAddr(p.dst)
	if fragment {
		// Reassembled if it is for the stack (inputBatch), else
		// dropped: the stack reassembles only its own datagrams, as
		// Linux does when it routes.
		p.ip = rxFragment
		return
	}
	if p.proto == wire.ProtoTCP {
		// Also for another address: a forwarded connection's segment
		// (dropped later unless the forwarder takes the address).
		s.prepareTCP(p)
	}
}

// prepareTCP verifies the checksum of p's TCP segment (unless the link
// vouches for it) and parses its header. It uses nothing the lock guards.
func (s *Host) prepareTCP(p *rxPacket) {
	if !s.checksumOK(p, wire.TCPChecksumValid) {
		p.tcp = rxBadChecksum
		return
	}
	var err error
	p.th, p.data, err = wire.ParseTCP(p.payload)
	if err != nil {
		p.tcp = rxBadHeader
		return
	}
	p.tcp = rxOK
}

// ipInputLocked processes one received IP packet, prepared.
//
// +checklocks:s.ctl
func (s *Host) ipInputLocked(p *rxPacket, now time.Time) {
	st := &s.g().stats
	if !p.reassembled {
		st.IpInReceives++
		s.packetHook("in", p.pkt)
	}
	switch p.ip {
	case rxBadHeader:
		st.IpInHdrErrors++
		return
	case rxMartianSrc:
		st.SynstackInMartianSources++
		return
	case rxMartianDst:
		st.SynstackInMartianDestinations++
		return
	}
	src, dst, proto, payload := p.src, p.dst, p.proto, p.payload
	switch {
	case p.ip == rxFragment, !p.local && !s.forwardsToLocked(dst, proto, payload):
		// A fragment here is for another address (ours go to the
		// reassembler).
		st.IpInAddrErrors++
		return
	case proto == wire.ProtoICMP && dst.Is4(), proto == wire.ProtoICMPv6 && dst.Is6():
		st.IpInDelivers++
		s.icmpInputLocked(src, dst, payload)
		return
	case proto != wire.ProtoTCP:
		st.IpInUnknownProtos++
		return
	}
	st.IpInDelivers++
	if p.tcp == rxUnchecked {
		s.prepareTCP(p) // forwarded: not prepared without the lock
	}
	s.tcpInputLocked(p, now)
}

// tcpInputLocked counts one prepared TCP segment and hands it to the
// demultiplexer.
//
// +checklocks:s.ctl
func (s *Host) tcpInputLocked(p *rxPacket, now time.Time) {
	st := &s.g().stats
	switch p.tcp {
	case rxBadChecksum:
		st.TcpInErrs++
		st.TcpInCsumErrors++
		return
	case rxBadHeader:
		st.TcpInErrs++
		return
	}
	st.TcpInSegs++
	if !p.tcpAcceptable() {
		st.TcpInErrs++
		return
	}
	local, remote, seg := p.segment()
	if s.md5DemuxLocked(s.shardOf(local, remote), p, local, remote) {
		s.demuxLocked(local, remote, &seg, now)
	}
}

// checksumOK reports whether p's transport checksum is good: valid says,
// unless the link takes care of checksums (ChecksumOffloader) or vouches
// for this packet (DeliverVerified). Each path is counted.
func (s *Host) checksumOK(p *rxPacket, valid func(b []byte, src, dst netip.Addr) bool) bool {
	st := &s.udp.stats
	switch {
	case s.rxCsumOff:
		return true
	case p.verified:
		st.csumTrusted.Add(1)
		return true
	}
	st.csumVerified.Add(1)
	return valid(p.payload, p.src, p.dst)
}
