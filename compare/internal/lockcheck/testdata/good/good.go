// Package good is a lock regime modelled on synstack's engine, which the
// checklocks analyzer accepts: a host whose control plane is guarded by
// ctl, and shards each with their own mu guarding their connections. The
// package bad misuses it.
package good

import "sync"

// Host is the control plane; its listeners are guarded by ctl.
type Host struct {
	ctl sync.Mutex
	// +checklocks:ctl
	listeners map[uint16]int

	// Shards are fixed at creation.
	Shards []*Shard
}

// Shard owns its connections, guarded by its own mu.
type Shard struct {
	mu sync.Mutex
	// +checklocks:mu
	Conns map[uint32]*Endpoint
}

// Endpoint is a connection, owned by its shard.
type Endpoint struct {
	sh *Shard
	// +checklocks:sh.mu
	state int
}

// NewEndpoint returns a connection of sh.
func NewEndpoint(sh *Shard) *Endpoint { return &Endpoint{sh: sh} }

// AddConn files ep under id.
//
// +checklocks:sh.mu
func (sh *Shard) AddConn(id uint32, ep *Endpoint) {
	sh.Conns[id] = ep
}

// listen counts a listener on port.
//
// +checklocks:h.ctl
func (h *Host) listen(port uint16) {
	h.listeners[port]++
}

// Connect takes ctl, then the shard's lock, and calls what needs them.
// It names the shard's lock as ep.sh.mu, the path the annotations name:
// the analyzer knows locks by path, so a lock taken as sh.mu would not
// count for ep.state although ep.sh == sh.
func (h *Host) Connect(port uint16, id uint32) {
	ep := NewEndpoint(h.Shards[id%uint32(len(h.Shards))])
	h.ctl.Lock()
	defer h.ctl.Unlock()
	h.listen(port)
	ep.sh.mu.Lock()
	ep.sh.AddConn(id, ep)
	ep.state = 1
	ep.sh.mu.Unlock()
}
