package synstack

import (
	"net/netip"
	"slices"

	"github.com/synstack/synstack/internal/engine"
	"github.com/synstack/synstack/tcp"
)

// ConnInfo is one TCP socket of the stack as ss -ti shows it: a connection
// (SYN_SENT to TIME_WAIT, accepted or not, orphans included) or a listener.
type ConnInfo struct {
	// Local and Remote are the 4-tuple. A listener has no Remote (the zero
	// AddrPort) and, when bound to a wildcard, an unspecified Local address.
	Local, Remote netip.AddrPort
	// Listening marks a listening socket.
	Listening bool
	// Info is the connection's TCP_INFO; a listener's has only State LISTEN.
	Info tcp.Info
	// Congestion is the congestion-control algorithm (TCP_CONGESTION).
	Congestion string
	// RecvQ and SendQ are ss's Recv-Q and Send-Q: for a connection, bytes
	// received and not yet read, and bytes written and not yet
	// acknowledged; for a listener, the connections waiting in its accept
	// queue and its backlog.
	RecvQ, SendQ int
	// Orphan marks a connection whose last descriptor is closed but that
	// has not finished yet (FIN_WAIT_1, LAST_ACK, TIME_WAIT...).
	Orphan bool
	// UDP marks a bound UDP socket: Remote is its connected peer, if any;
	// RecvQ the bytes its receive queue holds; Info and Congestion are
	// zero.
	UDP bool
}

// Connections returns every TCP socket of the stack with a connection or
// listening, listeners first, then by local and remote address, and then
// every bound UDP socket (UDP set). It is a snapshot, taken under the
// stack's lock.
func (s *Stack) Connections() []ConnInfo { return s.ConnectionsLimit(-1, nil) }

// ConnectionsLimit is Connections bounded: it returns at most limit
// sockets (all of them if limit < 0) whose state keep accepts (all if keep
// is nil; with a keep, no UDP socket), listeners first, sorted as
// Connections sorts them. It stops at
// the limit-th socket kept: which ones it returns, beyond the listeners,
// is unspecified, and its cost grows with the sockets it visits (limit,
// when keep is nil), not with the stack's. keep runs under the stack's
// lock and must not call the stack.
func (s *Stack) ConnectionsLimit(limit int, keep func(tcp.State) bool) []ConnInfo {
	now := s.clock.Now()
	var out []ConnInfo
	s.h.Walk(func(hint int, e *engine.Entry) bool {
		if out == nil {
			if limit >= 0 {
				hint = min(hint, limit)
			}
			out = make([]ConnInfo, 0, hint)
		}
		if limit >= 0 && len(out) >= limit {
			return false
		}
		if e.UDP {
			if keep == nil {
				out = append(out, ConnInfo{Local: e.Local, Remote: e.Remote, UDP: true, RecvQ: e.Queued})
			}
		} else if c := e.Conn; c == nil {
			if keep == nil || keep(tcp.Listen) {
				out = append(out, ConnInfo{Local: e.Local, Listening: true, Info: tcp.Info{State: tcp.Listen},
					Congestion: e.Congestion, RecvQ: e.AcceptQ, SendQ: e.Backlog})
			}
		} else if keep == nil || keep(c.State()) {
			out = append(out, ConnInfo{Local: e.Local, Remote: e.Remote, Info: c.Info(now),
				Congestion: c.Congestion(), RecvQ: c.Readable(), SendQ: c.SendQueued(), Orphan: c.Orphaned()})
		}
		return true
	})
	slices.SortFunc(out, func(a, b ConnInfo) int {
		if a.UDP != b.UDP {
			if b.UDP {
				return -1
			}
			return 1
		}
		if a.Listening != b.Listening {
			if a.Listening {
				return -1
			}
			return 1
		}
		if c := a.Local.Compare(b.Local); c != 0 {
			return c
		}
		return a.Remote.Compare(b.Remote)
	})
	return out
}

// StateCounts holds a number of sockets per state, indexed by tcp.State.
type StateCounts [tcp.TimeWait + 1]int

// CountStates returns how many of the stack's sockets are in each state:
// the listeners in LISTEN and every connection in its own (CLOSED stays
// zero: a connection that reaches it is gone). Cheaper than Connections,
// it builds no TCP_INFO.
func (s *Stack) CountStates() StateCounts {
	var n StateCounts
	s.h.Walk(func(_ int, e *engine.Entry) bool {
		if e.UDP {
			return true
		}
		st := tcp.Listen
		if e.Conn != nil {
			st = e.Conn.State()
		}
		if int(st) < len(n) {
			n[st]++
		}
		return true
	})
	return n
}
