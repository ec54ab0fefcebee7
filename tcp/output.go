package tcp

import (
	"math/bits"

	"github.com/synstack/synstack/tcp/seq"
	"github.com/synstack/synstack/wire"
)

const (
	flagSYN        = wire.FlagSYN
	flagACK        = wire.FlagACK
	flagRST        = wire.FlagRST
	flagFIN        = wire.FlagFIN
	flagPSH        = wire.FlagPSH
	flagsSynAckRst = wire.FlagSYN | wire.FlagACK | wire.FlagRST
)

// tsNow is our timestamp clock: milliseconds, as Linux's TCP timestamps.
func (c *Conn) tsNow(now instant) uint32 {
	return uint32(now.Sub(c.opt.epoch).Milliseconds()) + c.opt.tsOffset + 1
}

// rcvSpace is how many more octets the receive buffer can take. Like
// Linux (tcp_adv_win_scale = 1), half of the buffer holds data and the
// other half is reserved for the bookkeeping that comes with it.
func (c *Conn) rcvSpace() int {
	return max(0, c.rcvCapacity()-c.rq.n-int(c.rq.oooLen))
}

// offeredWScale is the window scale our SYN offers: WScale, or, when the
// application fixed the receive buffer, the smallest shift that covers it
// (Linux: ilog2(space) - 15, clamped to 0..14).
func (c *Conn) offeredWScale() uint8 {
	if !c.cfg.RcvBufLocked {
		return c.cfg.WScale
	}
	return uint8(min(max(bits.Len(uint(c.rcvCapacity()))-1-15, 0), maxWScale))
}

// rcvCapacity is the most data the receive buffer holds: half of it.
func (c *Conn) rcvCapacity() int { return int(c.rq.bufSize) / 2 }

// rcvWindowNow is what is left of the window last advertised.
func (c *Conn) rcvWindowNow() uint32 {
	if d := c.rcv.right.Sub(c.rcv.nxt); d > 0 {
		return uint32(d)
	}
	return 0
}

// fillAck sets the ACK, window and timestamp fields of c.sc.seg.
func (c *Conn) fillAck(now instant, syn bool) {
	tx := &c.sc.seg
	tx.ACK = c.rcv.nxt
	if syn {
		// Windows in SYN segments are never scaled (RFC 7323 2.2); the
		// window is kept whole where the field cannot carry it (rcvwnd.go).
		tx.WND = uint16(min(c.rcv.wnd, 65535))
	} else {
		// The window is kept as chosen, the field carries what the scale
		// can (Linux's tcp_select_window stores rcv_wnd before clamping).
		c.rcv.wnd = c.windowToAdvertise()
		tx.WND = uint16(min(c.rcv.wnd, 65535<<c.opt.rcvShift) >> c.opt.rcvShift)
	}
	c.rcv.right = c.rcv.nxt.Add(seq.Size(c.rcv.wnd))
	c.opt.lastAckSent = c.rcv.nxt
	c.timer.delAck = instant(0)
	c.ack.writerAck = false
	if c.ack.quickAcks > 0 {
		c.ack.quickAcks--
	}
}

// emit hands c.sc.seg to the output and counts it: as the segments it
// stands for on the wire when the link is to cut it (GSOSize), as Linux
// counts tcp_skb_pcount.
func (c *Conn) emit() {
	seg := &c.sc.seg
	if c.cfg.MD5Key != nil {
		c.md5Options(seg)
	}
	if c.urg() != nil {
		c.urgOutput(seg)
	}
	segs := uint32(1)
	n := len(seg.Payload)
	if seg.GSOSize > 0 && n > int(seg.GSOSize) {
		segs = uint32((n + int(seg.GSOSize) - 1) / int(seg.GSOSize))
	}
	c.stats.segsOut += segs
	if n > 0 {
		// Linux's __tcp_transmit_skb: data_segs_out and bytes_sent,
		// retransmissions included.
		m := c.more()
		m.dataSegsOut += segs
		m.bytesSent += uint64(n)
	}
	c.host.Send(seg)
}

