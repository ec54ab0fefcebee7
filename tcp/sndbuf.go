package tcp

// Send-buffer autotuning, as Linux's tcp_sndbuf_expand: while the
// congestion window is not what holds the sender back, an unlocked send
// buffer grows to hold twice the congestion window (three times under BBR,
// bbr_sndbuf_expand: it paces ahead of its ACKs), at least ten segments,
// at most SndBufMax (tcp_wmem[2]). Without it a 64 KiB buffer would cap a
// path of 20 ms at 26 Mbit/s whatever the congestion control does. A
// buffer set with SO_SNDBUF is left alone, and the buffer never shrinks.

// defaultSndBufMax is Linux's tcp_wmem[2].
const defaultSndBufMax = 4 << 20

// sndBufExpand grows the send buffer with cwnd.
func (c *Conn) sndBufExpand() {
	if c.cfg.SndBufLocked || int(c.sq.bufSize) >= c.cfg.SndBufMax || c.pipe() >= c.cc.cwnd || c.cfg.Memory.UnderPressure() {
		return
	}
	factor := 2
	if c.rateControlled() {
		factor = 3
	}
	want := min(factor*max(c.cc.cwnd, initialCwndSegs*c.opt.sndMSS), c.cfg.SndBufMax)
	if want > int(c.sq.bufSize) {
		c.sq.bufSize = int32(want)
	}
}
