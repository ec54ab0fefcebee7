package engine

// The lock regime. Read this file first.
//
// A host's connections are split among shards by a keyed hash of their
// 4-tuple, as Linux splits its established hash into buckets with a lock
// each. A shard owns its connections (their tcp.Conn, their endpoint and
// the socket open on them). The work of one connection (a segment
// received, a timer, a Read or a Write of its net.Conn) takes only its
// shard's lock, shard.mu, so connections in different shards run on
// different cores at once.
//
// Everything else (sockets without a connection, listeners and their
// queues, the port table, the forwarder) is the host's control plane,
// guarded by Host.ctl. A call on it takes ctl, then the lock of the one
// shard whose connection it touches, if any (a connect, an accept, a
// close, a setsockopt on a connection), or every shard's (what touches
// many connections: a listener's close, ICMP, Close, Stats). The rules:
//
//   - Locks are taken in this order: ctl, then shards in index order,
//     then the leaves portsMu and hookMu. A goroutine holding one shard's
//     lock never takes another's or ctl: work that finds it needs the
//     control plane (a segment for a listener, a child connection still
//     in its listener's SYN queue, TIME_WAIT reuse) releases its shard's
//     lock and takes ctl, then the shard again (escalates: input.go).
//   - What a connection's work reads of the control plane (a socket's
//     fields, ep.sock, ep.parent, Host.closed...) is written under ctl
//     and the connection's shard's lock, so either suffices to read it.
//   - What work under one shard's lock shares with another shard or with
//     ctl alone has a lock of its own, taken last: portsMu (the port
//     table and the claims' reference counts) and hookMu (the OnPacket and
//     OnTransition hooks, which thus never run concurrently). Host.pollCh,
//     Host.conns and Host.orphans are atomic.
//   - The control plane counts and builds its packets in a shard of its
//     own (Host.g), guarded by ctl.
//   - UDP (udp.go) and reassembly (reasm.go) take no shard's lock. The UDP
//     table's reader-writer lock (udpTable.mu) comes after ctl and the
//     shards; a UDP socket's mutex (udpSock.mu, which guards its queue,
//     its wait queue and its deadlines) after that; the reassembler's
//     mutex and the ICMP rate limiter's are leaves taken with nothing
//     else held. A datagram is delivered under the table's read lock and
//     the socket's mutex alone; an ICMP answer to it takes ctl after
//     both are let go. A datagram is sent prepared under ctl (binding,
//     checks, addresses) and, when it fits one packet, built and written
//     with no lock of the host's.
//   - Blocking calls release every lock while they wait (waitLocked).
//
// Functions whose name ends in Locked must be called with the locks their
// comment names. Socket methods without the suffix take their locks
// themselves (Socket.lock) and are what the layer above calls; a
// socket's state is read and written only under them.
//
// # For the analyzer
//
// The rules are also written for gVisor's checklocks analyzer, which
// .ci/checklocks runs on this package in CI (its header says what the
// analyzer can express; compare/internal/lockcheck proves that a misuse
// here fails the build):
//
//   - A field one lock guards says so on the line above it:
//     // +checklocks:mu (shard: conns, timers, connCfgs...),
//     // +checklocks:ctl (Host: listeners, fwd, opts, portNext...),
//     // +checklocks:portsMu (Host.ports), // +checklocks:h.ctl (a
//     forward request's decision). One field per line.
//   - A function that needs a lock says so under its comment:
//     // +checklocks:sh.mu (inputRun, shardConn, armLocked...),
//     // +checklocks:s.ctl (the control plane: demux's branches,
//     listeners, SYN cookies, forwarding, ICMP, ports) or
//     // +checklocks:sk.h.ctl (a socket call's Locked part). The Locked
//     suffix stays as the name's reminder; the annotation is the rule.
//   - Helpers that return holding a lock, or release one, say
//     +checklocksacquire / +checklocksrelease: Socket.lock,
//     Host.acquireCtl and Host.lock return holding ctl (Host.lock's
//     shards the analyzer cannot name), releaseCtl and unlock release it.
//     A socket call is therefore written out: var l locks; defer
//     sk.h.releaseCtl(&l); sk.lock(how, &l); then its body. Not as a
//     closure passed to a helper that locks: the analyzer checks such a
//     closure as if no lock were held.
//   - The analyzer knows a lock by the path it was taken through:
//     sh.mu taken as ep.sh.mu is another lock to it. Functions on an
//     endpoint (unhashLocked, scheduleLocked...) need ep.sh.mu; a caller
//     that holds the same lock under another name (afterLocked, called
//     from everywhere) says so on the line with // +checklocksignore and
//     the reason. (Not +checklocksforce: outside a loop a forced lock
//     counts as held until the function returns, which then reports it.)
//   - Not expressible, so not annotated: a field readable under either
//     of two locks because it is written under both (ep.sock, ep.parent,
//     Host.closed, a socket's fields): the analyzer's two annotations
//     mean "both", which would reject every read under one. The same
//     holds for the counters, scratch and buffers of a shard (stats,
//     scratch, outBuf...), which the control plane's shard (g) uses
//     under ctl instead of its mu, and for a listener's queues, which
//     have no path to ctl. These are checked by review and the race
//     detector only.
//   - The dynamic set (locks, below: acquire, release, lockSocket,
//     waitLocked) names its shard locks at run time, and every shard
//     taken in a loop (Host.lock, Freeze) has no name: those helpers
//     carry +checklocksignore. A line under them that touches a shard's
//     guarded field or calls a function that needs a shard's lock ends
//     in // +checklocksforce inside a loop over the shards (connCount,
//     Close), else in // +checklocksignore, with its reason. Count them
//     before adding one.

