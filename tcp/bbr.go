package tcp

import (
	"time"
)

// BBR congestion control, version 1, as Linux's net/ipv4/tcp_bbr.c: a
// model of the path (the windowed maximum delivery rate and the windowed
// minimum RTT) sets the pacing rate and the congestion window, instead of
// reacting to losses. Its state machine:
//
//	STARTUP    pacing gain 2.89 until the bandwidth stops growing by 25 %
//	           for three rounds
//	DRAIN      pacing gain 1/2.89 until the queue STARTUP built is gone
//	PROBE_BW   gains cycle 5/4, 3/4, 1, 1, 1, 1, 1, 1, one phase per
//	           min RTT; cwnd is twice the bandwidth-delay product
//	PROBE_RTT  when the min RTT was not seen again for 10 s: four
//	           packets in flight for at least 200 ms and a round trip
//
// Units: rates in bytes per second, windows in packets of SMSS inside the
// model (as Linux), bytes in Conn.cwnd. Linux's long-term ("policer")
// bandwidth sampling is not done (docs/linux-differences.md).

// CongestionBBR is BBR's name for TCP_CONGESTION.
const CongestionBBR = "bbr"

type bbrMode uint8

const (
	bbrStartup bbrMode = iota
	bbrDrain
	bbrProbeBW
	bbrProbeRTT
)

var bbrModeNames = [...]string{"STARTUP", "DRAIN", "PROBE_BW", "PROBE_RTT"}

func (m bbrMode) String() string { return bbrModeNames[m] }

// Linux's constants, with its fixed-point gains (BBR_UNIT = 256) kept exact.
const (
	bbrHighGain        = 739.0 / 256 // 2/ln(2), rounded up
	bbrDrainGain       = 88.0 / 256  // 1/high gain
	bbrCwndGain        = 2.0
	bbrCycleLen        = 8
	bbrBWRounds        = bbrCycleLen + 2 // the max filter's window, in rounds
	bbrMinRTTWindow    = 10 * time.Second
	bbrProbeRTTTime    = 200 * time.Millisecond
	bbrCwndMinTarget   = 4
	bbrFullBWThresh    = 1.25
	bbrFullBWCount     = 3
	bbrPacingMargin    = 0.99 // bbr_pacing_margin_percent = 1
	bbrExtraAckedRTTs  = 5
	bbrExtraAckedMax   = 100 * time.Millisecond
	bbrAckEpochResetAt = 1 << 20 // packets
	bbrMinTSORate      = 1200000 / 8
	bbrCycleRand       = 7
)

var bbrPacingGains = [bbrCycleLen]float64{5.0 / 4, 3.0 / 4, 1, 1, 1, 1, 1, 1}

// rateControl is a congestion control that sets cwnd (and the pacing
// rate) itself on every ACK from the rate sample, as Linux's cong_control
// hook: fast recovery and slow start leave cwnd to it.
type rateControl interface {
	congestionControl
	// onAck runs on every ACK, after loss detection.
	onAck(c *Conn, now instant, rs *rateSample)
	// onLossTimeout is told of a retransmission timeout.
	onLossTimeout(c *Conn)
	// onTxStart is told when sending restarts with nothing in flight.
	onTxStart(c *Conn, now instant)
	// pacingRate is the pacing rate in bytes per second.
	pacingRate(c *Conn, now instant) float64
}

// maxFilter is Kathleen Nichols' windowed maximum (Linux's lib/minmax.c):
// the best, second-best and third-best samples of the window.
type maxFilter struct {
	s [3]struct {
		t uint32
		v float64
	}
}

func (m *maxFilter) get() float64 { return m.s[0].v }

func (m *maxFilter) reset(t uint32, v float64) {
	for i := range m.s {
		m.s[i].t, m.s[i].v = t, v
	}
}

// update takes sample v at round t, for a window of win rounds.
func (m *maxFilter) update(win, t uint32, v float64) {
	if v >= m.s[0].v || t-m.s[2].t > win {
		m.reset(t, v)
		return
	}
	val := m.s[0]
	val.t, val.v = t, v
	if v >= m.s[1].v {
		m.s[2], m.s[1] = val, val
	} else if v >= m.s[2].v {
		m.s[2] = val
	}
	dt := t - m.s[0].t
	switch {
	case dt > win:
		m.s[0], m.s[1], m.s[2] = m.s[1], m.s[2], val
		if t-m.s[0].t > win {
			m.s[0], m.s[1], m.s[2] = m.s[1], m.s[2], val
		}
	case m.s[1].t == m.s[0].t && dt > win/4:
		m.s[2], m.s[1] = val, val
	case m.s[2].t == m.s[1].t && dt > win/2:
		m.s[2] = val
	}
}

