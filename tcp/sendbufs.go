package tcp

import "github.com/synstack/synstack/tcp/seq"

// Linux's write queue is a list of buffers (skbs): tcp_sendmsg fills the
// last one not yet sent up to a size, then starts another. The buffers
// matter on the wire in two ways. A GSO packet is cut from the buffer at
// the head of the queue, which Linux 6.10 on first grows from the next
// one up to the packet the window and the GSO goal allow (tcp_grow_skb;
// grownBufEnd), so the buffers bound the packets the send loop forms
// (gsoPacketSegs) and so where PSH lands, since every packet of more than
// one segment carries it. And forced_push is checked where a buffer
// fills (markPush). On Linux 6.18 a buffer is the size goal (half the
// peer's largest window, in whole segments) but no more than the
// congestion window at the time of the write: a 200 kB write at cwnd 2
// is cut into buffers of two segments (packetdrill's
// cubic/cubic-rto-ss-ca-cwnd-bump.pkt, its forced PSH on the segment
// that ends at 18 kB; a packet there is two segments at most while the
// GSO goal is two, and the one segment a packet left of a buffer goes
// with the first of the next), while a 40 kB write at cwnd 10 makes
// buffers of ten (testdata/scripts/recovery/prr-proportional.pkt, a
// packet of two from the middle of one after PRR sent single segments).
//
// synstack keeps the buffers as runs, one per change of size: from at
// on, buffers of step octets, until the next run. They live in the flight
// state, which stays while data waits unsent; a connection that has
// given it back sends its next data without them, as if one buffer held
// it all.
type bufRun struct {
	at   seq.Value
	step int32
}

// bufStep is the size of the buffers a write starts now: the size goal,
// at most the congestion window.
func (c *Conn) bufStep() int {
	return min(c.sizeGoal(max(c.opt.sndMSS, 1)), c.cwndWhole())
}

// markPush records the buffers and PSH marks of a write of [start, end):
// Linux first fills the last buffer not yet sent (what is left of it
// after a packet was cut from it), then starts new ones; each time a
// buffer is full it marks it for push when the data written since the
// last mark exceeds half the peer's largest window (forced_push), and it
// marks the last buffer of every write (tcp_push) unless MSG_MORE.
func (c *Conn) markPush(start, end seq.Value) {
	step := c.bufStep()
	first := c.tailBufStart(start)
	fl := c.borrowFlight()
	fl.bufRuns = addRun(fl.bufRuns, first, step)
	half := int32(c.snd.maxWnd / 2)
	for b := first.Add(seq.Size(step)); b.LessThan(end); b = b.Add(seq.Size(step)) {
		if b.Sub(c.sq.pushed) > half {
			c.sq.pushMarks = append(c.sq.pushMarks, sendMark{at: b, push: true})
			c.sq.pushed = b
		}
	}
	if c.sc.more {
		return // MSG_MORE: only the forced marks
	}
	c.sq.pushMarks = append(c.sq.pushMarks, sendMark{at: end, push: true})
	c.sq.pushed = end
}

// tailBufStart is where the buffer a write at start fills first begins:
// the last buffer, or its part not yet sent, if it ends at start short of
// full; start itself otherwise.
func (c *Conn) tailBufStart(start seq.Value) seq.Value {
	if c.fl == nil || len(c.fl.bufRuns) == 0 || !c.snd.nxt.LessThan(start) {
		return start
	}
	r := c.fl.bufRuns[len(c.fl.bufRuns)-1]
	if !r.at.LessThan(start) {
		return start
	}
	off := start.Sub(r.at) % r.step
	if off == 0 {
		return start // the last buffer is full
	}
	b := start.Add(-seq.Size(off))
	if b.LessThan(c.snd.nxt) {
		b = c.snd.nxt // a packet was cut from it: the rest is a buffer
	}
	return b
}

// addRun records in runs that buffers of step octets start at at.
func addRun(runs []bufRun, at seq.Value, step int) []bufRun {
	if k := len(runs); k > 0 {
		r := &runs[k-1]
		if int(r.step) == step && at.Sub(r.at)%r.step == 0 {
			return runs // the run goes on
		}
		if r.at == at {
			r.step = int32(step)
			return runs
		}
	}
	return append(runs, bufRun{at: at, step: int32(step)})
}

