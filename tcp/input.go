package tcp

import (
	"syscall"
	"time"

	"github.com/synstack/synstack/tcp/seq"
)

// sendSpace is the send sequence space of RFC 9293 section 3.3.1:
//
//	     1         2          3          4
//	----------|----------|----------|----------
//	       SND.UNA    SND.NXT    SND.UNA
//	                            +SND.WND
//
//	1 - old sequence numbers that have been acknowledged
//	2 - sequence numbers of unacknowledged data
//	3 - sequence numbers allowed for new data transmission
//	4 - future sequence numbers that are not yet allowed
//
// SND.UP is absent (no urgent data); max and maxWnd are Linux's
// additions.
type sendSpace struct {
	una, nxt seq.Value // SND.UNA, SND.NXT
	wnd      uint32    // SND.WND: the peer's window, scaled, in bytes
	wl1, wl2 seq.Value // SND.WL1, SND.WL2: SEG.SEQ and SEG.ACK of the last window update
	iss      seq.Value // ISS
	maxWnd   uint32    // largest window the peer has offered (RFC 5961 ACK check)
	max      seq.Value // highest SND.NXT ever: SND.NXT rewinds on a timeout
}

// recvSpace is the receive sequence space of RFC 9293 section 3.3.1:
//
//	    1          2          3
//	----------|----------|----------
//	       RCV.NXT    RCV.NXT
//	                 +RCV.WND
//
//	1 - old sequence numbers that have been acknowledged
//	2 - sequence numbers allowed for new reception
//	3 - future sequence numbers that are not yet allowed
//
// RCV.UP is absent (no urgent data).
type recvSpace struct {
	nxt   seq.Value // RCV.NXT
	wnd   uint32    // RCV.WND as last chosen, bytes (rcvwnd.go)
	irs   seq.Value // IRS
	right seq.Value // RCV.NXT+RCV.WND as last advertised: never moves left
	// rttSeq is where receive-buffer autotuning, without timestamps,
	// ends the window of data it times (autotune.go).
	rttSeq seq.Value
	// ssthresh and clamp bound the window we offer (rcvwnd.go): Linux's
	// rcv_ssthresh, which grows as data arrives, and window_clamp.
	ssthresh, clamp uint32
}

// options is what the SYN exchange settled (RFC 9293 3.7.1's MSS, RFC
// 7323's window scale and timestamps, RFC 2018's SACK) and the state
// they carry.
type options struct {
	sndMSS int // payload per segment we send (options excluded)

	// Timestamps (RFC 7323): TS.Recent, when it was taken (PAWS forgets
	// it after 24 idle days), Last.ACK.sent, and our timestamp clock,
	// which starts at epoch plus tsOffset (Init).
	tsRecentAt  instant
	epoch       instant
	tsRecent    uint32
	lastAckSent seq.Value
	tsOffset    uint32

	peerMSS int32 // the MSS option the peer sent
	rcvMSS  int32 // estimate of the peer's segment size (Linux's rcv_mss)
	// cookieBits: a stateless SYN,ACK (AnswerWithCookie) hides the
	// peer's options in the low bits of its TSval; cookieTS says the
	// connection began that way.
	cookieBits uint32

	sndShift, rcvShift uint8 // window scale applied to windows we receive / send
	wsOK, tsOK, sackOK bool  // window scale, timestamps, SACK negotiated
	cookieTS           bool
	ecn                uint8 // ECN state (ecn.go)
}

// rtxState is RFC 6298's round-trip estimate and the retransmission
// timer's state (its deadline is timerSet.rto), with the tail loss probe
// of RFC 8985 section 7.
type rtxState struct {
	srtt, rttvar time.Duration // SRTT, RTTVAR
	rto          time.Duration // RTO, before backoff
	minRTT       time.Duration // smallest RTT seen (tcpi_min_rtt)
	rttAt        instant       // when the segment being timed (Karn) was sent
	// stallSince is when the oldest unacknowledged data (or the wait for
	// the peer's window) began: TCP_USER_TIMEOUT counts from it.
	stallSince instant

	backoff      int32     // consecutive timeouts of the same segment
	rttSeq       seq.Value // Karn timing of one segment when timestamps are off
	rtoTSval     uint32    // our timestamp clock at the last timeout
	tlpHigh      seq.Value // SND.NXT when the probe was sent
	lastSegStart seq.Value // where the last new segment sent began (the probe resends it)

	hasRTT    bool  // srtt and rttvar hold a sample
	rttTiming bool  // a segment is being timed (rttAt, rttSeq)
	tlp       uint8 // a probe's episode (tlpNewData, tlpRetrans) lasts: see tlpOnAck
	persist   bool  // timerSet.rto is the persist timer (zero window)
}

// ackState is the ACK policy, as Linux's: delayed ACKs (RFC 1122
// 4.2.3.2, the deadline is timerSet.delAck), quick ACKs, pingpong mode and
// HoldACK; what the SACK option reports (RFC 2018, D-SACK of RFC 2883);
// and RFC 5961's challenge ACKs with their rate limit.
type ackState struct {
	lastOOWAck instant // when the last ACK to an out-of-window segment went

	// sackRecent is where the out-of-order segment received last began:
	// its SACK block goes first (RFC 2018 4).
	sackRecent seq.Value
	// dsack is the duplicate that arrived, to report (RFC 2883) as the
	// next segment's first SACK block when dsackPending.
	dsack                                     seqRange
	challenges, challengesSkipped, oowSkipped int32

	everData bool // data ever arrived: Linux's delayed-ACK engine (ato) is running
	pingpong bool // interactive: ACKs wait to ride on replies (Linux's pingpong mode)
	// holdAck and ackHeld are HoldACK's: the host holds more in-order
	// segments of this connection; an ACK owed only because more than
	// one full segment is unacknowledged (or in quick-ACK mode) waits
	// for FlushACK.
	holdAck, ackHeld bool
	dsackPending     bool
	// writerWaiting: a blocking writer waits for the handshake with data
	// still to send (Linux's sk_write_pending): the handshake's ACK then
	// waits as a delayed ACK, for that data to carry it.
	writerWaiting bool
	// writerAck: the handshake's ACK is held for a waiting writer's
	// data (inputSynSent), until the next segment goes.
	writerAck bool
	// quickAcks: ACK immediately while positive (Linux's quick-ack mode,
	// at most maxQuickAcks).
	quickAcks uint8
}

