package engine

import (
	"encoding/binary"
	"net/netip"
	"syscall"

	"github.com/synstack/synstack/wire"
)

// Ping sockets, as Linux's unprivileged ICMP sockets (socket(AF_INET,
// SOCK_DGRAM, IPPROTO_ICMP), net.ipv4.ping_group_range): a datagram socket
// whose "port" is an echo identifier. The caller writes whole echo
// requests (ICMP header and data); the stack puts the socket's identifier
// and the checksum in, and sends them. Echo replies carrying the
// identifier come back to the socket whole, header included, from the
// address that answered. Everything else is UDP's (udp.go): binding,
// connecting, the receive queue, deadlines, poll; the table is the host's
// pings, by identifier.

// NewPingSocket returns an unbound ping socket of family (AF_INET: ICMP
// echo; AF_INET6: ICMPv6 echo); EBADF once the host is closed.
func (s *Host) NewPingSocket(family int) (*Socket, error) {
	sk, err := s.NewUDPSocket(family)
	if err != nil {
		return nil, err
	}
	sk.udp.ping = true
	return sk, nil
}

// Ping reports whether the socket is a ping socket.
func (sk *Socket) Ping() bool { return sk.udp != nil && sk.udp.ping }

// Offsets in an ICMP echo message (RFC 792, RFC 4443).
const (
	echoType     = 0
	echoCode     = 1
	echoChecksum = 2
	echoIdent    = 4
	echoHdrLen   = 8
)

// sendEchoLocked sends msg, an ICMP (v6) echo request, from src (its port
// the identifier) to dst: EINVAL unless it is one (type echo request,
// code 0, at least 8 bytes), as Linux's ping_common_sendmsg. Under ctl.
func (s *Host) sendEchoLocked(src, dst netip.AddrPort, msg []byte) error {
	v6 := dst.Addr().Is6()
	want := uint8(wire.ICMPv4EchoRequest)
	if v6 {
		want = wire.ICMPv6EchoRequest
	}
	if len(msg) < echoHdrLen || msg[echoType] != want || msg[echoCode] != 0 {
		return syscall.EINVAL
	}
	ipLen := wire.IPv4HeaderLen
	if v6 {
		ipLen = wire.IPv6HeaderLen
	}
	total := ipLen + len(msg)
	g := s.g()
	if cap(g.outBuf) < total {
		g.outBuf = make([]byte, max(total, s.mtu))
	}
	pkt := g.outBuf[:total]
	icmp := pkt[ipLen:]
	copy(icmp, msg)
	h := wire.ICMP{Type: msg[echoType], Rest: uint32(src.Port())<<16 | uint32(binary.BigEndian.Uint16(msg[echoIdent+2:]))}
	var err error
	if v6 {
		if _, err = h.EmitV6(icmp, icmp[echoHdrLen:], src.Addr(), dst.Addr()); err == nil {
			ih := wire.IPv6{NextHeader: wire.ProtoICMPv6, HopLimit: ipTTL, Src: src.Addr(), Dst: dst.Addr()}
			_, err = ih.Emit(pkt, len(icmp))
		}
	} else if _, err = h.EmitV4(icmp, icmp[echoHdrLen:]); err == nil {
		g.ipID++
		ih := wire.IPv4{ID: g.ipID, TTL: ipTTL, Protocol: wire.ProtoICMP, Src: src.Addr(), Dst: dst.Addr()}
		_, err = ih.Emit(pkt, len(icmp))
	}
	if err != nil {
		g.stats.IpOutDiscards++
		return syscall.EINVAL
	}
	if err := s.sendIPLocked(pkt, v6); err != nil {
		return err
	}
	if v6 {
		g.stats.Icmp6OutMsgs++
		g.stats.Icmp6OutEchos++
	} else {
		g.stats.IcmpOutMsgs++
		g.stats.IcmpOutEchos++
	}
	return nil
}

// pingInputLocked hands an echo reply from src to dst (msg: the ICMP
// message, verified) to the ping socket whose identifier it carries; it
// reports whether one took it. Under Host.lock (the ICMP path).
func (s *Host) pingInputLocked(src, dst netip.Addr, msg []byte) bool {
	if len(msg) < echoHdrLen {
		return false
	}
	ident := binary.BigEndian.Uint16(msg[echoIdent:])
	t := &s.pings
	from := netip.AddrPortFrom(src, 0)
	t.mu.RLock()
	var u *udpSock
	for _, v := range t.ports[ident] {
		if v.match(dst, from) > 0 {
			u = v
			break
		}
	}
	t.mu.RUnlock()
	if u == nil {
		return false
	}
	if !u.deliver(from, msg) {
		return true // taken, and dropped: its queue is full
	}
	if dst.Is6() {
		s.g().stats.Icmp6InEchoReplies++
	} else {
		s.g().stats.IcmpInEchoReps++
	}
	return true
}

// proto is the socket's protocol number (SO_PROTOCOL).
func (sk *Socket) proto() int {
	switch {
	case sk.udp == nil:
		return wire.ProtoTCP
	case !sk.udp.ping:
		return wire.ProtoUDP
	case sk.family == AF_INET6:
		return wire.ProtoICMPv6
	}
	return wire.ProtoICMP
}
