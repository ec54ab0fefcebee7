package tcp

import (
	"io"
	"math"
	"syscall"
	"time"

	"github.com/synstack/synstack/tcp/seq"
)

// Defaults, named with their units. Linux's values unless noted.
const (
	defaultMSS            = 1460
	defaultRcvBuf         = 131072
	defaultRcvBufMax      = 6 << 20 // tcp_rmem[2]
	defaultSndBuf         = 65536
	defaultWScale         = 8
	defaultSynRetries     = 6
	defaultSynAckRetr     = 5
	defaultRetries2       = 15
	defaultRTOInitial     = time.Second
	defaultRTOMin         = 200 * time.Millisecond
	defaultRTOMax         = 120 * time.Second
	defaultTimeWait       = 60 * time.Second
	defaultFinTimeout     = 60 * time.Second
	defaultKeepIdle       = 2 * time.Hour
	defaultKeepIntvl      = 75 * time.Second
	defaultKeepCnt        = 9
	delAckMin             = 40 * time.Millisecond  // TCP_DELACK_MIN
	delAckMax             = 200 * time.Millisecond // TCP_DELACK_MAX
	maxQuickAcks          = 16                     // TCP_MAX_QUICKACKS
	defaultPeerMSS        = 536                    // RFC 9293 3.7.1: when the peer sends no MSS option
	minMSS                = 88                     // TCP_MIN_MSS
	initialCwndSegs       = 10                     // RFC 6928
	maxWScale             = 14                     // RFC 7323 2.3
	tsOptionLen           = 12                     // nop,nop,TS
	pawsIdle              = 24 * 24 * time.Hour    // RFC 7323 5.5: ts.recent is invalid after 24 days idle
	rtoFallback           = 3 * time.Second        // RFC 6298 5.7, TCP_TIMEOUT_FALLBACK
	corkCeiling           = 200 * time.Millisecond // TCP_CORK holds a partial segment at most this long
	resourceProbeInterval = 500 * time.Millisecond // TCP_RESOURCE_PROBE_INTERVAL: an RTO again after local congestion
)

// Conn is one connection's transmission control block: RFC 9293's TCB and the
// state machine that drives it. It is sans-IO: every method takes the current
// time, segments to send go to Config.Output during the call, and Deadline
// says when Tick must next be called. A Conn is not safe for concurrent use;
// its owner serialises calls.
type Conn struct {
	// cfg is shared with other connections (Init) and never changed
	// through c unless cfgOwned: a setter first copies it (ownConfig).
	cfg  *Config
	host Host
	sc   *Scratch     // cfg.Scratch: the segment being built, the ACK's rate sample, the clock's origin
	fl   *flightState // nil when nothing is in flight (flight.go)
	fo   *fastOpen    // nil unless the connection used TCP Fast Open (fastopen.go)

	// The groups of the TCB, as RFC 9293 section 3.3.1 draws it and then
	// what later RFCs added. Each is declared, with its fields' meaning,
	// in the file that uses it most. Their fields are ordered so that each
	// group packs (no padding), and so that the Conn does: the groups
	// aligned to 8 bytes first, then those aligned to 4, then the bytes
	// (TestConnSize keeps the size).
	opt   options    // options negotiated: MSS, window scale, SACK, timestamps (input.go)
	rtx   rtxState   // RTT estimation and retransmission (RFC 6298), tail loss probe (input.go)
	timer timerSet   // the deadlines (timers.go)
	cc    congestion // congestion control and loss recovery (recovery.go)
	ack   ackState   // when to acknowledge, and what the ACK reports (input.go)
	sq    sendQueue  // data written and not yet acknowledged, then the FIN (conn.go)
	rq    recvQueue  // data received and not yet read, in order and out of order (input.go)
	tune  rcvTune    // receive-buffer autotuning (autotune.go)
	stats connStats  // counts for Info (conn.go)

	// Keepalive (RFC 1122 4.2.3.6): idle time counts from lastRcv, when
	// a segment last arrived; keepProbes probes have gone unanswered
	// (keepalive ones, or the tries of hostProbe while the link had no
	// room: Linux counts both in icsk_probes_out).
	lastRcv instant

	snd        sendSpace // send sequence space (input.go)
	rcv        recvSpace // receive sequence space (input.go)
	keepProbes int32

	err      errno // pending error (SO_ERROR)
	state    State
	cfgOwned bool // cfg is c's own copy
	passive  bool // opened by Listen: RST in SYN_RCVD returns to LISTEN
	orphan   bool // Close has been called: nobody will read or write again
	// connected: reached ESTABLISHED at some point; closedByErr: reached
	// CLOSED through reset or timeout.
	connected, closedByErr bool
}

// errno is a pending error: a syscall.Errno in two bytes rather than
// eight. Every errno of Linux and the BSDs, and Windows' own error codes,
// fit as they are; Windows' invented ones (syscall.ECONNRESET there is
// 1<<29 plus a small number) keep that small number under the top bit.
type errno uint16

