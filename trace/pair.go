package trace

import "github.com/synstack/synstack/wire"

// segmentKey tells packets on the wire apart well enough to pair the
// sending of one (a PacketOut on one host) with its arrival (a PacketIn on
// the other): direction, flags, sequence and acknowledgment numbers,
// window, payload length and timestamp value. It does not use the raw
// bytes, which a link may change on the way (checksum offload, TTL), and
// it keeps retransmissions apart where they carry a newer timestamp.
// Packets that are not TCP are keyed by their bytes.
type segmentKey struct {
	flow     FlowKey
	flags    wire.TCPFlags
	seq, ack uint32
	win      uint16
	n        int
	tsval    uint32
	raw      string
}

func keyOf(pkt []byte) segmentKey {
	p, err := ParsePacket(pkt)
	if err != nil {
		return segmentKey{raw: string(pkt)}
	}
	k := segmentKey{flow: FlowKey{p.Src, p.Dst}, flags: p.TCP.Flags, seq: p.TCP.Seq,
		ack: p.TCP.Ack, win: p.TCP.Window, n: p.PayloadLen}
	if p.TCP.Options.HasTimestamp {
		k.tsval = p.TCP.Options.TSVal
	}
	return k
}

// pairing matches packets sent with their arrivals. Packets with the same
// key (a burst of identical duplicate ACKs, a retransmission without
// timestamps) are matched first in, first out: a link that does not
// reorder them delivers them in the order they were sent.
type pairing struct {
	waiting map[segmentKey][]int // rows of packets sent and not yet arrived, oldest first
}

// sent records the packet of row i as on its way.
func (p *pairing) sent(k segmentKey, i int) {
	if p.waiting == nil {
		p.waiting = map[segmentKey][]int{}
	}
	p.waiting[k] = append(p.waiting[k], i)
}

// arrived returns the row of the oldest packet on its way with key k, and
// takes it off the way.
func (p *pairing) arrived(k segmentKey) (int, bool) {
	q := p.waiting[k]
	if len(q) == 0 {
		return 0, false
	}
	p.take(k, q[1:])
	return q[0], true
}

// lost returns the row of the newest packet on its way with key k (a link
// reports a loss as the packet is sent), and takes it off the way.
func (p *pairing) lost(k segmentKey) (int, bool) {
	q := p.waiting[k]
	if len(q) == 0 {
		return 0, false
	}
	p.take(k, q[:len(q)-1])
	return q[len(q)-1], true
}

func (p *pairing) take(k segmentKey, rest []int) {
	if len(rest) == 0 {
		delete(p.waiting, k)
		return
	}
	p.waiting[k] = rest
}