// locks names the locks a piece of work holds, so that a wait
// (waitLocked) can release and retake them.
type locks struct {
	ctl bool   // Host.ctl
	all bool   // every shard's lock (with ctl)
	sh  *shard // one shard's lock, when not all
}

// everything is what lock takes.
var everything = locks{ctl: true, all: true}

// acquire takes the locks l names, in order.
//
// +checklocksignore: a dynamic set (see "For the analyzer" above).
func (s *Host) acquire(l *locks) {
	if l.ctl {
		s.ctl.Lock()
	}
	switch {
	case l.all:
		for _, sh := range s.shards {
			sh.mu.Lock()
		}
	case l.sh != nil:
		l.sh.mu.Lock()
	}
}

// release releases the locks l names.
//
// +checklocksignore: a dynamic set.
func (s *Host) release(l *locks) {
	switch {
	case l.all:
		for i := len(s.shards) - 1; i >= 0; i-- {
			s.shards[i].mu.Unlock()
		}
	case l.sh != nil:
		l.sh.mu.Unlock()
	}
	if l.ctl {
		s.ctl.Unlock()
	}
}

// acquireCtl is acquire for a set l that names ctl.
//
// +checklocksacquire:s.ctl
// +checklocksignore: a dynamic set.
func (s *Host) acquireCtl(l *locks) { s.acquire(l) }

// releaseCtl is release for a set l that names ctl.
//
// +checklocksrelease:s.ctl
// +checklocksignore: a dynamic set.
func (s *Host) releaseCtl(l *locks) { s.release(l) }

// lock takes ctl and every shard's lock: the whole stack, as its one
// mutex was before shards.
//
// +checklocksacquire:s.ctl
// +checklocksignore: the shards' locks are taken in a loop.
func (s *Host) lock() { s.acquire(&everything) }

// unlock releases what lock took.
//
// +checklocksrelease:s.ctl
// +checklocksignore: the shards' locks are released in a loop.
func (s *Host) unlock() { s.release(&everything) }

// lockSocket takes, with ctl held, the shard locks a call on sk needs:
// its connection's shard's, or every shard's for a listener (whose
// children may be in any); l (which names ctl) then names them too.
//
// +checklocksignore: adds to a dynamic set.
func (s *Host) lockSocket(sk *Socket, l *locks) {
	switch {
	case l.all:
	case sk.l != nil:
		l.all = true
		for _, sh := range s.shards {
			sh.mu.Lock()
		}
	case sk.ep != nil:
		l.sh = sk.ep.sh
		l.sh.mu.Lock()
	}
}

