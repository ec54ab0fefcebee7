package synstack

import (
	"net/netip"

	"github.com/synstack/synstack/wire"
)

// Transmit. Every packet the stack sends is built under mu (the tcp.Conn
// that produces a segment runs under it) and leaves by one of two ways:
//
//   - During packet delivery (DeliverPacket, DeliverPackets), where the
//     stack itself releases mu, txDefer is set: packets are built in
//     pooled buffers and queued in txq, and the deliverer, once done, takes
//     txMu, releases mu and only then writes the queue. The link write (in
//     link/pipe and link/tun a copy and a hand-off to a queue) and, when
//     no OnPacket hook has to see the finished packet, the TCP checksum
//     are done outside mu. This is where a stack spends most of its
//     sending: the data segments an ACK releases, the ACKs of data.
//   - Everywhere else (socket calls, timers, Close) a packet is written
//     at once, under mu and txMu.
//
// The order of packets on the link is the order they were built in: a
// queue is handed over with mu held and txMu taken, and a packet written
// at once takes txMu too, so it waits for every queue handed over before.
// OnPacket is called under mu as each packet is built, so it sees the
// link's order. IpOutRequests counts a queued packet when it is queued;
// a write that then fails moves it to IpOutDiscards.

// txPacket is a packet built under mu and waiting in txq.
type txPacket struct {
	buf *[]byte // from txPool; its length is the packet's
	// csumAt, when not 0, is where the TCP segment starts whose checksum
	// (with src and dst) is still to be computed.
	csumAt   int
	src, dst netip.Addr
}

// txGet returns a buffer of n bytes (n <= mtu) for a packet to queue.
func (s *Stack) txGet(n int) *[]byte {
	b, _ := s.txPool.Get().(*[]byte)
	if b == nil {
		buf := make([]byte, s.mtu)
		b = &buf
	}
	*b = (*b)[:n]
	return b
}

// txPut returns a buffer to the pool.
func (s *Stack) txPut(b *[]byte) {
	*b = (*b)[:cap(*b)]
	s.txPool.Put(b)
}

// queueLocked queues a packet built in a txGet buffer, and counts it.
func (s *Stack) queueLocked(p txPacket) {
	if s.onPacket != nil {
		s.onPacket("out", *p.buf)
	}
	s.txq = append(s.txq, p)
	s.stats.IpOutRequests++
}

// writeLocked hands a packet to OnPacket and the link: at once, or during
// packet delivery (txDefer) by queueing a copy. pkt is not kept.
func (s *Stack) writeLocked(pkt []byte) {
	if s.txDefer {
		b := s.txGet(len(pkt))
		copy(*b, pkt)
		s.queueLocked(txPacket{buf: b})
		return
	}
	if s.onPacket != nil {
		s.onPacket("out", pkt)
	}
	s.txMu.Lock()
	err := s.link.WritePacket(pkt)
	s.txMu.Unlock()
	if err != nil {
		s.stats.IpOutDiscards++
		return
	}
	s.stats.IpOutRequests++
}

// takeTxLocked ends the deferral of packet delivery and returns the
// queued packets, if any, with txMu taken: the caller releases mu and then
// calls writeTx.
func (s *Stack) takeTxLocked() []txPacket {
	s.txDefer = false
	if len(s.txq) == 0 {
		return nil
	}
	s.txMu.Lock()
	q := s.txq
	s.txq, s.txSpare = s.txSpare[:0], nil
	return q
}

// writeTx writes the packets takeTxLocked returned, in order, without mu,
// then releases txMu.
func (s *Stack) writeTx(q []txPacket) {
	failed := 0
	for i := range q {
		p := &q[i]
		pkt := *p.buf
		if p.csumAt != 0 {
			wire.SetTCPChecksum(pkt[p.csumAt:], p.src, p.dst)
		}
		if s.link.WritePacket(pkt) != nil {
			failed++
		}
		s.txPut(p.buf)
		*p = txPacket{}
	}
	s.txSpare = q[:0]
	s.txMu.Unlock()
	if failed > 0 { // the link is closed: rare, worth a second lock
		s.mu.Lock()
		s.stats.IpOutRequests -= uint64(failed)
		s.stats.IpOutDiscards += uint64(failed)
		s.mu.Unlock()
	}
}
