package engine

import (
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/synstack/synstack/tcp"
	"github.com/synstack/synstack/tcp/seq"
	"github.com/synstack/synstack/wire"
)

// listener is the listening side of a socket: its SYN queue (children in
// SYN_RCVD) and its accept queue (children whose handshake completed, not
// yet accepted). Guarded by Host.lock.
type listener struct {
	sock    *Socket
	bind    *binding
	backlog int // listen's backlog, capped by SomaxConn
	synQ    []*endpoint
	acceptQ []*endpoint
	// lastCookie is when the listener last answered with a SYN cookie.
	lastCookie time.Time
	// maxConns bounds its children alive, from SYN_RCVD to the end,
	// accepted or not (0: no bound but the stack's); live counts them
	// (atomic: a child leaves the table under its shard's lock alone).
	maxConns int
	live     atomic.Int32
	// tfoPending counts its Fast Open children still in SYN_RCVD
	// (Linux's fastopenq.qlen), bounded by its Fast Open queue length
	// (fastopen.go); atomic, as live.
	tfoPending atomic.Int32
}

// full reports whether the listener has MaxConns children alive.
func (l *listener) full() bool { return l.maxConns > 0 && int(l.live.Load()) >= l.maxConns }

// acceptFull reports whether the accept queue is full. As Linux's
// sk_acceptq_is_full, it admits backlog+1 connections.
func (l *listener) acceptFull() bool { return len(l.acceptQ) > l.backlog }

// removeSynLocked takes ep out of the SYN queue.
func (l *listener) removeSynLocked(ep *endpoint) {
	i := int(ep.qIndex)
	if i < 0 || i >= len(l.synQ) || l.synQ[i] != ep {
		return
	}
	last := len(l.synQ) - 1
	l.synQ[i] = l.synQ[last]
	l.synQ[i].qIndex = int32(i)
	l.synQ[last] = nil
	l.synQ = l.synQ[:last]
	ep.qIndex = -1
	ep.parent = nil
}

// listenInputLocked processes a segment for a listening socket (RFC 9293
// section 3.10.7.2): a RST is ignored, an ACK is answered by
// <SEQ=SEG.ACK><CTL=RST> unless it returns a SYN cookie, a SYN creates a
// child connection (LISTEN -> SYN_RCVD), anything else is dropped.
//
// The queues are Linux's: a full accept queue drops the SYN; a full SYN
// queue (more half-open children than the listen backlog, as Linux's
// inet_csk_reqsk_queue_is_full, or MaxSynBacklog) answers with a SYN cookie, or drops the SYN when cookies
// are off. A SYN flood therefore fills nothing: half-connections beyond the
// queue live only in the cookies the attacker never returns.
//
// +checklocks:s.ctl
func (s *Host) listenInputLocked(l *listener, local, remote netip.AddrPort, seg *tcp.Segment, now time.Time) {
	switch {
	case seg.Flags&wire.FlagRST != 0:
		return
	case seg.Flags&wire.FlagACK != 0:
		if seg.Flags&wire.FlagSYN == 0 && s.acceptCookieLocked(l, local, remote, seg, now) {
			return
		}
		s.sendResetKeyLocked(local, remote, seg, l.sock.opts.MD5.lookup(remote.Addr()))
		return
	case seg.Flags&wire.FlagSYN == 0:
		return
	}
	if l.acceptFull() {
		s.g().stats.TcpExtListenOverflows++
		s.g().stats.TcpExtListenDrops++
		return
	}
	if s.connLimitLocked(l) {
		// As a full accept queue: the client retransmits its SYN, and
		// gets in once a connection has ended.
		s.g().stats.TcpExtListenDrops++
		return
	}
	if len(l.synQ) >= s.limits.MaxSynBacklog || len(l.synQ) > l.backlog && s.synCookies {
		if s.synCookies {
			s.answerWithCookieLocked(l, local, remote, seg, now)
			return
		}
		s.g().stats.TcpExtListenDrops++
		return
	}
	fo, take := s.fastOpenServerLocked(l, local, remote, seg)
	ep := s.newChildLocked(l, local, remote, s.isn(local, remote))
	ep.conn.Listen()
	ep.conn.SetFastOpenReply(fo)
	if take {
		l.tfoPending.Add(1) // until it leaves SYN_RCVD (fastOpenTransitionLocked)
	}
	ep.conn.Input(now, seg)
	s.afterLocked(ep)
}

// newChildLocked creates a passive connection of l for local-remote, in
// l's SYN queue, with its own claim on the port.
//
// +checklocks:s.ctl
func (s *Host) newChildLocked(l *listener, local, remote netip.AddrPort, iss seq.Value) *endpoint {
	b := &binding{
		addr:      local.Addr(),
		port:      local.Port(),
		reuse:     l.bind.reuse,
		reuseport: l.bind.reuseport,
		explicit:  true,
	}
	s.addBindingLocked(b)
	b.owner = l
	l.live.Add(1)
	ep := s.newEndpointISSLocked(local, remote, l.sock.opts, b, iss)
	ep.passive = true
	ep.parent = l
	ep.qIndex = int32(len(l.synQ))
	l.synQ = append(l.synQ, ep)
	return ep
}

// startListeningLocked makes sk's claim a listener.
//
// +checklocks:s.ctl
//
// +checklocks:sk.h.ctl
func (s *Host) startListeningLocked(sk *Socket, backlog int) *listener {
	l := &listener{sock: sk, bind: sk.bind, backlog: backlog}
	sk.bind.listening = true
	s.listeners[sk.bind.port] = append(s.listeners[sk.bind.port], l)
	return l
}

// stopListeningLocked ends a listener (close, or shutdown with SHUT_RD):
// it leaves the listener table; children in the accept queue are reset, as
// Linux's inet_csk_listen_stop does, and children still in SYN_RCVD are
// dropped silently (Linux's request sockets die with their listener; the
// peer's next segment finds no socket and draws a RST).
//
// +checklocks:s.ctl
func (s *Host) stopListeningLocked(l *listener) {
	removeFrom(s.listeners, l.bind.port, l)
	l.bind.listening = false
	now := s.clock.Now()
	synQ := l.synQ
	children := append(l.synQ, l.acceptQ...)
	l.synQ, l.acceptQ = nil, nil
	for i, ep := range children {
		ep.parent = nil
		ep.inAccept = false
		switch {
		case ep.conn.State() == tcp.Closed:
			// Reset while it waited: nothing is sent, and what it
			// still holds (data that came before the RST, kept for a
			// read) goes back.
			ep.conn.Abort(now)
		case i < len(synQ) && ep.conn.State() == tcp.SynRcvd:
			ep.conn.Discard("listener closed")
		default:
			ep.conn.Abort(now)
		}
		s.afterLocked(ep)
		// A child that somehow did not finish is left to itself as an orphan.
		if ep.hashed && !ep.orphan {
			ep.orphan = true
			s.orphans.Add(1)
		}
	}
	l.sock.wake()
}

// connLimitLocked reports whether a new connection, for listener l if not
// nil, would pass Config.MaxConns or l's MaxConns, and counts the refusal.
//
// +checklocks:s.ctl
func (s *Host) connLimitLocked(l *listener) bool {
	if s.conns.Load() < int64(s.limits.MaxConns) && (l == nil || !l.full()) {
		return false
	}
	s.g().stats.SynstackConnLimitDrops++
	return true
}
