package engine

import (
	"encoding/binary"
	"net/netip"
	"syscall"

	"github.com/synstack/synstack/tcp"
	"github.com/synstack/synstack/tcp/seq"
	"github.com/synstack/synstack/wire"
)

// ICMP, as Linux answers and heeds it:
//   - an echo request (ping) draws an echo reply with the same identifier,
//     sequence number and data, for ICMPv4 and ICMPv6;
//   - a destination unreachable, time exceeded or parameter problem about
//     one of our segments is an error for its connection: during an active
//     open it fails the connect with the errno Linux's tables give
//     (ECONNREFUSED for port unreachable, EHOSTUNREACH for host
//     unreachable...), later it is a soft error and ignored (RFC 1122
//     section 4.2.3.9, RFC 5461);
//   - an ICMPv4 fragmentation needed or ICMPv6 packet too big lowers the
//     connection's MSS to the path MTU and resends what was lost (RFC 1191,
//     RFC 8201).
//
// Every error is checked against blind attacks first (RFC 5927 section
// 4.1): the segment it quotes must be one of ours, for a connection that
// exists, with a sequence number in SND.UNA..SND.NXT.

// Path MTU floors: Linux ignores anything below IPv4's min_pmtu (552,
// net.ipv4.route.min_pmtu), and IPv6 guarantees 1280 (RFC 8200), so an
// ICMPv6 packet too big below it is ignored, as Linux does.
const (
	minPathMTU4 = 552
	minPathMTU6 = 1280
)

// Byte offsets in the packet an ICMP error quotes: its IP header and at
// least the first 8 bytes of its TCP header (RFC 792, RFC 4443).
const (
	quoteV4VerIHL   = 0  // version and IHL
	quoteV4FragOff  = 6  // 2 bytes: flags and fragment offset
	quoteV4Proto    = 9  // protocol
	quoteV4Src      = 12 // 4 bytes
	quoteV4Dst      = 16 // 4 bytes
	quoteV6Next     = 6  // next header
	quoteV6Src      = 8  // 16 bytes
	quoteV6Dst      = 24 // 16 bytes
	quoteTCPSrcPort = 0  // 2 bytes
	quoteTCPDstPort = 2  // 2 bytes
	quoteTCPSeq     = 4  // 4 bytes
	quoteTCPLen     = 8  // what RFC 792 guarantees of the quoted payload
)

// ICMP errors as errnos: Linux's icmp_err_convert (ICMPv4 destination
// unreachable, by code) and icmpv6_err_convert (ICMPv6 destination
// unreachable, by code).
var (
	icmp4UnreachErrno = [...]syscall.Errno{
		syscall.ENETUNREACH,  // 0 net unreachable
		syscall.EHOSTUNREACH, // 1 host unreachable
		syscall.ENOPROTOOPT,  // 2 protocol unreachable
		syscall.ECONNREFUSED, // 3 port unreachable
		syscall.EMSGSIZE,     // 4 fragmentation needed (handled as PMTU)
		syscall.EOPNOTSUPP,   // 5 source route failed
		syscall.ENETUNREACH,  // 6 net unknown
		syscall.EHOSTDOWN,    // 7 host unknown
		errnoHostIsolated,    // 8 host isolated (ENONET on Linux: errno_linux.go)
		syscall.ENETUNREACH,  // 9 net administratively prohibited
		syscall.EHOSTUNREACH, // 10 host administratively prohibited
		syscall.ENETUNREACH,  // 11 net unreachable for TOS
		syscall.EHOSTUNREACH, // 12 host unreachable for TOS
		syscall.EHOSTUNREACH, // 13 communication administratively prohibited
		syscall.EHOSTUNREACH, // 14 host precedence violation
		syscall.EHOSTUNREACH, // 15 precedence cutoff
	}
	icmp6UnreachErrno = [...]syscall.Errno{
		syscall.ENETUNREACH,  // 0 no route
		syscall.EACCES,       // 1 administratively prohibited
		syscall.EHOSTUNREACH, // 2 beyond scope
		syscall.EHOSTUNREACH, // 3 address unreachable
		syscall.ECONNREFUSED, // 4 port unreachable
		syscall.EACCES,       // 5 source address failed policy
		syscall.EACCES,       // 6 reject route
	}
)

