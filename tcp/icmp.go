package tcp

import (
	"syscall"
	"time"

	"github.com/synstack/synstack/tcp/seq"
)

// ICMP errors about a connection reach it through the stack, which parses
// the ICMP message and the segment it quotes. These three methods are what
// the connection does with them: RFC 5927's check against blind attacks,
// RFC 1122's hard errors during the handshake, and path MTU discovery
// (RFC 1191, RFC 8201).

// ICMPSeqOK reports whether s, the sequence number of the segment an ICMP
// error quotes, is one this connection has sent and not yet seen
// acknowledged: SND.UNA <= s <= SND.NXT, as Linux checks it (RFC 5927
// section 4.1; SND.NXT here is the highest ever sent, since a timeout
// rewinds it). An ICMP error that fails the check is forged or stale and
// must be ignored.
func (c *Conn) ICMPSeqOK(s seq.Value) bool {
	switch c.state {
	case Closed, Listen:
		return false
	}
	return c.snd.una.LessThanEq(s) && s.LessThanEq(c.snd.max)
}

// ICMPError applies an ICMP error (destination unreachable, time exceeded,
// parameter problem) converted to err, as Linux's tcp_v4_err does: during
// the handshake of an active open (SYN_SENT, or SYN_RCVD after a
// simultaneous open) the connection fails with err, which connect
// reports; a passive open in SYN_RCVD is dropped silently; an established
// connection ignores it (RFC 1122 section 4.2.3.9 and RFC 5461: such
// errors are soft). It reports whether the connection ended.
func (c *Conn) ICMPError(err syscall.Errno, cause Cause) bool {
	switch {
	case c.state == SynSent, c.state == SynRcvd && !c.passive:
		c.fail(err, cause)
		return true
	case c.state == SynRcvd:
		c.setState(Closed, cause)
		return true
	}
	return false
}

// ReduceMSS lowers the payload of the segments this connection sends to
// at most mss bytes (the path MTU less the IP and TCP headers, as the MSS
// option counts it; options such as timestamps come off it) when an ICMP
// packet-too-big or fragmentation-needed message has shown a smaller path
// MTU. The MSS never grows here and never drops below TCP_MIN_MSS. Data in
// flight went out in segments that are now too big and were lost: it is
// sent again at once in smaller ones, without a congestion response, as
// Linux's tcp_simple_retransmit does. It reports whether the MSS changed.
func (c *Conn) ReduceMSS(t time.Time, mss int) bool {
	now := c.at(t)
	switch c.state {
	case SynSent:
		c.lowerPMTU(mss)
		return c.fastOpenSynTooBig(now, mss)
	case Closed, Listen, TimeWait:
		return false
	}
	c.lowerPMTU(mss)
	mss = max(min(mss, int(c.opt.peerMSS), int(c.cfg.MSS)), minMSS)
	if c.opt.tsOK {
		mss -= tsOptionLen
	}
	mss -= c.md5Room()
	if mss >= c.opt.sndMSS {
		return false
	}
	c.opt.sndMSS = mss
	if c.state.Synchronized() && c.flight() > 0 {
		c.snd.nxt = c.snd.una
		c.rtx.rttTiming = false
		c.output(now)
	}
	return true
}

// minPMTU4 is the least path MTU IPv4 takes from an ICMP message (Linux's
// ip_rt_min_pmtu).
const minPMTU4 = 552

// lowerPMTU records the path MTU an ICMP message showed, mss being that
// MTU less the IP and TCP headers, if it is below the one the connection
// has: tcpi_pmtu (Linux's icsk_pmtu_cookie).
func (c *Conn) lowerPMTU(mss int) {
	hdr := 40
	if c.cfg.IPv6 {
		hdr = 60
	}
	mtu := mss + hdr
	if !c.cfg.IPv6 {
		mtu = max(mtu, minPMTU4)
	}
	if cur := c.pmtu(); cur != 0 && mtu >= cur || mtu > 0xffff {
		return
	}
	c.more().pmtu = uint16(mtu)
}

// pmtu returns the path MTU the connection sends by: the one an ICMP
// message lowered it to, or the link's.
func (c *Conn) pmtu() int {
	if m := c.stats.more; m != nil && m.pmtu != 0 {
		return int(m.pmtu)
	}
	return c.cfg.PathMTU
}