// recvQueue holds what arrived: in order and not yet read (the ring's n
// octets, the last one just before RCV.NXT), and beyond it, at their
// places in the sequence space, out-of-order data: the ranges ooo
// (sorted, disjoint, not adjacent, oooLen octets in all) and the FIN at
// oooFinSeq if oooFin.
//
//	       head             RCV.NXT
//	--------|================|------|######|------|####|---|F|---
//	        |  in order,     |  gap  ooo[0]   gap  ooo[1]    oooFinSeq
//	        |  not yet read  |
//
// All of it lives in one ring: the out-of-order ranges sit at their
// offsets from head, the gaps unused.
type recvQueue struct {
	ring
	ooo       []seqRange
	oooLen    int32
	oooFinSeq seq.Value
	// bufSize is SO_RCVBUF: the configuration's at first, then as tuned
	// (autotune.go) or set (SetBuffers).
	bufSize int32

	oooFin  bool
	finRcvd bool // the peer's FIN has been received in order (RCV.NXT is past it)
	rdShut  bool // SHUT_RD or Close: reads return EOF
	everRcv bool // data or FIN ever arrived (a read on a new connection is EAGAIN, not ENOTCONN)
}

// Input processes one arriving segment: RFC 9293 section 3.10.7, one handler
// per group of states, with RFC 5961's defences against blind attacks and
// RFC 7323's PAWS.
func (c *Conn) Input(t time.Time, seg *Segment) {
	now := c.at(t)
	c.stats.segsIn++
	if len(seg.Payload) > 0 {
		m := c.more()
		m.lastDataRcv = chronoMS(now)
		m.dataSegsIn++ // Linux's tcp_segs_in: a segment with payload
	}
	defer c.returnFlight(now)
	switch c.state {
	case Closed:
		c.inputClosed(now, seg)
	case Listen:
		c.inputListen(now, seg)
	case SynSent:
		c.inputSynSent(now, seg)
	default:
		c.inputSynchronized(now, seg)
	}
	if c.connected && c.cc.loss != lossRTO {
		// Out of loss recovery, or past the handshake a timeout had
		// resent: an RTO recovery episode, if one runs, ends.
		c.endRTOTime(now)
	}
}

// inputClosed: 3.10.7.1. Everything is discarded; anything but a RST gets one.
func (c *Conn) inputClosed(now instant, seg *Segment) {
	if seg.Flags&flagRST != 0 {
		return
	}
	c.replyRST(now, seg)
}

// replyRST answers a segment that belongs to no connection (RFC 9293 3.10.7.1):
// if it carried an ACK, <SEQ=SEG.ACK><CTL=RST>; otherwise
// <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
func (c *Conn) replyRST(now instant, seg *Segment) {
	if seg.Flags&flagACK != 0 {
		c.sc.seg = Segment{SEQ: seg.ACK, Flags: flagRST}
	} else {
		c.sc.seg = Segment{SEQ: 0, ACK: seg.SEQ.Add(seg.Len()), Flags: flagRST | flagACK}
	}
	c.emit()
}

// inputListen: 3.10.7.2. A SYN opens the connection: LISTEN -> SYN_RCVD.
func (c *Conn) inputListen(now instant, seg *Segment) {
	switch {
	case seg.Flags&flagRST != 0:
		// An incoming RST is ignored.
	case seg.Flags&flagACK != 0:
		// Any acknowledgment is bad: <SEQ=SEG.ACK><CTL=RST>.
		c.replyRST(now, seg)
	case seg.Flags&flagSYN != 0:
		c.opt.epoch = now
		c.lastRcv = now
		c.rcv.irs = seg.SEQ
		c.rcv.nxt = seg.SEQ.Add(1)
		c.negotiate(now, seg)
		if c.fo != nil {
			c.takeSynData(seg) // Fast Open: a good cookie's data is ours now
		}
		c.setState(SynRcvd, "rcv SYN")
		c.rtx.rttAt = now
		c.sendSYN(now, true)
		c.snd.nxt = c.snd.iss.Add(1)
		c.snd.max = c.snd.nxt
		c.armRTO(now)
	}
}

// negotiate records the options of the peer's SYN (or SYN,ACK): MSS, window
// scale (RFC 7323 2.2: both ends must offer it), SACK-permitted, timestamps.
func (c *Conn) negotiate(now instant, seg *Segment) {
	o := &seg.Options
	// The window's right edge starts at RCV.NXT plus the window our SYN
	// offered, if we sent one (a passive open has offered nothing yet).
	c.rcv.right = c.rcv.nxt.Add(seq.Size(c.rcv.wnd))
	c.opt.peerMSS = defaultPeerMSS
	if o.MSS != 0 {
		c.opt.peerMSS = int32(o.MSS)
	}
	if o.HasWScale && !c.cfg.NoWindowScale {
		c.opt.wsOK = true
		c.opt.sndShift = min(o.WScale, maxWScale)
		c.opt.rcvShift = c.offeredWScale()
	}
	c.opt.sackOK = o.SACKPermitted && !c.cfg.NoSACK
	c.ecnNegotiate(seg)
	if o.HasTimestamp && !c.cfg.NoTimestamps {
		c.opt.tsOK = true
		c.opt.tsRecent = o.TSVal
		c.opt.tsRecentAt = now
	}
	c.md5Negotiate()
	c.opt.sndMSS = max(min(int(c.opt.peerMSS), int(c.cfg.MSS), c.fastOpenPathMSS()), minMSS)
	if c.opt.tsOK {
		c.opt.sndMSS -= tsOptionLen
	}
	c.opt.sndMSS -= c.md5Room()
	c.snd.wnd = uint32(seg.WND) // a SYN's window is never scaled
	c.snd.maxWnd = c.snd.wnd
	c.initRcvMSS()
	c.cc.cwnd = initialCwndSegs * c.opt.sndMSS
	if !c.passive {
		// The window scale is now agreed: bound the window (a passive
		// open does so with its SYN,ACK).
		c.setRcvClamp()
	}
}

