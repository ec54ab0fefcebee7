package script

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/synstack/synstack/wire"
)

// sent is a packet the stack wrote to the link.
type sent struct {
	pkt  []byte
	at   time.Duration
	line int // the event being run when it was sent
}

// sockUnderTest is packetdrill's "socket under test": the connection whose
// packets the script's lines describe, with what the runner learned of its
// live addresses, ISNs and timestamps.
type sockUnderTest struct {
	listening  bool // a listener: the next inbound packet opens a child
	connecting bool
	fd         int // live fd, -1 when unknown (a child before accept)
	local      netip.AddrPort
	remote     netip.AddrPort
	localKnown bool // the local port is known (from a SYN for an active open)

	// Remote (the scripted peer's) ISN, in script and live numbers.
	rScript, rLive uint32
	rKnown         bool
	// Local (the stack's) ISN, learned from its first SYN or SYN-ACK.
	lScript, lLive uint32
	lKnown         bool

	// Timestamps: script TS val -> live TS val of each outbound packet
	// matched, and the first pair as the baseline for other values.
	tsMap              map[uint32]uint32
	tsScript0, tsLive0 uint32
	tsKnown            bool
}

// offsets returns what to add to a script sequence number of the remote side
// (seq of "<", ack of ">") and of the local side (seq of ">", ack of "<") to
// get the live one. SYN segments carry absolute numbers (the ISN as written),
// others numbers relative to the ISN, as in packetdrill's socket.h.
func (s *sockUnderTest) offsets(syn bool) (remote, local uint32) {
	if syn {
		return s.rLive - s.rScript, s.lLive - s.lScript
	}
	return s.rLive, s.lLive
}

// describeSent prints a packet the stack sent in script numbers.
func (r *runner) describeSent(s sent) string {
	seg, err := parseSegment(s.pkt)
	if err != nil {
		return fmt.Sprintf("a malformed packet (%v)", err)
	}
	sut := r.sutFor()
	_, ackS, seqS, opts := r.toScript(sut, seg, nil)
	return formatPacket(">", seg.tcp.Flags, seqS, len(seg.payload), ackS, int(seg.tcp.Window), opts, true)
}

// describeTrailing describes the first packet left in the queue after
// the script's last line as the GSO packet it may have been part of: the
// segments sent with it at the same instant that follow it in sequence
// with the same header, up to the first with PSH or FIN (a GSO packet
// carries those on its last segment), as a line would have to expect them.
func (r *runner) describeTrailing() string {
	first, err := parseSegment(r.queue[0].pkt)
	if err != nil || len(first.payload) == 0 || first.tcp.Flags&(wire.FlagSYN|wire.FlagPSH|wire.FlagFIN) != 0 {
		return r.describeSent(r.queue[0])
	}
	agg := startAggregate(first)
	prev, n := first, 1
	for _, s := range r.queue[1:] {
		next, err := parseSegment(s.pkt)
		if err != nil || s.at != r.queue[0].at || !fragmentFollows(prev, next, len(prev.payload)) {
			break
		}
		agg.join(next)
		prev = next
		n++
		if next.tcp.Flags&(wire.FlagPSH|wire.FlagFIN) != 0 {
			break
		}
	}
	_, ackS, seqS, opts := r.toScript(r.sutFor(), &agg, nil)
	got := formatPacket(">", agg.tcp.Flags, seqS, len(agg.payload), ackS, int(agg.tcp.Window), opts, true)
	if n > 1 {
		got += fmt.Sprintf(" [%d segments sent together]", n)
	}
	return got
}

// sutFor returns the socket under test, creating a default one (an unknown
// peer talking to the bind port) when the script set up none.
func (r *runner) sutFor() *sockUnderTest {
	if r.sut == nil {
		r.sut = &sockUnderTest{
			fd:     -1,
			local:  netip.AddrPortFrom(r.localIP, r.bindPort),
			remote: netip.AddrPortFrom(r.remoteIP, r.nextRemotePort()),
		}
		r.sut.rLive = remoteISNOffset
	}
	return r.sut
}

func (r *runner) nextRemotePort() uint16 {
	p := r.nextPort
	r.nextPort++
	return p
}

