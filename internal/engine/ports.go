package engine

import (
	"net/netip"
	"slices"
)

// binding is one claim on a local port: a bound or listening socket, or a
// connection (which keeps its claim until it finishes, TIME_WAIT included,
// like Linux's bind buckets). Claims are what bind and listen check for
// conflicts (Linux's inet_csk_bind_conflict). Guarded by Host.lock; refs
// (and the port table) also by Host.portsMu, under which a connection
// finishing under its shard's lock alone releases its claim.
type binding struct {
	addr   netip.Addr // unmapped; the unspecified address of its family for a wildcard
	port   uint16
	v6only bool // an IPv6 wildcard that does not cover IPv4 (IPV6_V6ONLY)
	// reuse and reuseport are SO_REUSEADDR and SO_REUSEPORT as they were
	// when the claim was made: options set later change nothing.
	reuse, reuseport bool
	listening        bool
	// explicit marks a claim made by bind or listen (or inherited by an
	// accepted child), as opposed to connect's automatic choice. Connect
	// never picks a port that has an explicit claim (Linux skips ports
	// whose bind bucket was made by bind).
	explicit bool
	refs     int // holders: a socket, a connection
	// owner is the listener a passive connection's claim was made for:
	// the connection counts in its live children (ListenConfig.MaxConns)
	// until it leaves the table.
	owner *listener
}

// covers reports whether b's address includes a (unmapped).
func (b *binding) covers(a netip.Addr) bool {
	if !b.addr.IsUnspecified() {
		return b.addr == a
	}
	if b.addr.Is4() {
		return a.Is4()
	}
	return a.Is6() || !b.v6only
}

// overlap reports whether two claims share an address: equal addresses, or
// a wildcard that covers the other's address or family.
func overlap(a, b *binding) bool {
	switch {
	case a.addr.IsUnspecified() && b.addr.IsUnspecified():
		if a.addr.Is4() == b.addr.Is4() {
			return true
		}
		// 0.0.0.0 and :: overlap unless the IPv6 one is v6-only.
		if a.addr.Is6() {
			return !a.v6only
		}
		return !b.v6only
	case a.addr.IsUnspecified():
		return a.covers(b.addr)
	case b.addr.IsUnspecified():
		return b.covers(a.addr)
	}
	return a.addr == b.addr
}

// conflicts reports whether the new claim a may not share its port with
// the existing claim b (Linux's inet_bind_conflict, all sockets owned by
// one user): they overlap, and neither (both SO_REUSEADDR and b is not
// listening) nor (both SO_REUSEPORT) holds.
func conflicts(a, b *binding) bool {
	if a == b || !overlap(a, b) {
		return false
	}
	if a.reuse && b.reuse && !b.listening {
		return false
	}
	if a.reuseport && b.reuseport {
		return false
	}
	return true
}

// conflictLocked reports whether claim b conflicts with any other claim on
// its port. It needs ctl.
//
// +checklocks:s.ctl
func (s *Host) conflictLocked(b *binding) bool {
	s.portsMu.Lock()
	defer s.portsMu.Unlock()
	for _, o := range s.ports[b.port] {
		if conflicts(b, o) {
			return true
		}
	}
	return false
}

// addBindingLocked enters b (port already chosen) in the port table. The
// caller takes the first reference. It needs ctl.
//
// +checklocks:s.ctl
func (s *Host) addBindingLocked(b *binding) {
	s.portsMu.Lock()
	s.ports[b.port] = append(s.ports[b.port], b)
	s.portsMu.Unlock()
}

// retainBinding takes a reference to b.
func (s *Host) retainBinding(b *binding) {
	s.portsMu.Lock()
	b.refs++
	s.portsMu.Unlock()
}

// releaseBindingLocked drops one reference to b, removing it from the
// port table with the last. It needs Host.lock or a shard's lock.
func (s *Host) releaseBindingLocked(b *binding) {
	if b == nil {
		return
	}
	s.portsMu.Lock()
	defer s.portsMu.Unlock()
	b.refs--
	if b.refs > 0 {
		return
	}
	removeFrom(s.ports, b.port, b)
}

// removeFrom takes v out of the list m holds at port (listeners, claims,
// UDP sockets by local port), and the list out of m once it is empty.
func removeFrom[V comparable](m map[uint16][]V, port uint16, v V) {
	list := m[port]
	if i := slices.Index(list, v); i >= 0 {
		list = slices.Delete(list, i, i+1)
	}
	if len(list) == 0 {
		delete(m, port)
	} else {
		m[port] = list
	}
}

const numEphemeral = EphemeralPortLast - EphemeralPortFirst + 1

// pickBindPortLocked chooses a port for bind with port 0 (or listen on an
// unbound socket): a port of the ephemeral range where no claim overlaps b,
// scanning from a keyed-hash offset. It returns 0 when none is free. It
// needs ctl.
//
// +checklocks:s.ctl
func (s *Host) pickBindPortLocked(b *binding) uint16 {
	off := uint32(s.key.hashAddrs(domainBindPort, netip.AddrPortFrom(b.addr, 0), netip.AddrPort{}, uint64(s.bindNext)))
	s.bindNext++
	s.portsMu.Lock()
	defer s.portsMu.Unlock()
	for i := uint32(0); i < numEphemeral; i++ {
		port := uint16(EphemeralPortFirst + (off+i)%numEphemeral)
		free := true
		for _, o := range s.ports[port] {
			if overlap(b, o) {
				free = false
				break
			}
		}
		if free {
			return port
		}
	}
	return 0
}

// pickConnectPortLocked chooses the local port of a connection from local
// to remote with RFC 6056's algorithm 3 (double-hash port selection): the
// keyed hash of the 3-tuple is the starting offset and a counter (RFC
// 6056's table of increments, simplified to one counter) moves on at every
// attempt. A port is suitable when no bind or listen claims it and the
// 4-tuple is unused. It returns 0 when none is. It needs l, which names
// ctl and no shard or every shard. A port it finds free stays free while
// ctl is held: only the control plane claims ports and makes
// connections.
//
// +checklocks:s.ctl
func (s *Host) pickConnectPortLocked(local netip.Addr, remote netip.AddrPort, l *locks) uint16 {
	off := uint32(s.key.hashAddrs(domainPort, netip.AddrPortFrom(local, 0), remote, 0))
	for range numEphemeral {
		port := uint16(EphemeralPortFirst + (off+s.portNext)%numEphemeral)
		s.portNext++
		if !s.explicitlyClaimed(port) && !s.connInUse(netip.AddrPortFrom(local, port), remote, l) {
			return port
		}
	}
	return 0
}

// explicitlyClaimed reports whether a bind or listen claims port:
// connect never picks such a port.
func (s *Host) explicitlyClaimed(port uint16) bool {
	s.portsMu.Lock()
	defer s.portsMu.Unlock()
	for _, o := range s.ports[port] {
		if o.explicit {
			return true
		}
	}
	return false
}
