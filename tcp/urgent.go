package tcp

import (
	"io"
	"syscall"
	"time"

	"github.com/synstack/synstack/tcp/seq"
	"github.com/synstack/synstack/wire"
)

const flagURG = wire.FlagURG

// Urgent data (RFC 9293 3.8.5, RFC 6093), as Linux has it. The urgent
// pointer of a segment with URG points one past the urgent byte (Linux's
// tcp_stdurg 0, the BSD reading RFC 6093 says everyone uses). The byte it
// marks is taken out of the stream: a read stops before it (the "mark"),
// skips it next time, and a read with MSG_OOB returns it, once
// (ReadUrgent); with SO_OOBINLINE (Config.OOBInline) it stays in the
// stream and MSG_OOB finds nothing. Only the last urgent byte is kept: a
// newer pointer replaces an older one. A pointer beyond the data of its
// segment waits for the segment that brings its byte. Sending with
// MSG_OOB (WriteUrgent) points at the end of that write: every segment
// before it carries URG and the pointer (0xFFFF when more than 64 KiB
// away), Nagle's algorithm does not hold them, until the peer
// acknowledges the urgent data.
//
// The state lives apart, made when urgent data is first sent or
// received, beside the clocks of a connection that carries data
// (infoStats, chrono.go; the pointer fits that object's size class): a
// connection that never meets urgent data pays two nil checks per
// segment, and the Conn stays its size.

// urgent is a connection's urgent-data state.
type urgent struct {
	rcvSeq seq.Value // the urgent byte's sequence number (Linux's urg_seq)
	sndUp  seq.Value // SND.UP: one past the last urgent byte sent
	rcv    urgState
	rcvVal byte // the urgent byte, once it arrived (urgValid)
	sndOn  bool // SND.UP is set and not yet acknowledged
}

// urgState is where the last urgent byte announced stands.
type urgState uint8

const (
	urgNone   urgState = iota // none announced, or read past
	urgNotYet                 // announced; its segment has not come
	urgValid                  // arrived, not yet read out of band
	urgRead                   // read out of band (or inline); still marks the stream
)

// urg returns the connection's urgent-data state, nil if it has none.
func (c *Conn) urg() *urgent {
	if m := c.stats.more; m != nil {
		return m.urg
	}
	return nil
}

// urgentState returns the urgent-data state, made if need be.
func (c *Conn) urgentState() *urgent {
	m := c.more()
	if m.urg == nil {
		m.urg = new(urgent)
	}
	return m.urg
}

// copiedSeq is the sequence number of the next octet a read takes.
func (c *Conn) copiedSeq() seq.Value {
	n := c.rq.n
	if c.rq.finRcvd {
		n++
	}
	return c.rcv.nxt.Add(-seq.Size(n))
}

// urgInput is step six of segment arrival (RFC 9293 3.10.7.4, "check the
// URG bit"), for an acceptable segment: a new urgent pointer, then the
// urgent byte if this segment brings it (Linux's tcp_urg).
func (c *Conn) urgInput(seg *Segment) {
	if seg.Flags&flagURG != 0 {
		c.urgPointer(seg)
	}
	u := c.urg()
	if u == nil || u.rcv != urgNotYet {
		return
	}
	if off := u.rcvSeq.Sub(seg.SEQ); off >= 0 && int(off) < len(seg.Payload) {
		u.rcvVal = seg.Payload[off]
		u.rcv = urgValid
	}
}

// urgPointer takes a segment's urgent pointer as Linux's tcp_check_urg:
// one already read past, one before RCV.NXT (a replay) and one not beyond
// the current are ignored.
func (c *Conn) urgPointer(seg *Segment) {
	ptr := seq.Size(seg.UP)
	if ptr > 0 {
		ptr-- // one past the urgent byte
	}
	at := seg.SEQ.Add(ptr)
	copied := c.copiedSeq()
	u := c.urg()
	switch {
	case copied.GreaterThan(at), at.LessThan(c.rcv.nxt):
		return
	case u != nil && u.rcv != urgNone && at.LessThanEq(u.rcvSeq):
		return
	}
	u = c.urgentState()
	if u.rcv != urgNone && u.rcvSeq == copied && !c.cfg.OOBInline && copied != c.rcv.nxt && c.rq.n > 0 {
		// The old urgent byte is next to read: it goes now, or the
		// read would take it as data once the mark moves.
		c.rq.consume(1)
		c.releaseRcvQueue()
	}
	u.rcv, u.rcvSeq = urgNotYet, at
}

// urgReadLimit bounds a read of n octets by the mark: it returns how
// many to take and whether to skip the first (the urgent byte, out of
// band). A read that has taken nothing at the mark skips the byte (or,
// inline, reads it); one that would cross the mark stops before it.
func (c *Conn) urgReadLimit(n int) (take int, skip bool) {
	u := c.urg()
	if u == nil || u.rcv == urgNone {
		return n, false
	}
	off := u.rcvSeq.Sub(c.copiedSeq())
	switch {
	case off < 0 || int(off) >= c.rq.n:
		return n, false
	case off > 0:
		return min(n, int(off)), false
	case c.cfg.OOBInline:
		return n, false
	}
	return min(n, c.rq.n-1), true
}