// sendSYN sends our SYN (synAck false) or SYN,ACK with the options this end
// offers. The SYN,ACK of a passive open echoes only the options the peer's
// SYN offered; in a simultaneous open it carries what our SYN carried, as
// Linux's tcp_send_synack does for a full socket.
func (c *Conn) sendSYN(now instant, synAck bool) {
	tx := &c.sc.seg
	*tx = Segment{SEQ: c.snd.iss, Flags: flagSYN}
	o := &tx.Options
	o.MSS = uint16(min(int(c.cfg.MSS), c.fastOpenPathMSS()))
	echo := synAck && c.passive
	if !c.cfg.NoWindowScale && (!echo || c.opt.wsOK) {
		o.HasWScale = true
		o.WScale = c.offeredWScale()
	}
	if !c.cfg.NoSACK && (!echo || c.opt.sackOK) {
		o.SACKPermitted = true
	}
	if !c.cfg.NoTimestamps && (!echo || c.opt.tsOK) {
		o.HasTimestamp = true
		o.TSVal = c.tsNow(now)
		if c.opt.cookieTS {
			// Linux's cookie_init_timestamp: options in the low bits,
			// never a value ahead of the clock.
			ts := o.TSVal&^cookieTSMask | c.opt.cookieBits
			if int32(ts-o.TSVal) > 0 {
				ts -= cookieTSMask + 1
			}
			o.TSVal = ts
		}
		if synAck {
			o.TSEcr = c.opt.tsRecent
		}
	}
	var gathered []byte
	if c.fo != nil {
		gathered = c.addFastOpen(tx, synAck)
	}
	c.ecnSYN(tx, synAck)
	if c.passive || !synAck {
		// The window a SYN offers is set when it is first sent; a
		// simultaneous open's SYN,ACK repeats our SYN's.
		c.initRcvWindow()
		if c.passive {
			c.setRcvClamp()
		}
	}
	if synAck {
		tx.Flags |= flagACK
		c.fillAck(now, true)
	} else {
		tx.WND = uint16(min(c.rcv.wnd, 65535))
	}
	c.emit()
	if gathered != nil {
		tx.Payload = nil
		c.cfg.Buffers.Put(gathered)
	}
}

// setAckOptions puts timestamps and SACK blocks on a non-SYN segment.
func (c *Conn) setAckOptions(now instant) {
	o := &c.sc.seg.Options
	if c.opt.tsOK {
		o.HasTimestamp = true
		o.TSVal = c.tsNow(now)
		o.TSEcr = c.opt.tsRecent
	}
	if limit := c.sackLimit(); limit > 0 && c.opt.sackOK && (c.ack.dsackPending || c.hasOOO()) {
		if c.ack.dsackPending {
			// RFC 2883: the duplicate first, once.
			o.SACK[0] = wire.SACKBlock{Left: uint32(c.ack.dsack.l), Right: uint32(c.ack.dsack.r)}
			o.NumSACK = 1
			c.ack.dsackPending = false
		}
		c.putSACKBlocks(o, limit)
	}
}

// sendAck sends a bare ACK: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, where
// SND.NXT is the highest sequence number sent (SND.MAX): after a timeout
// rewinds SND.NXT to resend, the peer may already hold more, and an ACK
// carrying the rewound number would fall before its window and be dropped
// unread (Linux's tcp_acceptable_seq likewise never goes back).
func (c *Conn) sendAck(now instant) {
	c.sc.seg = Segment{SEQ: c.acceptableSeq(), Flags: flagACK}
	c.fillAck(now, false)
	c.setAckOptions(now)
	c.ecnOutput(&c.sc.seg, 0, 0)
	c.emit()
}

// acceptableSeq is the sequence number for a segment without data: the
// highest sent, unless the peer's window has since shrunk below it (Linux's
// tcp_acceptable_seq), so the peer finds it in its window.
func (c *Conn) acceptableSeq() seq.Value {
	end := c.snd.una.Add(seq.Size(c.snd.wnd))
	if c.snd.max.LessThanEq(end) || end.LessThan(c.snd.nxt) {
		return c.snd.max
	}
	return end
}

// sendProbe sends a segment the peer must answer with an ACK without it
// carrying anything new: <SEQ=SND.UNA-1><ACK=RCV.NXT>, as Linux's zero-window
// and keepalive probes.
func (c *Conn) sendProbe(now instant) {
	c.sc.seg = Segment{SEQ: c.snd.una - 1, Flags: flagACK}
	c.fillAck(now, false)
	c.setAckOptions(now)
	c.ecnOutput(&c.sc.seg, 0, 0)
	c.emit()
}

