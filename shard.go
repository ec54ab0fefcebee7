package synstack

import (
	"encoding/binary"
	"iter"
	"math/bits"
	"net/netip"
	"reflect"
	"runtime"
	"sync"
	"time"

	"github.com/synstack/synstack/clock"
	"github.com/synstack/synstack/tcp"
)

// A stack's connections are split among shards by a keyed hash of their
// 4-tuple, as Linux splits its established hash into buckets with a lock
// each. A shard owns its connections (their tcp.Conn, their endpoint and
// the socket open on them), their part of the 4-tuple table, a timer heap
// and clock timer, the scratch space their segments are built in, and
// its own counters. The work of one connection (a segment received, a
// timer, a Read or a Write of its net.Conn) takes only its shard's lock,
// so connections in different shards run on different cores at once.
//
// Everything else (the descriptor table, sockets without a connection,
// listeners and their queues, the forwarder) is the stack's control
// plane, guarded by Stack.ctl. A call on it takes ctl, then the lock of
// the one shard whose connection it touches, if any (a connect, an
// accept, a close, a setsockopt on a connection), or every shard's (what
// touches many connections: a listener's close, ICMP, Stack.Close,
// Stats). The rules:
//
//   - Locks are taken in this order: ctl, then shards in index order,
//     then the leaves portsMu and hookMu. A goroutine holding one shard's
//     lock never takes another's or ctl: work that finds it needs the
//     control plane (a segment for a listener, a child connection still
//     in its listener's SYN queue, TIME_WAIT reuse) releases its shard's
//     lock and takes ctl, then the shard again (escalates).
//   - What a connection's work reads of the control plane (a socket's
//     fields, ep.sock, ep.parent, Stack.closed...) is written under ctl
//     and the connection's shard's lock, so either suffices to read it.
//   - What work under one shard's lock shares with another shard or with
//     ctl alone has a lock of its own, taken last: portsMu (the port
//     table and the claims' reference counts) and hookMu (the OnPacket and
//     OnTransition hooks, which thus never run concurrently). Stack.pollCh
//     and Stack.orphans are atomic.
//
// The control plane counts and builds its packets in a shard of its own
// (Stack.g), guarded by ctl.
//
// A shard is allocated alone and padded, so that two shards' locks and
// counters do not share a cache line.
type shard struct {
	mu sync.Mutex
	s  *Stack

	// conns holds the shard's connections with a 4-tuple.
	conns connTable

	// timers orders the shard's connections that have a deadline; one
	// clock timer (timer, armed for timerAt when timerArmed) fires for
	// the earliest. It is created once and reset, never replaced.
	timers     timerHeap
	timer      clock.Timer
	timerAt    time.Time
	timerArmed bool
	due        []*endpoint // onTimer's list, reused

	stats Stats
	// counters are the tcp MIB counters the shard's connections count into
	// (their tcp.Config.Counters).
	counters tcp.Counters
	// scratch is where the shard's connections build their segments
	// (their tcp.Config.Scratch).
	scratch tcp.Scratch
	// connCfgs are the shard's connections' shared configurations
	// (sharedConfigLocked).
	connCfgs map[sharedConfigKey]*tcp.Config
	// chans holds the channels of waits (waitLocked) and deadlines
	// between uses.
	chans chanPool
	// outBuf is the scratch buffer packets are built in (their headers
	// only, when the link is a gather writer).
	outBuf []byte
	ipID   uint16
	_      [64]byte
}

// defaultShards is the number of shards of a stack whose Config does not
// say: four per processor Go may use, a power of two, between 4 and 64,
// so that two busy connections rarely share a shard.
func defaultShards() int {
	n := 4 * runtime.GOMAXPROCS(0)
	return min(max(1<<bits.Len(uint(n-1)), 4), 64)
}

// maxShards bounds Config.Shards.
const maxShards = 256

// initShards creates n shards (n rounded up to a power of two).
func (s *Stack) initShards(n int) {
	n = min(max(n, 1), maxShards)
	n = 1 << bits.Len(uint(n-1))
	s.shardShift = uint8(64 - bits.Len(uint(n-1)))
	s.shards = make([]*shard, n)
	for i := range s.shards {
		sh := &shard{s: s, conns: newConnTable()}
		sh.ipID = uint16(s.key.k0) + uint16(i)*0x1000
		s.shards[i] = sh
	}
	s.ctlShard = &shard{s: s, ipID: uint16(s.key.k0) + 0x0800}
}

