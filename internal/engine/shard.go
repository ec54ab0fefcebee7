package engine

import (
	"encoding/binary"
	"iter"
	"math/bits"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"github.com/synstack/synstack/clock"
	"github.com/synstack/synstack/nstat"
	"github.com/synstack/synstack/tcp"
	"github.com/synstack/synstack/wire"
)

// shard is a part of the host's connections (see locks.go): their
// tcp.Conn and endpoint, their part of the 4-tuple table, a timer heap and
// clock timer, the scratch space their segments are built in, and its own
// counters. It is allocated alone and padded, so that two shards' locks
// and counters do not share a cache line.
type shard struct {
	mu sync.Mutex
	s  *Host

	// conns holds the shard's connections with a 4-tuple.
	// +checklocks:mu
	conns connTable

	// timers orders the shard's connections that have a deadline; one
	// clock timer (timer, armed for timerAt when timerArmed) fires for
	// the earliest. It is created once and reset, never replaced.
	// +checklocks:mu
	timers timerHeap
	// +checklocks:mu
	timer clock.Timer
	// +checklocks:mu
	timerAt time.Time
	// +checklocks:mu
	timerArmed bool
	// +checklocks:mu
	due []*endpoint // onTimer's list, reused

	stats nstat.Counters
	// counters are the tcp MIB counters the shard's connections count into
	// (their tcp.Config.Counters).
	counters tcp.Counters
	// scratch is where the shard's connections build their segments
	// (their tcp.Config.Scratch).
	scratch tcp.Scratch
	// connCfgs are the shard's connections' shared configurations
	// (sharedConfigLocked).
	// +checklocks:mu
	connCfgs map[sharedConfigKey]*tcp.Config
	// chans holds the channels of waits (waitLocked) and deadlines
	// between uses.
	chans chanPool
	// outBuf is the scratch buffer packets are built in (their headers
	// only, when the link is a gather writer).
	outBuf []byte
	ipID   uint16
	// md5 signs and checks the segments of the shard's connections that
	// have TCP MD5 keys (md5.go); nil until one does.
	md5 *wire.TCPMD5
	_   [64]byte
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
func (s *Host) initShards(n int) {
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
func (s *Host) shardOf(local, remote netip.AddrPort) *shard {
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
func (s *Host) g() *shard { return s.ctlShard }

// connInUse reports whether the stack has a connection local-remote, with
// l held: under ctl alone it takes the tuple's shard's lock for the look.
func (s *Host) connInUse(local, remote netip.AddrPort, l *locks) bool {
	sh := s.shardOf(local, remote)
	if !l.all {
		sh.mu.Lock()
		defer sh.mu.Unlock()
	}
	return sh.conns.get(local, remote) != nil // +checklocksignore: l or the line above took it
}

// orphanCount is the number of orphaned connections (an atomic count:
// it needs no lock).
func (s *Host) orphanCount() int { return int(s.orphans.Load()) }

// connGet returns the connection local-remote, or nil. It needs the
// tuple's shard's lock.
func (s *Host) connGet(local, remote netip.AddrPort) *endpoint {
	return s.shardOf(local, remote).conns.get(local, remote) // +checklocksignore: the caller holds the tuple's shard's lock
}

// connCount is the number of connections. Called under Host.lock.
func (s *Host) connCount() int {
	n := 0
	for _, sh := range s.shards {
		n += sh.conns.len() // +checklocksforce: under Host.lock, every shard's lock
	}
	return n
}

// allConns yields every connection of every shard, in no particular order.
// Called under Host.lock; the tables must not change while it runs.
func (s *Host) allConns() iter.Seq[*endpoint] {
	return func(yield func(*endpoint) bool) {
		for _, sh := range s.shards {
			for ep := range sh.conns.all() { // +checklocksignore: under Host.lock, every shard's lock (a force would outlive the early return)
				if !yield(ep) {
					return
				}
			}
		}
	}
}