// sendActiveRST resets the connection from this end (close with unread
// data, abort, a timeout): <SEQ=SND.NXT><ACK=RCV.NXT><CTL=RST,ACK>. As
// Linux's tcp_send_active_reset, it is built like any other segment of the
// connection: the window and the options in use ride on it, so a peer that
// checks timestamps (RFC 7323 5.3, PAWS) takes it.
func (c *Conn) sendActiveRST(now instant) {
	c.sc.seg = Segment{SEQ: c.acceptableSeq(), Flags: flagRST | flagACK}
	c.fillAck(now, false)
	c.setAckOptions(now)
	c.emit()
}

// sendSegment sends n queued octets (and maybe the FIN) starting at seqno.
// The payload is a view of the send queue; when it wraps around the end of
// the ring it is gathered into a borrowed buffer for the call.
func (c *Conn) sendSegment(now instant, seqno seq.Value, n int, fin, psh bool) {
	c.sendSegmentGSO(now, seqno, n, fin, psh, 0)
}

// sendSegmentGSO is sendSegment for a segment the link cuts into pieces of
// gsoSize octets (0: one piece), as Linux's GSO does with a TSO packet.
func (c *Conn) sendSegmentGSO(now instant, seqno seq.Value, n int, fin, psh bool, gsoSize int) {
	var payload, gathered []byte
	if n > 0 {
		c.more().lastDataSnd = chronoMS(now) // tcpi_last_data_sent, retransmissions included
		off := int(seqno.Sub(c.sq.start))
		if payload = c.sq.view(off, n); payload == nil {
			gathered = c.cfg.Buffers.Get(n)
			payload = gathered[:n]
			c.sq.copyOut(payload, off)
		}
	}
	c.sc.seg = Segment{SEQ: seqno, Flags: flagACK, Payload: payload}
	if n > gsoSize && gsoSize > 0 {
		c.sc.seg.GSOSize = uint16(gsoSize)
	}
	if fin {
		c.sc.seg.Flags |= flagFIN
	}
	if psh && len(payload) > 0 {
		c.sc.seg.Flags |= flagPSH
	}
	if n > 0 && c.ack.writerAck && c.timer.delAck.Sub(now) > delAckMax-delAckMin {
		// Linux's tcp_event_data_sent: data sent within ato (TCP_ATO_MIN)
		// of the SYN,ACK it answers is a reply: pingpong mode, so the
		// peer's next data is acknowledged late, by our next reply.
		c.ack.pingpong = true
	}
	c.fillAck(now, false)
	c.setAckOptions(now)
	c.ecnOutput(&c.sc.seg, seqno, n)
	c.emit()
	c.prrSent(n)
	if n > 0 {
		c.cc.lastSend = msClock(now) // any data, resent too (Linux's tcp_event_data_sent)
	}
	c.sc.seg.Payload = nil
	if gathered != nil {
		c.cfg.Buffers.Put(gathered)
	}
}

// currentMSS is the payload that fits in a segment sent now: the MSS less
// the room SACK blocks take on this segment (Linux's tcp_current_mss), so
// that a segment never outgrows the path.
func (c *Conn) currentMSS() int {
	mss := c.opt.sndMSS
	if limit := c.sackLimit(); limit > 0 && c.opt.sackOK && (c.ack.dsackPending || c.hasOOO()) {
		var blocks [maxOOORanges + 1]seqRange
		n := c.oooBlocks(&blocks)
		if c.ack.dsackPending {
			n++
		}
		mss -= 4 + 8*min(n, limit)
	}
	return max(mss, 1)
}

// flight is the number of octets sent and not yet acknowledged.
func (c *Conn) flight() int { return int(c.snd.nxt.Sub(c.snd.una)) }

// queuedFrom returns how many queued octets there are from sequence number
// s on.
func (c *Conn) queuedFrom(s seq.Value) int {
	off := int(s.Sub(c.sq.start))
	if off < 0 || off > c.sq.n {
		return 0
	}
	return c.sq.n - off
}