// addShard takes sh's lock into l, which names ctl and no shard.
//
// +checklocksignore: adds to a dynamic set.
func (l *locks) addShard(sh *shard) {
	l.sh = sh
	sh.mu.Lock()
}

// chansFor is the channel pool of work holding l.
func (s *Host) chansFor(l *locks) *chanPool {
	if l.ctl {
		return &s.g().chans
	}
	return &l.sh.chans
}

// lockSet names the locks a call on a socket takes.
type lockSet uint8

const (
	// ctlOnly is Host.ctl: sockets without a connection (bind, listen,
	// accept).
	ctlOnly lockSet = iota
	// sockLocks is ctl and the shard locks of the socket
	// (Host.lockSocket): its connection's shard's, or every shard's for
	// a listener.
	sockLocks
	// allLocks is ctl and every shard's lock (Host.lock).
	allLocks
)

// lock takes the locks how names, and names them in l for
// Host.releaseCtl (which the caller defers before it calls lock: it
// releases ctl whatever the result); EBADF if the socket or the host is
// closed. Every socket call takes its locks with it (see "For the
// analyzer"): a call that waits on the socket (waitLocked releases and
// retakes l) or takes more locks (connectLocked takes the new
// connection's shard) passes l on.
//
// +checklocksacquire:sk.h.ctl
func (sk *Socket) lock(how lockSet, l *locks) error {
	s := sk.h
	*l = locks{ctl: true, all: how == allLocks}
	s.acquireCtl(l)
	if err := sk.usable(); err != nil {
		return err
	}
	if how == sockLocks {
		s.lockSocket(sk, l)
	}
	return nil
}

// waitQueue is a socket's wait queue: the channels of the calls blocked
// on it, each woken by one token at the socket's next event.
type waitQueue []chan struct{}

// wake wakes every call blocked on the socket, and Poll callers. It
// needs the lock that guards the socket: its connection's shard's, or
// ctl for a socket without one.
func (sk *Socket) wake() {
	q := sk.waiters
	for _, w := range q {
		select {
		case w <- struct{}{}:
		default: // already woken
		}
	}
	clear(q)
	sk.waiters = q[:0]
	sk.h.wakePollLocked()
}

// remove takes w out of the queue.
func (q *waitQueue) remove(w chan struct{}) {
	for i, x := range *q {
		if x == w {
			last := len(*q) - 1
			(*q)[i] = (*q)[last]
			(*q)[last] = nil
			*q = (*q)[:last]
			return
		}
	}
}

// waitLocked releases the locks l names until something happens to the
// socket (or the host closes), or until cancel (if not nil) is closed,
// then takes them again: with ctl, the socket's connection's shard's
// lock, which may not be the one l named before (l then names the new
// one). The caller re-checks its condition.
//
// +checklocksignore: releases and retakes a dynamic set.
func (sk *Socket) waitLocked(cancel <-chan struct{}, l *locks) {
	s := sk.h
	pool := s.chansFor(l)
	w := pool.get()
	sk.waiters = append(sk.waiters, w)
	s.release(l)
	select {
	case <-w:
	case <-cancel:
	case <-s.done:
	}
	if l.ctl && !l.all {
		s.ctl.Lock()
		l.sh = nil
		if sk.ep != nil {
			l.sh = sk.ep.sh
			l.sh.mu.Lock()
		}
	} else {
		s.acquire(l)
	}
	sk.waiters.remove(w)
	select {
	case <-w:
	default:
	}
	pool.put(w)
}

// wakePollLocked wakes Poll callers. It needs no lock of its own: the
// channel is swapped out atomically, and only when a Poll is waiting.
func (s *Host) wakePollLocked() {
	if s.pollCh.Load() == nil {
		return
	}
	if ch := s.pollCh.Swap(nil); ch != nil {
		close(*ch)
	}
}