// errnoInvented is where Windows' invented errnos start (APPLICATION_ERROR).
const errnoInvented = 1 << 29

// errnoUnknown stands for an errno that fits neither way: it reads as EIO.
const errnoUnknown errno = 0x7fff

// packErrno returns e in two bytes.
func packErrno(e syscall.Errno) errno {
	switch {
	case e < 0x7fff:
		return errno(e)
	case e >= errnoInvented && e-errnoInvented < 0x7fff:
		return errno(0x8000 | (e - errnoInvented))
	}
	return errnoUnknown
}

// unpack returns the syscall.Errno e holds.
func (e errno) unpack() syscall.Errno {
	switch {
	case e == errnoUnknown:
		return syscall.EIO
	case e&0x8000 != 0:
		return errnoInvented + syscall.Errno(e&0x7fff)
	}
	return syscall.Errno(e)
}

// connStats counts what Info reports.
type connStats struct {
	bytesAcked, bytesRcvd uint64
	segsIn, segsOut       uint32 // Linux's tcpi_segs_in and tcpi_segs_out are 32 bits too

	retrans   int32 // segments sent again (tcpi_total_retrans)
	timeouts  int32 // retransmission timeouts, SYN and SYN,ACK ones included (tcpi_total_rto)
	dsackDups int32 // D-SACKs received (tcpi_dsack_dups)
	// paceSegs: data segments sent (Linux's data_segs_out); pacing
	// leaves the first ones unpaced (pacing.go).
	paceSegs int32

	// more holds TCP_INFO's clocks and delivered count, made when data
	// first flows (chrono.go): a connection that never carries any does
	// not hold them.
	more *infoStats
}

// sendQueue holds what the user wrote: the ring's first octet has sequence
// number start, the ring's n octets follow, and the FIN, once queued,
// takes the number after the last one (finSeq, once sent).
//
//	    start                   start+n  (finSeq)
//	------|-------------------------|------|------
//	      |  written, not yet acked | FIN  |
//
// Part of it is in flight (SND.UNA to SND.NXT), part waits for the window.
type sendQueue struct {
	ring
	// PSH marks, as Linux places them: at the end of each write, and
	// "forced" every half of the peer's largest window within a long
	// write. A segment covering a mark carries PSH. pushed is the last
	// mark.
	pushMarks []sendMark
	start     seq.Value // sequence number of the ring's first octet
	finSeq    seq.Value // sequence number our FIN occupies (valid once finSent)
	pushed    seq.Value
	sml       seq.Value // end of the last small segment sent (Minshall's Nagle)
	// bufSize is SO_SNDBUF: the configuration's at first, then as tuned
	// (sndbuf.go) or set (SetBuffers).
	bufSize int32

	finQueued   bool // the user closed the write side: FIN after the data
	finSent     bool // the FIN has been sent at least once
	wrShut      bool // SHUT_WR or Close: writes fail with EPIPE
	corkExpired bool // TCP_CORK's hold ran out (or the cork went): send the partial segment
}

// NewConn returns a connection in CLOSED with the given configuration and
// initial send sequence number (the stack computes it per RFC 6528). The
// connection keeps its own copy of cfg; segments go to cfg.Output and
// transitions to cfg.OnTransition.
func NewConn(cfg Config, iss seq.Value) *Conn {
	own := PrepareConfig(cfg)
	c := new(Conn)
	c.Init(own, (*configHost)(own), iss, cfg.TSOffset)
	c.cfgOwned = true
	return c
}

// PrepareConfig returns a copy of cfg with its defaults filled in, ready to
// be shared by the connections Init sets up: many connections with the
// same tunables then hold one Config between them.
func PrepareConfig(cfg Config) *Config {
	own := new(Config)
	*own = cfg
	fillDefaults(own)
	return own
}

// Init sets up c, a zero Conn (one embedded in the caller's own structure,
// say), as a connection in CLOSED that sends through h, with initial send
// sequence number iss and tsOffset added to its timestamp clock (RFC 7323
// suggests a random one per connection). cfg, from PrepareConfig, may be
// shared by any number of connections and must not change while one uses
// it; cfg.Output, cfg.OnTransition and cfg.TSOffset are not used.
func (c *Conn) Init(cfg *Config, h Host, iss seq.Value, tsOffset uint32) {
	if !cfg.prepared {
		cfg = PrepareConfig(*cfg)
	}
	c.cfg, c.host, c.sc = cfg, h, cfg.Scratch
	c.opt.tsOffset = tsOffset
	c.rq.bufSize, c.sq.bufSize = int32(cfg.RcvBuf), int32(cfg.SndBuf)
	c.snd.iss = iss
	c.snd.una, c.snd.nxt, c.snd.max = iss, iss, iss
	c.sq.start = iss.Add(1)
	c.sq.pushed = iss.Add(1)
	c.sq.sml = iss
	c.rtx.rto = cfg.RTOInitial
	if cc, err := newCongestion(cfg.Congestion); err == nil {
		c.cc.algo = cc
	} else {
		c.cc.algo, _ = newCongestion(DefaultCongestion)
	}
	c.opt.sndMSS = defaultPeerMSS
	c.opt.rcvMSS = defaultPeerMSS
}

