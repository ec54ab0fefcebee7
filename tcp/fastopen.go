package tcp

import (
	"syscall"
	"time"

	"github.com/synstack/synstack/tcp/seq"
	"github.com/synstack/synstack/wire"
)

// TCP Fast Open (RFC 7413), as Linux does it. The client puts data in its
// SYN with a cookie the server gave it on an earlier connection; the
// server checks the cookie (the stack does: it holds the key) and, if it
// is good, takes the data at once and acknowledges it in its SYN,ACK. A
// server that does not take it acknowledges the SYN alone, and the client
// sends the data again after the handshake.

// fastOpen is a connection's Fast Open state; Conn.fo is nil on a
// connection that never used Fast Open.
type fastOpen struct {
	// cookie[:cookieLen] is the cookie our next SYN (client) or SYN,ACK
	// (server) carries when option is set, a request when cookieLen is
	// 0; on a client, once the SYN,ACK came, the cookie it carried
	// (peerCookie).
	cookie    [wire.FastOpenCookieMax]byte
	cookieLen uint8
	exp       bool // the experimental option form (kind 254)
	option    bool
	// synData is the data our SYN carries (client), in octets; it goes
	// back to 0 when the SYN is sent again without it.
	synData int32
	// peerCookie: the peer's SYN,ACK carried a cookie (client).
	peerCookie bool
	// synDataOK is TCPI_OPT_SYN_DATA: our SYN's data was acknowledged
	// (client), or the SYN's data was taken (server).
	synDataOK bool
	// passive: a server's connection opened by Fast Open; it may be
	// read, written and accepted in SYN_RCVD.
	passive bool
	// takeData: the stack found the SYN's cookie good (SetFastOpenReply).
	takeData   bool
	clientFail uint8 // tcpi_fastopen_client_fail
	// dataLost: the SYN timed out and went again without its data,
	// which ended at lostEnd; a SYN,ACK may still acknowledge it (the
	// first SYN arrived, its answer was lost), as Linux takes it.
	dataLost bool
	lostEnd  seq.Value
	// synOpt: our SYN carried the option (Linux's syn_fastopen); a
	// cookie on a SYN,ACK to a SYN without it is unsolicited, ignored.
	synOpt bool
	// tryExp is Linux's try_exp for the client's cache
	// (FastOpenTryExp); synResent: the SYN timed out and went again.
	tryExp    uint8
	synResent bool
	// pathMSS, if not 0, is the MSS a smaller path MTU allows, learned
	// from an ICMP error about the SYN's data (fastOpenSynTooBig).
	pathMSS int32
	// resendEnd ends the SYN's data the SYN,ACK left unacknowledged,
	// which goes again as a retransmission (fastOpenResent).
	resendEnd seq.Value
}

// Fast Open client failures, as Linux's tcpi_fastopen_client_fail.
const (
	FastOpenFailUnspec           = 0 // TFO_STATUS_UNSPEC: no failure (or no Fast Open)
	FastOpenFailNoCookie         = 1 // TFO_COOKIE_UNAVAILABLE: no cookie was cached: the SYN asked for one
	FastOpenFailDataNotAcked     = 2 // TFO_DATA_NOT_ACKED: the SYN,ACK did not acknowledge the SYN's data
	FastOpenFailSynRetransmitted = 3 // TFO_SYN_RETRANSMITTED: the SYN timed out and went again without data
)

// tcpiOptSynData is TCPI_OPT_SYN_DATA in Info.Options.
const tcpiOptSynData = 32

// synOptionRoom is the option space Linux keeps free in a SYN with data
// (MAX_TCP_OPTION_SPACE), so that a middlebox adding options does not
// push it over the path's MTU.
const synOptionRoom = 40

// FastOpenRequest is what ConnectFastOpen puts in its SYN.
type FastOpenRequest struct {
	// Cookie is the cookie cached for the peer (4 to 16 bytes); empty,
	// the SYN asks for one and carries no data (unless NoCookie).
	Cookie []byte
	// Exp sends the experimental form of the option (kind 254).
	Exp bool
	// NoCookie sends the data without a cookie (tcp_fastopen's 0x4, for
	// servers that need none) and without the option.
	NoCookie bool
	// PeerMSS is the MSS the peer announced when the cookie was cached;
	// 0 when unknown (our own MSS then bounds the data).
	PeerMSS int
}

// FastOpenReply is what the stack decided about the Fast Open option of
// a SYN at a listener, for the connection it opens (SetFastOpenReply).
type FastOpenReply struct {
	// TakeData: the cookie is good (or none is needed): the SYN's data is
	// taken and acknowledged at once, and the connection may be used in
	// SYN_RCVD.
	TakeData bool
	// Cookie, when not nil, goes back in the SYN,ACK (the client asked
	// for one, or sent one that is stale); Exp picks the option's form.
	Cookie []byte
	Exp    bool
}

