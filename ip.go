package synstack

import (
	"net/netip"

	"github.com/synstack/synstack/tcp"
	"github.com/synstack/synstack/tcp/seq"
	"github.com/synstack/synstack/wire"
)

// DeliverPacket processes one received IP packet (the stack is the link's
// Dispatcher): TCP segments, and ICMP (see icmp.go). Malformed packets,
// packets for other addresses (unless forwarding takes them, see
// SetForwarder) and segments with a bad checksum are dropped and counted.
// pkt is not kept.
func (s *Stack) DeliverPacket(pkt []byte) {
	defer s.offerForwards() // after the unlock: new forwarding requests, if any
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.stats.IpInReceives++
	if s.onPacket != nil {
		s.onPacket("in", pkt)
	}
	if len(pkt) == 0 {
		s.stats.IpInHdrErrors++
		return
	}
	var (
		src, dst netip.Addr
		proto    uint8
		payload  []byte
		err      error
	)
	switch pkt[0] >> 4 {
	case 4:
		var h wire.IPv4
		h, payload, err = wire.ParseIPv4(pkt)
		src, dst, proto = h.Src, h.Dst, h.Protocol
	case 6:
		var h wire.IPv6
		h, payload, err = wire.ParseIPv6(pkt)
		src, dst, proto = h.Src, h.Dst, h.NextHeader
	default:
		s.stats.IpInHdrErrors++
		return
	}
	switch {
	case err == wire.ErrFragment:
		s.stats.IpReasmFails++
		return
	case err != nil:
		s.stats.IpInHdrErrors++
		return
	case !s.isLocalAddr(dst) && !s.forwardsToLocked(dst, proto, payload):
		s.stats.IpInAddrErrors++
		return
	case proto == wire.ProtoICMP && dst.Is4(), proto == wire.ProtoICMPv6 && dst.Is6():
		s.stats.IpInDelivers++
		s.icmpInputLocked(src, dst, payload)
		return
	case proto != wire.ProtoTCP:
		s.stats.IpInUnknownProtos++
		return
	}
	s.stats.IpInDelivers++
	s.tcpInputLocked(src, dst, payload)
}

// tcpInputLocked verifies and parses one TCP segment and hands it to the
// demultiplexer.
func (s *Stack) tcpInputLocked(src, dst netip.Addr, b []byte) {
	if !s.rxCsumOff && !wire.TCPChecksumValid(b, src, dst) {
		s.stats.TcpInErrs++
		s.stats.TcpInCsumErrors++
		return
	}
	h, payload, err := wire.ParseTCP(b)
	if err != nil {
		s.stats.TcpInErrs++
		return
	}
	s.stats.TcpInSegs++
	if h.SrcPort == 0 || h.DstPort == 0 || src.IsMulticast() || src.IsUnspecified() ||
		src == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		// No connection has port 0, and nothing may answer a
		// multicast, broadcast or unspecified source.
		s.stats.TcpInErrs++
		return
	}
	seg := tcp.Segment{
		SEQ:     seq.Value(h.Seq),
		ACK:     seq.Value(h.Ack),
		Flags:   h.Flags,
		WND:     h.Window,
		Options: h.Options,
		Payload: payload,
	}
	s.demuxLocked(netip.AddrPortFrom(dst, h.DstPort), netip.AddrPortFrom(src, h.SrcPort), &seg)
}

// sendSegmentLocked builds the IP packet carrying seg from local to remote
// and writes it to the link: IPv4 with DF and TTL 64, or IPv6 with hop limit
// 64, as Linux sends. A packet larger than the link MTU is not sent
// (IpOutDiscards).
func (s *Stack) sendSegmentLocked(local, remote netip.AddrPort, seg *tcp.Segment) {
	th := wire.TCP{
		SrcPort: local.Port(),
		DstPort: remote.Port(),
		Seq:     uint32(seg.SEQ),
		Ack:     uint32(seg.ACK),
		Flags:   seg.Flags,
		Window:  seg.WND,
		Options: seg.Options,
	}
	src, dst := local.Addr(), remote.Addr()
	ipLen := wire.IPv4HeaderLen
	if !src.Is4() {
		ipLen = wire.IPv6HeaderLen
	}
	tcpLen := th.HeaderLen() + len(seg.Payload)
	total := ipLen + tcpLen
	if total > s.mtu {
		// The link would drop it: count it here (tcp sizes segments by
		// the MSS, options included, so this means a bug above).
		s.stats.IpOutDiscards++
		return
	}
	if cap(s.outBuf) < total {
		s.outBuf = make([]byte, max(total, s.mtu))
	}
	buf := s.outBuf[:total]
	n, err := th.Emit(buf[ipLen:])
	if err != nil {
		s.stats.IpOutDiscards++
		return
	}
	copy(buf[ipLen+n:], seg.Payload)
	if !s.txCsumOff {
		wire.SetTCPChecksum(buf[ipLen:], src, dst)
	}
	if src.Is4() {
		s.ipID++
		ih := wire.IPv4{ID: s.ipID, DontFragment: true, TTL: ipTTL, Protocol: wire.ProtoTCP, Src: src, Dst: dst}
		_, err = ih.Emit(buf, tcpLen)
	} else {
		ih := wire.IPv6{NextHeader: wire.ProtoTCP, HopLimit: ipTTL, Src: src, Dst: dst}
		_, err = ih.Emit(buf, tcpLen)
	}
	if err != nil {
		s.stats.IpOutDiscards++
		return
	}
	s.stats.TcpOutSegs++
	if seg.Flags&wire.FlagRST != 0 {
		s.stats.TcpOutRsts++
	}
	if s.onPacket != nil {
		s.onPacket("out", buf)
	}
	if s.link.WritePacket(buf) != nil {
		s.stats.IpOutDiscards++
		return
	}
	s.stats.IpOutRequests++
}

// sendResetLocked answers a segment that found no connection (RFC 9293
// section 3.10.7.1): never a RST to a RST; if the ACK bit is set
// <SEQ=SEG.ACK><CTL=RST>, otherwise <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
func (s *Stack) sendResetLocked(local, remote netip.AddrPort, seg *tcp.Segment) {
	if seg.Flags&wire.FlagRST != 0 {
		return
	}
	var r tcp.Segment
	if seg.Flags&wire.FlagACK != 0 {
		r.SEQ = seg.ACK
		r.Flags = wire.FlagRST
	} else {
		r.ACK = seg.SEQ.Add(seg.Len())
		r.Flags = wire.FlagRST | wire.FlagACK
	}
	s.sendSegmentLocked(local, remote, &r)
}
