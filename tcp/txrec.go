package tcp

import (
	"github.com/synstack/synstack/tcp/seq"
)

// The transmit record queue: one record per segment sent and not yet
// acknowledged, in sequence order, covering SND.UNA..SND.NXT without gaps.
// It is what Linux keeps in its retransmission queue besides the data:
// when each segment was last sent, whether it was SACKed, marked lost or
// retransmitted, and the delivery-rate snapshot taken when it was sent
// (draft-cheng-iccrg-delivery-rate-estimation). RACK (rack.go) and the
// rate sampler (rate.go) read it; loss recovery (recovery.go) walks it to
// choose what to send again.
//
// The records live in a ring that grows by doubling and is reused: in a
// steady state sending and acknowledging allocate nothing.

// Record flags.
const (
	recSacked      uint8 = 1 << iota // the peer holds all of it (SACK)
	recLost                          // marked lost, not yet sent again
	recRetrans                       // the copy in flight is a retransmission
	recEverRetrans                   // sent more than once (Karn: no RTT from it)
	recJoined                        // sent in one GSO packet with the record before it
)

// txrec is one segment sent: [start, end) in sequence space (a FIN counts
// one), and the state of its delivery.
type txrec struct {
	start, end seq.Value
	xmit       instant // last (re)transmission
	order      uint64  // transmission count then: orders sends at one instant
	flags      uint8

	// Delivery-rate snapshot at the last transmission.
	delivered   uint64  // Conn.delivered then
	deliveredAt instant // Conn.deliveredAt then
	firstSentAt instant // Conn.firstSentAt then
	appLimited  bool    // the sender was application-limited then
}

func (r *txrec) has(f uint8) bool { return r.flags&f != 0 }
func (r *txrec) size() int        { return int(r.end.Sub(r.start)) }

// txQueue is a ring of records, with running sums so that the pipe
// estimate costs nothing per segment.
type txQueue struct {
	buf  []txrec
	head int
	n    int

	bytes      int // sequence space the records cover
	sacked     int // of it, in records marked SACKed
	lost       int // in records marked lost and not SACKed
	sackedRecs int // records marked SACKed
	packets    int // records that begin a GSO packet (not recJoined)
}

// weigh adds (sign 1) or removes (sign -1) n bytes of a record with flags f
// from the sums.
func (q *txQueue) weigh(f uint8, n, sign int) {
	q.bytes += sign * n
	if f&recJoined == 0 {
		q.packets += sign
	}
	switch {
	case f&recSacked != 0:
		q.sacked += sign * n
		q.sackedRecs += sign
	case f&recLost != 0:
		q.lost += sign * n
	}
}

// setFlags changes the flags of record r, keeping the sums.
func (q *txQueue) setFlags(r *txrec, f uint8) {
	q.weigh(r.flags, r.size(), -1)
	r.flags = f
	q.weigh(f, r.size(), 1)
}

func (q *txQueue) len() int { return q.n }

// at returns the i-th record from the oldest.
func (q *txQueue) at(i int) *txrec { return &q.buf[(q.head+i)&(len(q.buf)-1)] }

// push appends a record, growing the ring (by doubling) when full.
func (q *txQueue) push(r txrec) {
	if q.n == len(q.buf) {
		nb := make([]txrec, max(16, 2*len(q.buf)))
		for i := 0; i < q.n; i++ {
			nb[i] = *q.at(i)
		}
		q.buf, q.head = nb, 0
	}
	*q.at(q.n) = r
	q.n++
	q.weigh(r.flags, r.size(), 1)
}

// popFront drops the oldest record.
func (q *txQueue) popFront() {
	r := q.at(0)
	q.weigh(r.flags, r.size(), -1)
	q.head = (q.head + 1) & (len(q.buf) - 1)
	q.n--
	if q.n == 0 {
		q.head = 0
		if len(q.buf) > txQueueKeep {
			// All acknowledged: a large ring goes, so that an idle
			// connection does not keep a bulk transfer's records.
			q.buf = nil
		}
	}
}

// txQueueKeep is the most records an empty ring keeps (256 KiB): a flight
// of 4 MiB in MSS-sized records at MTU 1500. With 1024, a bulk sender over
// TUN dropped its ring each time its flight drained and grew it again by
// doubling, 135 MB allocated and 27 collections for 3 GiB sent; with
// 4096, 29 MB and 4. The spare rings a Scratch keeps stay bounded by
// maxSpareRecs.
const txQueueKeep = 4096

// reset forgets every record and releases the ring.
func (q *txQueue) reset() {
	q.head, q.n = 0, 0
	q.bytes, q.sacked, q.lost, q.sackedRecs, q.packets = 0, 0, 0, 0, 0
	q.buf = nil
}