// countRetrans counts segs segments sent again, carrying n octets of data
// (tcpi_bytes_retrans, as Linux's __tcp_retransmit_skb adds skb->len).
func (c *Conn) countRetrans(segs, n int) {
	c.stats.retrans += int32(segs)
	c.cfg.Counters.RetransSegs += uint64(segs)
	if n > 0 {
		c.more().bytesRetrans += uint64(n)
	}
}

// countTimeout counts a retransmission timeout. The first of a run (no
// timeout since the last ACK that moved SND.UNA) starts an RTO recovery
// episode (Linux's tcp_update_rto_stats): tcpi_total_rto_recoveries, and
// tcpi_total_rto_time from now until the connection leaves loss recovery
// (endRTOTime).
func (c *Conn) countTimeout(now instant) {
	c.stats.timeouts++
	c.cfg.Counters.Timeouts++
	if c.rtx.backoff == 0 {
		m := c.more()
		m.rtoRecoveries++
		m.rtoStamp = chronoMS(now)
		if c.state == SynRcvd && (c.fo == nil || !c.fo.passive) {
			// Linux's request socket: the child it makes on the ACK
			// counts the episode from the first SYN,ACK (its
			// retrans_stamp), which went one RTO ago.
			m.rtoStamp = chronoMS(now.Add(-c.rtx.rto))
		}
	}
}

// endRTOTime ends an RTO recovery episode's clock (Linux's
// tcp_update_rto_time): the connection left loss recovery.
func (c *Conn) endRTOTime(now instant) {
	if m := c.stats.more; m != nil && m.rtoStamp != 0 {
		m.rtoTime += chronoMS(now) - m.rtoStamp
		m.rtoStamp = 0
	}
}

// ownConfig gives c its own copy of its configuration before a setter
// changes it: the one it was given may be shared.
func (c *Conn) ownConfig() *Config {
	if !c.cfgOwned {
		own := new(Config)
		*own = *c.cfg
		c.cfg = own
		c.cfgOwned = true
	}
	return c.cfg
}

// configHost is the Host of a connection made by NewConn: its
// configuration's Output and OnTransition.
type configHost Config

func (h *configHost) Send(seg *Segment) { h.Output(seg) }

func (h *configHost) Transition(from, to State, cause Cause) {
	if h.OnTransition != nil {
		h.OnTransition(from, to, cause)
	}
}

func fillDefaults(cfg *Config) {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if cfg.Output == nil {
		cfg.Output = func(*Segment) {}
	}
	if cfg.MSS == 0 {
		cfg.MSS = defaultMSS
	}
	if cfg.MSS < minMSS {
		cfg.MSS = minMSS
	}
	def(&cfg.RcvBuf, defaultRcvBuf)
	def(&cfg.RcvBufMax, max(defaultRcvBufMax, cfg.RcvBuf))
	def(&cfg.SndBuf, defaultSndBuf)
	def(&cfg.SndBufMax, max(defaultSndBufMax, cfg.SndBuf))
	if cfg.Buffers == nil {
		cfg.Buffers = heapBuffers{}
	}
	if cfg.Scratch == nil {
		cfg.Scratch = new(Scratch)
	}
	if cfg.Counters == nil {
		cfg.Counters = new(Counters)
	}
	cfg.prepared = true
	if cfg.WScale == 0 {
		cfg.WScale = defaultWScale
	}
	if cfg.WScale > maxWScale {
		cfg.WScale = maxWScale
	}
	def(&cfg.SynRetries, defaultSynRetries)
	def(&cfg.SynAckRetries, defaultSynAckRetr)
	def(&cfg.Retries2, defaultRetries2)
	def(&cfg.KeepCnt, defaultKeepCnt)
	defDur(&cfg.RTOInitial, defaultRTOInitial)
	defDur(&cfg.RTOMin, defaultRTOMin)
	defDur(&cfg.RTOMax, defaultRTOMax)
	defDur(&cfg.TimeWait, defaultTimeWait)
	if cfg.FinTimeout == 0 {
		cfg.FinTimeout = defaultFinTimeout // negative: reset instead (TCP_LINGER2 -1)
	}
	defDur(&cfg.KeepIdle, defaultKeepIdle)
	defDur(&cfg.KeepIntvl, defaultKeepIntvl)
}