// inputSynSent: 3.10.7.3.
func (c *Conn) inputSynSent(now instant, seg *Segment) {
	ackOK := false
	if seg.Flags&flagACK != 0 {
		// An ACK outside ISS < SEG.ACK =< SND.NXT is not for us.
		if seg.ACK.LessThanEq(c.snd.iss) || seg.ACK.GreaterThan(c.synSentAckMax()) {
			if seg.Flags&flagRST == 0 {
				c.replyRST(now, seg)
			}
			return
		}
		ackOK = true
	}
	if seg.Flags&flagRST != 0 {
		// RFC 5961 3.2: only a RST acknowledging our SYN refuses the connection.
		if ackOK {
			c.fail(syscall.ECONNREFUSED, "rcv RST")
		}
		return
	}
	if seg.Flags&flagSYN == 0 {
		return
	}
	if ackOK && c.synAckEcrBad(now, seg) {
		// Linux's PAWS check in SYN_SENT (PAWSActiveRejected): a
		// SYN,ACK echoing a timestamp we never sent is answered with a
		// RST, and the connection still waits for a good one.
		c.replyRST(now, seg)
		return
	}
	c.rcv.irs = seg.SEQ
	c.rcv.nxt = seg.SEQ.Add(1)
	c.negotiate(now, seg)
	c.lastRcv = now
	if ackOK {
		c.snd.una = seg.ACK
		c.snd.wl1, c.snd.wl2 = seg.SEQ, seg.ACK
		c.rttSample(now, seg, c.snd.iss)
		c.handshakeRTOFallback()
		c.rtx.backoff = 0
		c.timer.rto = instant(0)
		// Fast Open: the cookie, and what of the SYN's data was
		// acknowledged, are settled before the transition reports it.
		resend := c.fo != nil && c.fastOpenSynAck(seg)
		c.setState(Established, "rcv SYN,ACK")
		c.armKeepalive(now)
		// The third segment of the handshake. Data on a SYN,ACK (rare) is
		// taken below as in ESTABLISHED.
		acked := c.stats.segsOut
		if len(seg.Payload) > 0 || seg.Flags&flagFIN != 0 {
			if c.fo != nil {
				// A Fast Open server may answer with data (Linux's
				// tcp_fastopen_add_skb queues it): it is in the
				// window our SYN offered.
				c.rcv.right = c.rcv.nxt.Add(seq.Size(min(c.rcvSpace(), 65535)))
			}
			c.processText(now, seg, seg.SEQ.Add(1), seg.Payload)
		}
		if resend {
			// Fast Open's data went unacknowledged: sent again at
			// once, the ACK riding on it.
			sent := c.stats.segsOut
			c.output(now)
			c.fastOpenResent(now)
			if c.stats.segsOut == sent {
				c.sendAck(now)
			}
			return
		}
		if c.ack.writerWaiting {
			// Linux's tcp_rcv_synsent_state_process: with a writer
			// waiting, the ACK is scheduled as a delayed ACK of
			// TCP_DELACK_MAX so that the writer's first segment carries
			// it (quick-ack mode stays on for what follows).
			c.timer.delAck = now.Add(delAckMax)
			// tcp_enter_quickack_mode starts the delayed-ACK engine
			// (ato is TCP_ATO_MIN from here on).
			c.ack.everData, c.ack.writerAck = true, true
			c.quickAckMode(maxQuickAcks)
			c.output(now)
			return
		}
		if c.stats.segsOut == acked {
			c.sendAck(now) // unless the data's ACK went already
		}
		c.output(now)
		return
	}
	// Simultaneous open: SYN_SENT -> SYN_RCVD, answering with
	// <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>.
	c.setState(SynRcvd, "rcv SYN")
	c.sendSYN(now, true)
	c.armRTO(now)
}

// synAckEcrBad reports a SYN,ACK whose TS ecr lies outside the
// timestamps we sent since our first SYN (RFC 7323 5.5 leaves it open;
// Linux's tcp_rcv_synsent_state_process refuses it).
func (c *Conn) synAckEcrBad(now instant, seg *Segment) bool {
	o := &seg.Options
	if !o.HasTimestamp || o.TSEcr == 0 || c.cfg.NoTimestamps {
		return false
	}
	first := c.tsNow(c.opt.epoch)
	return o.TSEcr-first > c.tsNow(now)-first
}

// acceptable is the acceptability test of RFC 9293 3.10.7.4, with the window
// we last advertised.
func (c *Conn) acceptable(seg *Segment) bool {
	n := seg.Len()
	wnd := c.rcvWindowNow()
	switch {
	case n == 0 && wnd == 0:
		return seg.SEQ == c.rcv.nxt
	case n == 0:
		// Linux (tcp_sequence) also takes a segment without data at the
		// window's right edge: a sender that filled our window sends its
		// ACKs there, and refusing them would ignore their ACK field for
		// as long as its data stays lost.
		return seg.SEQ.InWindow(c.rcv.nxt, seq.Size(wnd)+1)
	case wnd == 0:
		// RFC 9293 3.10.7.4: with a zero window no segment is
		// acceptable, "but special allowance should be made to accept
		// valid ACKs". Linux (tcp_sequence) takes one that starts at
		// RCV.NXT for its ACK and drops its data. Refusing it whole
		// deadlocked two stacks that each held the other's data
		// unacknowledged behind a zero window: each one's ACKs rode on
		// retransmissions the other refused.
		return seg.SEQ == c.rcv.nxt
	default:
		last := seg.SEQ.Add(n - 1)
		return seg.SEQ.InWindow(c.rcv.nxt, seq.Size(wnd)) || last.InWindow(c.rcv.nxt, seq.Size(wnd))
	}
}

// inputSynchronized handles SYN_RCVD and every later state: 3.10.7.4's
// "otherwise" branch, in its order: sequence number, RST, SYN, ACK, text, FIN.
// Each step that can end the segment's processing returns whether to go on.
func (c *Conn) inputSynchronized(now instant, seg *Segment) {
	// Two handshake segments that the acceptability test would refuse.
	if c.retransmittedSYN(seg) {
		// The peer did not hear our SYN,ACK: send it again.
		c.sendSYN(now, true)
		return
	}
	if c.crossedSynAck(seg) {
		c.completeCrossedOpen(now, seg)
		return
	}

	// RFC 7323 5.3 PAWS, before the sequence number.
	if c.pawsRejects(now, seg) {
		c.sendAck(now)
		return
	}

	// First: the sequence number.
	if !c.acceptable(seg) {
		c.inputUnacceptable(now, seg)
		return
	}
	c.lastRcv = now
	c.keepProbes = 0
	c.armKeepalive(now)

	// Second: RST. (Third, security, has no meaning here.)
	if seg.Flags&flagRST != 0 {
		c.inputRST(now, seg)
		return
	}

	// Fourth: SYN. RFC 5961 4.2: in a synchronized state any SYN draws a
	// challenge ACK; the peer, if it really restarted, answers with a RST.
	if seg.Flags&flagSYN != 0 {
		c.challengeAck(now, seg)
		return
	}

	// Fifth: the ACK field. Without it the segment is dropped.
	if seg.Flags&flagACK == 0 {
		return
	}
	if c.state == SynRcvd && !c.inputAckOfSYN(now, seg) {
		return
	}
	if !c.processAck(now, seg) {
		return
	}
	c.updateTSRecent(now, seg)

	// Sixth: the URG bit.
	if seg.Flags&flagURG != 0 || c.urg() != nil {
		c.urgInput(seg)
	}

	// Seventh and eighth: the text, and the FIN.
	if !c.inputTextAndFIN(now, seg) {
		return
	}
	c.output(now)
	c.maybeAck(now)
}