// fastOpenState returns c's Fast Open state, made on first use.
func (c *Conn) fastOpenState() *fastOpen {
	if c.fo == nil {
		c.fo = new(fastOpen)
	}
	return c.fo
}

// setCookie makes cookie (a request when empty) the one our next SYN or
// SYN,ACK carries.
func (fo *fastOpen) setCookie(cookie []byte, exp bool) {
	fo.cookieLen = uint8(copy(fo.cookie[:], cookie))
	fo.exp = exp
	fo.option = true
}

// ConnectFastOpen is Connect with TCP Fast Open: with a cookie (or
// NoCookie) the SYN carries as much of p as fits (the MSS, from the
// cached one, less 40 octets of option room, as Linux), and it returns
// how much that is; without a cookie the SYN asks for one and carries
// nothing. The rest of p is the caller's to write once the connection is
// established.
func (c *Conn) ConnectFastOpen(t time.Time, req FastOpenRequest, p []byte) (int, error) {
	if c.state != Closed {
		return 0, c.Connect(t) // its error for a connection already under way
	}
	fo := c.fastOpenState()
	n := 0
	switch {
	case len(req.Cookie) > 0 || req.NoCookie:
		if len(req.Cookie) > 0 {
			fo.setCookie(req.Cookie, req.Exp)
		}
		mss := int(c.cfg.MSS)
		if req.PeerMSS > 0 {
			mss = min(mss, req.PeerMSS)
		}
		n = min(len(p), max(mss-synOptionRoom, 0), int(c.sq.bufSize))
	default:
		fo.setCookie(nil, req.Exp)
		fo.clientFail = FastOpenFailNoCookie
	}
	fo.synOpt = fo.option
	if n > 0 {
		c.sq.ensure(c.cfg.Buffers, c.cfg.Memory, n, 0)
		c.sq.writeAt(0, p[:n])
		c.sq.n = n
		// One PSH mark, at the end, as Linux's SYN data carries PSH
		// (markPush's forced marks would use an MSS and a window not
		// known yet).
		end := c.sq.start.Add(seq.Size(n))
		c.sq.pushMarks = append(c.sq.pushMarks, sendMark{at: end, push: true})
		c.sq.pushed = end
		fo.synData = int32(n)
	}
	if err := c.Connect(t); err != nil {
		c.dropSendQueue()
		fo.synData = 0
		return 0, err
	}
	if n > 0 {
		c.snd.nxt = c.snd.nxt.Add(seq.Size(n))
		c.snd.max = c.snd.nxt
		c.cfg.Counters.FastOpenActive++
	}
	return n, nil
}

// SetFastOpenReply tells a passive connection, before it takes its SYN
// (Listen, then Input), what the stack decided about the SYN's Fast Open
// option.
func (c *Conn) SetFastOpenReply(r FastOpenReply) {
	if !r.TakeData && r.Cookie == nil {
		return
	}
	fo := c.fastOpenState()
	fo.takeData = r.TakeData
	if r.Cookie != nil {
		fo.setCookie(r.Cookie, r.Exp)
	}
}

// FastOpenPassive reports a server's connection opened by Fast Open: it
// is usable (readable, writable, acceptable) from SYN_RCVD on.
func (c *Conn) FastOpenPassive() bool { return c.fo != nil && c.fo.passive }

// FastOpenCookie returns, for a client's Fast Open connect once its
// SYN,ACK came, the cookie the SYN,ACK carried (empty when none), the
// option's form and the MSS the peer announced, for the stack to cache;
// ok is false on any other connection.
func (c *Conn) FastOpenCookie() (cookie []byte, exp bool, peerMSS int, ok bool) {
	if c.fo == nil || c.fo.passive || c.state == SynSent {
		return nil, false, 0, false
	}
	if !c.fo.peerCookie {
		return nil, false, int(c.opt.peerMSS), true
	}
	return c.fo.cookie[:c.fo.cookieLen], c.fo.exp, int(c.opt.peerMSS), true
}

// FastOpenTryExp tells the stack's cookie cache, once a client's SYN,ACK
// came, how to ask for a cookie next time (Linux's try_exp): 0, no
// change; 1, the cookie request went unanswered in the RFC 7413 form, so
// try the experimental one; 2, it went unanswered in that form too, so
// keep to the RFC 7413 form.
func (c *Conn) FastOpenTryExp() int {
	if c.fo == nil || c.fo.passive || c.state == SynSent {
		return 0
	}
	return int(c.fo.tryExp)
}

