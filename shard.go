package synstack

import (
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
// Everything else (the descriptor table, listeners and their queues, the
// port table, the forwarder, ICMP, connection setup) is the stack's
// control plane: a call that touches it takes every shard's lock, in
// order (Stack.lock), so it sees the whole stack still, as when the stack
// had one mutex. The rules:
//
//   - Stack.lock takes the shards' locks in index order; a goroutine holding
//     one shard's lock never takes another's, so there is no cycle. Work
//     that finds it needs the control plane (a segment for a listener, a
//     child connection still in its listener's SYN queue, an ICMP error)
//     releases its shard's lock and takes Stack.lock (escalates).
//   - Fields written only under Stack.lock (a socket's state, ep.sock,
//     ep.parent, Stack.closed...) may be read under any one shard's lock.
//   - What work under one shard's lock shares with another shard has a
//     lock of its own, taken last: portsMu (the port table, when a
//     finished connection releases its claim) and hookMu (the OnPacket and
//     OnTransition hooks, which thus never run concurrently). Stack.pollCh
//     is atomic.
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
	// orphans counts the shard's connections whose last descriptor is
	// closed but that have not finished (FIN_WAIT_1, FIN_WAIT_2,
	// CLOSING, LAST_ACK...). As in Linux, TIME_WAIT connections are not
	// counted. Stack.orphansLocked sums them.
	orphans int

	_ [64]byte
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
}

// shardOf returns the shard of the connection local-remote: a keyed mix
// of the 4-tuple, so that the choice is deterministic for a given
// Config.Seed (a peer that guesses it can only crowd one shard).
func (s *Stack) shardOf(local, remote netip.AddrPort) *shard {
	if len(s.shards) == 1 {
		return s.shards[0]
	}
	la, ra := local.Addr().As16(), remote.Addr().As16()
	h := s.key.k1 ^ uint64(local.Port())<<16 ^ uint64(remote.Port())
	h ^= fold16(ra) * 0x9e3779b97f4a7c15
	h ^= fold16(la) * 0xc2b2ae3d27d4eb4f
	h ^= h >> 31
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 29
	return s.shards[h>>s.shardShift]
}

// fold16 folds an address's 16 bytes into 64 bits.
func fold16(a [16]byte) uint64 {
	var lo, hi uint64
	for i := range 8 {
		hi = hi<<8 | uint64(a[i])
		lo = lo<<8 | uint64(a[8+i])
	}
	return lo ^ hi*0x94d049bb133111eb
}

// g is the shard the control plane counts in and builds its packets in
// (it holds every shard's lock, so any would do).
func (s *Stack) g() *shard { return s.shards[0] }

// lock takes every shard's lock, in order: the control plane's lock.
func (s *Stack) lock() {
	for _, sh := range s.shards {
		sh.mu.Lock()
	}
}

// unlock releases what lock took.
func (s *Stack) unlock() {
	for i := len(s.shards) - 1; i >= 0; i-- {
		s.shards[i].mu.Unlock()
	}
}

// lockFor takes sh's lock, or every shard's when sh is nil: the lock a
// piece of work holds is named by the shard it is confined to, nil for
// the control plane.
func (s *Stack) lockFor(sh *shard) {
	if sh == nil {
		s.lock()
		return
	}
	sh.mu.Lock()
}

// unlockFor releases what lockFor took.
func (s *Stack) unlockFor(sh *shard) {
	if sh == nil {
		s.unlock()
		return
	}
	sh.mu.Unlock()
}

// chansFor is the channel pool of work under lockFor(sh).
func (s *Stack) chansFor(sh *shard) *chanPool {
	if sh == nil {
		return &s.g().chans
	}
	return &sh.chans
}

// orphansLocked is the number of orphaned connections. Called under lock.
func (s *Stack) orphansLocked() int {
	n := 0
	for _, sh := range s.shards {
		n += sh.orphans
	}
	return n
}

// connGet returns the connection local-remote, or nil. Called under lock.
func (s *Stack) connGet(local, remote netip.AddrPort) *endpoint {
	return s.shardOf(local, remote).conns.get(local, remote)
}

// connCount is the number of connections. Called under lock.
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
// Called under lock; the tables must not change while it runs.
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
