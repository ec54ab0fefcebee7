package tcp

// Receive-window selection, as Linux chooses the window it advertises.
//
// The buffer gives the room: half of it holds data (rcvCapacity, Linux's
// tcp_full_space with its default payload share), less what is queued
// (rcvSpace, tcp_space). Three more values shape the window:
//
//   - The window a SYN or SYN,ACK offers is the room rounded down to a
//     whole number of segments (tcp_select_initial_window). It is kept
//     whole even where the SYN's 16-bit field can carry only 65,535 of it,
//     so the first window after the handshake is the whole of it.
//   - The clamp (window_clamp) is the most the window may ever offer: the
//     room, less one segment kept back so the buffer is never promised
//     whole (tcp_init_buffer_space with tcp_app_win), and no more than the
//     window scale can carry. When autotuning grows the buffer the clamp
//     follows the new room.
//   - The slow-start threshold of the window (rcv_ssthresh) starts at the
//     SYN's window and grows as data arrives, by two segments (or twice the
//     segment) per segment of 128 octets or more, up to the clamp and the
//     free room (tcp_grow_window). So a connection opens its window as the
//     peer shows it has data to send, not at once.
//
// The window offered is the free room up to rcv_ssthresh; with window
// scaling, rounded up to the scale's unit so it is not scaled away,
// without, kept as it was when within a segment of the room and otherwise
// rounded down to whole segments (the receiver's silly-window avoidance).
// Once less than half the room is free, a window under a sixteenth of the
// buffer's room or under one segment is announced as zero
// (__tcp_select_window). A window never moves its right edge left: when the
// choice would, the edge stays where it was, rounded up to the scale's
// unit (tcp_select_window).

// rcvReserveShift: Linux's tcp_app_win (31), the share of the buffer kept
// for the application (room >> 31, nothing at these sizes); with it, one
// segment of the room is held back from the clamp.
const rcvReserveShift = 31

// rcvGrowMin is the least segment that grows rcv_ssthresh: Linux's
// tcp_event_data_recv calls tcp_grow_window for 128 octets or more.
const rcvGrowMin = 128

// rcvAdvMSS is the segment size the window rules count in: the MSS our
// SYN advertised, less the timestamp option once an active open has
// agreed to timestamps (Linux's tp->advmss after tcp_rcv_synsent_state_process).
func (c *Conn) rcvAdvMSS() int {
	mss := min(int(c.cfg.MSS), c.fastOpenPathMSS())
	if c.opt.tsOK && !c.passive {
		mss -= tsOptionLen
	}
	return max(mss, minMSS)
}

// initRcvMSS makes the first guess of the peer's segment size, before data
// comes (Linux's tcp_initialize_rcv_mss): the smallest of the MSS we
// advertised, the size we send (which Linux bounds to half the largest
// window the peer offered, tcp_bound_to_half_wnd), half our window, and
// 536; at least 88. The window rounds to it, the delayed ACK counts in it.
func (c *Conn) initRcvMSS() {
	hint := min(int(c.cfg.MSS), c.opt.sndMSS, defaultPeerMSS)
	if w := int(c.snd.maxWnd); w > 0 {
		half := w
		if w > defaultPeerMSS {
			half = w / 2
		}
		hint = min(hint, half)
	}
	if c.rcv.wnd > 0 {
		hint = min(hint, int(c.rcv.wnd/2))
	}
	c.opt.rcvMSS = int32(max(hint, minMSS))
}

// initRcvWindow sets the window a SYN (or SYN,ACK) offers and the
// threshold it starts from: the room, rounded down to whole segments of
// mss, the size the peer's segments will have (the advertised MSS, less
// the timestamp option when a passive open agreed to timestamps).
func (c *Conn) initRcvWindow() {
	mss := min(int(c.cfg.MSS), c.fastOpenPathMSS())
	if c.opt.tsOK && c.passive {
		mss -= tsOptionLen
	}
	space := c.rcvCapacity()
	if mss = max(mss, 1); space > mss {
		space -= space % mss
	}
	c.rcv.wnd = uint32(space)
	c.rcv.ssthresh = c.rcv.wnd
}