// takeSynData is the server's half in LISTEN: a SYN whose cookie the
// stack found good has its data taken at once, and the connection is
// marked usable in SYN_RCVD.
func (c *Conn) takeSynData(seg *Segment) {
	fo := c.fo
	if fo == nil || !fo.takeData {
		return
	}
	fo.passive, fo.synDataOK = true, len(seg.Payload) > 0
	if data := seg.Payload[:min(len(seg.Payload), c.rcvCapacity())]; len(data) > 0 {
		// Queued as Linux's tcp_fastopen_add_skb does: the delayed-ACK
		// engine does not start (everData stays false), so a FIN that
		// follows is acknowledged at once.
		c.rq.everRcv = true
		c.deliver(data)
	}
}

// addFastOpen puts the Fast Open option, and on a client's SYN its data,
// on the SYN or SYN,ACK being built. It returns a buffer borrowed to
// gather the data, for the caller to give back after sending.
func (c *Conn) addFastOpen(tx *Segment, synAck bool) (gathered []byte) {
	fo := c.fo
	if fo.option && (!synAck || c.passive) {
		// (A simultaneous open's SYN,ACK carries no option.)
		tx.Options.SetFastOpen(fo.cookie[:fo.cookieLen], fo.exp)
	}
	if synAck || fo.synData <= 0 {
		return nil
	}
	n := int(fo.synData)
	if tx.Payload = c.sq.view(0, n); tx.Payload == nil {
		gathered = c.cfg.Buffers.Get(n)
		tx.Payload = gathered[:n]
		c.sq.copyOut(tx.Payload, 0)
	}
	return gathered
}

// fastOpenSynAck is the client's half when the SYN,ACK comes: it keeps
// the cookie it carried, takes the acknowledgment of the SYN's data, and
// when the data was not (all) acknowledged, sends it again after the
// handshake (Linux's tcp_rcv_fastopen_synack). It reports whether data
// is to be sent again.
func (c *Conn) fastOpenSynAck(seg *Segment) bool {
	fo := c.fo
	fo.option = false
	if fo.synOpt && !seg.Options.HasFastOpen && fo.synData <= 0 && !fo.dataLost && !fo.synResent {
		// A cookie request went unanswered: next time ask in the other
		// form, once (Linux's try_exp: 1 after the RFC 7413 form, 2,
		// back to it for good, after the experimental one).
		fo.tryExp = 1
		if fo.exp {
			fo.tryExp = 2
		}
	}
	if o := &seg.Options; o.HasFastOpen && o.FastOpenLen > 0 && fo.synOpt {
		fo.cookieLen = uint8(copy(fo.cookie[:], o.FastOpenCookieBytes()))
		fo.exp = o.FastOpenExp
		fo.peerCookie = true
	} else {
		fo.cookieLen = 0
	}
	if fo.dataLost {
		// The first SYN's data, sent again without it, may be
		// acknowledged all the same; if not, it goes at once, the ACK
		// riding on it (Linux's tcp_rcv_fastopen_synack).
		fo.dataLost = false
		if seg.ACK.GreaterThan(c.snd.nxt) {
			c.fastOpenDataAcked(seg)
			c.snd.nxt, c.snd.max = seg.ACK, seg.ACK
			return false
		}
		fo.resendEnd = fo.lostEnd
		return c.sq.n > 0
	}
	if fo.synData <= 0 {
		return false
	}
	c.fastOpenDataAcked(seg)
	fo.synData = 0
	if seg.ACK == c.snd.nxt {
		fo.synDataOK = true
		return false
	}
	// Not all of it: what is left goes again, from SND.UNA.
	fo.clientFail = FastOpenFailDataNotAcked
	c.cfg.Counters.FastOpenActiveFail++
	fo.resendEnd = c.snd.nxt
	c.snd.nxt, c.snd.max = seg.ACK, seg.ACK
	return true
}

// fastOpenResent marks what of the SYN's data went again after the
// SYN,ACK as retransmitted, since it was sent before: Linux marks it lost
// and sends it through its retransmission path
// (tcp_non_congestion_loss_retransmit), so it counts in tcpi_retrans and
// tcpi_total_retrans, and gives no RTT sample (Karn). The connection is
// then in the loss state (TCP_CA_Loss) until that data is acknowledged
// (enterLossResend).
func (c *Conn) fastOpenResent(now instant) {
	if c.fl == nil {
		return
	}
	mss := max(c.opt.sndMSS, 1)
	for i := range c.fl.txq.len() {
		r := c.fl.txq.at(i)
		if r.end.GreaterThan(c.fo.resendEnd) {
			break
		}
		c.recordRetransmit(now, i)
		c.countRetrans(max((r.size()+mss-1)/mss, 1), r.size())
	}
	c.rtx.rttTiming = false
	c.enterLossResend(seq.Max(c.snd.nxt, c.fo.resendEnd))
}

