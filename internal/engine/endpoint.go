package engine

import (
	"net/netip"

	"github.com/synstack/synstack/tcp"
	"github.com/synstack/synstack/tcp/seq"
	"github.com/synstack/synstack/wire"
)

// endpoint is one connection of the stack: a tcp.Conn with its 4-tuple and
// its places in the stack's tables. Its fields are guarded by its shard's
// lock (and so by Host.lock); those that tie it to the control plane
// (sock, parent, inAccept) are written only under Host.lock.
type endpoint struct {
	conn          tcp.Conn       // its Host is the endpoint
	sh            *shard         // the shard of its 4-tuple, for life; its Host is sh.s
	local, remote netip.AddrPort // unmapped addresses
	bind          *binding       // the claim on the local port this connection holds while hashed
	next          *endpoint      // the next in its chain of Host.conns (connTable)

	// sock is the socket open on the connection; nil before accept and
	// once the last descriptor is closed (an orphan).
	sock *Socket
	// parent is the listener whose SYN queue (inAccept false, at qIndex)
	// or accept queue (inAccept true) holds the connection.
	parent   *listener
	inAccept bool
	// throttled: in the host's list of connections waiting for room in
	// the link; resuming: its turn after waiting (txroom.go). Here, where
	// they fill what qIndex's alignment leaves.
	throttled bool
	resuming  bool
	// ipOpts are the socket's IP_TOS and IP_MTU_DISCOVER as the IPv4
	// header and ICMP need them (ipopts.go): in the byte left here too.
	ipOpts ipOpts
	qIndex int32

	passive   bool // created for a SYN at a listener
	forwarded bool // made by the forwarder: its resets are counted
	hashed    bool // in its shard's conns (and holding bind)
	orphan    bool // counted in its shard's orphans (closed, not finished, not in TIME_WAIT)

	heapIndex int32 // position in shard.timers, -1 when absent
	// deadline is the deadline as scheduled in shard.timers, and
	// notBefore a guard against one that does not move on Tick: both in
	// nanoseconds from Host.timerEpoch (timers.go), notBefore 0 when
	// unset.
	deadline, notBefore int64
}

// newEndpointLocked creates the connection for local-remote with the
// socket options o, enters it in the connection table and gives it b's
// claim on the port. It needs ctl and the tuple's shard's lock.
func (s *Host) newEndpointLocked(local, remote netip.AddrPort, o *Options, b *binding) *endpoint {
	return s.newEndpointISSLocked(local, remote, o, b, s.isn(local, remote))
}

// newEndpointISSLocked is newEndpointLocked with a given initial sequence
// number (a SYN cookie).
func (s *Host) newEndpointISSLocked(local, remote netip.AddrPort, o *Options, b *binding, iss seq.Value) *endpoint {
	ep := &endpoint{local: local, remote: remote, bind: b, heapIndex: -1}
	ep.ipOpts = ipOptsOf(o)
	s.hashLocked(ep, o, iss)
	if o.MD5 != nil {
		ep.md5Setup(o)
	}
	s.retainBinding(b)
	return ep
}

// hashLocked gives ep its shard and its tcp.Conn (options o, initial
// sequence number iss) and enters it in its shard's connection table. It
// needs the tuple's shard's lock.
func (s *Host) hashLocked(ep *endpoint, o *Options, iss seq.Value) {
	ep.sh = s.shardOf(ep.local, ep.remote)
	ep.conn.Init(ep.sh.sharedConfigLocked(o, ep.local), ep, iss, s.tsOffset(ep.local, ep.remote)) // +checklocksignore: the caller holds the tuple's shard's lock
	ep.sh.conns.add(ep)                                                                           // +checklocksignore: as above
	ep.hashed = true
	s.conns.Add(1)
}

// embryonic reports whether ep is a child still in its listener's SYN
// queue: what happens to it changes the listener's queues, so it is
// processed under Host.lock, never under its shard's lock alone.
func (ep *endpoint) embryonic() bool { return ep.parent != nil && !ep.inAccept }

// Send implements tcp.Host: the connection's segments go out from its
// addresses.
func (ep *endpoint) Send(seg *tcp.Segment) {
	ep.sh.s.sendSegmentIPLocked(ep.sh, ep.local, ep.remote, seg, ep.ipOpts.tos(), ep.ipOpts.dontFragment(), ep.conn.MD5Key())
}

// Transition implements tcp.Host.
func (ep *endpoint) Transition(from, to tcp.State, cause tcp.Cause) {
	if ep.forwarded && to == tcp.Closed && from.Synchronized() && isResetCause(cause) {
		ep.sh.stats.SynstackForwardResets++
	}
	ep.sh.s.transitionLocked(ep, from, to, cause)
}