// setState moves the connection along one arrow of the diagram and reports it.
func (c *Conn) setState(to State, cause Cause) {
	from := c.state
	if from == to {
		return
	}
	c.state = to
	switch to {
	case Established:
		c.connected = true
	case Closed, TimeWait, Listen:
		c.timer.stopAll()
		c.rtx.persist = false
		c.dropSendQueue()
		c.clearOOO()
		if c.rq.rdShut {
			c.dropRcvQueue()
		}
		if c.fl != nil {
			// Given back at the end of the call (returnFlight): a
			// caller up the stack may be holding it.
			c.fl.txq.reset()
			c.fl.rack.at, c.fl.pace.at = instant(0), instant(0)
		}
	}
	c.host.Transition(from, to, cause)
}

// Connect is the active OPEN call: CLOSED -> SYN_SENT, sending a SYN.
func (c *Conn) Connect(t time.Time) error {
	now := c.at(t)
	switch c.state {
	case Closed:
	case Listen:
		// RFC 9293 allows SEND in LISTEN to turn it active; Linux refuses.
		return syscall.EINVAL
	case SynSent, SynRcvd:
		return syscall.EALREADY
	default:
		return syscall.EISCONN
	}
	c.opt.epoch = now
	c.lastRcv = now
	c.setState(SynSent, "call CONNECT")
	c.rtx.rttAt = now
	c.rtx.stallSince = now
	c.sendSYN(now, false)
	c.snd.nxt = c.snd.iss.Add(1)
	c.snd.max = c.snd.nxt
	c.armRTO(now)
	return nil
}

// Listen is the passive OPEN call: CLOSED -> LISTEN. A stack calls it on the
// connection it creates for one SYN that reached a listening socket, then
// hands it that SYN with Input (LISTEN -> SYN_RCVD).
func (c *Conn) Listen() {
	if c.state == Closed {
		c.passive = true
		c.setState(Listen, "call LISTEN")
	}
}

// Write queues data for sending. It returns syscall.EAGAIN when the send
// buffer is full (or the connection is not yet established), EPIPE after the
// write side is shut, and a pending error (ECONNRESET...) once.
func (c *Conn) Write(t time.Time, p []byte) (int, error) {
	now := c.at(t)
	if c.err != 0 {
		return 0, c.TakeErr()
	}
	if c.sq.wrShut || c.orphan {
		return 0, syscall.EPIPE
	}
	switch {
	case c.fastOpenWritable():
	case c.state == SynSent, c.state == SynRcvd:
		return 0, syscall.EAGAIN
	case c.state == Established, c.state == CloseWait:
	default:
		return 0, syscall.EPIPE
	}
	n := min(len(p), c.Writable())
	if n == 0 {
		if len(p) == 0 {
			return 0, nil
		}
		c.chronoStart(now, chronoSndbuf)
		return 0, syscall.EAGAIN
	}
	c.rateCheckAppLimited()
	start := c.sq.start.Add(seq.Size(c.sq.n))
	c.sndTake(n, true)
	c.sq.ensure(c.cfg.Buffers, c.cfg.Memory, c.sq.n+n, c.sq.n)
	c.sq.writeAt(c.sq.n, p[:n])
	c.sq.n += n
	c.markPush(start, start.Add(seq.Size(n)))
	c.chronoStart(now, chronoBusy)
	if n < len(p) {
		c.chronoStart(now, chronoSndbuf)
	}
	c.output(now)
	return n, nil
}

// Push sends what the windows allow now. A RoomHost calls it when its link
// has room again after Room said it had none; anything else may, to no
// effect but sending what is due.
func (c *Conn) Push(t time.Time) {
	c.output(c.at(t))
}

// dropSendQueue forgets queued data and gives its buffer back.
func (c *Conn) dropSendQueue() {
	c.sq.n = 0
	c.sq.release(c.cfg.Buffers, c.cfg.Memory)
}

// dropRcvQueue forgets unread and out-of-order data.
func (c *Conn) dropRcvQueue() {
	c.rq.n = 0
	c.clearOOO()
}

// clearOOO forgets out-of-order data.
func (c *Conn) clearOOO() {
	c.rq.ooo = c.rq.ooo[:0]
	c.rq.oooLen = 0
	c.rq.oooFin = false
	c.releaseRcvQueue()
}

// releaseRcvQueue gives the receive buffer back once nothing is in it.
func (c *Conn) releaseRcvQueue() {
	if c.rq.n == 0 && c.rq.oooLen == 0 {
		c.rq.release(c.cfg.Buffers, c.cfg.Memory)
	}
}