// retransmittedSYN reports a retransmission of the peer's SYN in SYN_RCVD.
func (c *Conn) retransmittedSYN(seg *Segment) bool {
	return c.state == SynRcvd && seg.Flags&flagsSynAckRst == flagSYN && seg.SEQ == c.rcv.irs
}

// crossedSynAck reports, in an active open's SYN_RCVD (a simultaneous open),
// the peer's SYN,ACK crossing ours and acknowledging our SYN. Its SYN lies
// just before RCV.NXT, so the acceptability test would refuse it; like Linux
// (6.11, "Don't drop SYN+ACK for simultaneous connect()") we take its ACK
// and complete the handshake, then answer its SYN as the duplicate it is.
func (c *Conn) crossedSynAck(seg *Segment) bool {
	return c.state == SynRcvd && !c.passive && seg.Flags&flagsSynAckRst == flagSYN|flagACK &&
		seg.SEQ == c.rcv.irs && seg.ACK.GreaterThan(c.snd.una) && seg.ACK.LessThanEq(c.snd.nxt)
}

// completeCrossedOpen takes a crossed SYN,ACK's ACK and window and moves to
// ESTABLISHED. Its SYN repeats the one already taken: as Linux's
// tcp_data_queue does for a segment wholly before RCV.NXT, it is
// acknowledged at once, with a D-SACK for it (RFC 2883) when SACK is on,
// on the data output sends or on an ACK of its own.
func (c *Conn) completeCrossedOpen(now instant, seg *Segment) {
	c.snd.una = seg.ACK
	c.snd.wnd = uint32(seg.WND) << c.opt.sndShift
	c.snd.maxWnd = max(c.snd.maxWnd, c.snd.wnd)
	c.snd.wl1, c.snd.wl2 = seg.SEQ, seg.ACK
	c.rtx.backoff = 0
	c.timer.rto = instant(0)
	c.setState(Established, "rcv SYN,ACK")
	c.armKeepalive(now)
	c.updateTSRecent(now, seg) // the answer echoes its timestamp
	c.setDSACK(seg.SEQ, seg.SEQ.Add(1))
	sent := c.stats.segsOut
	c.output(now)
	if c.stats.segsOut == sent {
		c.sendAck(now)
	}
}

// pawsRejects is RFC 7323 5.3 PAWS: a segment whose timestamp is older than
// TS.Recent is an old duplicate, answered with an ACK and dropped. Linux
// accepts segments without a timestamp.
func (c *Conn) pawsRejects(now instant, seg *Segment) bool {
	if !c.opt.tsOK || !seg.Options.HasTimestamp || seg.Flags&flagRST != 0 || c.state == SynRcvd {
		return false
	}
	return int32(seg.Options.TSVal-c.opt.tsRecent) < 0 && now.Sub(c.opt.tsRecentAt) < pawsIdle
}

// inputUnacceptable handles a segment that fails the acceptability test:
// unless it is a RST, it is answered with <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>
// and dropped.
func (c *Conn) inputUnacceptable(now instant, seg *Segment) {
	// A duplicate still refreshes TS.Recent (RFC 7323 4.3: SEG.SEQ =<
	// Last.ACK.sent), so our ACK echoes the retransmission that caused
	// it and the sender does not measure its timeout as RTT.
	c.updateTSRecent(now, seg)
	if seg.Flags&flagRST != 0 {
		return
	}
	if len(seg.Payload) > 0 && seg.SEQ.LessThan(c.rcv.nxt) {
		// An old duplicate: report it (RFC 2883), as Linux's
		// tcp_send_dupack.
		c.setDSACK(seg.SEQ, seg.SEQ.Add(seg.Len()))
	}
	// In TIME_WAIT a retransmitted FIN also restarts the 2MSL timer.
	if c.state == TimeWait && seg.Flags&flagFIN != 0 {
		c.timer.close = now.Add(c.cfg.TimeWait)
	}
	if c.state == TimeWait || !c.oowLimited(now, seg, false) {
		c.sendAck(now)
	}
}

// inputRST handles an acceptable RST. RFC 5961 3.2: only a RST at exactly
// RCV.NXT resets; one elsewhere in the window draws a challenge ACK.
func (c *Conn) inputRST(now instant, seg *Segment) {
	if seg.SEQ != c.rcv.nxt {
		c.challengeAck(now, seg)
		return
	}
	switch c.state {
	case SynRcvd:
		if c.passive && !c.FastOpenPassive() {
			// A passive open goes back to LISTEN: the listener lives on.
			// (A Fast Open child is a full connection: it is reset.)
			c.setState(Listen, "rcv RST")
			return
		}
		if c.FastOpenPassive() {
			c.fail(syscall.ECONNRESET, "rcv RST")
			return
		}
		c.fail(syscall.ECONNREFUSED, "rcv RST")
	case Established, FinWait1, FinWait2:
		c.fail(syscall.ECONNRESET, "rcv RST")
	case CloseWait:
		// Linux reports EPIPE: the peer has already said it is done.
		c.fail(syscall.EPIPE, "rcv RST")
	case Closing, LastAck:
		c.fail(syscall.ECONNRESET, "rcv RST")
	default: // TIME_WAIT: nobody is left to hear of it
		c.setState(Closed, "rcv RST")
	}
}

// inputAckOfSYN is the fifth check's SYN_RCVD case: SND.UNA < SEG.ACK =<
// SND.NXT completes the handshake; any other ACK is answered with a RST
// and the segment dropped (it returns false).
func (c *Conn) inputAckOfSYN(now instant, seg *Segment) bool {
	if seg.ACK.LessThanEq(c.snd.una) || seg.ACK.GreaterThan(c.snd.nxt) {
		c.replyRST(now, seg)
		return false
	}
	c.snd.wnd = uint32(seg.WND) << c.opt.sndShift
	if c.passive {
		// Linux builds the connection of a passive open from the ACK that
		// completes it (tcp_create_openreq_child): the largest window the
		// peer offered starts at this one, not at the SYN's unscaled one.
		c.snd.maxWnd = c.snd.wnd
		if c.fo == nil {
			// ...and guesses the peer's segment size then (a Fast Open
			// connection was built from its SYN).
			c.initRcvMSS()
		}
	} else {
		c.snd.maxWnd = max(c.snd.maxWnd, c.snd.wnd)
	}
	c.snd.wl1, c.snd.wl2 = seg.SEQ, seg.ACK
	c.setState(Established, "rcv ACK of SYN")
	c.armKeepalive(now)
	return true
}