// fastOpenDataAcked takes off the send queue what of the SYN's data the
// SYN,ACK acknowledges.
func (c *Conn) fastOpenDataAcked(seg *Segment) {
	acked := int(seg.ACK.Sub(c.snd.iss.Add(1)))
	if drop := min(max(acked, 0), c.sq.n); drop > 0 {
		c.sq.consume(drop)
		c.sq.start = c.sq.start.Add(seq.Size(drop))
		c.stats.bytesAcked += uint64(drop)
		c.prunePushMarks()
	}
}

// synSentAckMax is the highest acknowledgment a SYN,ACK may carry:
// SND.NXT, or the end of a Fast Open SYN's data sent again without it.
func (c *Conn) synSentAckMax() seq.Value {
	if c.fo != nil && c.fo.dataLost && c.fo.lostEnd.GreaterThan(c.snd.nxt) {
		return c.fo.lostEnd
	}
	return c.snd.nxt
}

// fastOpenPathMSS is the MSS the path allows, as an ICMP error about a
// Fast Open SYN showed it, or a bound no MSS reaches.
func (c *Conn) fastOpenPathMSS() int {
	if c.fo == nil || c.fo.pathMSS == 0 {
		return 1 << 16
	}
	return int(c.fo.pathMSS)
}

// fastOpenSynTooBig is ReduceMSS in SYN_SENT: a Fast Open SYN whose data
// was too big for the path goes again at once without it, offering the
// MSS the path allows, which also bounds the segments sent after the
// handshake (Linux's tcp_v4_mtu_reduced then tcp_simple_retransmit, which
// sends a SYN that carried data again as a plain SYN). The data waits for
// the handshake, as after a SYN timeout.
func (c *Conn) fastOpenSynTooBig(now instant, mss int) bool {
	fo := c.fo
	if fo == nil || fo.synData <= 0 || mss >= int(c.cfg.MSS) {
		return false
	}
	fo.pathMSS = int32(max(mss, minMSS))
	fo.option, fo.synData = false, 0
	fo.dataLost, fo.lostEnd = true, c.snd.nxt
	c.snd.nxt = c.snd.iss.Add(1)
	c.snd.max = c.snd.nxt
	c.sendSYN(now, false)
	return true
}

// fastOpenSynTimeout is the client's half when its SYN times out: the
// SYN goes again plain, without the option and the data (Linux's
// tcp_write_timeout for a Fast Open SYN), which wait for the handshake.
func (c *Conn) fastOpenSynTimeout() {
	fo := c.fo
	if fo == nil {
		return
	}
	fo.option = false
	fo.synResent = true
	if fo.synData <= 0 {
		return
	}
	fo.synData = 0
	fo.clientFail = FastOpenFailSynRetransmitted
	c.cfg.Counters.FastOpenActiveFail++
	fo.dataLost, fo.lostEnd = true, c.snd.nxt
	c.snd.nxt = c.snd.iss.Add(1)
	c.snd.max = c.snd.nxt
}

// FastOpenICMPError is ICMPError for a Fast Open child in SYN_RCVD that
// the application has not accepted yet: Linux's tcp_v4_err fails it with
// err, so that accept still gives it, closed, its data readable and then
// the error. (Once accepted, Linux treats it as a connected socket, whose
// ICMP errors are soft: the host does not call this.) Any other
// connection gets ICMPError. It reports whether the connection ended.
func (c *Conn) FastOpenICMPError(err syscall.Errno, cause Cause) bool {
	if c.state != SynRcvd || !c.FastOpenPassive() {
		return c.ICMPError(err, cause)
	}
	c.fail(err, cause)
	return true
}

// fastOpenWritable reports a passive Fast Open connection in SYN_RCVD,
// which Linux lets the application write to before the handshake ends.
func (c *Conn) fastOpenWritable() bool {
	return c.state == SynRcvd && c.FastOpenPassive()
}

// fastOpenInfo adds Fast Open's part of TCP_INFO.
func (c *Conn) fastOpenInfo(inf *Info) {
	if c.fo == nil {
		return
	}
	if c.fo.synDataOK {
		inf.Options |= tcpiOptSynData
	}
	inf.FastOpenClientFail = int(c.fo.clientFail)
}