// inject sends an inbound script packet to the stack.
func (r *runner) inject(e *event) error {
	ps := e.packet
	if ps.icmp != nil {
		return r.injectICMP(e)
	}
	s := r.sutFor()
	if s.listening {
		// The first packet to a listener opens a child connection from
		// a new remote port (packetdrill's handle_listen_for_script_packet).
		child := &sockUnderTest{fd: -1, local: s.local, localKnown: true,
			remote: netip.AddrPortFrom(r.remoteIP, r.nextRemotePort())}
		child.rLive = remoteISNOffset
		r.sut, s = child, child
	}
	syn := ps.flags&wire.FlagSYN != 0
	if syn && !s.rKnown {
		s.rScript, s.rLive, s.rKnown = ps.seq, ps.seq+remoteISNOffset, true
	}
	remoteOff, localOff := s.offsets(syn)
	h := &tcpHeader{
		src: s.remote, dst: s.local, flags: ps.flags,
		seq: ps.seq + remoteOff, ack: ps.ack,
		win: uint16(ps.win), urg: uint16(ps.urg), payload: ps.length,
	}
	if ps.ecn >= 0 {
		h.ecn = uint8(ps.ecn)
	}
	if ps.flags&wire.FlagACK != 0 {
		h.ack += localOff
	}
	for _, o := range ps.options {
		switch o.kind {
		case wire.OptSACK:
			blocks := make([]wire.SACKBlock, len(o.sack))
			for i, b := range o.sack {
				blocks[i] = wire.SACKBlock{Left: b.Left + localOff, Right: b.Right + localOff}
			}
			o.sack = blocks
		case wire.OptTimestamp:
			if ps.flags&wire.FlagACK != 0 {
				o.tsEcr = s.liveEcr(o.tsEcr)
			}
		}
		h.options = append(h.options, o)
	}
	if r.groSize > 0 && h.payload > r.groSize {
		return r.injectAggregate(e, h)
	}
	pkt, err := buildPacket(h)
	if err != nil {
		return r.errf(e.line, "cannot build packet: %v", err)
	}
	r.lnk.deliver(pkt)
	return nil
}

// injectAggregate injects h, longer than --mss, as the GRO aggregate
// packetdrill makes of it: segments of groSize octets (PSH and FIN on the
// last only, as segmentation leaves them) handed to the stack in one
// batch, which acknowledges a run of in-order segments once, as Linux
// does a GRO packet; the stack's measure of the peer's segment size
// (tcpi_rcv_mss) is then groSize, as Linux's from gso_size.
func (r *runner) injectAggregate(e *event, h *tcpHeader) error {
	var pkts [][]byte
	whole := *h
	for off := 0; off < whole.payload; off += r.groSize {
		part := whole
		part.seq += uint32(off)
		part.payload = min(r.groSize, whole.payload-off)
		if off+part.payload < whole.payload {
			part.flags &^= wire.FlagPSH | wire.FlagFIN
		}
		pkt, err := buildPacket(&part)
		if err != nil {
			return r.errf(e.line, "cannot build packet: %v", err)
		}
		pkts = append(pkts, pkt)
	}
	r.lnk.deliverBatch(pkts)
	return nil
}

// liveEcr maps a script TS ecr to the live TS val it echoes: the value seen
// on the outbound line that carried it, or one derived from the first
// outbound timestamp.
func (s *sockUnderTest) liveEcr(v uint32) uint32 {
	if live, ok := s.tsMap[v]; ok {
		return live
	}
	if s.tsKnown {
		return s.tsLive0 + (v - s.tsScript0)
	}
	return v
}

