package sim

import (
	"fmt"
	"hash/fnv"
	"net/netip"
	"sort"
	"sync"
	"time"
)

// Network joins any number of endpoints (stacks) like a switch: a packet
// written by one node goes to the node that has its destination address
// (or a route to it), through the options of that direction: every pair of
// nodes is a link with faults of its own. Partitions cut chosen groups of
// nodes from each other and heal. The same seed replays the same run: each
// direction draws from a generator seeded from Options.Seed and the two
// nodes' names, whatever order nodes are added in.
//
//	n := sim.NewNetwork(sim.Options{Clock: vc, Seed: seed, Delay: 5 * time.Millisecond})
//	srv := n.Add("server", netip.MustParseAddr("10.0.0.1"))
//	cli := n.Add("client", netip.MustParseAddr("10.0.0.2"))
//	n.SetLink("server", "client", sim.Options{Delay: 20 * time.Millisecond, Loss: 0.01})
//	n.Partition(time.Second, []string{"server"}, []string{"client"})
//
// A packet whose destination no node has is dropped ("no-route"), as is a
// packet to the sender's own address: the network has no loopback.
// Configuration (Add, AddRoute, SetLink) is safe while packets flow.
type Network struct {
	opts Options

	mu     sync.RWMutex
	nodes  map[string]*Endpoint
	addrs  map[netip.Addr]*Endpoint
	routes []netRoute
	paths  map[[2]*Endpoint]*path
	cuts   map[[2]string]*partition // by names in sorted order
	links  map[[2]string]Options    // SetLink's, by from and to
}

type netRoute struct {
	p  netip.Prefix
	to *Endpoint
}

// NewNetwork returns an empty network whose links all have opts (their
// Clock, Seed, MTU and Trace are the network's), until SetLink gives a
// direction options of its own.
func NewNetwork(opts Options) *Network {
	return &Network{
		opts:  withDefaults(opts),
		nodes: map[string]*Endpoint{},
		addrs: map[netip.Addr]*Endpoint{},
		paths: map[[2]*Endpoint]*path{},
		cuts:  map[[2]string]*partition{},
		links: map[[2]string]Options{},
	}
}

// Seed returns the network's seed: print it when a test fails, and the
// same seed replays the run.
func (n *Network) Seed() uint64 { return n.opts.Seed }

// Add joins a new node called name, reachable at addrs (without prefix
// length: the addresses a stack on it has), and returns its endpoint, to
// give to synstack.Config.Link. Its MTU is the network's. Add panics if
// name or one of addrs is already taken: that is a mistake in the test,
// not in the network.
func (n *Network) Add(name string, addrs ...netip.Addr) *Endpoint {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, dup := n.nodes[name]; dup || name == "" {
		panic(fmt.Sprintf("sim: Network.Add: node name %q empty or already taken", name))
	}
	for _, a := range addrs {
		if _, dup := n.addrs[a.Unmap()]; dup {
			panic(fmt.Sprintf("sim: Network.Add(%q): address %s already taken", name, a))
		}
	}
	e := &Endpoint{name: name, mtu: n.opts.MTU, net: n}
	for _, a := range addrs {
		n.addrs[a.Unmap()] = e
	}
	for _, o := range n.nodes {
		n.paths[[2]*Endpoint{o, e}] = n.newPathLocked(o, e)
		n.paths[[2]*Endpoint{e, o}] = n.newPathLocked(e, o)
	}
	n.nodes[name] = e
	return e
}

// AddRoute sends packets for p to the node called name, when no node has
// their destination address: the node is a router, or a stack that
// forwards (synstack.Stack.SetForwarder). The longest prefix wins.
func (n *Network) AddRoute(p netip.Prefix, name string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	e := n.nodeLocked("AddRoute", name)
	n.routes = append(n.routes, netRoute{p: p.Masked(), to: e})
	sort.SliceStable(n.routes, func(i, j int) bool { return n.routes[i].p.Bits() > n.routes[j].p.Bits() })
}

// SetLink gives the direction from -> to options of its own (Clock, Seed
// and Trace, if zero, are the network's; MTU, if zero, too). The
// direction starts afresh: its fault generator from the seed, its
// bottleneck empty, its LinkStats at zero; packets already in flight
// still arrive as they were sent.
func (n *Network) SetLink(from, to string, o Options) {
	n.mu.Lock()
	defer n.mu.Unlock()
	f, t := n.nodeLocked("SetLink", from), n.nodeLocked("SetLink", to)
	if f == t {
		panic(fmt.Sprintf("sim: Network.SetLink: %q to itself", from))
	}
	n.links[[2]string{from, to}] = o
	n.paths[[2]*Endpoint{f, t}] = n.newPathLocked(f, t)
}