// bbr is one connection's BBR state (Linux's struct bbr).
type bbr struct {
	inited bool
	mode   bbrMode

	minRTT      time.Duration // 0: none yet
	minRTTStamp instant
	probeRTTEnd instant // zero: PROBE_RTT has not reached its low inflight yet
	probeRound  bool    // PROBE_RTT spent a round at low inflight

	bw               maxFilter // bytes per second
	rttCnt           uint32    // packet-timed rounds
	nextRTTDelivered uint64    // delivered at the end of this round
	roundStart       bool

	cycleStamp instant
	cycleIdx   int

	packetConservation bool
	idleRestart        bool
	prevCAState        int
	priorCwnd          int // packets

	pacingGain, cwndGain float64
	pacing               float64 // bytes per second
	hasSeenRTT           bool

	fullBWReached bool
	fullBWCount   int
	fullBW        float64

	extraAcked     [2]int // packets
	extraAckedRTTs int
	extraAckedIdx  int
	ackEpochStamp  instant
	ackEpochAcked  int // packets
	rnd            uint32
}

func (*bbr) name() string { return CongestionBBR }

// reset is called after a timeout through ssthreshAfterLoss's caller;
// BBR keeps its model (Linux's bbr has no reset on loss).
func (*bbr) reset() {}

// avoid is not used: BBR sets cwnd in onAck.
func (*bbr) avoid(c *Conn, now instant, acked int) {}

// ssthreshAfterLoss saves cwnd for after recovery and leaves ssthresh
// alone (bbr_ssthresh).
func (b *bbr) ssthreshAfterLoss(c *Conn, now instant) int {
	b.init(c, now)
	b.saveCwnd(c)
	return c.cc.ssthresh
}

func (b *bbr) init(c *Conn, now instant) {
	if b.inited {
		return
	}
	b.inited = true
	b.nextRTTDelivered = c.cc.rate.delivered
	b.prevCAState = 0
	b.minRTT = c.rtx.minRTT
	b.minRTTStamp = now
	b.bw.reset(0, 0)
	b.rnd = uint32(c.snd.iss) | 1
	b.initPacingFromRTT(c)
	b.resetStartup()
	b.ackEpochStamp = now
}

func (b *bbr) mss(c *Conn) int { return max(c.opt.sndMSS, 1) }

// pkts is bytes in packets, rounded up.
func (b *bbr) pkts(c *Conn, bytes int) int { return (bytes + b.mss(c) - 1) / b.mss(c) }

func (b *bbr) cwndPkts(c *Conn) int { return c.cc.cwnd / b.mss(c) }

func (b *bbr) setCwndPkts(c *Conn, p int) { c.cc.cwnd = max(p, 1) * b.mss(c) }

func (b *bbr) inflightPkts(c *Conn) int { return b.pkts(c, c.pipe()) }

func (b *bbr) saveCwnd(c *Conn) {
	if b.prevCAState < 3 && b.mode != bbrProbeRTT {
		b.priorCwnd = b.cwndPkts(c)
	} else {
		b.priorCwnd = max(b.priorCwnd, b.cwndPkts(c))
	}
}

func (b *bbr) resetStartup() {
	b.mode = bbrStartup
}

func (b *bbr) resetProbeBW(c *Conn, now instant) {
	b.mode = bbrProbeBW
	b.rnd = b.rnd*1664525 + 1013904223
	b.cycleIdx = bbrCycleLen - 1 - int((b.rnd>>16)%bbrCycleRand)
	b.advanceCycle(c)
}

func (b *bbr) resetMode(c *Conn, now instant) {
	if !b.fullBWReached {
		b.resetStartup()
	} else {
		b.resetProbeBW(c, now)
	}
}

func (b *bbr) maxBW() float64 { return b.bw.get() }