// bufEndFrom is how many octets from s the buffer holding s has left, or
// 0 when no buffer is known there.
func (c *Conn) bufEndFrom(s seq.Value) int {
	if c.fl == nil {
		return 0
	}
	runs := c.fl.bufRuns
	i := len(runs) - 1
	for i >= 0 && s.LessThan(runs[i].at) {
		i--
	}
	if i < 0 {
		return 0
	}
	r := runs[i]
	d := int(r.step - s.Sub(r.at)%r.step)
	if i+1 < len(runs) {
		d = min(d, int(runs[i+1].at.Sub(s)))
	}
	return d
}

// grownBufEnd is how many octets from SND.NXT the buffer at the head of
// the send queue holds once Linux's tcp_grow_skb (6.10 on) has run, for a
// packet of at most want octets: when the head buffer is shorter than
// the packet the congestion window and the GSO goal allow, tcp_write_xmit
// moves the missing octets from the front of the next buffer into it.
// Only the next buffer gives (not the one after), and an end of record
// stops it (tcp_skb_can_collapse), which eorLimit bounds already; a PSH
// mark does not (the grown buffer keeps its PSH, and its packet carries
// it on its last segment). want, 0 or more, is returned when no buffer is known at
// SND.NXT or the head buffer is long enough.
//
// The buffers are not rewritten: the rest of the next buffer still ends
// where it did, which is what bufEndFrom finds from the new SND.NXT.
func (c *Conn) grownBufEnd(want int) int {
	d := c.bufEndFrom(c.snd.nxt)
	if d <= 0 || d >= want {
		return want
	}
	next := c.bufEndFrom(c.snd.nxt.Add(seq.Size(d)))
	if next <= 0 {
		return want
	}
	return min(want, d+next)
}

// pruneBufRuns forgets the runs SND.UNA has passed, keeping the one that
// holds it, of the buffers and of their memory (sndmem.go).
func (c *Conn) pruneBufRuns() {
	if c.fl == nil {
		return
	}
	c.fl.bufRuns = pruneRuns(c.fl.bufRuns, c.snd.una)
	c.fl.memRuns = pruneRuns(c.fl.memRuns, c.sq.start)
}

// joinLastRecord notes that the segment just sent went in one GSO packet
// with the one before it.
func (c *Conn) joinLastRecord() {
	q := &c.fl.txq
	if r := q.at(q.len() - 1); q.len() > 1 {
		q.setFlags(r, r.flags|recJoined)
	}
}

// rtxPacketRecs is how many transmit records, from the next lost one, go
// again as one GSO packet: as Linux's retransmission queue holds what it
// sent as one buffer until a SACK or an ACK cuts it, a packet sent again
// is the lost records that were sent in one packet and are lost still,
// none SACKed between them, as many as the congestion window has room
// for (in segments, with no half-window rule) and the GSO goal allows
// (tcp_xmit_retransmit_queue, tcp_retransmit_skb). Every packet of more
// than one segment carries PSH, a packet sent again too.
func (c *Conn) rtxPacketRecs(room int) int {
	i, ok := c.nextLost()
	if !ok {
		return 1
	}
	mss := max(c.opt.sndMSS, 1)
	limit := min((room+mss-1)/mss, c.tsoGoalSegs(mss))
	q := &c.fl.txq
	k := 1
	for j := i + 1; j < q.len() && k < limit; j++ {
		r := q.at(j)
		if !r.has(recJoined) || r.flags&(recLost|recSacked) != recLost {
			break
		}
		k++
	}
	return k
}

// resendingSynData reports whether data from SND.NXT is a Fast Open SYN's
// data going again after the handshake (up to fastOpen.resendEnd, 0 when
// none). Linux sends it as a
// retransmission (tcp_rcv_fastopen_synack marks it lost), which is no
// small segment for Nagle's rule (tcp_minshall_update runs on new data
// only): the data written after it is not held behind it.
func (c *Conn) resendingSynData() bool {
	return c.fo != nil && c.fo.resendEnd != 0 && c.snd.nxt.LessThan(c.fo.resendEnd)
}
