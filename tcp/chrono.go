package tcp

import "time"

// The times TCP_INFO reports besides the RTT: when data last arrived and
// left and an ACK last arrived (tcpi_last_data_recv, tcpi_last_data_sent,
// tcpi_last_ack_recv), and Linux's "chrono" (tcp_chrono_start/stop): how
// long the connection has been busy with data to send, and how much of
// that it spent held back by the peer's window or by a full send buffer
// (tcpi_busy_time, tcpi_rwnd_limited, tcpi_sndbuf_limited). One kind runs
// at a time, the most specific: a limit started while busy takes over,
// and when it stops the connection is busy again if data remains.
//
// They are kept in milliseconds in 32 bits, as Linux keeps them in
// jiffies (HZ=1000): differences wrap after 49 days, as Linux's do.

// chronoKind is what the connection is doing, as Linux's tcp_chrono.
type chronoKind uint8

const (
	chronoNone   chronoKind = iota
	chronoBusy              // data to send (the write or retransmission queue is not empty)
	chronoRwnd              // held back by the peer's receive window
	chronoSndbuf            // the writer waits for room in the send buffer
)

// chronoMS is an instant in milliseconds; never 0 (instants start an hour
// after their base).
func chronoMS(now instant) uint32 { return uint32(int64(now) / int64(time.Millisecond)) }

// infoStats are TCP_INFO's clocks and delivered count (connStats.more):
// milliseconds, 0 unset.
type infoStats struct {
	urg *urgent // nil unless urgent data was sent or received (urgent.go)

	lastDataRcv, lastDataSnd uint32
	chronoAt                 uint32
	chronoMS                 [3]uint32 // per chronoKind from chronoBusy
	deliveredSegs            uint32    // records delivered, by ACK or SACK (tcpi_delivered, less the SYN)
	reordSeen                uint32    // reorderings seen (tcpi_reord_seen; rack.go)

	// Data counters, retransmissions included (tcpi_bytes_sent,
	// tcpi_bytes_retrans, tcpi_data_segs_out, tcpi_data_segs_in), and
	// out-of-order segments queued (tcpi_rcv_ooopack).
	bytesSent, bytesRetrans uint64
	dataSegsOut, dataSegsIn uint32
	ooopack                 uint32
	rtoTime, rtoStamp       uint32 // ms in RTO recovery, ended episodes; the running one's start (0: none)
	ato, lrcv               uint32 // the delayed-ACK timeout (icsk_ack.ato) and when in-order data last came, ms
	rtoRecoveries           uint16 // RTO recovery episodes (tcpi_total_rto_recoveries)
	pmtu                    uint16 // the path MTU an ICMP message lowered it to (icmp.go), 0 if none
	chronoKind              chronoKind
}

// more returns the connection's infoStats, making them. Until then the
// data clocks count from the last segment received: the handshake's, for
// a connection that never carried data (a keepalive's answer moves it).
func (c *Conn) more() *infoStats {
	if c.stats.more == nil {
		ms := uint32(0)
		if !c.lastRcv.IsZero() {
			ms = chronoMS(c.lastRcv)
		}
		c.stats.more = &infoStats{lastDataRcv: ms, lastDataSnd: ms}
	}
	return c.stats.more
}

// chronoSet switches to kind k, adding the time spent in the current one.
func (c *Conn) chronoSet(now instant, k chronoKind) {
	m := c.more()
	ms := chronoMS(now)
	if t := m.chronoKind; t > chronoNone {
		m.chronoMS[t-1] += ms - m.chronoAt
	}
	m.chronoAt, m.chronoKind = ms, k
}

// chronoStart starts kind k unless a more specific one runs.
func (c *Conn) chronoStart(now instant, k chronoKind) {
	if m := c.stats.more; m == nil || k > m.chronoKind {
		c.chronoSet(now, k)
	}
}

// chronoStop stops kind k: the connection goes back to busy if it still
// has data to send, to none if not.
func (c *Conn) chronoStop(now instant, k chronoKind) {
	m := c.stats.more
	switch {
	case m == nil:
	case c.sq.n == 0 && c.flight() == 0:
		if m.chronoKind != chronoNone {
			c.chronoSet(now, chronoNone)
		}
	case k == m.chronoKind:
		c.chronoSet(now, chronoBusy)
	}
}

// chronoTimes returns tcpi_busy_time, tcpi_rwnd_limited and
// tcpi_sndbuf_limited: busy is the sum of the three kinds.
func (c *Conn) chronoTimes(now instant) (busy, rwnd, sndbuf time.Duration) {
	m := c.stats.more
	if m == nil {
		return 0, 0, 0
	}
	ms := m.chronoMS
	if t := m.chronoKind; t > chronoNone {
		ms[t-1] += chronoMS(now) - m.chronoAt
	}
	d := func(v uint32) time.Duration { return time.Duration(v) * time.Millisecond }
	return d(ms[0]) + d(ms[1]) + d(ms[2]), d(ms[1]), d(ms[2])
}

// since returns how long ago stamp (chronoMS) was; 0 if it was never set.
func since(now instant, stamp uint32) time.Duration {
	if stamp == 0 {
		return 0
	}
	return time.Duration(chronoMS(now)-stamp) * time.Millisecond
}