// Read takes received data. It returns io.EOF once the peer's FIN has been
// read (or after SHUT_RD with the queue drained), syscall.EAGAIN when nothing
// is ready yet, ENOTCONN when never connected, and a pending error once.
func (c *Conn) Read(t time.Time, p []byte) (int, error) {
	now := c.at(t)
	if c.rq.n > 0 {
		before := c.rcvWindowNow()
		n, skip := min(len(p), c.rq.n), false
		if c.urg() != nil {
			// Urgent data: stop at the mark, skip the urgent byte.
			n, skip = c.urgReadLimit(n)
			if skip {
				c.rq.consume(1)
			}
		}
		c.rq.copyOut(p[:n], 0)
		c.rq.consume(n)
		c.releaseRcvQueue()
		if c.rq.buf != nil && c.cfg.Memory.UnderPressure() {
			// Under pressure a ring left mostly empty gives half of
			// itself (or more) back (memory.go).
			c.rq.shrink(c.cfg.Buffers, c.cfg.Memory, c.rqExtent())
		}
		c.rcvSpaceAdjust(now, n)
		c.afterRead(now, before)
		if c.urg() != nil {
			c.urgAfterRead()
		}
		if n > 0 || !skip {
			return n, nil
		}
	}
	if c.err != 0 {
		return 0, c.TakeErr()
	}
	if c.rq.finRcvd || c.rq.rdShut || c.closedByErr {
		return 0, io.EOF
	}
	switch c.state {
	case Closed:
		if c.connected {
			return 0, io.EOF
		}
		return 0, syscall.ENOTCONN
	case Listen:
		return 0, syscall.ENOTCONN
	}
	return 0, syscall.EAGAIN
}

// afterRead sends a window update when reading opened the window enough to
// matter: what is left of the window was at most half the clamp and the
// room would now offer at least twice that, and something (Linux's
// tcp_cleanup_rbuf rule), so a stalled sender restarts.
func (c *Conn) afterRead(now instant, before uint32) {
	if !c.state.Synchronized() || c.rq.finRcvd || c.state == TimeWait {
		return
	}
	wnd := c.rcvWindowNow()
	if 2*uint64(wnd) > uint64(c.rcv.clamp) {
		return
	}
	if nw := c.selectRcvWindow(); nw > 0 && nw >= 2*wnd {
		c.sendAck(now)
	}
	_ = before
}

// Shutdown is shutdown(2) with ShutRd, ShutWr or ShutRdWr.
func (c *Conn) Shutdown(t time.Time, how int) error {
	now := c.at(t)
	if how != ShutRd && how != ShutWr && how != ShutRdWr {
		return syscall.EINVAL
	}
	switch c.state {
	case Closed, Listen:
		if !c.connected {
			return syscall.ENOTCONN
		}
	case SynSent:
		// Linux disconnects a connecting socket on shutdown (no RST).
		c.err = packErrno(syscall.ECONNRESET)
		c.closedByErr = true
		c.setState(Closed, "call SHUTDOWN")
		return nil
	}
	if how == ShutRd || how == ShutRdWr {
		c.rq.rdShut = true
	}
	if how == ShutWr || how == ShutRdWr {
		c.closeWrite(now, "call SHUTDOWN")
	}
	return nil
}

// closeWrite queues our FIN after the data: ESTABLISHED -> FIN_WAIT_1,
// CLOSE_WAIT -> LAST_ACK, SYN_RCVD -> FIN_WAIT_1 (RFC 9293 3.10.4).
func (c *Conn) closeWrite(now instant, cause Cause) {
	if c.sq.wrShut {
		return
	}
	switch c.state {
	case SynRcvd, Established:
		c.sq.wrShut, c.sq.finQueued = true, true
		c.setState(FinWait1, cause)
	case CloseWait:
		c.sq.wrShut, c.sq.finQueued = true, true
		c.setState(LastAck, cause)
	default:
		c.sq.wrShut = true
		return
	}
	c.output(now)
}

// Close is the user CLOSE of the last reference: with unread data it resets
// the connection (as Linux does); otherwise it sends FIN after queued data.
// The connection lives on as an orphan until it reaches CLOSED.
func (c *Conn) Close(t time.Time) {
	now := c.at(t)
	if c.orphan { // closed already
		return
	}
	if c.disown() {
		return
	}
	switch c.state {
	case Listen, SynSent:
		c.setState(Closed, "call CLOSE")
		return
	}
	if c.rq.n > 0 || c.rq.oooLen > 0 {
		// RFC 2525 2.17 and Linux: data the application never read is lost,
		// so tell the peer with a reset rather than a clean FIN.
		c.sendActiveRST(now)
		c.setState(Closed, "call CLOSE with unread data")
		return
	}
	c.closeWrite(now, "call CLOSE")
	if c.state == FinWait2 {
		c.orphanInFinWait2(now)
	}
}

// Abort resets the connection (SO_LINGER with a zero timeout, or ABORT):
// RST if synchronized, then CLOSED.
func (c *Conn) Abort(t time.Time) {
	now := c.at(t)
	if c.disown() {
		return
	}
	switch c.state {
	case SynRcvd, Established, FinWait1, FinWait2, CloseWait:
		c.sendActiveRST(now)
	}
	c.setState(Closed, "call ABORT")
}

