package engine

import (
	"net/netip"

	"github.com/synstack/synstack/tcp"
	"github.com/synstack/synstack/wire"
)

// The send path: a connection's segment (tcp.Host.Send) or a reset is
// built into an IP packet in the shard's buffer and written to the link.

// sendSegmentLocked builds the IP packet carrying seg from local to remote
// in sh's buffer and writes it to the link: IPv4 with DF and TTL 64, or
// IPv6 with hop limit 64, as Linux sends. A packet larger than the link
// MTU is not sent (IpOutDiscards). It needs sh's lock.
func (s *Host) sendSegmentLocked(sh *shard, local, remote netip.AddrPort, seg *tcp.Segment) {
	s.sendSegmentIPLocked(sh, local, remote, seg, 0, true)
}

// sendSegmentIPLocked is sendSegmentLocked with the IPv4 header's TOS byte
// and DF flag as a connection's socket options ask (ipopts.go).
func (s *Host) sendSegmentIPLocked(sh *shard, local, remote netip.AddrPort, seg *tcp.Segment, tos uint8, df bool) {
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
		sh.stats.IpOutDiscards++
		return
	}
	// A link that takes a packet in pieces gets the headers built here
	// and the payload where it lies, in the send queue: copied once, by
	// the link. Otherwise (or when OnPacket must see the whole packet)
	// the packet is built whole in outBuf.
	gather := s.gather != nil && s.onPacket == nil && len(seg.Payload) > 0
	if cap(sh.outBuf) < total {
		sh.outBuf = make([]byte, max(total, s.mtu))
	}
	buf := sh.outBuf[:total]
	n, err := th.Emit(buf[ipLen:])
	if err != nil {
		sh.stats.IpOutDiscards++
		return
	}
	if gather {
		buf = buf[:ipLen+n]
		if !s.txCsumOff {
			wire.SetTCPChecksumSplit(buf[ipLen:], seg.Payload, src, dst)
		}
	} else if s.txCsumOff {
		copy(buf[ipLen+n:], seg.Payload)
	} else {
		// The payload is copied and summed in one pass.
		wire.SetTCPChecksumCopy(buf[ipLen:ipLen+n], buf[ipLen+n:], seg.Payload, src, dst)
	}
	if src.Is4() {
		sh.ipID++
		ih := wire.IPv4{ID: sh.ipID, TOS: tos, DontFragment: df, TTL: ipTTL, Protocol: wire.ProtoTCP, Src: src, Dst: dst}
		_, err = ih.Emit(buf, tcpLen)
	} else {
		ih := wire.IPv6{NextHeader: wire.ProtoTCP, HopLimit: ipTTL, Src: src, Dst: dst}
		_, err = ih.Emit(buf, tcpLen)
	}
	if err != nil {
		sh.stats.IpOutDiscards++
		return
	}
	sh.stats.TcpOutSegs++
	if seg.Flags&wire.FlagRST != 0 {
		sh.stats.TcpOutRsts++
	}
	s.packetHook("out", buf)
	if gather {
		err = s.gather.WritePacketGather(buf, seg.Payload)
	} else {
		err = s.link.WritePacket(buf)
	}
	if err != nil {
		sh.stats.IpOutDiscards++
		return
	}
	sh.stats.IpOutRequests++
}

// sendResetLocked answers a segment that found no connection (RFC 9293
// section 3.10.7.1): never a RST to a RST; if the ACK bit is set
// <SEQ=SEG.ACK><CTL=RST>, otherwise <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
func (s *Host) sendResetLocked(local, remote netip.AddrPort, seg *tcp.Segment) {
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
	s.sendSegmentLocked(s.g(), local, remote, &r)
}