// toScript maps an outbound segment to script numbers. If spec is given
// (the line being matched), TS val mappings are learned from it and the
// comparison options (cmp: TS val as the script wrote it) are returned.
// disp are the options for display (TS val mapped from the baseline).
func (r *runner) toScript(s *sockUnderTest, seg *segment, spec *packetSpec) (cmp []option, ackS, seqS uint32, disp []option) {
	syn := seg.tcp.Flags&wire.FlagSYN != 0
	remoteOff, localOff := s.offsets(syn)
	seqS = seg.tcp.Seq - localOff
	ackS = seg.tcp.Ack
	if seg.tcp.Flags&wire.FlagACK != 0 {
		ackS -= remoteOff
	}
	var specTS *option
	if spec != nil {
		for i := range spec.options {
			if spec.options[i].kind == wire.OptTimestamp {
				specTS = &spec.options[i]
			}
		}
	}
	for _, o := range seg.options {
		if o.kind == wire.OptSACK && !o.isRaw() {
			blocks := make([]wire.SACKBlock, len(o.sack))
			for i, b := range o.sack {
				blocks[i] = wire.SACKBlock{Left: b.Left - remoteOff, Right: b.Right - remoteOff}
			}
			o.sack = blocks
		}
		d, c := o, o
		if o.kind == wire.OptTimestamp && !o.isRaw() {
			if specTS != nil {
				if s.tsMap == nil {
					s.tsMap = map[uint32]uint32{}
				}
				s.tsMap[specTS.tsVal] = o.tsVal
				if !s.tsKnown {
					s.tsScript0, s.tsLive0, s.tsKnown = specTS.tsVal, o.tsVal, true
				}
				c.tsVal = specTS.tsVal
			}
			if s.tsKnown {
				d.tsVal = s.tsScript0 + (o.tsVal - s.tsLive0)
			}
		}
		cmp = append(cmp, c)
		disp = append(disp, d)
	}
	return cmp, ackS, seqS, disp
}

// expectPacket handles a ">" line: take the next packet the stack sent
// (advancing time until one comes or the line's window closes) and compare.
func (r *runner) expectPacket(e *event, at, end, tol time.Duration) error {
	windowEnd := at + tol
	switch e.timeKind {
	case timeAny:
		windowEnd = r.now() + maxWaitAny
	case timeAbsoluteRng, timeRelativeRng:
		windowEnd = end + tol
	}
	for len(r.queue) == 0 {
		_, timers := r.clock.Next()
		if r.now() >= windowEnd || (!timers && len(r.pending) == 0) {
			if r.now() < windowEnd && e.timeKind != timeAny {
				r.clock.AdvanceTo(r.start.Add(windowEnd))
			}
			return r.errf(e.line, "expected %s at %s; got no packet by %s", e.text, r.fmtWhen(e, at, end), fmtTime(r.now()))
		}
		if err := r.step(windowEnd); err != nil {
			return err
		}
	}
	s := r.queue[0]
	r.queue = r.queue[1:]
	seg, err := parseSegment(s.pkt)
	if err != nil {
		return r.errf(e.line, "expected %s at %s; got a malformed packet (%v) at %s", e.text, r.fmtWhen(e, at, end), err, fmtTime(s.at))
	}
	if !r.opts.AllConnections && r.foreign(seg) {
		r.verbosef("%s   ignored a packet of another connection: %v > %v", fmtTime(s.at), seg.src, seg.dst)
		return r.expectPacket(e, at, end, tol)
	}
	n := 1
	if !r.strictSegments {
		seg, n, err = r.aggregate(e, seg, windowEnd)
		if err != nil {
			return err
		}
	}
	return r.match(e, at, end, tol, seg, s.at, n)
}

// aggregate gathers the segments that make up the TSO/GSO super-segment a
// line expects, as packetdrill does when the stack (like a NIC without TSO)
// sends MSS-sized segments: while the payload is short of the line's, the
// next segments join if they follow in sequence with the same header (FIN,
// PSH and CWR aside), and all but the last have the first's size. As
// packetdrill's aggregate_packets, the aggregate has the last segment's
// header (its PSH and FIN) but the first's sequence number and CWR: Linux
// sends two GSO packets of two segments each with PSH, and a packet of
// one segment without it, and a line covering all three expects none.
func (r *runner) aggregate(e *event, first *segment, windowEnd time.Duration) (*segment, int, error) {
	want := e.packet.length
	if first.tcp.Flags&wire.FlagSYN != 0 || len(first.payload) == 0 || len(first.payload) >= want {
		return first, 1, nil
	}
	agg := startAggregate(first)
	prev, n := first, 1
	for len(agg.payload) < want {
		for len(r.queue) == 0 {
			_, timers := r.clock.Next()
			if r.now() >= windowEnd || (!timers && len(r.pending) == 0) {
				return &agg, n, nil
			}
			if err := r.step(windowEnd); err != nil {
				return nil, 0, err
			}
		}
		next, err := parseSegment(r.queue[0].pkt)
		if err != nil || !fragmentFollows(prev, next, want-len(agg.payload)) {
			return &agg, n, nil
		}
		r.queue = r.queue[1:]
		agg.join(next)
		prev = next
		n++
	}
	return &agg, n, nil
}