// icmpInputLocked handles an ICMP (v6: ICMPv6) message from src to dst,
// one of the stack's addresses.
//
// +checklocks:s.ctl
func (s *Host) icmpInputLocked(src, dst netip.Addr, b []byte) {
	v6 := dst.Is6()
	var (
		h    wire.ICMP
		body []byte
		err  error
	)
	if v6 {
		s.g().stats.Icmp6InMsgs++
		h, body, err = wire.ParseICMPv6(b, src, dst)
	} else {
		s.g().stats.IcmpInMsgs++
		h, body, err = wire.ParseICMPv4(b)
	}
	if err != nil {
		s.icmpInErrorLocked(v6)
		return
	}
	switch {
	case !v6 && h.Type == wire.ICMPv4EchoRequest:
		s.g().stats.IcmpInEchos++
		if !s.pingForwardLocked(src, dst, h.Rest, body) {
			s.sendEchoReplyLocked(dst, src, h.Rest, body)
		}
	case v6 && h.Type == wire.ICMPv6EchoRequest:
		s.g().stats.Icmp6InEchos++
		if !s.pingForwardLocked(src, dst, h.Rest, body) {
			s.sendEchoReplyLocked(dst, src, h.Rest, body)
		}
	case !v6 && h.Type == wire.ICMPv4EchoReply, v6 && h.Type == wire.ICMPv6EchoReply:
		s.pingInputLocked(src, dst, b)
	case !v6 && h.Type == wire.ICMPv4DestUnreachable:
		s.g().stats.IcmpInDestUnreachs++
		switch {
		case h.Code == wire.ICMPv4FragNeeded:
			mtu := max(int(uint16(h.Rest)), minPathMTU4)
			s.icmpErrorLocked(icmpFrom{src: src, h: h}, false, body, 0, mtu)
		case int(h.Code) < len(icmp4UnreachErrno):
			s.icmpErrorLocked(icmpFrom{src: src, h: h}, false, body, icmp4UnreachErrno[h.Code], 0)
		}
	case !v6 && h.Type == wire.ICMPv4TimeExceeded:
		s.g().stats.IcmpInTimeExcds++
		s.icmpErrorLocked(icmpFrom{src: src, h: h}, false, body, syscall.EHOSTUNREACH, 0)
	case !v6 && h.Type == icmpv4ParamProblem:
		s.g().stats.IcmpInParmProbs++
		s.icmpErrorLocked(icmpFrom{src: src, h: h}, false, body, syscall.EPROTO, 0)
	case v6 && h.Type == wire.ICMPv6DestUnreachable:
		s.g().stats.Icmp6InDestUnreachs++
		if int(h.Code) < len(icmp6UnreachErrno) {
			s.icmpErrorLocked(icmpFrom{src: src, h: h}, true, body, icmp6UnreachErrno[h.Code], 0)
		}
	case v6 && h.Type == wire.ICMPv6PacketTooBig:
		s.g().stats.Icmp6InPktTooBigs++
		if h.Rest >= minPathMTU6 {
			s.icmpErrorLocked(icmpFrom{src: src, h: h}, true, body, 0, int(min(h.Rest, 1<<16-1)))
		}
	case v6 && h.Type == wire.ICMPv6TimeExceeded:
		s.g().stats.Icmp6InTimeExcds++
		s.icmpErrorLocked(icmpFrom{src: src, h: h}, true, body, syscall.EHOSTUNREACH, 0)
	case v6 && h.Type == wire.ICMPv6ParamProblem:
		s.g().stats.Icmp6InParmProblems++
		s.icmpErrorLocked(icmpFrom{src: src, h: h}, true, body, syscall.EPROTO, 0)
	}
}

// icmpFrom is an ICMP error as the error queue reports it: who sent it,
// and its type and code.
type icmpFrom struct {
	src  netip.Addr
	h    wire.ICMP
	info uint32 // ee_info: the MTU of a "too big"
}

// icmpv4ParamProblem is ICMPv4's Parameter Problem type (RFC 792).
const icmpv4ParamProblem = 12

// icmpInErrorLocked counts a malformed ICMP (v6: ICMPv6) message
// received.
//
// +checklocks:s.ctl
func (s *Host) icmpInErrorLocked(v6 bool) {
	if v6 {
		s.g().stats.Icmp6InErrors++
	} else {
		s.g().stats.IcmpInErrors++
	}
}