// disown makes the connection an orphan that the application reads no
// more, for Close and Abort. It reports whether the connection was already
// CLOSED: then there is nothing left to do but give back the buffer of its
// unread data.
func (c *Conn) disown() (closed bool) {
	c.orphan = true
	c.rq.rdShut = true
	if c.state == Closed {
		c.dropRcvQueue() // unread data nobody can read now: its buffer goes back
		return true
	}
	return false
}

// Discard ends the connection without sending anything: the stack forgets a
// half-open passive connection whose listener has gone (Linux drops such a
// request silently; its peer's next segment finds no socket and gets a RST).
func (c *Conn) Discard(cause Cause) {
	c.orphan = true
	c.rq.rdShut = true
	c.setState(Closed, cause)
	c.dropRcvQueue()
}

// State returns the current state.
func (c *Conn) State() State { return c.state }

// Passive reports whether the connection was opened by Listen.
func (c *Conn) Passive() bool { return c.passive }

// Readable returns the number of bytes a Read would return now.
func (c *Conn) Readable() int { return c.rq.n }

// SendQueued returns the bytes written and not yet acknowledged, sent or
// not (what ss shows as Send-Q).
func (c *Conn) SendQueued() int { return c.sq.n }

// Unsent returns the bytes written and not yet sent (SIOCOUTQNSD,
// tcpi_notsent_bytes).
func (c *Conn) Unsent() int { return c.queuedFrom(c.snd.nxt) }

// Retransmissions returns the segments retransmitted and the
// retransmission timeouts so far (Info's TotalRetrans and TotalRTO),
// without building an Info.
func (c *Conn) Retransmissions() (segs, timeouts int) {
	return int(c.stats.retrans), int(c.stats.timeouts)
}

// ReadClosed reports whether a Read would return io.EOF now.
func (c *Conn) ReadClosed() bool {
	return c.rq.n == 0 && (c.rq.finRcvd || c.rq.rdShut || c.closedByErr || (c.state == Closed && c.connected))
}

// Writable returns how many octets a write would take now (0 when shut or
// not in a state that sends): as Linux's tcp_sendmsg, the last buffer's
// room and whole buffers of the size goal while the send buffer's memory
// (sndMem) is below SO_SNDBUF (sndmem.go).
func (c *Conn) Writable() int {
	if c.sq.wrShut || c.orphan || (c.state != Established && c.state != CloseWait && !c.fastOpenWritable()) {
		return 0
	}
	room := c.sndTake(math.MaxInt32, false)
	if lowat := c.cfg.NotSentLowat; lowat > 0 {
		room = min(room, c.notSentRoom(lowat))
	}
	if c.sq.n+room > len(c.sq.buf) {
		// The ring must grow: as far as the budget lets it (memory.go).
		if _, ok := ringMayHold(&c.sq.ring, c.cfg.Memory, c.sq.n+room); !ok {
			room = min(room, max(len(c.sq.buf), minRing)-c.sq.n)
		}
	}
	return max(0, room)
}

// WriteReady reports whether a writer waiting for room should wake: as
// Linux's sk_stream_is_writeable, when the send buffer's free memory is at
// least half of what its queue holds (sndMem, overhead included), so blocked writers resume in large chunks instead of a
// segment at a time. Poll reports POLLOUT on the same condition.
func (c *Conn) WriteReady() bool {
	if c.Writable() == 0 {
		return false
	}
	if lowat := c.cfg.NotSentLowat; lowat > 0 && 2*c.queuedFrom(c.snd.nxt) >= lowat {
		return false // Linux's tcp_stream_memory_free with wake: half the mark
	}
	mem := c.sndMem()
	free := int(c.sq.bufSize) - mem
	return free > 0 && free >= mem/2
}

// notSentRoom is what a write may add under TCP_NOTSENT_LOWAT, as Linux's
// tcp_sendmsg: it fills its last unsent segment up to the size goal
// (sizeGoal), pushes each full one out as far as the windows let it, and
// checks tcp_stream_memory_free (fewer than lowat bytes unsent) only
// before it starts a new segment. So a write may pass the mark by up to
// one size goal, and what leaves at once does not count.
func (c *Conn) notSentRoom(lowat int) int {
	unsent := c.queuedFrom(c.snd.nxt)
	mss := max(c.currentMSS(), 1)
	goal := c.sizeGoal(mss)
	// What the windows let leave now, in whole segments beyond those unsent.
	sendable := c.sendableNow(mss)
	room := 0
	for range maxNotSentRounds {
		free := 0
		if r := unsent % goal; r > 0 {
			free = goal - r // the last segment still has room
		} else if unsent >= lowat {
			break // tcp_stream_memory_free fails: no new segment
		} else {
			free = goal
		}
		room += free
		unsent += free
		sent := min(sendable, unsent)
		sendable -= sent
		unsent -= sent
	}
	return room
}

// maxNotSentRounds bounds notSentRoom's walk over segments: each round adds
// a size goal, so past a few the write is limited by the buffer anyway.
const maxNotSentRounds = 64

