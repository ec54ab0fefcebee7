package engine

import (
	"net/netip"

	"github.com/synstack/synstack/tcp"
	"github.com/synstack/synstack/wire"
)

// The send path: a connection's segment (tcp.Host.Send) or a reset is
// built into an IP packet in the shard's buffer and written to the link.

// maxTCPHeaderLen is the largest TCP header, options included.
const maxTCPHeaderLen = 60

// sendSegmentLocked builds the IP packet carrying seg from local to remote
// in sh's buffer and writes it to the link: IPv4 with DF and TTL 64, or
// IPv6 with hop limit 64, as Linux sends. A packet larger than the link
// MTU is not sent (IpOutDiscards), unless it is a segment for the link to
// cut (seg.GSOSize, link.SegmentOffloader) whose pieces fit the MTU. It
// needs sh's lock.
func (s *Host) sendSegmentLocked(sh *shard, local, remote netip.AddrPort, seg *tcp.Segment) {
	s.sendSegmentIPLocked(sh, local, remote, seg, 0, true, nil)
}

// sendSegmentIPLocked is sendSegmentLocked with the IPv4 header's TOS byte
// and DF flag as a connection's socket options ask (ipopts.go), and the
// connection's TCP MD5 key, if it has one, to sign with (md5.go).
func (s *Host) sendSegmentIPLocked(sh *shard, local, remote netip.AddrPort, seg *tcp.Segment, tos uint8, df bool, md5Key []byte) {
	th := wire.TCP{
		SrcPort: local.Port(),
		DstPort: remote.Port(),
		Seq:     uint32(seg.SEQ),
		Ack:     uint32(seg.ACK),
		Flags:   seg.Flags,
		Window:  seg.WND,
		Urgent:  seg.UP,
		Options: seg.Options,
	}
	src, dst := local.Addr(), remote.Addr()
	ipLen := wire.IPv4HeaderLen
	if !src.Is4() {
		ipLen = wire.IPv6HeaderLen
	}
	tcpLen := th.HeaderLen() + len(seg.Payload)
	total := ipLen + tcpLen
	// pieces: the segments the packet stands for on the wire; more than
	// one when the link is to cut it (TSO).
	gso, pieces := 0, 1
	if seg.GSOSize > 0 && len(seg.Payload) > int(seg.GSOSize) && s.segOff != nil {
		gso = int(seg.GSOSize)
		pieces = (len(seg.Payload) + gso - 1) / gso
	}
	if gso == 0 && total > s.mtu || gso > 0 && (total > s.segMax || ipLen+th.HeaderLen()+gso > s.mtu) {
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
	if md5Key != nil {
		sh.md5Sign(buf[ipLen:ipLen+n], seg.Payload, src, dst, md5Key)
	}
	// The link completes the checksums of the pieces it cuts.
	csumOff := s.txCsumOff || gso > 0
	if gather {
		buf = buf[:ipLen+n]
		if !csumOff {
			wire.SetTCPChecksumSplit(buf[ipLen:], seg.Payload, src, dst)
		}
	} else if csumOff {
		copy(buf[ipLen+n:], seg.Payload)
	} else {
		// The payload is copied and summed in one pass.
		wire.SetTCPChecksumCopy(buf[ipLen:ipLen+n], buf[ipLen+n:], seg.Payload, src, dst)
	}
	if src.Is4() {
		ih := wire.IPv4{TOS: tos&^3 | seg.ECN&3, ID: sh.ipID + 1, DontFragment: df, TTL: ipTTL, Protocol: wire.ProtoTCP, Src: src, Dst: dst}
		sh.ipID += uint16(pieces) // the link numbers the pieces on from ID
		_, err = ih.Emit(buf, tcpLen)
	} else {
		ih := wire.IPv6{TrafficClass: seg.ECN & 3, NextHeader: wire.ProtoTCP, HopLimit: ipTTL, Src: src, Dst: dst}
		_, err = ih.Emit(buf, tcpLen)
	}
	if err != nil {
		sh.stats.IpOutDiscards++
		return
	}
	sh.stats.TcpOutSegs += uint64(pieces) // as Linux adds tcp_skb_pcount
	if seg.Flags&wire.FlagRST != 0 {
		sh.stats.TcpOutRsts++
	}
	s.packetHook("out", buf)
	switch {
	case gso > 0 && gather:
		err = s.segOff.WritePacketSegments(buf, seg.Payload, gso)
	case gso > 0:
		err = s.segOff.WritePacketSegments(buf, nil, gso)
	case gather:
		err = s.gather.WritePacketGather(buf, seg.Payload)
	default:
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
	s.sendResetKeyLocked(local, remote, seg, nil)
}

// sendResetKeyLocked is sendResetLocked signed with md5Key, a listener's
// TCP MD5 key for the peer (nil: unsigned), as Linux's tcp_v4_send_reset
// signs with the key of the socket that answers.
func (s *Host) sendResetKeyLocked(local, remote netip.AddrPort, seg *tcp.Segment, md5Key []byte) {
	if seg.Flags&wire.FlagRST != 0 {
		return
	}
	var r tcp.Segment
	r.Options.HasMD5 = md5Key != nil
	if seg.Flags&wire.FlagACK != 0 {
		r.SEQ = seg.ACK
		r.Flags = wire.FlagRST
	} else {
		r.ACK = seg.SEQ.Add(seg.Len())
		r.Flags = wire.FlagRST | wire.FlagACK
	}
	s.sendSegmentIPLocked(s.g(), local, remote, &r, 0, true, md5Key)
}