// icmpErrorLocked applies an ICMP error whose body quotes one of our
// segments: errno for an unreachable-like error, or mtu (non-zero) for a
// smaller path MTU. The quote must name a connection of ours and a
// sequence number it has in flight; otherwise the message is counted and
// dropped.
//
// +checklocks:s.ctl
func (s *Host) icmpErrorLocked(from icmpFrom, v6 bool, quote []byte, errno syscall.Errno, mtu int) {
	local, remote, proto, sq, ok := parseQuote(v6, quote)
	if !ok {
		s.icmpInErrorLocked(v6)
		return
	}
	if proto == wire.ProtoUDP {
		// A datagram of ours: a smaller path MTU for the datagrams sent
		// there, or the error of the socket connected to its destination.
		switch {
		case mtu > 0:
			// As Linux (__udp4_lib_err, __udp6_lib_err, path MTU
			// discovery on by default): the path's MTU drops, and a
			// socket connected there, or one with IP_RECVERR, is told
			// EMSGSIZE with the MTU (ee_info).
			s.learnPathMTULocked(remote.Addr(), mtu)
			from.info = uint32(mtu)
			s.udpICMPError(local, remote, syscall.EMSGSIZE, from, quote)
		case !s.udpICMPError(local, remote, errno, from, quote):
			s.icmpInErrorLocked(v6)
		}
		return
	}
	ep := s.connGet(local, remote)
	if ep == nil {
		s.icmpInErrorLocked(v6)
		return
	}
	if !ep.conn.ICMPSeqOK(sq) {
		// RFC 5927 section 4.1: not a segment in flight; forged or stale.
		s.g().stats.TcpExtOutOfWindowIcmps++
		return
	}
	now := s.clock.Now()
	if mtu > 0 {
		if !v6 && !ep.ipOpts.acceptsPathMTU() {
			return // IP_PMTUDISC_DONT and the like: the segments may be cut on the way
		}
		hdr := wire.IPv4HeaderLen + wire.TCPHeaderLen
		if v6 {
			hdr = wire.IPv6HeaderLen + wire.TCPHeaderLen
		}
		ep.conn.ReduceMSS(now, mtu-hdr)
		s.afterLocked(ep)
		return
	}
	cause := tcp.Cause("rcv ICMP " + errno.Error())
	ended := false
	switch {
	case ep.conn.FastOpenPassive() && ep.conn.State() == tcp.SynRcvd:
		// Linux's tcp_v4_err: a Fast Open child fails with the error
		// while it waits to be accepted; accepted, it is a connected
		// socket, for which the error is soft.
		if ep.sock == nil {
			ended = ep.conn.FastOpenICMPError(errno, cause)
		}
	default:
		ended = ep.conn.ICMPError(errno, cause)
	}
	if ended {
		s.afterLocked(ep)
	}
}

// parseQuote reads the 4-tuple (as ours: the quoted source is local),
// protocol and (TCP) sequence number of the segment or datagram an ICMP
// error quotes. It fails when the quote is too short, is neither TCP nor
// UDP, or is not a first fragment.
func parseQuote(v6 bool, b []byte) (local, remote netip.AddrPort, proto uint8, sq seq.Value, ok bool) {
	var (
		src, dst netip.Addr
		tcpHdr   []byte
	)
	if !v6 {
		if len(b) < wire.IPv4HeaderLen || b[quoteV4VerIHL]>>4 != 4 {
			return
		}
		ihl := int(b[quoteV4VerIHL]&0x0f) * 4
		proto = b[quoteV4Proto]
		if ihl < wire.IPv4HeaderLen || len(b) < ihl+quoteTCPLen || proto != wire.ProtoTCP && proto != wire.ProtoUDP ||
			binary.BigEndian.Uint16(b[quoteV4FragOff:])&0x1fff != 0 {
			return
		}
		src = netip.AddrFrom4([4]byte(b[quoteV4Src : quoteV4Src+4]))
		dst = netip.AddrFrom4([4]byte(b[quoteV4Dst : quoteV4Dst+4]))
		tcpHdr = b[ihl:]
	} else {
		// We send no extension header but the Fragment header of a
		// datagram's first fragment: the transport header follows.
		if len(b) < wire.IPv6HeaderLen || b[0]>>4 != 6 {
			return
		}
		hdrLen := wire.IPv6HeaderLen
		proto = b[quoteV6Next]
		if proto == wire.ProtoFragment {
			if len(b) < hdrLen+wire.IPv6FragmentLen ||
				binary.BigEndian.Uint16(b[hdrLen+2:])&^7 != 0 { // not the first fragment
				return
			}
			proto = b[hdrLen]
			hdrLen += wire.IPv6FragmentLen
		}
		if len(b) < hdrLen+quoteTCPLen || proto != wire.ProtoTCP && proto != wire.ProtoUDP {
			return
		}
		src = netip.AddrFrom16([16]byte(b[quoteV6Src : quoteV6Src+16]))
		dst = netip.AddrFrom16([16]byte(b[quoteV6Dst : quoteV6Dst+16]))
		tcpHdr = b[hdrLen:]
	}
	local = netip.AddrPortFrom(src, binary.BigEndian.Uint16(tcpHdr[quoteTCPSrcPort:]))
	remote = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(tcpHdr[quoteTCPDstPort:]))
	if proto == wire.ProtoTCP {
		sq = seq.Value(binary.BigEndian.Uint32(tcpHdr[quoteTCPSeq:]))
	}
	return local, remote, proto, sq, true
}

