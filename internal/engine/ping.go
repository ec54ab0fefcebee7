package engine

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync/atomic"
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
	if !u.deliver(from, msg, nil) {
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

// Forwarding pings: with a ping forwarder set, an echo request for an
// address that is not the host's (one that forwarding brings here) is
// offered as a PingForwardRequest instead of being answered; the handler
// replies (having pinged the real destination, or not) or drops it.
// Requests waiting are bounded (max): beyond, echo requests are dropped.
type pingForward struct {
	f       func(*PingForwardRequest) // guarded by ctl
	max     int
	pending atomic.Int64
	offers  offerQueue[*PingForwardRequest] // guarded by ctl
}

// PingForwardRequest is an echo request for another address, offered to
// the ping forwarder.
type PingForwardRequest struct {
	// Src is the client; Dst the address it pings.
	Src, Dst netip.Addr
	// Ident and Seq are the echo's identifier and sequence number; Data
	// its data (copied).
	Ident, Seq uint16
	Data       []byte

	h       *Host
	decided atomic.Bool
}

// SetPingForwarder turns ping forwarding on with f as the handler, or off
// with a nil f; max (positive) bounds the requests waiting.
func (s *Host) SetPingForwarder(f func(*PingForwardRequest), max int) {
	s.ctl.Lock()
	defer s.ctl.Unlock()
	s.pingFwd.f, s.pingFwd.max = f, max
}

// pingForwardLocked offers an echo request from src to dst, another
// host's address, and reports whether forwarding took it. Under Host.lock.
func (s *Host) pingForwardLocked(src, dst netip.Addr, rest uint32, data []byte) bool {
	t := &s.pingFwd
	if t.f == nil || s.isLocalAddr(dst) || dst.IsMulticast() {
		return false
	}
	if int(t.pending.Load()) >= t.max {
		s.g().stats.SynstackForwardPingDrops++
		return true
	}
	t.pending.Add(1)
	t.offers.push(&PingForwardRequest{Src: src, Dst: dst, Ident: uint16(rest >> 16), Seq: uint16(rest),
		Data: append([]byte(nil), data...), h: s})
	s.g().stats.SynstackForwardPings++
	return true
}

// offerPingForwards hands the queued requests to the handler, with no
// lock held.
func (s *Host) offerPingForwards() {
	t := &s.pingFwd
	if !t.offers.queued.Load() {
		return
	}
	s.ctl.Lock()
	reqs, f := t.offers.take(), t.f
	s.ctl.Unlock()
	give(reqs, f)
}

// decide marks the request decided, once: false if it already was.
func (r *PingForwardRequest) decide() bool {
	if !r.decided.CompareAndSwap(false, true) {
		return false
	}
	r.h.pingFwd.pending.Add(-1)
	return true
}

// Reply answers the request with an echo reply from Dst, as if Dst had:
// the forwarder's destination answered its own ping.
func (r *PingForwardRequest) Reply() error {
	if !r.decide() {
		return ErrForwardDecided
	}
	s := r.h
	s.ctl.Lock()
	defer s.ctl.Unlock()
	if s.closed {
		return net.ErrClosed
	}
	s.sendEchoReplyLocked(r.Dst, r.Src, uint32(r.Ident)<<16|uint32(r.Seq), r.Data)
	return nil
}

// Drop decides the request without answering (the destination did not).
func (r *PingForwardRequest) Drop() error {
	if !r.decide() {
		return ErrForwardDecided
	}
	return nil
}