// inputTextAndFIN is the sixth and seventh checks: the segment's text and
// its FIN. It returns false when the connection was reset instead.
func (c *Conn) inputTextAndFIN(now instant, seg *Segment) bool {
	switch c.state {
	case Established, FinWait1, FinWait2:
		if c.rq.rdShut && (c.state == FinWait1 || c.state == FinWait2) && len(seg.Payload) > 0 &&
			seg.SEQ.Add(seq.Size(len(seg.Payload))).GreaterThan(c.rcv.nxt) {
			// RFC 1122 4.2.2.13 and Linux: new data for a socket that will
			// never read it again is answered with a reset.
			c.replyRST(now, seg)
			c.fail(syscall.ECONNRESET, "rcv data after close")
			return false
		}
		c.ecnOnData(seg)
		c.processText(now, seg, seg.SEQ, seg.Payload)
	case CloseWait, Closing, LastAck, TimeWait:
		// The peer has already sent its FIN: a retransmitted FIN is
		// acknowledged again, anything else is ignored.
		if seg.Flags&flagFIN != 0 {
			if c.state == TimeWait {
				c.timer.close = now.Add(c.cfg.TimeWait)
			}
			c.sendAck(now)
		}
	}
	return true
}

// oowRateLimit is how often a connection answers segments outside its
// window or sends challenge ACKs (Linux's tcp_invalid_ratelimit, 500 ms).
const oowRateLimit = 500 * time.Millisecond

// oowLimited reports whether the answer to an out-of-window segment, or a
// challenge ACK (always, when challenge is set), must be skipped: at most
// one per oowRateLimit per connection (RFC 5961 7, Linux's
// tcp_oow_rate_limited), so a blind flood or an ACK loop cannot make us
// talk at its rate. Segments that carry data are always answered (they are
// not part of an ACK loop), unless it is a challenge.
func (c *Conn) oowLimited(now instant, seg *Segment, challenge bool) bool {
	if !challenge && len(seg.Payload) > 0 && seg.Flags&flagSYN == 0 {
		return false
	}
	if !c.ack.lastOOWAck.IsZero() && now.Sub(c.ack.lastOOWAck) >= 0 && now.Sub(c.ack.lastOOWAck) < oowRateLimit {
		if challenge {
			c.ack.challengesSkipped++
			c.cfg.Counters.SkippedChallenge++
		} else {
			c.ack.oowSkipped++
			c.cfg.Counters.SkippedSeq++
		}
		return true
	}
	c.ack.lastOOWAck = now
	return false
}

// challengeAck sends RFC 5961's challenge ACK, rate-limited.
func (c *Conn) challengeAck(now instant, seg *Segment) {
	if !c.oowLimited(now, seg, true) {
		c.ack.challenges++
		c.cfg.Counters.ChallengeACKs++
		c.sendAck(now)
	}
}

// Challenges returns the challenge ACKs sent, those the rate limit
// skipped, and the duplicate ACKs to out-of-window segments it skipped
// (Linux's TCPChallengeACK, TCPACKSkippedChallenge, TCPACKSkippedSeq).
func (c *Conn) Challenges() (sent, skipped, skippedSeq int) {
	return int(c.ack.challenges), int(c.ack.challengesSkipped), int(c.ack.oowSkipped)
}

// updateTSRecent is RFC 7323 4.3: TS.Recent follows the segment covering
// Last.ACK.sent.
func (c *Conn) updateTSRecent(now instant, seg *Segment) {
	if c.opt.tsOK && seg.Options.HasTimestamp && seg.SEQ.LessThanEq(c.opt.lastAckSent) {
		if int32(seg.Options.TSVal-c.opt.tsRecent) >= 0 || now.Sub(c.opt.tsRecentAt) >= pawsIdle {
			c.opt.tsRecent = seg.Options.TSVal
			c.opt.tsRecentAt = now
		}
	}
}

// processAck applies SEG.ACK (3.10.7.4, fifth step). It reports whether
// processing of the segment continues.
func (c *Conn) processAck(now instant, seg *Segment) bool {
	ack := seg.ACK
	// RFC 5961 5.2: an ACK for data never sent, or too old to be plausible,
	// is dropped; the old one draws a challenge ACK.
	if ack.GreaterThan(c.snd.max) {
		// RFC 9293 asks for an ACK here; Linux (tcp_ack, "ACK of unsent
		// data") drops the segment silently, and so do we: answering would
		// let a blind attacker make us talk.
		return false
	}
	if ack.LessThan(c.snd.una.Add(0) - seq.Value(c.snd.maxWnd)) {
		c.challengeAck(now, seg)
		return false
	}
	if c.state == TimeWait {
		return true
	}
	acked := int(ack.Sub(c.snd.una))
	c.rateBegin()
	c.sc.rs.ece = c.ecnEcho(seg)
	c.undoOnAckArrival(seg)
	if acked > 0 {
		c.onNewAck(now, seg, acked)
	}
	newSACK := c.updateScoreboard(now, seg)
	if acked <= 0 && newSACK {
		c.sackMayGrow()
	}
	c.tlpOnAck(now, seg, newSACK)
	if acked <= 0 && ack == c.snd.una && len(seg.Payload) == 0 && seg.Flags&flagFIN == 0 &&
		uint32(seg.WND)<<c.opt.sndShift == c.snd.wnd && c.flight() > 0 {
		c.onDupAck(now)
	}
	c.afterAck(now) // RACK, the rate sample, rate-based congestion control
	// Window update: SND.WL1 < SEG.SEQ, or SND.WL1 = SEG.SEQ and SND.WL2 =< SEG.ACK.
	if c.snd.una.LessThanEq(ack) && (c.snd.wl1.LessThan(seg.SEQ) || (c.snd.wl1 == seg.SEQ && c.snd.wl2.LessThanEq(ack))) {
		c.snd.wnd = uint32(seg.WND) << c.opt.sndShift
		c.snd.maxWnd = max(c.snd.maxWnd, c.snd.wnd)
		c.snd.wl1, c.snd.wl2 = seg.SEQ, ack
		if c.snd.wnd > 0 && c.rtx.persist {
			c.rtx.persist = false
			c.timer.rto = instant(0)
			c.rtx.backoff = 0
		}
	}

	finAcked := c.sq.finSent && ack.GreaterThan(c.sq.finSeq)
	switch c.state {
	case FinWait1:
		if finAcked {
			c.setState(FinWait2, "rcv ACK of FIN")
			if c.orphan {
				c.orphanInFinWait2(now)
				if c.state == Closed {
					return false
				}
			}
		}
	case Closing:
		if finAcked {
			c.enterTimeWait(now, "rcv ACK of FIN")
		}
		return true
	case LastAck:
		if finAcked {
			c.setState(Closed, "rcv ACK of FIN")
			return false
		}
	}
	return true
}