// sendEchoReplyLocked answers an echo request from remote to local with
// the same identifier and sequence number (rest) and data.
//
// +checklocks:s.ctl
func (s *Host) sendEchoReplyLocked(local, remote netip.Addr, rest uint32, data []byte) {
	if remote.IsMulticast() || remote.IsUnspecified() {
		return
	}
	buf, ipLen, ok := s.icmpBufLocked(local.Is6(), len(data))
	if !ok {
		return
	}
	copy(buf[ipLen+wire.ICMPHeaderLen:], data)
	h := wire.ICMP{Type: wire.ICMPv4EchoReply, Rest: rest}
	if local.Is6() {
		h.Type = wire.ICMPv6EchoReply
	}
	if !s.sendICMPLocked(buf, ipLen, h, local, remote) {
		return
	}
	if local.Is6() {
		s.g().stats.Icmp6OutEchoReplies++
	} else {
		s.g().stats.IcmpOutEchoReps++
	}
}

// icmpBufLocked returns s.g().outBuf sized for an ICMP message with a body of
// bodyLen bytes (IP header, ICMP header, body) and the IP header's length;
// false, counted as a discard, when it would exceed an IP datagram (one
// larger than the MTU goes in fragments).
//
// +checklocks:s.ctl
func (s *Host) icmpBufLocked(v6 bool, bodyLen int) ([]byte, int, bool) {
	ipLen := wire.IPv4HeaderLen
	if v6 {
		ipLen = wire.IPv6HeaderLen
	}
	total := ipLen + wire.ICMPHeaderLen + bodyLen
	if total > 0xffff {
		s.g().stats.IpOutDiscards++
		return nil, 0, false
	}
	if cap(s.g().outBuf) < total {
		s.g().outBuf = make([]byte, max(total, s.mtu))
	}
	return s.g().outBuf[:total], ipLen, true
}

// sendICMPLocked finishes an ICMP or ICMPv6 message from src to dst whose
// body is already in buf after the IP and ICMP headers: the ICMP header h
// with its checksum, then the IP header. It sends the packet, counts it,
// and reports whether it went out (an emit error counts as a discard).
//
// +checklocks:s.ctl
func (s *Host) sendICMPLocked(buf []byte, ipLen int, h wire.ICMP, src, dst netip.Addr) bool {
	body := buf[ipLen+wire.ICMPHeaderLen:]
	icmpLen := len(buf) - ipLen
	var err error
	if src.Is6() {
		if _, err = h.EmitV6(buf[ipLen:], body, src, dst); err == nil {
			ih := wire.IPv6{NextHeader: wire.ProtoICMPv6, HopLimit: ipTTL, Src: src, Dst: dst}
			_, err = ih.Emit(buf, icmpLen)
		}
	} else if _, err = h.EmitV4(buf[ipLen:], body); err == nil {
		s.g().ipID++
		ih := wire.IPv4{ID: s.g().ipID, TTL: ipTTL, Protocol: wire.ProtoICMP, Src: src, Dst: dst}
		_, err = ih.Emit(buf, icmpLen)
	}
	if err != nil {
		s.g().stats.IpOutDiscards++
		return false
	}
	if s.sendIPLocked(buf, src.Is6()) != nil {
		return false
	}
	if src.Is6() {
		s.g().stats.Icmp6OutMsgs++
	} else {
		s.g().stats.IcmpOutMsgs++
	}
	return true
}
