package tcp

import (
	"time"

	"github.com/synstack/synstack/tcp/seq"
	"github.com/synstack/synstack/wire"
)

// SYN cookies (RFC 4987 3.6, as Linux does them): when a listener's SYN
// queue is full, the stack answers a SYN without keeping any state. Our
// initial sequence number, the cookie, carries what the connection needs
// (a keyed hash, a coarse clock and the peer's MSS, rounded to a table
// entry); with timestamps, the low six bits of our TSval carry the peer's
// window scale and SACK permission, and come back in the final ACK's TSecr.
// The stack computes and checks the cookie; this file builds the SYN,ACK
// and rebuilds the connection from the ACK.

// CookieMSS are the MSS values a cookie can carry (Linux's msstab): the
// peer's MSS is rounded down to one of them.
var CookieMSS = [4]uint16{536, 1300, 1440, 1460}

// cookieTSMask is the part of TSval that carries options (Linux's TSMASK).
const cookieTSMask = 0x3f

// CookieMSSIndex returns the index in CookieMSS for a peer's MSS option.
func CookieMSSIndex(mss uint16) int {
	if mss == 0 {
		mss = defaultPeerMSS
	}
	i := len(CookieMSS) - 1
	for i > 0 && CookieMSS[i] > mss {
		i--
	}
	return i
}

// cookieTSBits encodes a SYN's window scale (0xf when absent) and SACK
// permission in six bits, as Linux's cookie_init_timestamp.
func cookieTSBits(o *wire.TCPOptions) uint32 {
	bits := uint32(0xf)
	if o.HasWScale {
		bits = uint32(min(o.WScale, maxWScale))
	}
	if o.SACKPermitted {
		bits |= 1 << 4
	}
	return bits
}

// AnswerWithCookie sends the SYN,ACK for syn without keeping state: the
// connection must be new (CLOSED) and created with the cookie as its ISS.
// Nothing of it survives the call; the caller drops it.
func (c *Conn) AnswerWithCookie(t time.Time, syn *Segment) {
	now := c.at(t)
	c.opt.epoch = now
	c.passive = true
	c.state = Listen // no transition: a cookie answer is stateless
	c.rcv.irs = syn.SEQ
	c.rcv.nxt = syn.SEQ.Add(1)
	c.negotiate(now, syn)
	if c.opt.tsOK {
		c.opt.cookieTS = true
		c.opt.cookieBits = cookieTSBits(&syn.Options)
	}
	c.sendSYN(now, true)
	c.state = Closed
}

// OpenFromCookie rebuilds, from the ACK that returned a valid cookie, the
// connection a SYN_RCVD child would have been: mssIndex comes from the
// cookie, window scale and SACK from the echoed timestamp. The connection
// passes LISTEN -> SYN_RCVD (the state the cookie held) and then takes the
// ACK with Input like any child, reaching ESTABLISHED.
func (c *Conn) OpenFromCookie(t time.Time, ack *Segment, mssIndex int) {
	now := c.at(t)
	syn := Segment{SEQ: ack.SEQ - 1, Flags: flagSYN, WND: ack.WND}
	syn.Options.MSS = CookieMSS[min(max(mssIndex, 0), len(CookieMSS)-1)]
	if o := &ack.Options; o.HasTimestamp && !c.cfg.NoTimestamps {
		bits := o.TSEcr & cookieTSMask
		syn.Options.HasTimestamp = true
		syn.Options.TSVal = o.TSVal
		if ws := bits & 0xf; ws != 0xf {
			syn.Options.HasWScale = true
			syn.Options.WScale = uint8(ws)
		}
		syn.Options.SACKPermitted = bits&(1<<4) != 0
	}
	c.Listen()
	c.opt.epoch = now
	c.lastRcv = now
	c.rcv.irs = syn.SEQ
	c.rcv.nxt = syn.SEQ.Add(1)
	c.negotiate(now, &syn)
	// The SYN,ACK that carried the cookie offered the window of any
	// SYN,ACK (rcvwnd.go).
	c.initRcvWindow()
	c.setRcvClamp()
	c.rcv.right = c.rcv.nxt.Add(seq.Size(c.rcv.wnd))
	c.opt.lastAckSent = c.rcv.nxt
	c.snd.nxt = c.snd.iss.Add(1)
	c.snd.max = c.snd.nxt
	c.setState(SynRcvd, "rcv ACK with a valid SYN cookie")
}