// output sends what the windows allow: data from SND.NXT, then the FIN
// (RFC 9293 3.10.2 SEND, with Nagle's algorithm of RFC 896 and RFC 9293
// 3.7.4). It is called after every event that may open a window or queue
// data.
func (c *Conn) output(now instant) {
	switch c.state {
	case Established, CloseWait, FinWait1, Closing, LastAck:
	case SynRcvd:
		if !c.fastOpenWritable() {
			return
		}
	default:
		return
	}
	sent := false
	if c.fl != nil {
		c.fl.pace.at = instant(0)
	}
	// gsoLeft counts down the segments of the GSO packet Linux would be
	// sending (gsoSegs of them); see gsoPacketSegs. On a link that cuts
	// segments (Config.SegmentOffload) that packet goes as one segment,
	// gathered in unit while its pieces are accounted one by one.
	gsoLeft, gsoSegs := 0, 0
	if c.flight() == 0 && c.queuedFrom(c.snd.nxt) > 0 {
		// Linux restarts an idle window when the write queues its data
		// (tcp_slow_start_after_idle_check), so the first packet is
		// already sized by the restarted window.
		c.cwndRestartAfterIdle(now)
	}
	rwndLimited := false // the peer's window, not cwnd, stopped new data (chrono.go)
	var rtx rtxPacket
	var unit txUnit
	for {
		room := c.cwndWhole() - c.pipe()
		// Holes first (RFC 6675 NextSeg rule 1), while the window has room.
		if resent, stop := c.retransmitNext(now, room, &rtx, &unit); stop {
			break
		} else if resent {
			sent = true
			gsoLeft = 0
			continue
		}
		rtx = rtxPacket{}
		queued := c.queuedFrom(c.snd.nxt)
		finPending := c.sq.finQueued && !(c.sq.finSent && c.snd.nxt.GreaterThan(c.sq.finSeq))
		if queued == 0 && !finPending {
			break
		}
		// The usable window: the peer's offer and the congestion window.
		wndRight := c.snd.una.Add(seq.Size(c.snd.wnd))
		usable := int(wndRight.Sub(c.snd.nxt))
		if queued > 0 && room <= 0 {
			// The congestion window counts segments, as Linux's
			// tcp_cwnd_test: while the pipe is below cwnd a full segment
			// may go (never a runt cut to fit the window's last bytes).
			// A FIN alone is not held by it: it adds nothing to the
			// network.
			usable = 0
		}
		mss := c.currentMSS()
		n := c.eorLimit(c.snd.nxt, min(queued, mss, max(usable, 0)))
		if seg := c.eorLimit(c.snd.nxt, min(queued, mss)); n < seg && room > 0 {
			// The next segment does not fit the peer's window: Linux
			// sends none cut to fit (tcp_snd_wnd_test) and waits for
			// the window, or for the probe timer to send what fits
			// (tcp_write_wakeup).
			n = 0
		}
		if queued > 0 && n == 0 {
			rwndLimited = room > 0
			if c.flight() == 0 && c.timer.rto.IsZero() {
				c.armPersist(now)
			}
			break
		}
		if c.holdPartial(now, n, queued, mss) {
			break
		}
		if queued == 0 && usable < 1 {
			// A FIN alone still needs one octet of the peer's window.
			if c.snd.wnd == 0 && c.flight() == 0 && c.timer.rto.IsZero() {
				c.armPersist(now)
			}
			break
		}
		if n > 0 && !c.paceAllows(now) {
			break
		}
		if n > 0 && !c.hostRoom() {
			c.heldByHost(now)
			break
		}
		fin := finPending && n == queued
		if gsoLeft == 0 && n > 0 {
			gsoSegs = c.gsoPacketSegs(queued, usable, room, mss)
			gsoLeft = gsoSegs
		}
		pos, joined := segAlone, false
		if n > 0 {
			pos, joined = c.gsoStep(n, &gsoLeft, gsoSegs)
		}
		c.transmitNew(now, n, fin, mss, pos, &unit)
		if joined {
			c.joinLastRecord()
		}
		if gsoLeft == 0 {
			c.flushUnit(now, &unit)
		}
		c.paceSent(now, n)
		sent = true
		if fin {
			break
		}
	}
	c.flushUnit(now, &unit)
	c.outputDone(now, sent, rwndLimited)
}

// rtxPacket counts down the segments of a packet output is sending again
// (rtxPacketRecs): left of recs.
type rtxPacket struct{ left, recs int }

