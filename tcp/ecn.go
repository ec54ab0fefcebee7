package tcp

import (
	"github.com/synstack/synstack/tcp/seq"
	"github.com/synstack/synstack/wire"
)

// Explicit Congestion Notification (RFC 3168), as Linux's tcp_ecn modes.
// The SYN asks for it with ECE and CWR (Config.ECN = ECNOn), a SYN,ACK
// agrees with ECE alone; once agreed, new data goes out ECT(0) (Segment.ECN,
// which the stack puts in the IP header), pure ACKs and retransmissions
// Not-ECT. A receiver that gets data marked CE sets ECE on every segment
// until data with CWR comes; a sender that gets ECE reduces its window as
// for a loss, once per window, by PRR (the CWR state, Linux's
// tcp_enter_cwr), and sets CWR on its next new data.

// ECN codepoints of the IP header (RFC 3168 5), as Segment.ECN holds them.
const (
	ECNNotECT uint8 = 0 // Not-ECT: the sender does not do ECN
	ECNECT1   uint8 = 1 // ECT(1)
	ECNECT0   uint8 = 2 // ECT(0): what an ECN sender marks its data with
	ECNCE     uint8 = 3 // CE: congestion experienced, set by a router
)

// ECNMode is when a connection uses ECN (Linux's net.ipv4.tcp_ecn).
type ECNMode uint8

// The ECN modes. The zero value is Linux's default.
const (
	ECNPassive ECNMode = iota // tcp_ecn = 2: use ECN when the peer's SYN asks for it
	ECNOn                     // tcp_ecn = 1: ask for it in our SYNs too
	ECNOff                    // tcp_ecn = 0: never
)

// ECN state bits (options.ecn).
const (
	ecnOK        uint8 = 1 << iota // ECN agreed (or asked for, until the SYN,ACK)
	ecnSeen                        // data came with an ECT or CE mark (TCPI_OPT_ECN_SEEN)
	ecnDemandCWR                   // a CE mark came: ECE on every segment until CWR comes
	ecnQueueCWR                    // the window was reduced: CWR on the next new data
)

// ecnSYN sets the ECN flags of our SYN or SYN,ACK: a first SYN asks
// (ECNOn), a retransmitted one does not (Linux's tcp_ecn_fallback); a
// SYN,ACK agrees if the peer asked.
func (c *Conn) ecnSYN(tx *Segment, synAck bool) {
	switch {
	case synAck:
		if c.opt.ecn&ecnOK != 0 {
			tx.Flags |= wire.FlagECE
		}
	case c.cfg.ECN == ECNOn && c.rtx.backoff == 0:
		tx.Flags |= wire.FlagECE | wire.FlagCWR
		c.opt.ecn = ecnOK
	}
}

// ecnNegotiate takes the ECN flags of the peer's SYN or SYN,ACK: a SYN
// with ECE and CWR asks for ECN, which we agree to unless ECNOff; a
// SYN,ACK agrees with ECE without CWR.
func (c *Conn) ecnNegotiate(seg *Segment) {
	ece, cwr := seg.Flags&wire.FlagECE != 0, seg.Flags&wire.FlagCWR != 0
	if seg.Flags&flagACK == 0 {
		c.opt.ecn = 0
		if ece && cwr && c.cfg.ECN != ECNOff {
			c.opt.ecn = ecnOK
		}
		return
	}
	if !ece || cwr {
		c.opt.ecn &^= ecnOK
	}
}

// ecnOutput marks the segment being sent, n octets of data at seqno:
// ECT(0), and CWR when a reduction is to be told, on new data; ECE while
// the peer must hear of a CE mark (Linux's tcp_ecn_send). Pure ACKs and
// retransmissions are Not-ECT.
func (c *Conn) ecnOutput(tx *Segment, seqno seq.Value, n int) {
	if c.opt.ecn&ecnOK == 0 {
		return
	}
	if n > 0 && !seqno.LessThan(c.snd.max) {
		tx.ECN = ECNECT0
		if c.opt.ecn&ecnQueueCWR != 0 {
			c.opt.ecn &^= ecnQueueCWR
			tx.Flags |= wire.FlagCWR
		}
	}
	if c.opt.ecn&ecnDemandCWR != 0 {
		tx.Flags |= wire.FlagECE
	}
}

// ecnOnData takes the ECN marks of a segment with data (Linux's
// tcp_ecn_accept_cwr and tcp_ecn_check_ce): CWR ends the echo and is
// acknowledged at once; CE starts it, with quick ACKs so that a sender
// with a small window hears soon; a Not-ECT segment after ECT ones is
// likely a retransmission, acknowledged quickly too.
func (c *Conn) ecnOnData(seg *Segment) {
	if c.opt.ecn&ecnOK == 0 || len(seg.Payload) == 0 {
		return
	}
	if seg.Flags&wire.FlagCWR != 0 {
		c.opt.ecn &^= ecnDemandCWR
		c.ack.quickAcks = max(c.ack.quickAcks, 1)
	}
	switch seg.ECN {
	case ECNNotECT:
		if c.opt.ecn&ecnSeen != 0 {
			c.quickAckMode(2)
		}
		return
	case ECNCE:
		if c.opt.ecn&ecnDemandCWR == 0 {
			c.quickAckMode(2)
			c.opt.ecn |= ecnDemandCWR
		}
	}
	c.opt.ecn |= ecnSeen
}

// quickAcksFor is how many quick ACKs Linux's tcp_incr_quickack grants
// when asked for at most n: as many as half the window holds full
// segments, at least 2.
func (c *Conn) quickAcksFor(n uint8) uint8 {
	q := int(c.rcv.wnd) / (2 * max(int(c.opt.rcvMSS), 1))
	if q == 0 {
		q = 2
	}
	return uint8(min(q, int(n)))
}

// quickAckMode acknowledges the next n segments at once, as many as the
// window allows (Linux's tcp_enter_quickack_mode).
func (c *Conn) quickAckMode(n uint8) {
	c.ack.quickAcks = max(c.ack.quickAcks, c.quickAcksFor(n))
	c.ack.pingpong = false
	c.atoReset()
}

// ecnEcho reports whether seg echoes congestion: ECE on a segment that is
// not a SYN, once ECN is agreed (Linux's tcp_ecn_rcv_ecn_echo).
func (c *Conn) ecnEcho(seg *Segment) bool {
	return c.opt.ecn&ecnOK != 0 && seg.Flags&wire.FlagECE != 0 && seg.Flags&flagSYN == 0
}

// enterCWR reduces the window for a congestion echo, by PRR over the
// round trip, without a loss (Linux's tcp_enter_cwr): no undo can take it
// back. It ends once something sent after it is acknowledged.
func (c *Conn) enterCWR(now instant) {
	ep := &c.borrowFlight().ep
	ep.undoOn, ep.priorSsthresh = false, 0
	c.initCwndReduction(now)
	c.cc.loss = lossCWR
}