// rateWithGain is bbr_rate_bytes_per_sec: bw times gain, less the margin.
func (b *bbr) rateWithGain(bw, gain float64) float64 { return bw * gain * bbrPacingMargin }

func (b *bbr) initPacingFromRTT(c *Conn) {
	rtt := time.Millisecond
	if c.rtx.hasRTT && c.rtx.srtt > 0 {
		rtt = c.rtx.srtt
		b.hasSeenRTT = true
	}
	bw := float64(c.cc.cwnd) / rtt.Seconds()
	b.pacing = b.rateWithGain(bw, bbrHighGain)
}

func (b *bbr) setPacingRate(c *Conn, bw, gain float64) {
	rate := b.rateWithGain(bw, gain)
	if !b.hasSeenRTT && c.rtx.hasRTT {
		b.initPacingFromRTT(c)
	}
	if b.fullBWReached || rate > b.pacing {
		b.pacing = rate
	}
}

// tsoSegsGoal is how many segments go out back to back (Linux's
// tcp_tso_autosize with bbr_min_tso_segs): about a millisecond's worth
// at the pacing rate, at least two, at most 64 KiB.
func (b *bbr) tsoSegsGoal(c *Conn) int {
	return paceQuantum(b.pacing, b.mss(c))
}

// paceQuantum is the burst, in segments, sent at once at rate.
func paceQuantum(rate float64, mss int) int {
	minSegs := 2
	if rate < bbrMinTSORate {
		minSegs = 1
	}
	bytes := min(int(rate)>>10, 65536)
	return min(max(bytes/max(mss, 1), minSegs), 0x7f)
}

// bdp is the bandwidth-delay product times gain, in packets.
func (b *bbr) bdp(c *Conn, bw, gain float64) int {
	if b.minRTT == 0 {
		return initialCwndSegs
	}
	bytes := bw * b.minRTT.Seconds() * gain
	return (int(bytes) + b.mss(c) - 1) / b.mss(c)
}

func (b *bbr) quantizationBudget(c *Conn, cwnd int) int {
	cwnd += 3 * b.tsoSegsGoal(c)
	cwnd = (cwnd + 1) &^ 1
	if b.mode == bbrProbeBW && b.cycleIdx == 0 {
		cwnd += 2
	}
	return cwnd
}

func (b *bbr) inflight(c *Conn, bw, gain float64) int {
	return b.quantizationBudget(c, b.bdp(c, bw, gain))
}

// inNetAtEDT is the inflight expected when the next packet leaves
// (bbr_packets_in_net_at_edt).
func (b *bbr) inNetAtEDT(c *Conn, now instant, inflight int) int {
	edt := c.cc.paceNext
	if edt.Before(now) {
		edt = now
	}
	delivered := int(b.maxBW() * edt.Sub(now).Seconds() / float64(b.mss(c)))
	at := inflight
	if b.pacingGain > 1 {
		at += b.tsoSegsGoal(c)
	}
	if delivered >= at {
		return 0
	}
	return at - delivered
}

// pacingRate starts the model once the connection is synchronized (Linux
// initialises BBR when the handshake completes, with its RTT).
func (b *bbr) pacingRate(c *Conn, now instant) float64 {
	if !b.inited {
		if !c.state.Synchronized() {
			return 0
		}
		b.init(c, now)
	}
	return b.pacing
}

func (b *bbr) onTxStart(c *Conn, now instant) {
	if c.cc.rate.appLimited == 0 {
		return
	}
	b.idleRestart = true
	b.ackEpochStamp = now
	b.ackEpochAcked = 0
	switch b.mode {
	case bbrProbeBW:
		b.setPacingRate(c, b.maxBW(), 1)
	case bbrProbeRTT:
		b.checkProbeRTTDone(c, now)
	}
}

func (b *bbr) onLossTimeout(c *Conn) {
	b.prevCAState = 4
	b.fullBW = 0
	b.roundStart = true
}

// onAck is bbr_main.
func (b *bbr) onAck(c *Conn, now instant, rs *rateSample) {
	b.init(c, now)
	b.updateModel(c, now, rs)
	b.setPacingRate(c, b.maxBW(), b.pacingGain)
	b.setCwnd(c, now, rs)
}