// retransmitNext is output's first step: in a loss episode, the next hole
// goes again while the window has room. resent says a segment went; stop
// says output must stop (no room in the window, the pacing or the host).
func (c *Conn) retransmitNext(now instant, room int, rtx *rtxPacket, unit *txUnit) (resent, stop bool) {
	if c.cc.loss == lossNone {
		return false, false
	}
	n := c.retransmitSize()
	if n < 0 {
		return false, false
	}
	if room <= 0 || !c.paceAllows(now) || !c.hostRoom() {
		return false, true
	}
	c.flushUnit(now, unit)
	if rtx.left == 0 {
		rtx.recs = c.rtxPacketRecs(room)
		rtx.left = rtx.recs
	}
	rtx.left--
	c.retransmitOne(now, rtx.left == 0 && rtx.recs > 1)
	c.paceSent(now, n)
	return true, false
}

// outputDone is the bookkeeping after a pass of output: the cork's expiry
// is used up, the rwnd-limited clock runs while the peer's window stopped
// new data, the congestion window is validated (RFC 7661 as Linux), and
// what was sent is watched by the TLP or the RTO.
func (c *Conn) outputDone(now instant, sent, rwndLimited bool) {
	c.sq.corkExpired = false
	if rwndLimited {
		c.chronoStart(now, chronoRwnd)
	} else {
		c.chronoStop(now, chronoRwnd)
	}
	// The window was full if it, not the data or the peer, stopped the
	// loop (Linux's is_cwnd_limited in tcp_write_xmit).
	if limited := c.pipe() >= c.cwndWhole(); sent || limited {
		c.cwndValidate(now, limited)
	}
	if sent && (c.timer.rto.IsZero() || c.rtx.persist || !c.timer.tlp.IsZero()) {
		c.rtx.persist = false
		c.armXmitTimer(now)
	}
}

// cwndWhole is the congestion window the send loop fills: whole segments,
// as Linux counts it (snd_cwnd in packets, tcp_cwnd_test), so that the
// part of a segment an algorithm has grown by byte counting (CUBIC's and
// Reno's avoidance) sends nothing until the segment is whole.
func (c *Conn) cwndWhole() int {
	m := max(c.opt.sndMSS, 1)
	return max(c.cc.cwnd/m, 1) * m
}

// holdPartial reports whether a segment of n octets, all that is queued
// and less than mss, waits for more data: Nagle's algorithm with
// Minshall's refinement (Linux's tcp_nagle_check: only while an earlier
// small segment is unacknowledged, never the last data before the FIN),
// TCP_CORK (until the cork comes off or its 200 ms ceiling passes), or
// MSG_MORE (holdForMore).
func (c *Conn) holdPartial(now instant, n, queued, mss int) bool {
	if c.urg() != nil && c.urgSending() {
		return false // urgent data is never held (Linux's tcp_nagle_test)
	}
	if n < mss && n == queued && !c.cfg.NoDelay && !c.cfg.Cork && c.flight() > 0 && !c.sq.finQueued &&
		c.sq.sml.GreaterThan(c.snd.una) && c.sq.sml.LessThanEq(c.snd.nxt) {
		return true
	}
	if c.cfg.Cork && n < mss && n == queued && n > 0 && !c.sq.finQueued && !c.sq.corkExpired {
		if c.timer.cork.IsZero() {
			c.timer.cork = now.Add(corkCeiling)
		}
		return true
	}
	return c.holdForMore(now, n, queued, mss)
}

// hostRoom reports whether the host's link takes more data now
// (RoomHost); a host without the question always does.
func (c *Conn) hostRoom() bool {
	r, ok := c.host.(RoomHost)
	return !ok || r.Room()
}

// txUnit is new data the send loop has accounted for, segment by segment,
// and not yet handed to the host: on a link that cuts segments
// (Config.SegmentOffload), what Linux would send as one GSO packet goes
// as one segment of several MSS.
type txUnit struct {
	start    seq.Value
	n        int  // octets from start
	fin, psh bool // the last piece carries FIN; a piece carries PSH
	mss      int  // the size of every piece but the last
}

// flushUnit sends what u holds, if anything, as one segment.
func (c *Conn) flushUnit(now instant, u *txUnit) {
	if u.n == 0 && !u.fin {
		return
	}
	c.sendSegmentGSO(now, u.start, u.n, u.fin, u.psh, u.mss)
	*u = txUnit{}
}