func (n *Network) nodeLocked(op, name string) *Endpoint {
	e, ok := n.nodes[name]
	if !ok {
		panic(fmt.Sprintf("sim: Network.%s: no node called %q", op, name))
	}
	return e
}

// newPathLocked makes the direction from -> to with its options, its
// generator and the partition it shares with the other direction.
func (n *Network) newPathLocked(from, to *Endpoint) *path {
	o, ok := n.links[[2]string{from.name, to.name}]
	if !ok {
		o = n.opts
	}
	o.Clock = n.opts.Clock
	if o.Seed == 0 {
		o.Seed = n.opts.Seed
	}
	if o.Trace == nil {
		o.Trace = n.opts.Trace
	}
	if o.MTU == 0 {
		o.MTU = n.opts.MTU
	}
	o = withDefaults(o)
	h := fnv.New64a()
	h.Write([]byte(from.name + ">" + to.name))
	return newPath(from, to, o, h.Sum64(), n.cutLocked(from.name, to.name))
}

func (n *Network) cutLocked(x, y string) *partition {
	if y < x {
		x, y = y, x
	}
	k := [2]string{x, y}
	c := n.cuts[k]
	if c == nil {
		c = &partition{}
		n.cuts[k] = c
	}
	return c
}

// route finds the direction a packet from e takes, nil if none.
func (n *Network) route(e *Endpoint, pkt []byte) *path {
	dst, ok := destination(pkt)
	if !ok {
		return nil
	}
	n.mu.RLock()
	defer n.mu.RUnlock()
	to := n.addrs[dst]
	if to == nil {
		for _, r := range n.routes {
			if r.p.Contains(dst) {
				to = r.to
				break
			}
		}
	}
	if to == nil || to == e {
		return nil
	}
	return n.paths[[2]*Endpoint{e, to}]
}

// destination reads an IPv4 or IPv6 packet's destination address.
func destination(pkt []byte) (netip.Addr, bool) {
	if len(pkt) == 0 {
		return netip.Addr{}, false
	}
	switch pkt[0] >> 4 {
	case 4:
		if len(pkt) >= 20 {
			return netip.AddrFrom4([4]byte(pkt[16:20])), true
		}
	case 6:
		if len(pkt) >= 40 {
			return netip.AddrFrom16([16]byte(pkt[24:40])).Unmap(), true
		}
	}
	return netip.Addr{}, false
}

// cutsOf returns the partitions between e and every other node.
func (n *Network) cutsOf(e *Endpoint) []*partition {
	n.mu.Lock()
	defer n.mu.Unlock()
	var cs []*partition
	for name := range n.nodes {
		if name != e.name {
			cs = append(cs, n.cutLocked(e.name, name))
		}
	}
	return cs
}

// between returns the partitions between every node of side1 and every
// node of side2.
func (n *Network) between(op string, side1, side2 []string) []*partition {
	n.mu.Lock()
	defer n.mu.Unlock()
	var cs []*partition
	for _, x := range side1 {
		n.nodeLocked(op, x)
		for _, y := range side2 {
			n.nodeLocked(op, y)
			if x != y {
				cs = append(cs, n.cutLocked(x, y))
			}
		}
	}
	return cs
}

// Partition cuts every node of side1 from every node of side2, both ways,
// for d, after which the cut heals by itself; d <= 0 cuts until Heal.
// Nodes on the same side still reach each other, and packets already in
// flight still arrive. A packet the cut stops is dropped ("partitioned").
func (n *Network) Partition(d time.Duration, side1, side2 []string) {
	for _, c := range n.between("Partition", side1, side2) {
		c.cut(n.opts.Clock, d)
	}
}

// Heal ends the partitions between every node of side1 and every node of
// side2.
func (n *Network) Heal(side1, side2 []string) {
	for _, c := range n.between("Heal", side1, side2) {
		c.heal()
	}
}

// HealAll ends every partition of the network.
func (n *Network) HealAll() {
	n.mu.Lock()
	cs := make([]*partition, 0, len(n.cuts))
	for _, c := range n.cuts {
		cs = append(cs, c)
	}
	n.mu.Unlock()
	for _, c := range cs {
		c.heal()
	}
}

// LinkStats returns the counters of the direction from -> to: what from
// sent to to and what happened to it (Delivered: what reached to).
func (n *Network) LinkStats(from, to string) Stats {
	p := n.lookupPath(from, to)
	if p == nil {
		return Stats{}
	}
	return p.snapshot()
}

func (n *Network) lookupPath(from, to string) *path {
	n.mu.RLock()
	defer n.mu.RUnlock()
	f, t := n.nodeLocked("LinkStats", from), n.nodeLocked("LinkStats", to)
	return n.paths[[2]*Endpoint{f, t}]
}