func (b *bbr) updateModel(c *Conn, now instant, rs *rateSample) {
	b.updateBW(c, rs)
	b.updateAckAggregation(c, rs)
	b.updateCyclePhase(c, now, rs)
	b.checkFullBW(rs)
	b.checkDrain(c, now)
	b.updateMinRTT(c, now, rs)
	b.updateGains()
}

func (b *bbr) updateBW(c *Conn, rs *rateSample) {
	b.roundStart = false
	if rs.delivered < 0 || rs.interval <= 0 {
		return
	}
	if rs.priorDelivered >= b.nextRTTDelivered {
		b.nextRTTDelivered = c.cc.rate.delivered
		b.rttCnt++
		b.roundStart = true
		b.packetConservation = false
	}
	bw := float64(rs.delivered) / rs.interval.Seconds()
	if !rs.appLimited || bw >= b.maxBW() {
		b.bw.update(bbrBWRounds, b.rttCnt, bw)
	}
}

func (b *bbr) updateAckAggregation(c *Conn, rs *rateSample) {
	if rs.ackedSacked <= 0 || rs.delivered < 0 || rs.interval <= 0 {
		return
	}
	if b.roundStart {
		b.extraAckedRTTs = min(0x1f, b.extraAckedRTTs+1)
		if b.extraAckedRTTs >= bbrExtraAckedRTTs {
			b.extraAckedRTTs = 0
			b.extraAckedIdx ^= 1
			b.extraAcked[b.extraAckedIdx] = 0
		}
	}
	at := c.cc.rate.deliveredAt
	expected := int(b.maxBW() * at.Sub(b.ackEpochStamp).Seconds() / float64(b.mss(c)))
	acked := b.pkts(c, rs.ackedSacked)
	if b.ackEpochAcked <= expected || b.ackEpochAcked+acked >= bbrAckEpochResetAt {
		b.ackEpochAcked = 0
		b.ackEpochStamp = at
		expected = 0
	}
	b.ackEpochAcked = min(0xfffff, b.ackEpochAcked+acked)
	extra := min(b.ackEpochAcked-expected, b.cwndPkts(c))
	if extra > b.extraAcked[b.extraAckedIdx] {
		b.extraAcked[b.extraAckedIdx] = extra
	}
}

func (b *bbr) ackAggregationCwnd(c *Conn) int {
	if !b.fullBWReached {
		return 0
	}
	maxAggr := int(b.maxBW() * bbrExtraAckedMax.Seconds() / float64(b.mss(c)))
	return min(max(b.extraAcked[0], b.extraAcked[1]), maxAggr)
}

func (b *bbr) isNextCyclePhase(c *Conn, now instant, rs *rateSample) bool {
	full := c.cc.rate.deliveredAt.Sub(b.cycleStamp) > b.minRTT
	gain := b.pacingGain
	if gain == 1 {
		return full
	}
	inflight := b.inNetAtEDT(c, now, b.pkts(c, rs.priorInFlight))
	bw := b.maxBW()
	if gain > 1 {
		return full && (rs.losses > 0 || inflight >= b.inflight(c, bw, gain))
	}
	return full || inflight <= b.inflight(c, bw, 1)
}

func (b *bbr) advanceCycle(c *Conn) {
	b.cycleIdx = (b.cycleIdx + 1) % bbrCycleLen
	b.cycleStamp = c.cc.rate.deliveredAt
}

func (b *bbr) updateCyclePhase(c *Conn, now instant, rs *rateSample) {
	if b.mode == bbrProbeBW && b.isNextCyclePhase(c, now, rs) {
		b.advanceCycle(c)
	}
}

func (b *bbr) checkFullBW(rs *rateSample) {
	if b.fullBWReached || !b.roundStart || rs.appLimited {
		return
	}
	if b.maxBW() >= b.fullBW*bbrFullBWThresh {
		b.fullBW = b.maxBW()
		b.fullBWCount = 0
		return
	}
	b.fullBWCount++
	b.fullBWReached = b.fullBWCount >= bbrFullBWCount
}

func (b *bbr) checkDrain(c *Conn, now instant) {
	if b.mode == bbrStartup && b.fullBWReached {
		b.mode = bbrDrain
		c.cc.ssthresh = b.inflight(c, b.maxBW(), 1) * b.mss(c)
	}
	if b.mode == bbrDrain && b.inNetAtEDT(c, now, b.inflightPkts(c)) <= b.inflight(c, b.maxBW(), 1) {
		b.resetProbeBW(c, now)
	}
}