// startAggregate returns a super-segment of first alone, with a payload
// of its own for join to extend.
func startAggregate(first *segment) segment {
	agg := *first
	agg.payload = append([]byte(nil), first.payload...)
	return agg
}

// join appends next, which follows the aggregate (fragmentFollows), as
// packetdrill aggregates: the aggregate takes next's flags (its PSH and
// FIN) but keeps its first segment's CWR, and next's payload.
func (agg *segment) join(next *segment) {
	agg.tcp.Flags = next.tcp.Flags&^wire.FlagCWR | agg.tcp.Flags&wire.FlagCWR
	agg.payload = append(agg.payload, next.payload...)
}

// fragmentFollows reports whether next can join prev in a super-segment
// still short of left bytes (packetdrill's verify_packet_fragments).
func fragmentFollows(prev, next *segment, left int) bool {
	const loose = wire.FlagFIN | wire.FlagPSH | wire.FlagCWR
	if prev.tcp.Flags&wire.FlagFIN != 0 {
		return false // nothing follows a FIN
	}
	return prev.tcp.Flags&^loose == next.tcp.Flags&^loose &&
		next.tcp.Seq == prev.tcp.Seq+uint32(len(prev.payload)) &&
		next.tcp.Ack == prev.tcp.Ack && next.tcp.Window == prev.tcp.Window &&
		next.tcp.Urgent == prev.tcp.Urgent && next.optLen == prev.optLen &&
		next.src == prev.src && next.dst == prev.dst && len(next.payload) > 0 &&
		(len(next.payload) >= left || len(next.payload) == len(prev.payload))
}

// foreign reports whether seg belongs to another connection than the one
// under test (packetdrill's sniffer skips those).
func (r *runner) foreign(seg *segment) bool {
	s := r.sut
	if s == nil {
		return false
	}
	if s.connecting && seg.tcp.Flags&(wire.FlagSYN|wire.FlagACK) == wire.FlagSYN && seg.dst == s.remote {
		return false // the SYN of the connect under test
	}
	if !s.localKnown {
		// A connect whose SYN has not been seen: nothing else is its
		// (packetdrill's find_connect_for_live_packet).
		return s.connecting
	}
	if s.remote.Port() == 0 {
		return false
	}
	return seg.src != s.local || seg.dst != s.remote
}

// dropForeign takes out of the queue the packets of connections other
// than the one under test, unless AllConnections: packetdrill never sees
// them.
func (r *runner) dropForeign() {
	if r.opts.AllConnections {
		return
	}
	kept := r.queue[:0]
	for _, s := range r.queue {
		if seg, err := parseSegment(s.pkt); err == nil && r.foreign(seg) {
			r.verbosef("%s   ignored a packet of another connection: %v > %v", fmtTime(s.at), seg.src, seg.dst)
			continue
		}
		kept = append(kept, s)
	}
	r.queue = kept
}

// fmtWhen prints when a line expects its packet.
func (r *runner) fmtWhen(e *event, at, end time.Duration) string {
	switch e.timeKind {
	case timeAny:
		return "any time"
	case timeAbsoluteRng, timeRelativeRng:
		return fmtTime(at) + "~" + fmtTime(end)
	}
	return fmtTime(at)
}