// onNewAck handles an ACK that acknowledges new data (SND.UNA advances).
func (c *Conn) onNewAck(now instant, seg *Segment, acked int) {
	old := c.snd.una
	c.snd.una = seg.ACK
	// Drop acknowledged octets from the send queue (the SYN and FIN occupy
	// sequence space but no buffer).
	if drop := int(c.snd.una.Sub(c.sq.start)); drop > 0 {
		drop = min(drop, c.sq.n)
		c.sq.consume(drop)
		if c.sq.n == 0 {
			c.sq.release(c.cfg.Buffers, c.cfg.Memory)
		}
		c.sq.start = c.sq.start.Add(seq.Size(drop))
		c.stats.bytesAcked += uint64(drop)
		if m := c.stats.more; m != nil && (m.chronoKind == chronoSndbuf && c.WriteReady() || c.sq.n == 0) {
			c.chronoStop(now, chronoSndbuf)
		}
	}
	c.prunePushMarks()
	c.rtx.stallSince = now // progress: TCP_USER_TIMEOUT counts again from here
	c.rttSample(now, seg, old)
	if old == c.snd.iss {
		c.handshakeRTOFallback()
	}
	c.rtx.backoff = 0
	c.sc.rs.unaAdvanced = true
	c.renoAcked(acked)
	inflight := int(c.snd.nxt.Sub(old))
	c.pruneScoreboard()
	c.pruneRecords(now)
	if c.recoveryOnAck(now) && !c.rateControlled() {
		c.sc.rs.growAfter, c.sc.rs.growInflight = true, inflight
	}
	c.armXmitTimer(now)
}

// onDupAck counts duplicate ACKs; the third starts fast retransmit and
// recovery (RFC 5681 3.2; RFC 6675 5 with SACK, RFC 6582 NewReno without).
func (c *Conn) onDupAck(now instant) {
	c.cc.dupAcks++
	c.sc.rs.dupAck = true
	if c.cc.loss != lossNone && c.cc.loss != lossCWR {
		return
	}
	// With SACK, RACK decides (rack.go); duplicate ACKs count when the
	// peer sends no SACK blocks.
	if c.cc.dupAcks >= dupThresh && len(c.cc.sacked) == 0 {
		c.enterRecovery(now)
	}
}

// processText queues in-order data, keeps out-of-order data for later, and
// takes the FIN (3.10.7.4, seventh and eighth steps).
func (c *Conn) processText(now instant, seg *Segment, s seq.Value, data []byte) {
	fin := seg.Flags&flagFIN != 0
	// Trim what we already have, and report it (RFC 2883).
	if d := int(c.rcv.nxt.Sub(s)); d > 0 {
		if len(data) > 0 {
			c.setDSACK(s, s.Add(seq.Size(min(d, len(data)))))
		}
		if d > len(data) {
			if fin && d == len(data)+1 {
				// Only a retransmitted FIN is left: acknowledge it again.
				c.ackNow(now)
			}
			return
		}
		data = data[d:]
		s = c.rcv.nxt
	}
	// Trim what lies beyond the window's right edge.
	room := int(c.rcv.right.Sub(s))
	if room < 0 {
		room = 0
	}
	if room == 0 && (len(data) > 0 || fin) {
		// The window is closed: data and FIN are dropped and the peer
		// told so at once (Linux's out_of_window, TCPZeroWindowDrop).
		c.ackNow(now)
		return
	}
	if len(data) > room {
		data = data[:room]
		fin = false
	}
	if len(data) == 0 && !fin {
		return
	}
	// Trim what the receive buffer may not hold, whatever the window said
	// (memory.go). A segment dropped for want of room is not acknowledged,
	// as in Linux: the peer sends it again.
	var ok bool
	if data, fin, ok = c.rcvAdmit(s, data, fin); !ok {
		return
	}
	if len(data) > 0 {
		c.rq.everRcv = true
		c.ack.everData = true
		c.rcvRTTMeasure(now, seg)
		c.opt.rcvMSS = max(c.opt.rcvMSS, int32(min(len(data), int(c.cfg.MSS))))
	}
	if s != c.rcv.nxt {
		c.ack.sackRecent = s
		c.more().ooopack++ // tcpi_rcv_ooopack, as Linux's tcp_data_queue_ofo counts
		c.queueOOO(s, data, fin)
		if c.opt.sackOK && len(data) > 0 {
			// Linux grows the window on out-of-order data of SACK flows.
			c.growRcvWindow(len(data))
		}
		// An out-of-order segment is acknowledged at once (RFC 5681 4.2)
		// so the sender sees duplicate ACKs.
		c.ackNow(now)
		return
	}
	if len(data) > 0 {
		c.atoOnData(now)
	}
	c.deliver(data)
	if len(data) >= rcvGrowMin {
		c.growRcvWindow(len(data))
	}
	if fin {
		c.takeFIN(now)
	}
	filledGap := c.hasOOO()
	c.drainOOO(now)
	if c.rq.finRcvd && c.state != CloseWait {
		// A FIN in FIN_WAIT_1 or FIN_WAIT_2 is acknowledged at once.
		c.ackNow(now)
		return
	}
	// Linux's __tcp_ack_snd_check: ACK at once when more than one full
	// segment is unacknowledged, in quick-ACK mode, or when a segment filled
	// a hole (RFC 5681 4.2); otherwise delay.
	moreThanOne := int(c.rcv.nxt.Sub(c.opt.lastAckSent)) > int(c.opt.rcvMSS)
	if c.state == CloseWait {
		// Linux enters pingpong mode on a FIN in ESTABLISHED and delays its
		// ACK, so that the application's own FIN can carry it. Before any
		// data has arrived its delayed-ACK timeout (ato) is still zero, so
		// the ACK goes out at once.
		c.ack.pingpong = true
		if !c.ack.everData || moreThanOne || filledGap {
			c.ackNow(now)
		} else if c.timer.delAck.IsZero() {
			c.timer.delAck = now.Add(delAckMin)
		}
		return
	}
	due := (c.ack.quickAcks > 0 && !c.ack.pingpong) || moreThanOne
	switch {
	case filledGap || c.hasOOO() || c.ack.dsackPending:
		c.ackNow(now)
	case due && c.ack.holdAck:
		// More of this run of segments is on its way (HoldACK): one
		// ACK for the run, as Linux sends one for a GRO aggregate. The
		// delayed-ACK timer is a backstop should FlushACK not come.
		c.ack.ackHeld = true
		if c.timer.delAck.IsZero() {
			c.timer.delAck = now.Add(delAckMin)
		}
	case due:
		c.ackNow(now)
	case c.timer.delAck.IsZero():
		c.timer.delAck = now.Add(delAckMin)
	}
}