// segPos is where a segment stands in what Linux would send as one GSO
// packet (gsoPacketSegs).
type segPos uint8

const (
	segAlone segPos = iota // a packet of one segment
	segMid                 // not the last of a packet of several
	segLast                // the last of a packet of several
)

// gsoStep counts a segment of n octets at SND.NXT against the GSO packet
// of gsoSegs segments being formed (gsoLeft of them still to send): it
// returns where the segment stands in the packet and whether it joins the
// segment before. An end of record ends the packet (eorLimit).
func (c *Conn) gsoStep(n int, gsoLeft *int, gsoSegs int) (pos segPos, joined bool) {
	*gsoLeft--
	joined = *gsoLeft+1 < gsoSegs
	if c.eorLimit(c.snd.nxt, n+1) <= n {
		*gsoLeft = 0 // a GSO packet never spans two records
	}
	switch {
	case *gsoLeft > 0:
		return segMid, joined
	case joined:
		return segLast, joined
	}
	return segAlone, joined
}

// transmitNew sends n queued octets (and the FIN) at SND.NXT and advances
// it. pos: where the segment stands in its GSO packet. The last segment
// of a packet of several carries PSH (Linux forces it on every GSO
// packet); one alone carries it when it covers a PSH mark; one inside a
// packet never does, as Linux's segmentation leaves PSH on the last piece
// only. On a link that cuts segments the data joins u, for output to send
// when the GSO packet is complete; the transmit record stays one per segment, so that SACK,
// RACK and retransmission see the pieces the wire carries, as Linux's
// tcp_fragment makes them when part of a TSO packet needs sending again.
func (c *Conn) transmitNew(now instant, n int, fin bool, mss int, pos segPos, u *txUnit) {
	if c.rtx.stallSince.IsZero() || c.snd.nxt == c.snd.una {
		c.rtx.stallSince = now // data is outstanding from here on
		c.cwndRestartAfterIdle(now)
	}
	c.timer.cork = instant(0)
	c.txStart(now)
	c.recordSent(now, c.snd.nxt, n, fin)
	c.rtx.lastSegStart = c.snd.nxt
	resend := c.resendingSynData()
	psh := pos == segLast || pos == segAlone && c.pushMarked(c.snd.nxt, n)
	switch {
	case c.cfg.SegmentOffload <= 0:
		c.sendSegment(now, c.snd.nxt, n, fin, psh)
	case n == 0:
		// A FIN alone goes alone, as it does without the offload.
		c.flushUnit(now, u)
		c.sendSegment(now, c.snd.nxt, 0, fin, false)
	default:
		if u.n > 0 && (u.start.Add(seq.Size(u.n)) != c.snd.nxt || u.mss != mss || u.n%mss != 0) {
			c.flushUnit(now, u)
		}
		if u.n == 0 {
			u.start, u.mss = c.snd.nxt, mss
		}
		u.n += n
		u.fin = fin
		u.psh = u.psh || psh
	}
	if !c.rtx.rttTiming && !c.opt.tsOK && n > 0 {
		c.rtx.rttTiming, c.rtx.rttSeq, c.rtx.rttAt = true, c.snd.nxt, now
	}
	if fin {
		c.sq.finSent = true
		c.sq.finSeq = c.snd.nxt.Add(seq.Size(n))
	}
	c.snd.nxt = c.snd.nxt.Add(seq.Size(n))
	if n < mss && n > 0 && !resend {
		c.sq.sml = c.snd.nxt
	}
	if fin {
		c.snd.nxt = c.snd.nxt.Add(1)
	}
	c.snd.max = c.snd.nxt
}

// oooBlocks fills b with the SACK blocks the out-of-order data makes, in
// sequence order, and returns how many. A FIN held out of order extends
// the block it ends, or is a block of its own.
func (c *Conn) oooBlocks(b *[maxOOORanges + 1]seqRange) int {
	n := 0
	add := func(x seqRange) {
		if n > 0 && b[n-1].r == x.l {
			b[n-1].r = x.r
			return
		}
		b[n] = x
		n++
	}
	finDone := !c.rq.oooFin
	for _, x := range c.rq.ooo {
		if !finDone && c.rq.oooFinSeq.LessThan(x.l) {
			add(seqRange{c.rq.oooFinSeq, c.rq.oooFinSeq + 1})
			finDone = true
		}
		if !finDone && x.r == c.rq.oooFinSeq {
			x.r++
			finDone = true
		}
		add(x)
	}
	if !finDone {
		add(seqRange{c.rq.oooFinSeq, c.rq.oooFinSeq + 1})
	}
	return n
}