// urgAfterRead forgets the urgent byte once reads have passed it.
func (c *Conn) urgAfterRead() {
	if u := c.urg(); u != nil && u.rcv != urgNone && c.copiedSeq().GreaterThan(u.rcvSeq) {
		u.rcv = urgNone
	}
}

// ReadUrgent is recv with MSG_OOB: the urgent byte, once (peek leaves it
// to read again), as Linux's tcp_recv_urg: EINVAL with SO_OOBINLINE or
// when there is none to read (none announced, or already read); io.EOF
// once the connection can bring no more; EAGAIN while it is announced and
// has not arrived (never blocking, as Linux).
func (c *Conn) ReadUrgent(t time.Time, peek bool) (byte, error) {
	u := c.urg()
	if c.cfg.OOBInline || u == nil || u.rcv == urgNone || u.rcv == urgRead {
		return 0, syscall.EINVAL
	}
	if c.state == Closed && !c.connected {
		return 0, syscall.ENOTCONN
	}
	if u.rcv == urgValid {
		if !peek {
			u.rcv = urgRead
		}
		return u.rcvVal, nil
	}
	if c.state == Closed || c.rq.finRcvd || c.rq.rdShut {
		return 0, io.EOF
	}
	return 0, syscall.EAGAIN
}

// AtMark reports whether the next read starts at the urgent mark
// (SIOCATMARK).
func (c *Conn) AtMark() bool {
	u := c.urg()
	return u != nil && u.rcv != urgNone && u.rcvSeq == c.copiedSeq()
}

// UrgentMark returns how many octets a read takes before it reaches the
// urgent mark (0 at the mark), and false when no mark is ahead.
func (c *Conn) UrgentMark() (int, bool) {
	u := c.urg()
	if u == nil || u.rcv == urgNone {
		return 0, false
	}
	off := u.rcvSeq.Sub(c.copiedSeq())
	return int(off), off >= 0
}

// PollReadable returns the octets that make the connection readable for
// poll: Readable, less the urgent byte when it is next and out of band
// (Linux's tcp_poll raises its target by one there), so that the byte
// alone shows as POLLPRI and not POLLIN.
func (c *Conn) PollReadable() int {
	n := c.rq.n
	if c.urg() != nil && !c.cfg.OOBInline && c.AtMark() {
		n--
	}
	return n
}

// UrgentPending reports an urgent byte that has arrived and not been read
// out of band (poll's POLLPRI).
func (c *Conn) UrgentPending() bool {
	u := c.urg()
	return u != nil && u.rcv == urgValid
}

// SetOOBInline sets SO_OOBINLINE: urgent data stays in the stream.
func (c *Conn) SetOOBInline(on bool) {
	if c.cfg.OOBInline != on {
		c.ownConfig().OOBInline = on
	}
}

// WriteUrgent is send with MSG_OOB: Write, then the urgent pointer set to
// the end of what was written (Linux's tcp_mark_urg, snd_up = write_seq)
// before the data goes out.
func (c *Conn) WriteUrgent(t time.Time, p []byte) (int, error) {
	n := min(len(p), c.Writable())
	if n == 0 || c.err != 0 || c.sq.wrShut {
		return c.Write(t, p)
	}
	u := c.urgentState()
	was, wasOn := u.sndUp, u.sndOn
	u.sndUp, u.sndOn = c.sq.start.Add(seq.Size(c.sq.n+n)), true
	w, err := c.Write(t, p[:n])
	if w < n {
		u.sndUp, u.sndOn = was, wasOn
		if w > 0 {
			u.sndUp, u.sndOn = c.sq.start.Add(seq.Size(c.sq.n)), true
		}
	}
	return w, err
}

// urgSending reports urgent mode: urgent data sent or to send that the
// peer has not acknowledged (Linux's tcp_urg_mode). It ends once SND.UNA
// reaches SND.UP.
func (c *Conn) urgSending() bool {
	u := c.urg()
	if u == nil || !u.sndOn {
		return false
	}
	if c.snd.una.GreaterThanEq(u.sndUp) {
		u.sndOn = false
	}
	return u.sndOn
}

// urgOutput marks a segment sent in urgent mode with URG and the pointer,
// as Linux's __tcp_transmit_skb: the pointer from the segment's start,
// or 0xFFFF when SND.UP is more than 64 KiB on (RFC 6093 4).
func (c *Conn) urgOutput(seg *Segment) {
	if !c.urgSending() || seg.Flags&(flagSYN|flagRST) != 0 || !seg.SEQ.LessThan(c.urg().sndUp) {
		return
	}
	if d := c.urg().sndUp.Sub(seg.SEQ); d < 0x10000 {
		seg.Flags |= flagURG
		seg.UP = uint16(d)
	} else if seg.SEQ.Add(0xFFFF).GreaterThan(c.snd.nxt) {
		seg.Flags |= flagURG
		seg.UP = 0xFFFF
	}
}