// HoldACK tells the connection whether the host holds more in-order
// segments of it, already received, that it will pass to Input at once
// (a run of them in one batch from the link). While hold is true, an ACK
// that Input would send only because more than one full segment is
// unacknowledged, or in quick-ACK mode, waits for FlushACK: a run of
// segments gets one ACK, as Linux acknowledges one GRO aggregate once.
// Out-of-order segments, filled holes and duplicates are still
// acknowledged at once.
func (c *Conn) HoldACK(hold bool) { c.ack.holdAck = hold }

// SetWriterWaiting tells the connection whether a blocking writer waits
// for its handshake with data still to write (Linux's sk_write_pending):
// while one does, the SYN,ACK that establishes the connection is not
// acknowledged at once but by a delayed ACK, which the writer's first
// segment carries when it comes within TCP_DELACK_MAX (200 ms), as Linux
// does.
func (c *Conn) SetWriterWaiting(waiting bool) { c.ack.writerWaiting = waiting }

// FlushACK ends a run of segments passed to Input under HoldACK: it
// stops holding ACKs and sends the one held, if anything is still
// unacknowledged.
func (c *Conn) FlushACK(t time.Time) {
	c.ack.holdAck = false
	if !c.ack.ackHeld {
		return
	}
	c.ack.ackHeld = false
	if !c.state.Synchronized() || c.rcv.nxt == c.opt.lastAckSent {
		return
	}
	now := c.at(t)
	defer c.returnFlight(now)
	c.ackNow(now)
}

// deliver places in-order data at the end of the receive queue. The data
// may overlap out-of-order data already placed: drainOOO then takes what
// has become contiguous.
func (c *Conn) deliver(data []byte) {
	if len(data) == 0 {
		return
	}
	keep := c.rqExtent()
	c.rq.ensure(c.cfg.Buffers, c.cfg.Memory, max(c.rq.n+len(data), keep), keep)
	c.rq.writeAt(c.rq.n, data)
	c.rq.n += len(data)
	c.rcv.nxt = c.rcv.nxt.Add(seq.Size(len(data)))
	c.stats.bytesRcvd += uint64(len(data))
}

// setDSACK records a duplicate [l, r) for the next segment to report
// (RFC 2883), merged with one already waiting when they touch, as Linux's
// tcp_dsack_extend; only with SACK.
func (c *Conn) setDSACK(l, r seq.Value) {
	if !c.opt.sackOK || !l.LessThan(r) {
		return
	}
	if c.ack.dsackPending && !r.LessThan(c.ack.dsack.l) && !c.ack.dsack.r.LessThan(l) {
		l, r = seq.Min(l, c.ack.dsack.l), seq.Max(r, c.ack.dsack.r)
	}
	c.ack.dsack, c.ack.dsackPending = seqRange{l, r}, true
}

// rqExtent is how far the receive ring's contents reach from its head: the
// queued octets, and the out-of-order data beyond them.
func (c *Conn) rqExtent() int {
	if len(c.rq.ooo) == 0 {
		return c.rq.n
	}
	return c.rq.n + int(c.rq.ooo[len(c.rq.ooo)-1].r.Sub(c.rcv.nxt))
}

// hasOOO reports whether out-of-order data or a FIN waits beyond RCV.NXT.
func (c *Conn) hasOOO() bool { return len(c.rq.ooo) > 0 || c.rq.oooFin }

// maxOOORanges bounds the out-of-order ranges a connection keeps: a peer
// that sends every other octet cannot make the list grow with the window.
// A segment that would start one more range beyond it is dropped (it is
// sent again).
const maxOOORanges = 64

// queueOOO places an out-of-order segment at its place beyond the queued
// data and records its range (and the FIN after it).
func (c *Conn) queueOOO(s seq.Value, data []byte, fin bool) {
	end := s.Add(seq.Size(len(data)))
	if fin && (!c.rq.oooFin || end.LessThan(c.rq.oooFinSeq)) {
		c.rq.oooFin, c.rq.oooFinSeq = true, end
	}
	if len(data) == 0 {
		return
	}
	// Where the new range goes: after every range that ends before it.
	i := 0
	for i < len(c.rq.ooo) && c.rq.ooo[i].r.LessThan(s) {
		i++
	}
	j := i // the ranges i..j-1 touch or overlap it and merge with it
	for j < len(c.rq.ooo) && !end.LessThan(c.rq.ooo[j].l) {
		j++
	}
	if i == j && len(c.rq.ooo) >= maxOOORanges {
		return
	}
	// A part already held is a duplicate: report the first (RFC 2883, as
	// Linux's tcp_data_queue_ofo).
	for _, x := range c.rq.ooo[i:j] {
		if l, r := seq.Max(s, x.l), seq.Min(end, x.r); l.LessThan(r) {
			c.setDSACK(l, r)
			break
		}
	}
	off := int(s.Sub(c.rcv.nxt))
	keep := c.rqExtent()
	c.rq.ensure(c.cfg.Buffers, c.cfg.Memory, max(keep, c.rq.n+off+len(data)), keep)
	c.rq.writeAt(c.rq.n+off, data)
	merged := seqRange{s, end}
	for _, x := range c.rq.ooo[i:j] {
		merged.l, merged.r = seq.Min(merged.l, x.l), seq.Max(merged.r, x.r)
		c.rq.oooLen -= int32(x.r.Sub(x.l))
	}
	c.rq.oooLen += int32(merged.r.Sub(merged.l))
	switch {
	case i == j: // a new range at i
		c.rq.ooo = append(c.rq.ooo, seqRange{})
		copy(c.rq.ooo[i+1:], c.rq.ooo[i:])
	case j > i+1: // ranges i..j-1 become one
		c.rq.ooo = append(c.rq.ooo[:i+1], c.rq.ooo[j:]...)
	}
	c.rq.ooo[i] = merged
}