// match compares the packet the stack sent with a ">" line.
func (r *runner) match(e *event, at, end, tol time.Duration, seg *segment, sentAt time.Duration, frags int) error {
	spec := e.packet
	s := r.sutFor()
	// Learn the live addresses and ISN from the stack's SYN or SYN-ACK,
	// as packetdrill does when it sees the first one the script expects.
	if seg.tcp.Flags&wire.FlagSYN != 0 && spec.flags&wire.FlagSYN != 0 && !s.lKnown {
		s.lScript, s.lLive, s.lKnown = spec.seq, seg.tcp.Seq, true
	}
	if !s.localKnown && (s.connecting || s.local.Port() == 0) {
		s.local, s.remote, s.localKnown = seg.src, seg.dst, true
	}
	cmp, ackS, seqS, disp := r.toScript(s, seg, spec)
	win := -1
	if spec.win >= 0 {
		win = int(seg.tcp.Window)
	}
	got := formatPacket(">", seg.tcp.Flags, seqS, len(seg.payload), ackS, win, disp, true)
	if frags > 1 {
		got += fmt.Sprintf(" [%d segments aggregated]", frags)
	}
	var why []string
	if seg.tcp.Flags != spec.flags || seqS != spec.seq || len(seg.payload) != spec.length ||
		ackS != spec.ack || (spec.win >= 0 && int(seg.tcp.Window) != spec.win) {
		why = append(why, "")
	}
	if w := ecnMismatch(spec.ecn, seg.ecn); w != "" {
		why = append(why, w)
	}
	if int(seg.tcp.Urgent) != spec.urg {
		why = append(why, fmt.Sprintf("urgent pointer %d, expected %d", seg.tcp.Urgent, spec.urg))
	}
	if !spec.anyOptions && !sameOptions(spec.options, cmp, seg.optLen) {
		why = append(why, "")
	}
	if w := r.checkTSVal(s, spec, seg); w != "" {
		why = append(why, w)
	}
	for _, b := range seg.payload {
		if b != 0 {
			why = append(why, "payload differs from the zeros the script wrote")
			break
		}
	}
	if s.localKnown && (seg.src != s.local || seg.dst != s.remote) {
		why = append(why, fmt.Sprintf("sent from %v to %v; the connection under test is %v to %v", seg.src, seg.dst, s.local, s.remote))
	}
	if len(why) > 0 {
		msg := fmt.Sprintf("expected %s at %s; got %s at %s", e.text, r.fmtWhen(e, at, end), got, fmtTime(sentAt))
		for _, w := range why {
			if w != "" {
				msg += " (" + w + ")"
			}
		}
		return r.errf(e.line, "%s", msg)
	}
	r.verbosef("%s %s", fmtTime(sentAt), got)
	// Timing (packetdrill's verify_time).
	lo, hi := at-tol, at+tol
	switch e.timeKind {
	case timeAny:
		return nil
	case timeAbsoluteRng, timeRelativeRng:
		hi = end + tol
	}
	if sentAt < lo || sentAt > hi {
		return r.errf(e.line, "expected %s at %s; got %s at %s (outside the tolerance of %s s)",
			e.text, r.fmtWhen(e, at, end), got, fmtTime(sentAt), fmtTime(tol))
	}
	return nil
}

// checkTSVal checks an outbound TS val against the script's when
// --tcp_ts_tick_usecs is set: mapped to script numbers (from the first
// one), it may differ by at most the tolerance's worth of ticks.
func (r *runner) checkTSVal(s *sockUnderTest, spec *packetSpec, seg *segment) string {
	if r.tsTick <= 0 || !s.tsKnown {
		return ""
	}
	for _, want := range spec.options {
		if want.kind != wire.OptTimestamp {
			continue
		}
		for _, got := range seg.options {
			if got.kind != wire.OptTimestamp || got.isRaw() {
				continue
			}
			mapped := s.tsScript0 + (got.tsVal - s.tsLive0)
			diff := int64(int32(mapped - want.tsVal))
			if diff < 0 {
				diff = -diff
			}
			if time.Duration(diff)*r.tsTick > r.tol {
				return fmt.Sprintf("bad outbound TCP timestamp value: TS val %d, expected %d within %s s", mapped, want.tsVal, fmtTime(r.tol))
			}
		}
	}
	return ""
}

// sameOptions compares a script's option list with the stack's (TS val
// already replaced), as packetdrill compares option bytes: same length of
// option space, same options in the same order up to the first EOL.
func sameOptions(want, got []option, gotLen int) bool {
	if optionsLen(want) != gotLen {
		return false
	}
	want, got = upToEOL(want), upToEOL(got)
	if len(want) != len(got) {
		return false
	}
	for i := range want {
		if !want[i].equal(got[i]) {
			return false
		}
	}
	return true
}

func upToEOL(list []option) []option {
	for i, o := range list {
		if o.kind == wire.OptEOL {
			return list[:i+1]
		}
	}
	return list
}

// ecnMismatch says how a packet's ECN mark differs from the script's, or
// "" when it does not (or the script wrote none).
func ecnMismatch(want int8, got uint8) string {
	names := [...]string{"noecn", "ect1", "ect0", "ce", "ect01"}
	switch {
	case want == ecnUnset, want == int8(got):
		return ""
	case want == ecnEither && (got == 1 || got == 2):
		return ""
	}
	return fmt.Sprintf("IP ECN [%s], expected [%s]", names[got&3], names[want])
}
