package tcp

// Send-buffer autotuning, as Linux's tcp_sndbuf_expand: while the
// congestion window is not what holds the sender back, an unlocked send
// buffer grows to hold twice the congestion window (three times under BBR,
// bbr_sndbuf_expand: it paces ahead of its ACKs), at least ten segments,
// at most SndBufMax (tcp_wmem[2]). Without it a 64 KiB buffer would cap a
// path of 20 ms at 26 Mbit/s whatever the congestion control does. A
// buffer set with SO_SNDBUF is left alone, and the buffer never shrinks.
// The buffer's memory counts each buffer's overhead (sndmem.go): it grows
// by that too, so that it holds the windows' data.

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
	want := factor * max(c.cc.cwnd, initialCwndSegs*c.opt.sndMSS)
	// Room for the data and for the overhead of the buffers it fills
	// (sndmem.go), as Linux's counts each skb's truesize.
	want += (want/c.sizeGoal(max(c.opt.sndMSS, 1)) + 1) * skbOverhead
	want = min(want, c.cfg.SndBufMax)
	if want > int(c.sq.bufSize) {
		c.sq.bufSize = int32(want)
	}
}
