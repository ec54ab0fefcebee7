package engine

import (
	"net/netip"
	"time"

	"github.com/synstack/synstack/tcp"
	"github.com/synstack/synstack/wire"
)

// demuxLocked hands a segment to its connection (4-tuple table first), else
// to a listener, else answers with RST. It needs ctl and the tuple's
// shard's lock.
//
// +checklocks:s.ctl
func (s *Host) demuxLocked(local, remote netip.AddrPort, seg *tcp.Segment, now time.Time) {
	if ep := s.connGet(local, remote); ep != nil {
		if ep.conn.State() == tcp.TimeWait && isPlainSYN(seg) && ep.conn.TimeWaitAcceptsSYN(seg) {
			// A new incarnation (RFC 9293 section 3.10.7.4, RFC 6191):
			// the TIME_WAIT connection goes and a listener takes the SYN.
			// Without a listener the TIME_WAIT connection answers it.
			if l := s.lookupListenerLocked(local, remote); l != nil {
				s.unhashLocked(ep) // +checklocksignore: ep.sh is the shard whose lock the caller holds, under another name
				if ep.sock != nil {
					ep.sock.wake()
				}
				s.listenInputLocked(l, local, remote, seg, now)
				return
			}
			if s.forwardTimeWaitLocked(ep, local, remote, seg) {
				return
			}
		}
		s.connInputLocked(ep, seg, now)
		return
	}
	if l := s.lookupListenerLocked(local, remote); l != nil {
		s.listenInputLocked(l, local, remote, seg, now)
		return
	}
	if s.forwardInputLocked(local, remote, seg) {
		return
	}
	s.g().stats.SynstackNoSocket++
	s.sendResetLocked(local, remote, seg)
}

// isPlainSYN reports whether seg is a connection request: SYN without ACK or RST.
func isPlainSYN(seg *tcp.Segment) bool {
	return seg.Flags&(wire.FlagSYN|wire.FlagACK|wire.FlagRST) == wire.FlagSYN
}

// connInputLocked feeds a segment to its connection.
//
// +checklocks:s.ctl
func (s *Host) connInputLocked(ep *endpoint, seg *tcp.Segment, now time.Time) {
	if l := ep.parent; l != nil && !ep.inAccept && ep.conn.State() == tcp.SynRcvd &&
		seg.Flags&(wire.FlagSYN|wire.FlagRST|wire.FlagACK) == wire.FlagACK && l.acceptFull() {
		// The ACK would complete the handshake but the accept queue is
		// full. As Linux with tcp_abort_on_overflow=0, ignore it: the
		// child stays in SYN_RCVD, its SYN,ACK is retransmitted and the
		// peer ACKs again, perhaps when there is room.
		st := &s.g().stats
		st.TcpExtListenOverflows++
		st.TcpExtListenDrops++
		return
	}
	ep.conn.Input(now, seg)
	s.afterLocked(ep)
}

// shardConn returns the connection that can take a segment under its
// shard's lock alone: it exists, is not a child in its listener's SYN
// queue, and the segment is not a SYN that could replace a TIME_WAIT
// connection. It returns nil when the segment needs the control plane
// (demuxLocked, under ctl).
//
// +checklocks:sh.mu
func (s *Host) shardConn(sh *shard, local, remote netip.AddrPort, seg *tcp.Segment) *endpoint {
	ep := sh.conns.get(local, remote)
	if ep == nil || ep.embryonic() || ep.conn.State() == tcp.TimeWait && isPlainSYN(seg) {
		return nil
	}
	return ep
}

// lookupListenerLocked finds the listener for a segment to local from
// remote: one bound to local's address exactly before a wildcard one; among
// equals (a SO_REUSEPORT group) the keyed hash of the 4-tuple chooses.
//
// +checklocks:s.ctl
func (s *Host) lookupListenerLocked(local, remote netip.AddrPort) *listener {
	ls := s.listeners[local.Port()]
	if len(ls) == 0 || s.foreignLocked(local.Addr()) {
		return nil
	}
	best, n := 0, 0
	for _, l := range ls {
		switch sc := listenerScore(l, local); {
		case sc > best:
			best, n = sc, 1
		case sc == best:
			n++
		}
	}
	if best == 0 {
		return nil
	}
	pick := 0
	if n > 1 {
		pick = int(s.key.hashAddrs(domainReusePort, local, remote, 0) % uint64(n))
	}
	for _, l := range ls {
		if listenerScore(l, local) == best {
			if pick == 0 {
				return l
			}
			pick--
		}
	}
	return nil
}

// listenerScore is how well l matches local: 0 not at all, 3 its bound
// address, 2 a wildcard of its family, 1 an IPv6 wildcard taking IPv4.
func listenerScore(l *listener, local netip.AddrPort) int {
	switch {
	case !l.bind.covers(local.Addr()):
		return 0
	case !l.bind.addr.IsUnspecified():
		return 3
	case l.bind.addr.Is4() == local.Addr().Is4():
		return 2
	}
	return 1 // an IPv6 wildcard taking IPv4
}