// sizeGoal is the size of the segments Linux's tcp_sendmsg builds before
// TSO cuts them (tcp_xmit_size_goal): half the largest window the peer
// offered (all of it under 536 bytes), at most a GSO packet, in whole
// segments of mss, at least one.
func (c *Conn) sizeGoal(mss int) int {
	goal := sizeGoalMax
	if cut := int(c.snd.maxWnd); cut > 0 {
		if cut > defaultPeerMSS {
			cut /= 2
		}
		goal = min(goal, cut)
	}
	return max(goal/mss, 1) * mss
}

// sizeGoalMax is the largest packet Linux's size goal allows: a 64 KiB GSO
// packet less the room it keeps for headers (MAX_TCP_HEADER).
const sizeGoalMax = 65536 - 1 - 320

// SetNotSentLowat sets TCP_NOTSENT_LOWAT (see Config.NotSentLowat).
func (c *Conn) SetNotSentLowat(v int) { c.ownConfig().NotSentLowat = max(v, 0) }

// WriteClosed reports whether the write side is shut (a Write gets EPIPE).
func (c *Conn) WriteClosed() bool {
	switch c.state {
	case FinWait1, FinWait2, Closing, LastAck, TimeWait:
		return true
	}
	return c.sq.wrShut || c.orphan || (c.state == Closed && c.connected) || c.closedByErr
}

// Err returns the pending error without clearing it (0 when none).
func (c *Conn) Err() syscall.Errno { return c.err.unpack() }

// TakeErr returns the pending error and clears it, as SO_ERROR does.
func (c *Conn) TakeErr() syscall.Errno {
	e := c.err.unpack()
	c.err = 0
	return e
}

// Orphaned reports whether Close has been called.
func (c *Conn) Orphaned() bool { return c.orphan }

// ISS returns the initial send sequence number.
func (c *Conn) ISS() seq.Value { return c.snd.iss }

// TimeWaitAcceptsSYN reports whether a SYN arriving for this connection while
// it is in TIME_WAIT may start a new incarnation (its sequence number, or
// timestamp, is beyond the old connection's: RFC 9293 section 3.10.7.4 and
// RFC 6191). The stack then closes this connection and treats the SYN as new.
func (c *Conn) TimeWaitAcceptsSYN(seg *Segment) bool {
	if c.state != TimeWait || seg.Flags&flagsSynAckRst != flagSYN {
		return false
	}
	if c.opt.tsOK && seg.Options.HasTimestamp {
		return int32(seg.Options.TSVal-c.opt.tsRecent) > 0
	}
	return seg.SEQ.GreaterThan(c.rcv.nxt)
}

// SetNoDelay sets TCP_NODELAY. Turning it on sends at once what Nagle, or
// a cork, held back (Linux pushes pending frames on TCP_NODELAY).
func (c *Conn) SetNoDelay(t time.Time, on bool) {
	now := c.at(t)
	c.ownConfig().NoDelay = on
	if on {
		c.sq.corkExpired = true
		c.output(now)
		c.sq.corkExpired = false
	}
}

// SetKeepAlive sets SO_KEEPALIVE and its TCP_KEEPIDLE/INTVL/CNT (zero values
// keep the current setting).
func (c *Conn) SetKeepAlive(t time.Time, on bool, idle, intvl time.Duration, cnt int) {
	now := c.at(t)
	cfg := c.ownConfig()
	cfg.KeepAlive = on
	if idle > 0 {
		cfg.KeepIdle = idle
	}
	if intvl > 0 {
		cfg.KeepIntvl = intvl
	}
	if cnt > 0 {
		cfg.KeepCnt = cnt
	}
	c.armKeepalive(now)
}

// SetUserTimeout sets TCP_USER_TIMEOUT (zero turns it off).
func (c *Conn) SetUserTimeout(d time.Duration) { c.ownConfig().UserTimeout = max(d, 0) }

// SetSynRetries sets how many times the SYN is sent again before the
// connect fails (TCP_SYNCNT), counting those already sent: set during
// SYN_SENT it applies to the timeouts still to come, as Linux reads it
// when the SYN times out.
func (c *Conn) SetSynRetries(n int) { c.ownConfig().SynRetries = max(n, 1) }

// SetFinTimeout sets how long an orphan may stay in FIN_WAIT_2
// (TCP_LINGER2); zero restores the default, and a negative value makes an
// orphan reaching FIN_WAIT_2 reset the connection at once, as Linux.
func (c *Conn) SetFinTimeout(d time.Duration) {
	if d == 0 {
		d = defaultFinTimeout
	}
	c.ownConfig().FinTimeout = d
}

// orphanInFinWait2 starts an orphan's FIN_WAIT_2 timeout, or resets the
// connection at once when TCP_LINGER2 is negative.
func (c *Conn) orphanInFinWait2(now instant) {
	if c.cfg.FinTimeout < 0 {
		c.sendActiveRST(now)
		c.setState(Closed, "FIN_WAIT_2 with TCP_LINGER2 < 0")
		return
	}
	c.timer.close = now.Add(c.cfg.FinTimeout)
}

