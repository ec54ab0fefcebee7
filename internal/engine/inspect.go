package engine

import (
	"net/netip"
	"time"

	"github.com/synstack/synstack/tcp"
	"github.com/synstack/synstack/tcp/seq"
)

// What the tests of the layers above look at: the host's tables and
// locks, seen from outside. Nothing on a packet's or a call's path uses
// these.

// Freeze takes every lock of the host (ctl and every shard's): nothing
// moves until Thaw. The Conns and counts below need it.
//
// +checklocksacquire:s.ctl
func (s *Host) Freeze() { s.lock() }

// Thaw releases what Freeze took.
//
// +checklocksrelease:s.ctl
func (s *Host) Thaw() { s.unlock() }

// FreezeControl takes the control plane's lock alone (ctl): connections
// go on, setup and teardown wait.
//
// +checklocksacquire:s.ctl
func (s *Host) FreezeControl() { s.ctl.Lock() }

// ThawControl releases what FreezeControl took.
//
// +checklocksrelease:s.ctl
func (s *Host) ThawControl() { s.ctl.Unlock() }

// ConnView is a connection as Conns shows it.
type ConnView struct {
	Local, Remote netip.AddrPort
	Conn          *tcp.Conn
	Shard         int  // index of its shard
	InShard       bool // found in its shard's table under its tuple
	Orphan        bool // closed by the application, not finished
	Socket        bool // a socket is open on it
}

// Conns yields every connection in the host's tables. Under Freeze.
func (s *Host) Conns(f func(v ConnView) bool) {
	for ep := range s.allConns() {
		v := ConnView{Local: ep.local, Remote: ep.remote, Conn: &ep.conn, Shard: s.shardIndex(ep.sh),
			InShard: ep.sh.conns.get(ep.local, ep.remote) == ep, // +checklocksignore: under Freeze, every shard's lock
			Orphan:  ep.orphan, Socket: ep.sock != nil}
		if !f(v) {
			return
		}
	}
}

// ConnCount is the number of connections in the tables. Under Freeze.
func (s *Host) ConnCount() int { return s.connCount() }

// OrphanCount is the number of orphaned connections (atomic: no lock).
func (s *Host) OrphanCount() int { return s.orphanCount() }

// PortCount is the number of local ports claimed. Under Freeze.
func (s *Host) PortCount() int {
	s.portsMu.Lock()
	defer s.portsMu.Unlock()
	return len(s.ports)
}

// ShardCount is the number of shards.
func (s *Host) ShardCount() int { return len(s.shards) }

// ShardIndex is the index of the shard of the tuple local-remote.
func (s *Host) ShardIndex(local, remote netip.AddrPort) int {
	return s.shardIndex(s.shardOf(local, remote))
}

// shardIndex is sh's index in s.shards.
func (s *Host) shardIndex(sh *shard) int {
	for i, x := range s.shards {
		if x == sh {
			return i
		}
	}
	return -1
}

// Shard is the index of the connection's shard.
func (c ConnRef) Shard() int { return c.sk.h.shardIndex(c.ep.sh) }

// QueueLens returns the lengths of a listening socket's SYN and accept
// queues.
func (sk *Socket) QueueLens() (syn, accept int) {
	sk.h.ctl.Lock()
	defer sk.h.ctl.Unlock()
	if sk.l == nil {
		return 0, 0
	}
	return len(sk.l.synQ), len(sk.l.acceptQ)
}

// Pending reports whether the deadline d of the connection's net.Conn
// holds a channel (a deadline set, or a call waiting on one).
func (c ConnRef) Pending(d *Deadline) bool {
	l := c.lock()
	defer c.sk.h.release(&l)
	return d.cancel != nil
}

// SynCookie is the cookie the host would send for local-remote, the
// peer's ISN and MSS index mssIndex, at now.
func (s *Host) SynCookie(local, remote netip.AddrPort, peerISN seq.Value, mssIndex int, now time.Time) seq.Value {
	return s.synCookie(local, remote, peerISN, mssIndex, now)
}

// FreezeShard takes the lock of shard i alone: its connections wait,
// the others go on.
//
// +checklocksignore: a shard picked by index has no name.
func (s *Host) FreezeShard(i int) { s.shards[i].mu.Lock() }

// ThawShard releases what FreezeShard took.
//
// +checklocksignore: a shard picked by index has no name.
func (s *Host) ThawShard(i int) { s.shards[i].mu.Unlock() }
