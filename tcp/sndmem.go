package tcp

import "github.com/synstack/synstack/tcp/seq"

// Send-buffer accounting, as Linux's sk_wmem_queued against sk_sndbuf.
//
// Linux charges a socket, for what it has written and the peer has not
// acknowledged, each buffer's payload plus its bookkeeping (the skb's
// truesize), and tcp_sendmsg checks sk_wmem_queued < sk_sndbuf only before
// it starts a new buffer: the buffer it starts is filled to the size goal,
// and an unsent last buffer is topped up to it, without a check. So a
// small send buffer holds fewer octets than its size, and a write may queue
// up to a size goal past it. A buffer that reaches the size goal while it
// is the first unsent one is pushed at once (tcp_push_one): what the
// windows let leave is cut from it, and the rest is a new buffer, topped up
// to the size goal in turn.
//
// Linux also cuts a buffer at every transmit: each packet sent is a buffer
// of its own until it is acknowledged.
//
// synstack counts the same: the buffers a write starts are recorded as runs
// (bufRun: from at on, buffers of step octets) in the flight state's
// memRuns, and sndMem is the queued octets plus skbOverhead for each packet
// in flight and each recorded buffer of the data not yet sent. The payload stays bounded: at most SO_SNDBUF plus one
// largest size goal (sizeGoalMax) is queued, and the stack-wide budget
// caps the ring as before (Writable).

// skbOverhead is what Linux charges a send buffer beyond its payload
// (struct sk_buff, its shared info and the head's allocation). Measured on
// Linux 6.18 with SO_SNDBUF from 2,500 to 6,000 and buffers of one
// segment: between 679 and 726 bytes.
const skbOverhead = 700

// sndMem is Linux's sk_wmem_queued: the octets queued and not yet
// acknowledged, plus skbOverhead for each buffer holding them.
func (c *Conn) sndMem() int {
	return c.sq.n + skbOverhead*c.queuedBufs()
}

// queuedBufs is how many buffers hold the queued octets: as Linux's
// retransmission queue, one for each packet in flight (a packet is cut
// from one buffer and becomes one; one acknowledged in part stays one),
// and the recorded buffers of what is not yet sent.
func (c *Conn) queuedBufs() int {
	if c.sq.n == 0 {
		return 0
	}
	end := c.sq.start.Add(seq.Size(c.sq.n))
	if c.fl == nil || len(c.fl.memRuns) == 0 {
		return 1 // data queued without a write (Fast Open's SYN data)
	}
	n := 0
	if q := &c.fl.txq; q.n > 0 {
		n = q.packets
		if q.at(0).has(recJoined) {
			n++ // the rest of a packet acknowledged in part
		}
	}
	first := c.snd.max
	if first.LessThan(c.sq.start) {
		first = c.sq.start
	}
	runs := c.fl.memRuns
	if first.LessThan(end) && first.LessThan(runs[0].at) {
		n++
	}
	for i, r := range runs {
		lo, hi := r.at, end
		if i+1 < len(runs) {
			hi = runs[i+1].at
		}
		if lo.LessThan(first) {
			lo = first
		}
		if !lo.LessThan(hi) {
			continue
		}
		n += int((hi.Sub(r.at)-1)/r.step-lo.Sub(r.at)/r.step) + 1
	}
	return n
}

// sndTake is how many octets of a write of want tcp_sendmsg takes now;
// with rec it records the buffers they go in. It follows Linux: first the
// unsent last buffer is topped up to the size goal, then new buffers are
// started while sndMem is below SO_SNDBUF, each pushed at once when it is
// full and the first unsent one.
func (c *Conn) sndTake(want int, rec bool) int {
	if want <= 0 {
		return 0
	}
	mss := max(c.opt.sndMSS, 1)
	goal := c.sizeGoal(mss)
	limit := int(c.sq.bufSize)
	// The hard bound: SO_SNDBUF and one largest size goal.
	want = min(want, max(0, limit+sizeGoalMax-c.sq.n))
	mem := c.sndMem()
	pos := c.sq.start.Add(seq.Size(c.sq.n))
	head := c.snd.nxt // the first unsent octet, as pushes would move it
	sendable := c.sendableNow(mss)
	var fl *flightState
	if rec {
		fl = c.borrowFlight()
	}
	start := func(at seq.Value) {
		mem += skbOverhead
		if rec {
			fl.memRuns = addRun(fl.memRuns, at, goal)
		}
	}
	taken, fill := 0, goal // fill: octets in the open buffer (goal: none open)
	b := pos               // where the open buffer starts
	if u, ok := c.tailBufUnsent(pos); ok && int(pos.Sub(u)) < goal {
		b, fill = u, int(pos.Sub(u))
		if rec {
			fl.memRuns = addRun(fl.memRuns, u, goal)
		}
	}
	for range maxTakeRounds {
		if taken >= want {
			break
		}
		if fill == goal {
			if mem >= limit {
				break // sk_stream_memory_free fails: the writer waits
			}
			if pos != head {
				// No push from here on: whole buffers while below the
				// limit, each adding goal+skbOverhead.
				k := (limit - mem + goal + skbOverhead - 1) / (goal + skbOverhead)
				n := min(want-taken, k*goal)
				if n > 0 {
					start(pos)
				}
				taken += n
				break
			}
			b, fill = pos, 0
			start(b)
		}
		n := min(goal-fill, want-taken)
		fill += n
		taken += n
		mem += n
		pos = pos.Add(seq.Size(n))
		if fill < goal || b != head || sendable < mss {
			continue
		}
		// Full and first unsent: tcp_push_one sends what the windows
		// allow, and the rest is a buffer of its own.
		cut := min(goal, sendable)
		head = head.Add(seq.Size(cut))
		sendable -= cut
		if cut < goal {
			b, fill = head, goal-cut
			start(b)
		}
	}
	return taken
}

// maxTakeRounds bounds sndTake's walk over buffers pushed as they fill:
// past them the rest is counted whole.
const maxTakeRounds = 64

// sendableNow is what the windows let leave now from SND.NXT, in whole
// segments of mss.
func (c *Conn) sendableNow(mss int) int {
	n := min(c.cc.cwnd-c.pipe(), int(c.snd.una.Add(seq.Size(c.snd.wnd)).Sub(c.snd.nxt)))
	return max(0, n) / mss * mss
}

// tailBufUnsent is where the unsent part of the last recorded buffer
// begins, if some of it, ending at end, is not yet sent: Linux's write
// queue holds only unsent buffers, a buffer a packet was cut from leaving
// its rest as one.
func (c *Conn) tailBufUnsent(end seq.Value) (seq.Value, bool) {
	if c.fl == nil || len(c.fl.memRuns) == 0 || !c.snd.nxt.LessThan(end) {
		return end, false
	}
	r := c.fl.memRuns[len(c.fl.memRuns)-1]
	if !r.at.LessThan(end) {
		return end, false
	}
	b := end.Add(-seq.Size((end.Sub(r.at)-1)%r.step + 1))
	if b.LessThan(c.snd.nxt) {
		b = c.snd.nxt
	}
	return b, true
}

// pruneRuns forgets the runs una has passed, keeping the one that holds
// it.
func pruneRuns(runs []bufRun, una seq.Value) []bufRun {
	i := 0
	for i+1 < len(runs) && runs[i+1].at.LessThanEq(una) {
		i++
	}
	if i > 0 {
		runs = append(runs[:0], runs[i:]...)
	}
	return runs
}
