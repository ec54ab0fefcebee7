package engine

import (
	"hash/maphash"
	"iter"
	"net/netip"
)

// connTable is a shard's table of connections by 4-tuple (its part of
// Linux's ehash). A Go map keyed by the tuple would spend 64 bytes of key on every
// entry; this one keys its map by a 64-bit hash of the tuple, with a seed
// of its own so that a peer cannot choose tuples that collide, and chains
// the rare endpoints whose hashes are equal through endpoint.next. An entry
// then costs one map slot of 16 bytes.
type connTable struct {
	seed maphash.Seed
	m    map[uint64]*endpoint
	n    int
}

func newConnTable() connTable {
	return connTable{seed: maphash.MakeSeed(), m: make(map[uint64]*endpoint)}
}

func (t *connTable) hash(local, remote netip.AddrPort) uint64 {
	return maphash.Comparable(t.seed, connKey{local, remote})
}

// get returns the connection local-remote, or nil.
func (t *connTable) get(local, remote netip.AddrPort) *endpoint {
	for ep := t.m[t.hash(local, remote)]; ep != nil; ep = ep.next {
		if ep.local == local && ep.remote == remote {
			return ep
		}
	}
	return nil
}

// add enters ep, whose tuple the table must not hold yet.
func (t *connTable) add(ep *endpoint) {
	h := t.hash(ep.local, ep.remote)
	ep.next = t.m[h]
	t.m[h] = ep
	t.n++
}

// remove takes ep out; it must be in the table.
func (t *connTable) remove(ep *endpoint) {
	h := t.hash(ep.local, ep.remote)
	for p, at := t.m[h], (**endpoint)(nil); p != nil; at, p = &p.next, p.next {
		if p != ep {
			continue
		}
		switch {
		case at != nil:
			*at = ep.next
		case ep.next != nil:
			t.m[h] = ep.next
		default:
			delete(t.m, h)
		}
		ep.next = nil
		t.n--
		return
	}
}

// len is the number of connections.
func (t *connTable) len() int { return t.n }

// all yields every connection, in no particular order. The table must not
// change while it runs.
func (t *connTable) all() iter.Seq[*endpoint] {
	return func(yield func(*endpoint) bool) {
		for _, head := range t.m {
			for ep := head; ep != nil; ep = ep.next {
				if !yield(ep) {
					return
				}
			}
		}
	}
}