// sharedConfigLocked returns the tcp.Config of a connection of the shard
// with options o from local: one per option set and MSS, shared by every
// connection of the shard that has them (most have the stack's defaults),
// so that a connection does not carry its own. Past maxSharedConfigs a
// new one is not kept.
//
// +checklocks:sh.mu
func (sh *shard) sharedConfigLocked(o *Options, local netip.AddrPort) *tcp.Config {
	s := sh.s
	k := sharedConfigKey{o, s.connMSS(o, local)}
	if p, ok := sh.connCfgs[k]; ok {
		return p
	}
	cfg := s.connConfig(o, local)
	cfg.Scratch = &sh.scratch
	cfg.Counters = &sh.counters
	p := tcp.PrepareConfig(cfg)
	if len(sh.connCfgs) < maxSharedConfigs {
		if sh.connCfgs == nil {
			sh.connCfgs = make(map[sharedConfigKey]*tcp.Config)
		}
		sh.connCfgs[k] = p
	}
	return p
}

// sharedConfigKey names a shared tcp.Config: socket options (interned, so
// the pointer names the set) and the MSS, which also depends on the
// address family.
type sharedConfigKey struct {
	o   *Options
	mss uint16
}

// maxSharedConfigs bounds the configurations a shard keeps to share.
const maxSharedConfigs = 1024

// connMSS is the MSS a connection from local with options o advertises:
// the link MTU less the headers, capped by the stack's default and by
// TCP_MAXSEG.
func (s *Host) connMSS(o *Options, local netip.AddrPort) uint16 {
	mss := s.mtu - 40
	if !local.Addr().Is4() {
		mss = s.mtu - 60
	}
	if d := s.tcpDefaults.MSS; d != 0 && int(d) < mss {
		mss = int(d)
	}
	if o.MaxSeg > 0 && o.MaxSeg < mss {
		mss = o.MaxSeg
	}
	return uint16(min(mss, 65535))
}

// connConfig builds the tcp.Config of a new connection from the stack's
// defaults and the socket's options.
func (s *Host) connConfig(o *Options, local netip.AddrPort) tcp.Config {
	cfg := s.tcpDefaults
	cfg.MSS = s.connMSS(o, local)
	cfg.PathMTU, cfg.IPv6 = s.mtu, !local.Addr().Is4()
	if s.segOff != nil {
		// The most payload a packet the link cuts holds, whatever the
		// TCP options: the link's ceiling less the IP header and the
		// largest TCP header.
		ipLen := wire.IPv4HeaderLen
		if !local.Addr().Is4() {
			ipLen = wire.IPv6HeaderLen
		}
		cfg.SegmentOffload = s.segMax - ipLen - maxTCPHeaderLen
	}
	if o.RcvBuf > 0 {
		cfg.RcvBuf = o.RcvBuf
		cfg.RcvBufLocked = true // SO_RCVBUF was set: it picks the window scale
	}
	if o.SndBuf > 0 {
		cfg.SndBuf = o.SndBuf
		cfg.SndBufLocked = true // SO_SNDBUF was set: no autotuning
	}
	cfg.NoDelay = o.NoDelay
	cfg.KeepAlive = o.KeepAlive
	if o.KeepIdle > 0 {
		cfg.KeepIdle = o.KeepIdle
	}
	if o.KeepIntvl > 0 {
		cfg.KeepIntvl = o.KeepIntvl
	}
	if o.KeepCnt > 0 {
		cfg.KeepCnt = o.KeepCnt
	}
	cfg.Cork = o.Cork
	cfg.OOBInline = o.OOBInline
	if o.Linger2 != 0 {
		cfg.FinTimeout = Linger2Duration(o.Linger2)
	}
	if o.UserTimeout > 0 {
		cfg.UserTimeout = o.UserTimeout
	}
	if o.SynCnt > 0 {
		cfg.SynRetries = o.SynCnt
	}
	if o.Congestion != "" {
		cfg.Congestion = o.Congestion
	}
	if o.NotSentLowat > 0 {
		cfg.NotSentLowat = o.NotSentLowat
	}
	return cfg
}

// isn is RFC 6528's initial sequence number: ISN = M + F(localip,
// localport, remoteip, remoteport, secretkey), M a clock ticking every 4 µs.
func (s *Host) isn(local, remote netip.AddrPort) seq.Value {
	m := uint32(s.clock.Now().UnixNano() / 4000)
	return seq.Value(m + uint32(s.key.hashAddrs(domainISN, local, remote, 0)))
}

// tsOffset is the offset of a connection's timestamp clock. tcp.Conn
// counts milliseconds from the connection's start; adding the stack
// clock's milliseconds makes the clock run on across connections, as
// Linux's (tcp_clock_ms plus a per-address-pair random offset, RFC 7323
// section 5.4), so that a new incarnation's SYN is newer than the old
// connection's timestamps (RFC 6191 TIME_WAIT reuse).
func (s *Host) tsOffset(local, remote netip.AddrPort) uint32 {
	off := uint32(s.key.hashAddrs(domainTSOffset,
		netip.AddrPortFrom(local.Addr(), 0), netip.AddrPortFrom(remote.Addr(), 0), 0))
	return off + uint32(s.clock.Now().UnixMilli())
}

