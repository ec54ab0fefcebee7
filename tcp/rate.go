package tcp

import "time"

// Delivery-rate estimation (draft-cheng-iccrg-delivery-rate-estimation,
// Linux's tcp_rate.c). Each record keeps, from when it was sent, how much
// had been delivered and when; when it is delivered (acknowledged or
// SACKed) the difference gives the rate over that interval. One sample per
// ACK: from the most recently sent record it delivered.

// rateState is the connection's side of the estimator.
type rateState struct {
	delivered   uint64  // bytes delivered (ACKed or SACKed) so far
	deliveredAt instant // when delivered last grew
	firstSentAt instant // send time of the record most recently delivered
	appLimited  uint64  // nonzero: application-limited until delivered passes it
	sends       uint64  // transmissions so far: txrec.order

	// lastRate is the rate (bytes per second) of the last sample that was
	// not application-limited, or of the fastest application-limited one:
	// tcpi_delivery_rate. congestion.rateAppLimited says which.
	lastRate uint64
}

// rateSample is what one ACK tells of the delivery rate.
type rateSample struct {
	priorDelivered uint64        // delivered when the newest record acked was sent
	priorAt        instant       // deliveredAt then; zero: no record delivered by this ACK
	lastXmit       instant       // send time of the newest record delivered
	lastOrder      uint64        // its txrec.order
	sendElapsed    time.Duration // the send phase of the interval
	appLimited     bool
	delivered      int64         // bytes delivered over the interval; -1: no sample
	interval       time.Duration // the interval; <= 0: no sample
	rtt            time.Duration // RTT of the newest record delivered; -1: none
	rttXmit        instant       // that record's send time
	ackedSacked    int           // bytes newly delivered by this ACK
	losses         int           // bytes newly marked lost by this ACK
	priorInFlight  int           // pipe before the ACK
	// growAfter: the ACK advanced SND.UNA outside a recovery, so cwnd
	// grows once its SACK blocks are read too (afterAck); growInflight is
	// the flight it acknowledged from.
	growAfter    bool
	growInflight int
	// renoCounted: without SACK, the octets of this ACK that duplicate
	// ACKs had already reported delivered (renoAcked).
	renoCounted int
	// unaAdvanced: the ACK advanced SND.UNA; dupAck: it was a duplicate
	// ACK (RFC 5681's definition).
	unaAdvanced, dupAck bool
	// ecr is the ACK's echoed timestamp, when hasEcr (undo.go).
	ecr    uint32
	hasEcr bool
	ece    bool // the ACK echoes congestion (ECN, ecn.go)
	// reordered: a record delivered in the current phase of the ACK
	// (its SACK blocks, then SND.UNA's advance) filled a hole below one
	// delivered before (rackOnDelivered, countReordering).
	reordered bool
}

// rateOnSend takes the snapshot for a record sent now (tcp_rate_skb_sent).
func (c *Conn) rateOnSend(now instant, r *txrec) {
	rt := &c.cc.rate
	if c.recs() == 0 || c.flight() == 0 {
		// Nothing in flight: the interval starts now.
		rt.firstSentAt, rt.deliveredAt = now, now
	}
	r.xmit = now
	rt.sends++
	r.order = rt.sends
	r.delivered = rt.delivered
	r.deliveredAt = rt.deliveredAt
	r.firstSentAt = rt.firstSentAt
	r.appLimited = rt.appLimited != 0
}

// rateBegin starts the sample of an arriving ACK.
func (c *Conn) rateBegin() {
	c.sc.rs = rateSample{rtt: -1, priorInFlight: c.pipe()}
}

// onDelivered is called once for every record delivered, by cumulative ACK
// or by SACK (sacked): it moves the delivery counters and feeds the rate
// sample (tcp_rate_skb_delivered) and RACK (rack.go).
func (c *Conn) onDelivered(now instant, r *txrec, sacked bool) {
	rt := &c.cc.rate
	rs := &c.sc.rs
	n := r.size()
	rt.delivered += uint64(n)
	c.more().deliveredSegs++
	rt.deliveredAt = now
	rs.ackedSacked += n
	if rs.priorAt.IsZero() || r.order > rs.lastOrder {
		rs.priorDelivered = r.delivered
		rs.priorAt = r.deliveredAt
		rs.appLimited = r.appLimited
		rs.lastXmit = r.xmit
		rs.lastOrder = r.order
		rs.sendElapsed = r.xmit.Sub(r.firstSentAt)
		rt.firstSentAt = r.xmit
		if rs.priorAt.IsZero() {
			rs.priorAt = r.xmit // never zero once a record is delivered
		}
	}
	if !r.has(recEverRetrans) && (rs.rtt < 0 || !r.xmit.Before(rs.rttXmit)) {
		rs.rtt, rs.rttXmit = now.Sub(r.xmit), r.xmit
	}
	c.rackOnDelivered(now, r, sacked)
}

// rateEnd completes the sample of the ACK (tcp_rate_gen).
func (c *Conn) rateEnd(now instant) {
	rt := &c.cc.rate
	rs := &c.sc.rs
	if rt.appLimited != 0 && rt.delivered > rt.appLimited {
		rt.appLimited = 0
	}
	if rs.priorAt.IsZero() {
		rs.delivered, rs.interval = -1, -1
		return
	}
	if rs.rtt > 0 {
		// The minimum RTT from send times, to the nanosecond (timestamps
		// count milliseconds), as Linux's tcp_min_rtt from its skb stamps.
		c.noteMinRTT(rs.rtt)
	}
	rs.delivered = int64(rt.delivered - rs.priorDelivered)
	ackElapsed := now.Sub(rs.priorAt)
	rs.interval = max(rs.sendElapsed, ackElapsed)
	if rs.interval < c.rtx.minRTT || rs.interval <= 0 {
		// Shorter than a round trip: the ACKs were compressed, the rate
		// is not to be believed.
		rs.interval = -1
		return
	}
	if r := uint64(float64(rs.delivered) / rs.interval.Seconds()); !rs.appLimited || r >= rt.lastRate {
		rt.lastRate = r
		c.cc.rateAppLimited = rs.appLimited
	}
}

// rateCheckAppLimited marks the flight application-limited when the
// sender has less than a segment to send, the congestion window is not
// what holds it back and no loss waits to be repaired
// (tcp_rate_check_app_limited): samples taken until this flight is
// delivered do not show what the path can do.
func (c *Conn) rateCheckAppLimited() {
	if c.queuedFrom(c.snd.nxt) >= c.opt.sndMSS || c.pipe() >= c.cc.cwnd || c.lostPending() {
		return
	}
	c.cc.rate.appLimited = max(c.cc.rate.delivered+uint64(c.pipe()), 1)
}

// deliveryRate is tcpi_delivery_rate, in bytes per second.
func (c *Conn) deliveryRate() uint64 {
	return c.cc.rate.lastRate
}

// noteMinRTT folds an RTT sample into the minimum (Linux's tcp_min_rtt,
// without its 5-minute window).
func (c *Conn) noteMinRTT(r time.Duration) {
	if r > 0 && (c.rtx.minRTT == 0 || r < c.rtx.minRTT) {
		c.rtx.minRTT = r
	}
}
