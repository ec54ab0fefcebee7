package tcp

import (
	"time"

	"github.com/synstack/synstack/tcp/seq"
)

// WriteFlags are what a write asks beyond its bytes: sendmsg's flags
// that change how the data is sent.
type WriteFlags struct {
	// More is MSG_MORE: more data follows at once, so a partial segment
	// is held as TCP_CORK holds it, until a write without the flag, an
	// ACK that lets data go, or the probe timer (one RTO) sends it. The
	// write's end is no PSH mark.
	More bool
	// EOR is MSG_EOR: the write's last byte ends a record, and no segment
	// (first sent or resent) carries data from both sides of it.
	EOR bool
	// OOB is MSG_OOB: the write's last byte is urgent (urgent.go).
	OOB bool
}

// WriteMsg is Write with sendmsg's flags (see WriteFlags).
func (c *Conn) WriteMsg(t time.Time, p []byte, f WriteFlags) (int, error) {
	if !f.More && !f.EOR {
		if f.OOB {
			return c.WriteUrgent(t, p)
		}
		return c.Write(t, p)
	}
	c.sc.more = f.More
	var n int
	var err error
	if f.OOB {
		n, err = c.WriteUrgent(t, p)
	} else {
		n, err = c.Write(t, p)
	}
	c.sc.more = false
	if n > 0 && f.EOR {
		end := c.sq.start.Add(seq.Size(c.sq.n))
		if k := len(c.sq.pushMarks); k > 0 && c.sq.pushMarks[k-1].at == end {
			c.sq.pushMarks[k-1].eor = true
		} else {
			c.sq.pushMarks = append(c.sq.pushMarks, sendMark{at: end, eor: true})
		}
	}
	return n, err
}

// SendProgress returns SND.UNA and the highest sequence number sent so
// far (SND.MAX: what has left at least once), for the socket layer's
// transmit timestamps and zerocopy completions.
func (c *Conn) SendProgress() (una, sent seq.Value) { return c.snd.una, c.snd.max }

// WriteEnd is the sequence number after the last byte written so far.
func (c *Conn) WriteEnd() seq.Value { return c.sq.start.Add(seq.Size(c.sq.n)) }

// eorLimit bounds a segment of n octets at s so that it does not cross a
// MSG_EOR mark.
func (c *Conn) eorLimit(s seq.Value, n int) int {
	for _, m := range c.sq.pushMarks {
		if d := int(m.at.Sub(s)); d > 0 && m.eor {
			return min(n, d)
		}
	}
	return n
}

// holdForMore reports whether a partial segment of n octets (all that is
// queued) is held by a MSG_MORE write in progress, and arms the probe
// timer that sends it if nothing else does, as Linux's
// tcp_check_probe_timer with nothing in flight.
func (c *Conn) holdForMore(now instant, n, queued, mss int) bool {
	if !c.sc.more || n >= mss || n != queued || n == 0 || c.sq.finQueued || c.sq.corkExpired {
		return false
	}
	if c.timer.cork.IsZero() {
		c.timer.cork = now.Add(c.rtx.rto)
	}
	return true
}

// moreTimeout runs when the cork timer fires: if no TCP_CORK armed it, a
// MSG_MORE write's hold timed out, and Linux's probe timer sends the held
// data with PSH (tcp_write_wakeup).
func (c *Conn) moreTimeout() {
	if !c.cfg.Cork {
		end := c.sq.start.Add(seq.Size(c.sq.n))
		if k := len(c.sq.pushMarks); k > 0 && c.sq.pushMarks[k-1].at == end {
			c.sq.pushMarks[k-1].push = true
		} else {
			c.sq.pushMarks = append(c.sq.pushMarks, sendMark{at: end, push: true})
		}
	}
}

// sendMark is a mark in the send queue: where a segment carries PSH
// (push: the end of a write, or a forced push), where a MSG_EOR write
// ends (eor), or both.
type sendMark struct {
	at        seq.Value
	push, eor bool
}

// Inq is what TCP_INQ reports after a read: the octets left to read,
// plus one once the peer's FIN has arrived (it takes a sequence number;
// Linux counts it so that a reader knows to read on and see the end).
func (c *Conn) Inq() int {
	n := c.rq.n
	if c.rq.finRcvd {
		n++
	}
	return n
}