// shardOf returns the shard of the connection local-remote: a keyed mix
// of the 4-tuple, so that the choice is deterministic for a given
// Config.Seed (a peer that guesses it can only crowd one shard).
func (s *Stack) shardOf(local, remote netip.AddrPort) *shard {
	if len(s.shards) == 1 {
		return s.shards[0]
	}
	h := s.key.k1 ^ uint64(local.Port())<<16 ^ uint64(remote.Port())
	h ^= foldAddr(remote.Addr()) * 0x9e3779b97f4a7c15
	h ^= foldAddr(local.Addr()) * 0xc2b2ae3d27d4eb4f
	h ^= h >> 31
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 29
	return s.shards[h>>s.shardShift]
}

// foldAddr folds an address into 64 bits.
func foldAddr(a netip.Addr) uint64 {
	if a.Is4() {
		b := a.As4()
		return uint64(binary.BigEndian.Uint32(b[:]))
	}
	b := a.As16()
	return binary.BigEndian.Uint64(b[8:]) ^ binary.BigEndian.Uint64(b[:8])*0x94d049bb133111eb
}

// g is the control plane's shard: its counters, packet buffer, scratch
// and channel pool, guarded by ctl. It holds no connection.
func (s *Stack) g() *shard { return s.ctlShard }

// locks names the locks a piece of work holds, so that a wait
// (waitLocked) can release and retake them.
type locks struct {
	ctl bool   // Stack.ctl
	all bool   // every shard's lock (with ctl)
	sh  *shard // one shard's lock, when not all
}

// everything is what lock takes.
var everything = locks{ctl: true, all: true}

// acquire takes the locks l names, in order.
func (s *Stack) acquire(l *locks) {
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
func (s *Stack) release(l *locks) {
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

// lock takes ctl and every shard's lock: the whole stack, as its one
// mutex was before shards.
func (s *Stack) lock() { s.acquire(&everything) }

// unlock releases what lock took.
func (s *Stack) unlock() { s.release(&everything) }

// lockSocket takes, with ctl held, the shard locks a call on sk needs:
// its connection's shard's, or every shard's for a listener (whose
// children may be in any); l (which names ctl) then names them too.
func (s *Stack) lockSocket(sk *socket, l *locks) {
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

// chansFor is the channel pool of work holding l.
func (s *Stack) chansFor(l *locks) *chanPool {
	if l.ctl {
		return &s.g().chans
	}
	return &l.sh.chans
}

// connInUse reports whether the stack has a connection local-remote, with
// l held: under ctl alone it takes the tuple's shard's lock for the look.
func (s *Stack) connInUse(local, remote netip.AddrPort, l *locks) bool {
	sh := s.shardOf(local, remote)
	if !l.all {
		sh.mu.Lock()
		defer sh.mu.Unlock()
	}
	return sh.conns.get(local, remote) != nil
}

// orphanCount is the number of orphaned connections (an atomic count:
// it needs no lock).
func (s *Stack) orphanCount() int { return int(s.orphans.Load()) }

// connGet returns the connection local-remote, or nil. It needs the
// tuple's shard's lock.
func (s *Stack) connGet(local, remote netip.AddrPort) *endpoint {
	return s.shardOf(local, remote).conns.get(local, remote)
}

// connCount is the number of connections. Called under Stack.lock.
func (s *Stack) connCount() int {
	n := 0
	for _, sh := range s.shards {
		n += sh.conns.len()
	}
	return n
}

// addStats adds every counter of b to a. Stats holds only uint64 counters.
func addStats(a *Stats, b *Stats) {
	va, vb := reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem()
	for i := range va.NumField() {
		f := va.Field(i)
		f.SetUint(f.Uint() + vb.Field(i).Uint())
	}
}

// allConns yields every connection of every shard, in no particular order.
// Called under Stack.lock; the tables must not change while it runs.
func (s *Stack) allConns() iter.Seq[*endpoint] {
	return func(yield func(*endpoint) bool) {
		for _, sh := range s.shards {
			for ep := range sh.conns.all() {
				if !yield(ep) {
					return
				}
			}
		}
	}
}