// find returns the index of the record holding s, or -1.
func (q *txQueue) find(s seq.Value) int {
	lo, hi := 0, q.n
	for lo < hi {
		m := (lo + hi) / 2
		if q.at(m).end.LessThanEq(s) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < q.n && q.at(lo).start.LessThanEq(s) {
		return lo
	}
	return -1
}

// recordSent appends the record of a new segment [s, s+n) (plus the FIN)
// sent now, with the rate sampler's snapshot.
func (c *Conn) recordSent(now instant, s seq.Value, n int, fin bool) {
	end := s.Add(seq.Size(n))
	if fin {
		end++
	}
	if end == s {
		return
	}
	fl := c.borrowFlight()
	r := txrec{start: s, end: end}
	c.rateOnSend(now, &r)
	fl.txq.push(r)
}

// recordRetransmit notes that the record at i was sent again now.
func (c *Conn) recordRetransmit(now instant, i int) {
	r := c.fl.txq.at(i)
	c.fl.txq.setFlags(r, r.flags&^recLost|recRetrans|recEverRetrans)
	c.rateOnSend(now, r)
	c.undoNoteRetransmit(now)
}

// pruneRecords drops the records SND.UNA has passed, delivering (rate.go,
// rack.go) those not SACKed before.
func (c *Conn) pruneRecords(now instant) {
	c.sc.rs.reordered = false
	defer c.countReordering()
	for c.recs() > 0 {
		r := c.fl.txq.at(0)
		if r.end.GreaterThan(c.snd.una) {
			if r.start.LessThan(c.snd.una) {
				// Acknowledged in part: the rest stays, as Linux's
				// tcp_trim_head.
				c.fl.txq.weigh(r.flags, r.size(), -1)
				r.start = c.snd.una
				c.fl.txq.weigh(r.flags, r.size(), 1)
			}
			return
		}
		if !r.has(recSacked) {
			c.onDelivered(now, r, false)
		}
		c.fl.txq.popFront()
	}
}

// markSackedRecords marks the records [l, r) now fully covers as SACKed
// and delivers them; c.sacked already holds [l, r).
func (c *Conn) markSackedRecords(now instant, l, r seq.Value) {
	if c.fl == nil {
		return
	}
	i := c.fl.txq.find(l)
	if i < 0 {
		i = 0
		for i < c.fl.txq.len() && c.fl.txq.at(i).end.LessThanEq(l) {
			i++
		}
	}
	for ; i < c.fl.txq.len(); i++ {
		rec := c.fl.txq.at(i)
		if !rec.start.LessThan(r) {
			return
		}
		if rec.has(recSacked) || !c.isSacked(rec.start, rec.end) {
			continue
		}
		c.fl.txq.setFlags(rec, rec.flags&^(recLost|recRetrans)|recSacked)
		c.onDelivered(now, rec, true)
	}
}

// isSacked reports whether one SACKed range covers [l, r).
func (c *Conn) isSacked(l, r seq.Value) bool {
	for _, x := range c.cc.sacked {
		if x.l.LessThanEq(l) && r.LessThanEq(x.r) {
			return true
		}
		if l.LessThan(x.l) {
			return false
		}
	}
	return false
}

// recordProbe notes a tail loss probe that sent again the segment from s.
func (c *Conn) recordProbe(now instant, s seq.Value) {
	if c.fl == nil {
		return
	}
	if i := c.fl.txq.find(s); i >= 0 && !c.fl.txq.at(i).has(recSacked) {
		c.recordRetransmit(now, i)
	}
}

// sackWholeSegments narrows the SACK block [l, r) to what Linux takes of
// it (tcp_match_skb_to_sack): SACK information counts in whole segments.
// A block edge inside a segment sent is moved, from the segment's start,
// to a multiple of the MSS (the left edge up, the right edge down), or to
// the segment's edge: a block covering part of a segment of an MSS or
// less marks none of it, and that part is sent again whole. ok is false
// when nothing is left.
func (c *Conn) sackWholeSegments(l, r seq.Value) (seq.Value, seq.Value, bool) {
	if c.fl == nil {
		return l, r, true
	}
	mss := int32(max(c.opt.sndMSS, 1))
	q := &c.fl.txq
	if i := q.find(l); i >= 0 {
		if rec := q.at(i); rec.start.LessThan(l) {
			in := (l.Sub(rec.start) + mss - 1) / mss * mss
			l = rec.start.Add(seq.Size(min(in, rec.end.Sub(rec.start))))
		}
	}
	if i := q.find(r); i >= 0 {
		if rec := q.at(i); rec.start.LessThan(r) {
			r = rec.start.Add(seq.Size(r.Sub(rec.start) / mss * mss))
		}
	}
	return l, r, l.LessThan(r)
}