// transitionLocked is every connection's tcp.Config.OnTransition: it keeps
// the counters (its shard's: a connection stays in one, so the
// TcpCurrEstab gauge of each shard is exact) and calls
// Config.OnTransition.
func (s *Host) transitionLocked(ep *endpoint, from, to tcp.State, cause tcp.Cause) {
	st := &ep.sh.stats
	switch {
	case from == tcp.Closed && to == tcp.SynSent:
		st.TcpActiveOpens++
	case from == tcp.Listen && to == tcp.SynRcvd:
		st.TcpPassiveOpens++
	case (from == tcp.SynSent || from == tcp.SynRcvd) && to == tcp.Closed,
		from == tcp.SynRcvd && to == tcp.Listen:
		st.TcpAttemptFails++
	case (from == tcp.Established || from == tcp.CloseWait) && to == tcp.Closed:
		st.TcpEstabResets++
	}
	if from == tcp.SynSent || from == tcp.SynRcvd {
		s.fastOpenTransitionLocked(ep, from, to)
	}
	wasEstab := from == tcp.Established || from == tcp.CloseWait
	isEstab := to == tcp.Established || to == tcp.CloseWait
	if isEstab && !wasEstab {
		st.TcpCurrEstab++
	} else if wasEstab && !isEstab && st.TcpCurrEstab > 0 {
		st.TcpCurrEstab--
	}
	if from == tcp.Closed && to == tcp.Listen {
		// The stack opens one passive tcp.Conn per SYN at a listener
		// (tcp.Conn.Listen); no listen() happened for it. Like Linux's
		// child socket, it starts as its listener's clone, so its first
		// transition the world sees is LISTEN -> SYN_RCVD.
		return
	}
	if s.onTransition != nil {
		s.hookMu.Lock()
		s.onTransition(ep.local, ep.remote, from, to, cause)
		s.hookMu.Unlock()
	}
}

// finished reports whether the connection is over: CLOSED, or back in
// LISTEN for a passive child reset in SYN_RCVD.
func (ep *endpoint) finished() bool {
	st := ep.conn.State()
	return st == tcp.Closed || (ep.passive && st == tcp.Listen)
}

// afterLocked runs after every call into ep.conn: it removes a finished
// connection from the tables, reschedules its timer, moves a child whose
// handshake completed to its listener's accept queue, and wakes the
// callers blocked on the socket (or the listener). It needs ep's shard's
// lock, and Host.lock for an embryonic child.
func (s *Host) afterLocked(ep *endpoint) {
	if ep.hashed {
		if ep.finished() {
			s.unhashLocked(ep) // +checklocksignore: afterLocked needs ep.sh's lock, which its callers hold under other names
		} else {
			s.scheduleLocked(ep) // +checklocksignore: as above
		}
	}
	if ep.orphan && ep.conn.State() == tcp.TimeWait {
		// As Linux, a connection in TIME_WAIT no longer counts as an
		// orphan (it is a timewait socket, bounded by its 2MSL timer).
		ep.orphan = false
		s.orphans.Add(-1)
	}
	if l := ep.parent; l != nil && !ep.inAccept {
		switch {
		case !ep.hashed:
			// Reset or timed out in SYN_RCVD: the request is gone.
			l.removeSynLocked(ep)
		case ep.conn.State() != tcp.SynRcvd && ep.conn.State() != tcp.Listen,
			ep.conn.FastOpenPassive():
			// Handshake done, or a Fast Open child: acceptable at once.
			l.removeSynLocked(ep)
			ep.parent = l
			ep.inAccept = true
			l.acceptQ = append(l.acceptQ, ep)
			l.sock.wake()
		}
	}
	if ep.sock != nil {
		if ep.sock.hasEQ {
			ep.sock.txProgressLocked(&ep.conn)
		}
		ep.sock.wake()
	}
}

// unhashLocked removes a finished connection from the connection table and
// the timer heap and releases its claim on the port. It needs ep's
// shard's lock.
//
// +checklocks:ep.sh.mu
func (s *Host) unhashLocked(ep *endpoint) {
	if !ep.hashed {
		return
	}
	ep.hashed = false
	ep.sh.conns.remove(ep)
	s.conns.Add(-1)
	if b := ep.bind; b != nil && b.owner != nil {
		b.owner.live.Add(-1) // a listener's child (forwarded ones have no claim)
	}
	s.unscheduleLocked(ep)
	s.releaseBindingLocked(ep.bind)
	if ep.orphan {
		ep.orphan = false
		s.orphans.Add(-1)
	}
}
