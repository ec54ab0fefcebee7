package sim

import (
	"github.com/synstack/synstack/link"
)

// Bridge joins two links through a simulated link with faults: what x
// delivers (the packets that arrive on x) crosses the faults of the xy
// options and is written to y, and what y delivers crosses yx's and is
// written to x. With x and y TUN devices (link/tun) on the real clock it
// impairs real traffic between two kernels, as `synstack impair` does; the
// faults are those of Pair, on the same code.
type Bridge struct {
	x, y link.Endpoint
	a, b *Endpoint // a sends what came from x; b what came from y
}

type writeTo struct{ l link.Endpoint }

func (w writeTo) DeliverPacket(pkt []byte) { w.l.WritePacket(pkt) }

type sendOn struct{ e *Endpoint }

func (s sendOn) DeliverPacket(pkt []byte) { s.e.WritePacket(pkt) }

// NewBridge attaches itself to x and y and starts carrying packets. An MTU
// left at zero in xy is y's MTU, in yx x's.
func NewBridge(x, y link.Endpoint, xy, yx Options) *Bridge {
	if xy.MTU == 0 {
		xy.MTU = y.MTU()
	}
	if yx.MTU == 0 {
		yx.MTU = x.MTU()
	}
	a, b := PairWith(xy, yx)
	a.name, b.name = "x", "y"
	a.out.dir, b.out.dir = "x>y", "y>x"
	br := &Bridge{x: x, y: y, a: a, b: b}
	a.Attach(writeTo{x})
	b.Attach(writeTo{y})
	x.Attach(sendOn{a})
	y.Attach(sendOn{b})
	return br
}

// Stats returns the counters of each direction: what came from x (sent
// towards y, lost, ..., Delivered: written to y), and what came from y.
func (br *Bridge) Stats() (xy, yx Stats) { return br.a.out.snapshot(), br.b.out.snapshot() }

// Close detaches the bridge from x and y (Attach(nil)), which it leaves
// open; packets in flight are dropped.
func (br *Bridge) Close() error {
	br.x.Attach(nil)
	br.y.Attach(nil)
	br.a.Close()
	br.b.Close()
	return nil
}

// snapshot returns the direction's counters.
func (p *path) snapshot() Stats {
	p.from.mu.Lock()
	s := p.stats
	p.from.mu.Unlock()
	p.to.mu.Lock()
	s.Delivered = p.delivered
	p.to.mu.Unlock()
	return s
}