// SetCork sets TCP_CORK. Removing the cork sends what it held back.
func (c *Conn) SetCork(t time.Time, on bool) {
	now := c.at(t)
	c.ownConfig().Cork = on
	if !on {
		c.timer.cork = instant(0)
		c.output(now)
	}
}

// SetBuffers sets SO_RCVBUF and SO_SNDBUF (bytes; 0 leaves one unchanged).
func (c *Conn) SetBuffers(rcv, snd int) {
	if rcv > 0 {
		c.rq.bufSize = int32(min(rcv, math.MaxInt32))
	}
	if snd > 0 {
		c.sq.bufSize = int32(min(snd, math.MaxInt32))
		c.ownConfig().SndBufLocked = true
	}
}

// caState is Linux's tcpi_ca_state for the connection's loss recovery:
// TCP_CA_Open, TCP_CA_Disorder (duplicate ACKs or SACKs seen, no loss
// decided yet), TCP_CA_Recovery (fast recovery), TCP_CA_Loss (after a
// timeout).
func (c *Conn) caState() int {
	switch {
	case c.cc.loss == lossRTO:
		return 4
	case c.cc.loss == lossRecovery:
		return 3
	case c.cc.loss == lossCWR:
		return 2
	case c.cc.dupAcks > 0 || len(c.cc.sacked) > 0:
		return 1
	}
	return 0
}

// Info returns the TCP_INFO view of the connection.
func (c *Conn) Info(now time.Time) Info {
	inf := Info{
		State:         c.state,
		Retransmits:   int(c.rtx.backoff),
		Backoff:       int(c.rtx.backoff),
		RTO:           c.rtx.rto,
		RTT:           c.rtx.srtt,
		RTTVar:        c.rtx.rttvar,
		SndMSS:        c.opt.sndMSS,
		AdvMSS:        int(c.cfg.MSS),
		RcvMSS:        int(c.opt.rcvMSS),
		Cwnd:          c.cc.cwnd / max(c.opt.sndMSS, 1),
		Ssthresh:      c.cc.ssthresh / max(c.opt.sndMSS, 1),
		SndWnd:        int(c.snd.wnd),
		RcvWnd:        int(c.rcv.wnd),
		TotalRetrans:  int(c.stats.retrans),
		TotalRTO:      int(c.stats.timeouts),
		CAState:       c.caState(),
		Congestion:    c.cc.algo.name(),
		BytesAcked:    c.stats.bytesAcked,
		BytesReceived: c.stats.bytesRcvd,
		SegsOut:       uint64(c.stats.segsOut),
		SegsIn:        uint64(c.stats.segsIn),
		PacingRate:    c.PacingRate(),
		DeliveryRate:  c.deliveryRate(),
		MinRTT:        c.rtx.minRTT,
		DSACKDups:     int(c.stats.dsackDups),
	}
	inf.DeliveryRateAppLimited = c.cc.rateAppLimited
	c.infoLinux(c.at(now), &inf)
	if b, ok := c.cc.algo.(*bbr); ok && b.inited {
		inf.BBR = &BBRInfo{Mode: b.mode.String(), Bandwidth: uint64(b.maxBW()), MinRTT: b.minRTT,
			PacingGain: b.pacingGain, CwndGain: b.cwndGain}
	}
	if c.state < Established && !c.connected {
		inf.Cwnd = initialCwndSegs
	}
	if c.cc.ssthresh == 0 {
		inf.Ssthresh = 0x7fffffff // TCP_INFINITE_SSTHRESH
	}
	if inflight := int(c.snd.nxt.Sub(c.snd.una)); inflight > 0 && c.opt.sndMSS > 0 {
		inf.Unacked = (inflight + c.opt.sndMSS - 1) / c.opt.sndMSS
	}
	if c.opt.tsOK {
		inf.Options |= 1
	}
	if c.opt.sackOK {
		inf.Options |= 2
	}
	if c.opt.wsOK {
		inf.Options |= 4
		inf.SndWScale, inf.RcvWScale = c.opt.sndShift, c.opt.rcvShift
	}
	c.fastOpenInfo(&inf)
	if c.opt.ecn&ecnOK != 0 {
		inf.Options |= 8 // TCPI_OPT_ECN
	}
	if c.opt.ecn&ecnSeen != 0 {
		inf.Options |= 16 // TCPI_OPT_ECN_SEEN
	}
	inf.Seq = SeqVars{ISS: c.snd.iss, SndUna: c.snd.una, SndNxt: c.snd.nxt, SndMax: c.snd.max, SndWnd: c.snd.wnd,
		RcvWnd: c.rcv.wnd}
	if c.state >= SynRcvd {
		inf.Seq.IRS, inf.Seq.RcvNxt = c.rcv.irs, c.rcv.nxt
	}
	return inf
}