func (b *bbr) checkProbeRTTDone(c *Conn, now instant) {
	if b.probeRTTEnd.IsZero() || !now.After(b.probeRTTEnd) {
		return
	}
	b.minRTTStamp = now
	b.setCwndPkts(c, max(b.cwndPkts(c), b.priorCwnd))
	b.resetMode(c, now)
}

func (b *bbr) updateMinRTT(c *Conn, now instant, rs *rateSample) {
	expired := now.Sub(b.minRTTStamp) > bbrMinRTTWindow
	if rs.rtt >= 0 && (b.minRTT == 0 || rs.rtt < b.minRTT || expired) {
		b.minRTT = max(rs.rtt, 1)
		b.minRTTStamp = now
	}
	if expired && !b.idleRestart && b.mode != bbrProbeRTT {
		b.mode = bbrProbeRTT
		b.saveCwnd(c)
		b.probeRTTEnd = instant(0)
	}
	if b.mode == bbrProbeRTT {
		// Make the rate samples of this phase application-limited.
		c.cc.rate.appLimited = max(c.cc.rate.delivered+uint64(c.pipe()), 1)
		if b.probeRTTEnd.IsZero() && b.inflightPkts(c) <= bbrCwndMinTarget {
			b.probeRTTEnd = now.Add(bbrProbeRTTTime)
			b.probeRound = false
			b.nextRTTDelivered = c.cc.rate.delivered
		} else if !b.probeRTTEnd.IsZero() {
			if b.roundStart {
				b.probeRound = true
			}
			if b.probeRound {
				b.checkProbeRTTDone(c, now)
			}
		}
	}
	if rs.delivered > 0 {
		b.idleRestart = false
	}
}

func (b *bbr) updateGains() {
	switch b.mode {
	case bbrStartup:
		b.pacingGain, b.cwndGain = bbrHighGain, bbrHighGain
	case bbrDrain:
		b.pacingGain, b.cwndGain = bbrDrainGain, bbrHighGain
	case bbrProbeBW:
		b.pacingGain, b.cwndGain = bbrPacingGains[b.cycleIdx], bbrCwndGain
	case bbrProbeRTT:
		b.pacingGain, b.cwndGain = 1, 1
	}
}

// setCwndToRecoverOrRestore is packet conservation in the first round of
// fast recovery, and the window restored after it.
func (b *bbr) setCwndToRecoverOrRestore(c *Conn, rs *rateSample, acked int) (int, bool) {
	prev, state := b.prevCAState, c.caState()
	cwnd := b.cwndPkts(c)
	if rs.losses > 0 {
		cwnd = max(cwnd-b.pkts(c, rs.losses), 1)
	}
	inflight := b.inflightPkts(c)
	if state == 3 && prev != 3 {
		b.packetConservation = true
		b.nextRTTDelivered = c.cc.rate.delivered
		cwnd = inflight + acked
	} else if prev >= 3 && state < 3 {
		cwnd = max(cwnd, b.priorCwnd)
		b.packetConservation = false
	}
	b.prevCAState = state
	if b.packetConservation {
		return max(cwnd, inflight+acked), true
	}
	return cwnd, false
}

func (b *bbr) setCwnd(c *Conn, now instant, rs *rateSample) {
	acked := b.pkts(c, rs.ackedSacked)
	cwnd := b.cwndPkts(c)
	if acked > 0 {
		var done bool
		cwnd, done = b.setCwndToRecoverOrRestore(c, rs, acked)
		if !done {
			bw := b.maxBW()
			target := b.bdp(c, bw, b.cwndGain)
			target += b.ackAggregationCwnd(c)
			target = b.quantizationBudget(c, target)
			switch {
			case b.fullBWReached:
				cwnd = min(cwnd+acked, target)
			case cwnd < target || c.cc.rate.delivered < uint64(initialCwndSegs*b.mss(c)):
				cwnd += acked
			}
			cwnd = max(cwnd, bbrCwndMinTarget)
		}
	}
	b.setCwndPkts(c, cwnd)
	if b.mode == bbrProbeRTT {
		b.setCwndPkts(c, min(cwnd, bbrCwndMinTarget))
	}
}