// setRcvClamp sets the clamp once the window scale is agreed (Linux's
// tcp_init_buffer_space): the room less one segment, within what the
// scale can carry, and holds rcv_ssthresh to it.
func (c *Conn) setRcvClamp() {
	full := c.rcvCapacity()
	clamp := min(full, 65535<<c.opt.rcvShift)
	adv := c.rcvAdvMSS()
	if clamp >= full {
		clamp = full - full>>rcvReserveShift
	}
	if clamp > 2*adv && clamp+adv > full {
		clamp = max(2*adv, full-adv)
	}
	c.rcv.clamp = uint32(max(clamp, 0))
	c.rcv.ssthresh = min(c.rcv.ssthresh, c.rcv.clamp)
}

// rcvClampGrown lets the clamp follow a buffer that autotuning grew
// (tcp_rcv_space_adjust: the clamp becomes the new room).
func (c *Conn) rcvClampGrown() {
	c.rcv.clamp = uint32(min(c.rcvCapacity(), 65535<<c.opt.rcvShift))
}

// growRcvWindow raises rcv_ssthresh after a segment of n octets was queued
// (Linux's tcp_grow_window): by two segments, or twice the segment when
// larger, up to the clamp and the free room; not under memory pressure.
func (c *Conn) growRcvWindow(n int) {
	room := min(int(c.rcv.clamp), c.rcvSpace()) - int(c.rcv.ssthresh)
	if room <= 0 || c.cfg.Memory.UnderPressure() {
		return
	}
	incr := max(2*c.rcvAdvMSS(), 2*n)
	c.rcv.ssthresh += uint32(min(room, incr))
}

// selectRcvWindow is the window the room allows now, before the rule that
// a window never shrinks (Linux's __tcp_select_window).
func (c *Conn) selectRcvWindow() uint32 {
	mss := int(c.opt.rcvMSS)
	free := c.rcvSpace()
	allowed := c.rcvCapacity()
	full := min(int(c.rcv.clamp), allowed)
	if mss > full {
		if mss = full; mss <= 0 {
			return 0
		}
	}
	if c.cfg.Memory.UnderPressure() {
		// Under memory pressure the window opens by at most four segments
		// (Linux's tcp_adjust_rcv_ssthresh: rcv_ssthresh to 4 * advmss).
		c.rcv.ssthresh = min(c.rcv.ssthresh, uint32(4*c.rcvAdvMSS()))
	}
	unit := 1 << c.opt.rcvShift
	if free < full/2 {
		free -= free % unit
		// A window too small to be worth sending is announced as zero,
		// so the sender stops before the buffer fills.
		if free < allowed/16 || free < mss {
			return 0
		}
	}
	free = min(free, int(c.rcv.ssthresh))
	if c.opt.rcvShift > 0 {
		return uint32((free + unit - 1) &^ (unit - 1))
	}
	w := int(c.rcv.wnd)
	switch {
	case w <= free-mss || w > free:
		// More than a segment away from the room: whole segments of it.
		w = free - free%mss
	case mss == full && free > w+full/2:
		w = free
	}
	return uint32(w)
}

// windowToAdvertise picks the receive window for the next segment, in
// bytes: the window the room allows, or, when that would move the right
// edge left, the window that keeps it, rounded up to the scale so the
// scaled field does not pull it back (RFC 9293 3.8.6.2.2; Linux's
// tcp_select_window).
func (c *Conn) windowToAdvertise() uint32 {
	w := c.selectRcvWindow()
	if cur := c.rcvWindowNow(); w < cur {
		mask := uint32(1)<<c.opt.rcvShift - 1
		w = (cur + mask) &^ mask
	}
	return w
}