// infoLinux fills in the TCP_INFO fields that count segments in flight,
// times and the chrono.
func (c *Conn) infoLinux(now instant, inf *Info) {
	inf.Probes = int(c.keepProbes)
	if c.rtx.persist {
		inf.Probes += int(c.rtx.backoff)
	}
	if mss := c.opt.sndMSS; mss > 0 && c.fl != nil {
		q := &c.fl.txq
		for i := range q.len() {
			r := q.at(i)
			segs := max((r.size()+mss-1)/mss, 1)
			switch {
			case r.has(recSacked):
				inf.Sacked += segs
			case r.has(recLost):
				inf.Lost += segs
			case r.has(recRetrans):
				inf.Lost += segs // sent again because it was lost (or probed)
				inf.Retrans += segs
			}
		}
	}
	inf.Reordering = max(dupThresh, int(c.cc.reo.degree))
	if c.connected {
		inf.Delivered++ // the SYN or SYN,ACK, as Linux counts it
	}
	if !c.lastRcv.IsZero() {
		// Linux's rcv_tstamp moves with every acceptable ACK: every
		// segment a synchronized connection takes.
		inf.LastAckRecv = since(now, chronoMS(c.lastRcv))
		inf.LastDataSent, inf.LastDataRecv = inf.LastAckRecv, inf.LastAckRecv
	}
	if m := c.stats.more; m != nil {
		inf.Delivered += uint64(m.deliveredSegs)
		inf.ReordSeen = int(m.reordSeen)
		inf.LastDataSent = since(now, m.lastDataSnd)
		inf.LastDataRecv = since(now, m.lastDataRcv)
	}
	inf.BusyTime, inf.RwndLimited, inf.SndbufLimited = c.chronoTimes(now)
	inf.NotsentBytes = c.Unsent()
	inf.RcvRTT, inf.RcvSpace = c.tune.rtt, int(c.tune.space)
	inf.RcvSsthresh = int(c.rcv.ssthresh)
	inf.PMTU = c.pmtu()
	c.infoCounters(now, inf)
}

// infoCounters fills in the data counters, the delayed-ACK timeout and
// the RTO recovery episodes.
func (c *Conn) infoCounters(now instant, inf *Info) {
	m := c.stats.more
	if m == nil {
		return
	}
	inf.ATO = time.Duration(m.ato) * time.Millisecond
	inf.DataSegsIn, inf.DataSegsOut = uint64(m.dataSegsIn), uint64(m.dataSegsOut)
	inf.BytesSent, inf.BytesRetrans = m.bytesSent, m.bytesRetrans
	inf.RcvOOOPack = int(m.ooopack)
	inf.TotalRTORecoveries = int(m.rtoRecoveries)
	rto := m.rtoTime
	if m.rtoStamp != 0 {
		rto += chronoMS(now) - m.rtoStamp
	}
	inf.TotalRTOTime = time.Duration(rto) * time.Millisecond
}

// atoMinMS is Linux's TCP_ATO_MIN, the delayed-ACK timeout a connection
// starts with, in milliseconds.
const atoMinMS = 40

// atoOnData adapts the delayed-ACK timeout to in-order data arriving, as
// Linux's tcp_event_data_recv: the first data starts it at TCP_ATO_MIN,
// with quick ACKs (tcp_incr_quickack); later data moves it halfway toward
// the gap since the data before when that gap is shorter than it (at
// least TCP_ATO_MIN/2), and it stays at most the RTO.
// synstack's delayed-ACK timer keeps TCP_DELACK_MIN, which is what
// Linux's is too while the smoothed RTT is under it; the value is
// reported (tcpi_ato).
func (c *Conn) atoOnData(now instant) {
	m := c.more()
	ms := chronoMS(now)
	switch gap := ms - m.lrcv; {
	case m.ato == 0:
		m.ato = atoMinMS
		c.ack.quickAcks = max(c.ack.quickAcks, c.quickAcksFor(maxQuickAcks))
	case gap <= atoMinMS/2:
		m.ato = m.ato/2 + atoMinMS/2
	case gap < m.ato:
		m.ato = min(m.ato/2+gap, c.rtoMS())
	}
	m.lrcv = ms
}

// atoReset sets the delayed-ACK timeout back to TCP_ATO_MIN, as Linux's
// tcp_enter_quickack_mode does.
func (c *Conn) atoReset() { c.more().ato = atoMinMS }

// atoOnDelAck is Linux's tcp_delack_timer_handler on the delayed-ACK
// timeout: a missed delayed ACK doubles ato (up to the RTO), or in
// pingpong mode sets it back to TCP_ATO_MIN.
func (c *Conn) atoOnDelAck() {
	m := c.stats.more
	switch {
	case m == nil:
	case c.ack.pingpong:
		m.ato = atoMinMS
	default:
		m.ato = min(m.ato*2, c.rtoMS())
	}
}

// rtoMS is the RTO in milliseconds.
func (c *Conn) rtoMS() uint32 { return uint32(c.rtx.rto / time.Millisecond) }
