package tcp

import "github.com/synstack/synstack/wire"

// TCP MD5 signatures (RFC 2385), as Linux keeps them. A connection with a
// key (Config.MD5Key) puts the option on every segment it sends: SYN,
// SYN,ACK, ACKs, data and RSTs; the stack fills in the digest (it alone
// knows the addresses) and checks the peer's segments before they reach
// the connection. Its room comes off the payload of every segment, and
// the 40 bytes of option space are shared as Linux shares them:
//
//   - a SYN carries no timestamps (tcp_syn_options);
//   - a SYN,ACK carries none when SACK is permitted (tcp_synack_options):
//     the connection then goes without them;
//   - an ACK carries SACK blocks only where they fit: two beside the
//     signature, none beside signature and timestamps
//     (tcp_established_options).
//
// A connection without a key pays one nil check per segment sent.

// md5OptionLen is the room the option takes, aligned: nop,nop,md5.
const md5OptionLen = 20

// SetMD5Key sets the key the connection signs with and checks its peer's
// segments with (TCP_MD5SIG); nil stops signing. A connection with a key
// sends nothing for the link to cut (Config.SegmentOffload): each segment
// is signed whole. Set on a synchronized connection, the payload per
// segment shrinks or grows by the option's room, as Linux's
// tcp_current_mss does.
func (c *Conn) SetMD5Key(key []byte) {
	had := c.cfg.MD5Key != nil
	cfg := c.ownConfig()
	if key == nil {
		cfg.MD5Key = nil
	} else {
		cfg.MD5Key = append([]byte(nil), key...)
		cfg.SegmentOffload = 0
	}
	if has := key != nil; has != had && c.state.Synchronized() {
		if has {
			c.opt.sndMSS = max(c.opt.sndMSS-md5OptionLen, 1)
		} else {
			c.opt.sndMSS += md5OptionLen
		}
	}
}

// MD5Key returns the connection's signing key, nil if it has none.
func (c *Conn) MD5Key() []byte { return c.cfg.MD5Key }

// md5Room is the room the signature takes off every segment's payload.
func (c *Conn) md5Room() int {
	if c.cfg.MD5Key != nil {
		return md5OptionLen
	}
	return 0
}

// md5Negotiate applies the signature's claim on the SYN's option space to
// what negotiate agreed: a SYN,ACK that signs and permits SACK has no room
// for timestamps, so a passive connection goes without them.
func (c *Conn) md5Negotiate() {
	if c.cfg.MD5Key != nil && c.passive && c.opt.sackOK {
		c.opt.tsOK = false
	}
}

// sackLimit is how many SACK blocks fit beside the other options of a
// segment the connection sends: 4, 3 beside timestamps; with a
// signature 2, and none beside signature and timestamps.
func (c *Conn) sackLimit() int {
	switch {
	case c.cfg.MD5Key != nil && c.opt.tsOK:
		return 0
	case c.cfg.MD5Key != nil:
		return 2
	case c.opt.tsOK:
		return 3
	}
	return 4
}

// md5Options puts the signature option on seg and makes room for it on a
// SYN or SYN,ACK as Linux does: no timestamps on a SYN, nor on a SYN,ACK
// that permits SACK; a Fast Open option that no longer fits goes.
func (c *Conn) md5Options(seg *Segment) {
	o := &seg.Options
	o.HasMD5 = true
	if seg.Flags&flagSYN != 0 && (seg.Flags&flagACK == 0 || o.SACKPermitted) {
		o.HasTimestamp, o.TSVal, o.TSEcr = false, 0, 0
	}
	h := wire.TCP{Options: *o}
	if h.OptionsLen() > wire.TCPMaxOptionsLen && o.HasFastOpen {
		o.HasFastOpen, o.FastOpenLen = false, 0
	}
}