// drainOOO moves out-of-order data that has become contiguous with the
// queued data into the queue, and takes a FIN that follows it.
func (c *Conn) drainOOO(now instant) {
	k := 0
	for k < len(c.rq.ooo) && !c.rcv.nxt.LessThan(c.rq.ooo[k].l) {
		x := c.rq.ooo[k]
		c.rq.oooLen -= int32(x.r.Sub(x.l))
		if d := int(x.r.Sub(c.rcv.nxt)); d > 0 {
			c.rq.n += d
			c.rcv.nxt = x.r
			c.stats.bytesRcvd += uint64(d)
		}
		k++
	}
	if k > 0 {
		c.rq.ooo = append(c.rq.ooo[:0], c.rq.ooo[k:]...)
	}
	if c.rq.oooFin && !c.rq.finRcvd && c.rcv.nxt == c.rq.oooFinSeq {
		c.takeFIN(now)
	}
}

// takeFIN consumes the peer's FIN: RCV.NXT moves past it and the state
// follows the diagram (3.10.7.4, eighth step).
func (c *Conn) takeFIN(now instant) {
	c.rcv.nxt = c.rcv.nxt.Add(1)
	c.rq.finRcvd = true
	c.rq.everRcv = true
	c.clearOOO()
	switch c.state {
	case SynRcvd, Established:
		c.setState(CloseWait, "rcv FIN")
	case FinWait1:
		if c.sq.finSent && c.snd.una.GreaterThan(c.sq.finSeq) {
			c.enterTimeWait(now, "rcv FIN")
		} else {
			c.setState(Closing, "rcv FIN")
		}
	case FinWait2:
		c.enterTimeWait(now, "rcv FIN")
	}
}

// enterTimeWait starts the 2MSL wait.
func (c *Conn) enterTimeWait(now instant, cause Cause) {
	c.setState(TimeWait, cause)
	c.timer.close = now.Add(c.cfg.TimeWait)
}

// ackNow sends an ACK at once.
func (c *Conn) ackNow(now instant) {
	c.sendAck(now)
}

// maybeAck is a hook after a segment is processed: nothing is owed when the
// ACK went out piggybacked on data.
func (c *Conn) maybeAck(now instant) {}

// fail ends the connection with an error (0 for none): ECONNREFUSED,
// ECONNRESET, ETIMEDOUT.
func (c *Conn) fail(err syscall.Errno, cause Cause) {
	if err != 0 {
		c.err = packErrno(err)
	}
	// Data that arrived before the end stays readable, then the error,
	// then EOF, as in Linux (tcp_reset keeps the receive queue): a relay
	// passes on the bytes that came just before a reset. An orphan's
	// (rdShut) go with CLOSED; the rest go at Close.
	c.closedByErr = true
	c.setState(Closed, cause)
}

// rttSample takes an RTT measurement from an ACK that advanced SND.UNA from
// old: from the echoed timestamp when timestamps are on (RFC 7323 4), else
// from the first segment it acknowledges (ackedRecordsRTT) or the one
// timed segment, and never from a retransmission (Karn).
func (c *Conn) rttSample(now instant, seg *Segment, old seq.Value) {
	var r time.Duration
	switch {
	case c.opt.tsOK && seg.Options.HasTimestamp && seg.Options.TSEcr != 0:
		if c.rtx.backoff > 0 && int32(seg.Options.TSEcr-c.rtx.rtoTSval) < 0 {
			// The echo predates our last timeout: it times the wait for
			// the timer, not the path (Karn's rule, with timestamps).
			return
		}
		ms := int32(c.tsNow(now) - seg.Options.TSEcr)
		if ms < 0 {
			return
		}
		r = time.Duration(ms) * time.Millisecond
	case c.ackedRecordsRTT(now, old, &r):
		c.rtx.rttTiming = false
	case c.rtx.rttTiming && seg.ACK.GreaterThan(c.rtx.rttSeq):
		r = now.Sub(c.rtx.rttAt)
		c.rtx.rttTiming = false
	case c.rtx.backoff == 0 && old == c.snd.iss && !c.rtx.rttAt.IsZero():
		r = now.Sub(c.rtx.rttAt)
	default:
		return
	}
	if c.rtx.backoff > 0 && !(c.opt.tsOK && seg.Options.HasTimestamp) {
		return
	}
	c.updateRTO(r)
}

// ackedRecordsRTT sets *r to the time since the first segment the ACK
// acknowledges (from old to SND.UNA) was sent, as Linux's
// tcp_clean_rtx_queue times every ACK by its oldest newly acknowledged
// segment: segments SACKed before are skipped, and none is taken when a
// segment sent again is among them (Karn).
func (c *Conn) ackedRecordsRTT(now instant, old seq.Value, r *time.Duration) bool {
	if c.fl == nil {
		return false
	}
	q := &c.fl.txq
	i := q.find(old)
	if i < 0 {
		return false
	}
	found := false
	for ; i < q.len(); i++ {
		rec := q.at(i)
		if !rec.start.LessThan(c.snd.una) {
			break
		}
		if rec.has(recEverRetrans) {
			return false
		}
		if !rec.has(recSacked) && !found {
			*r, found = now.Sub(rec.xmit), true
		}
	}
	return found
}

// handshakeRTOFallback applies RFC 6298 5.7: when the handshake gave no RTT
// sample (its SYN or SYN,ACK was retransmitted), data starts with a 3 s RTO.
func (c *Conn) handshakeRTOFallback() {
	if !c.rtx.hasRTT {
		c.rtx.rto = max(rtoFallback, c.cfg.RTOMin)
	}
}

// updateRTO folds one sample into SRTT and RTTVAR (RFC 6298 2).
func (c *Conn) updateRTO(r time.Duration) {
	if !c.rtx.hasRTT {
		c.rtx.srtt = r
		c.rtx.rttvar = r / 2
		c.rtx.hasRTT = true
	} else {
		d := c.rtx.srtt - r
		if d < 0 {
			d = -d
		}
		c.rtx.rttvar = (3*c.rtx.rttvar + d) / 4
		c.rtx.srtt = (7*c.rtx.srtt + r) / 8
	}
	if c.rtx.minRTT == 0 {
		c.noteMinRTT(r) // the first sample; precise ones follow (rate.go)
	}
	// Linux's floor: RTTVAR never counts for less than RTOMin.
	c.rtx.rto = min(c.rtx.srtt+max(4*c.rtx.rttvar, c.cfg.RTOMin), c.cfg.RTOMax)
}