// pushMarked reports whether a segment of n octets at s covers a PSH mark.
func (c *Conn) pushMarked(s seq.Value, n int) bool {
	end := s.Add(seq.Size(n))
	for _, m := range c.sq.pushMarks {
		if m.push && m.at.GreaterThan(s) && m.at.LessThanEq(end) {
			return true
		}
	}
	return false
}

// gsoPacketSegs is how many segments from SND.NXT Linux would send now as
// one GSO packet: its autosized goal (tcp_tso_autosize: about a millisecond
// at the pacing rate, at least two segments; BBR's own goal), bounded by
// the congestion window's room (in segments, as tcp_cwnd_test), the peer's
// window, the pacing burst left, the next end of record (MSG_EOR) and the
// end of the buffer at SND.NXT grown from the next one (grownBufEnd); a
// PSH mark does not end it, as Linux's buffer keeps its PSH when it grows
// past its end. Linux sets PSH
// on every packet of more than one segment ("to expedite GRO flush at
// receiver", __tcp_transmit_skb).
// On a link that cuts segments (Config.SegmentOffload) the group goes as
// one segment with PSH, and the link puts PSH on the last piece; otherwise
// synstack sends MSS-sized segments and the last of each group carries it,
// so a receiver, or a packet script that gathers segments into the
// super-packet, sees Linux's flags either way.
func (c *Conn) gsoPacketSegs(queued, usable, room, mss int) int {
	limit := min(c.tsoGoalSegs(mss)*mss, usable, queued)
	if room > 0 {
		// Linux's tcp_cwnd_test: the room in segments, but never more
		// than half the window in one packet, so that at least two
		// packets are in flight.
		half := max(c.cwndWhole()/max(c.opt.sndMSS, 1)/2, 1)
		limit = min(limit, (room+mss-1)/mss*mss, half*mss)
	}
	if _, paced := c.cc.algo.(rateControl); paced && c.fl != nil && c.fl.pace.budget > 0 {
		limit = min(limit, (c.fl.pace.budget+mss-1)/mss*mss)
	}
	limit = c.grownBufEnd(c.eorLimit(c.snd.nxt, limit))
	if c.cfg.SegmentOffload > 0 {
		// The link's own ceiling on a segment it cuts (Linux's
		// gso_max_size bounds tcp_tso_autosize alike).
		limit = min(limit, max(c.cfg.SegmentOffload/mss, 1)*mss)
	}
	return max((limit+mss-1)/mss, 1)
}

// tsoGoalSegs is how many segments of mss Linux puts in one GSO packet at
// the current pacing rate (tcp_tso_autosize: about a millisecond's worth,
// at least Config.MinTSOSegs; BBR's own goal).
func (c *Conn) tsoGoalSegs(mss int) int {
	if b, ok := c.cc.algo.(*bbr); ok && b.inited {
		return b.tsoSegsGoal(c)
	}
	rate := float64(c.PacingRate())
	if rate <= 0 {
		rate = 1 << 40 // Linux's sk_pacing_rate starts unlimited
	}
	minSegs := c.cfg.MinTSOSegs
	if minSegs <= 0 {
		minSegs = defaultMinTSOSegs
	}
	return max(paceQuantum(rate, mss), minSegs)
}

// defaultMinTSOSegs is Linux's tcp_min_tso_segs.
const defaultMinTSOSegs = 2

// prunePushMarks forgets marks for data the peer has acknowledged.
func (c *Conn) prunePushMarks() {
	i := 0
	for i < len(c.sq.pushMarks) && c.sq.pushMarks[i].at.LessThanEq(c.snd.una) {
		i++
	}
	if i > 0 {
		// Copy down rather than reslice, so the array is reused.
		c.sq.pushMarks = append(c.sq.pushMarks[:0], c.sq.pushMarks[i:]...)
	}
	c.pruneBufRuns()
}
