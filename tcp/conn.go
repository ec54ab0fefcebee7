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
	defaultMSS        = 1460
	defaultRcvBuf     = 131072
	defaultRcvBufMax  = 6 << 20 // tcp_rmem[2]
	defaultSndBuf     = 65536
	defaultWScale     = 8
	defaultSynRetries = 6
	defaultSynAckRetr = 5
	defaultRetries2   = 15
	defaultRTOInitial = time.Second
	defaultRTOMin     = 200 * time.Millisecond
	defaultRTOMax     = 120 * time.Second
	defaultTimeWait   = 60 * time.Second
	defaultFinTimeout = 60 * time.Second
	defaultKeepIdle   = 2 * time.Hour
	defaultKeepIntvl  = 75 * time.Second
	defaultKeepCnt    = 9
	delAckMin         = 40 * time.Millisecond  // TCP_DELACK_MIN
	maxQuickAcks      = 16                     // TCP_MAX_QUICKACKS
	defaultPeerMSS    = 536                    // RFC 9293 3.7.1: when the peer sends no MSS option
	minMSS            = 88                     // TCP_MIN_MSS
	initialCwndSegs   = 10                     // RFC 6928
	maxWScale         = 14                     // RFC 7323 2.3
	tsOptionLen       = 12                     // nop,nop,TS
	pawsIdle          = 24 * 24 * time.Hour    // RFC 7323 5.5: ts.recent is invalid after 24 days idle
	rtoFallback       = 3 * time.Second        // RFC 6298 5.7, TCP_TIMEOUT_FALLBACK
	corkCeiling       = 200 * time.Millisecond // TCP_CORK holds a partial segment at most this long
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
	sc   *Scratch // cfg.Scratch: the segment being built, the ACK's rate sample, the clock's origin

	state    State
	cfgOwned bool // cfg is c's own copy
	passive  bool // opened by Listen: RST in SYN_RCVD returns to LISTEN
	orphan   bool // Close has been called: nobody will read or write again

	// Negotiated options (here, next to the other bytes, so that the
	// struct packs).
	sndShift, rcvShift uint8 // window scale applied to windows we receive / send
	wsOK, tsOK, sackOK bool

	// Flags, kept together so that the struct packs (each says where it
	// belongs).
	finQueued   bool // the user closed the write side: FIN after the data
	finSent     bool // the FIN has been sent at least once (finSeq is valid)
	wrShut      bool
	everData    bool // data ever arrived: Linux's delayed-ACK engine (ato) is running
	connected   bool // reached ESTABLISHED at some point
	closedByErr bool // reached CLOSED through reset or timeout
	hasRTT      bool
	rttTiming   bool
	tlpOut      bool // a probe was sent and SND.UNA has not passed tlpHigh
	persist     bool // rtoAt is the persist timer (zero window)
	loss        lossState
	pingpong    bool // interactive: ACKs wait to ride on replies (Linux's pingpong mode)
	corkExpired bool
	cookieTS    bool
	// dsackPending: the next segment reports dsack, a duplicate that
	// arrived (RFC 2883), as its first SACK block.
	dsackPending bool
	// rateAppLimited belongs to rateState.lastRate (here, it packs).
	rateAppLimited bool
	// holdAck and ackHeld are HoldACK's: the host holds more in-order
	// segments of this connection; an ACK owed only because more than
	// one full segment is unacknowledged (or in quick-ACK mode) waits
	// for FlushACK.
	holdAck, ackHeld bool
	// quickAcks belongs to the ACK policy (here, it packs): ACK
	// immediately while positive (Linux's quick-ack mode, at most
	// maxQuickAcks).
	quickAcks uint8

	// Send sequence space (RFC 9293 3.3.1):
	//
	//	     1         2          3          4
	//	----------|----------|----------|----------
	//	       SND.UNA    SND.NXT    SND.UNA
	//	                            +SND.WND
	//	1 - old sequence numbers that have been acknowledged
	//	2 - sequence numbers of unacknowledged data
	//	3 - sequence numbers allowed for new data transmission
	//	4 - future sequence numbers that are not yet allowed
	snd struct {
		una, nxt seq.Value
		wnd      uint32    // peer's window, scaled, in bytes
		wl1, wl2 seq.Value // SEG.SEQ and SEG.ACK of the last window update
		iss      seq.Value
		maxWnd   uint32    // largest window the peer has offered (RFC 5961 ACK check)
		max      seq.Value // highest SND.NXT ever: SND.NXT rewinds on a timeout
	}
	// Receive sequence space:
	//
	//	    1          2          3
	//	----------|----------|----------
	//	       RCV.NXT    RCV.NXT
	//	                 +RCV.WND
	//	1 - old sequence numbers that have been acknowledged
	//	2 - sequence numbers allowed for new reception
	//	3 - future sequence numbers that are not yet allowed
	rcv struct {
		nxt   seq.Value
		wnd   uint32 // window last advertised, bytes
		irs   seq.Value
		right seq.Value // RCV.NXT+RCV.WND as last advertised: never moves left
	}

	peerMSS int32 // MSS option the peer sent
	sndMSS  int   // payload per segment we send (options excluded)
	rcvMSS  int32 // estimate of the peer's segment size

	// Timestamps (RFC 7323).
	tsRecent    uint32
	lastAckSent seq.Value
	tsOffset    uint32 // added to our timestamp clock (Init)
	tsRecentAt  instant
	epoch       instant // origin of our timestamp clock

	// rcvBuf and sndBuf are the buffer sizes: the configuration's at
	// first, then as tuned (autotune.go, sndbuf.go) or set (SetBuffers).
	rcvBuf, sndBuf int32

	// Send queue: its first octet is sndData; the FIN, if queued, follows
	// the last octet.
	sq      ring
	sndData seq.Value // sequence number of the send queue's first octet
	finSeq  seq.Value // sequence number our FIN occupies
	// PSH marks, as Linux places them: at the end of each write, and
	// "forced" every half of the peer's largest window within a long write.
	// A segment covering a mark carries PSH. pushedSeq is the last mark.
	pushMarks []seq.Value
	pushedSeq seq.Value
	sndSml    seq.Value // end of the last small segment sent (Minshall's Nagle)

	// Receive queue: in-order data not yet read (rq.n octets, the last one
	// just before RCV.NXT), and beyond it, at their places in the sequence
	// space, out-of-order data: the ranges ooo (sorted, disjoint, not
	// adjacent, oooLen octets in all) and the FIN at oooFinSeq if oooFin.
	rq        ring
	ooo       []seqRange
	oooLen    int32
	oooFinSeq seq.Value
	oooFin    bool
	finRcvd   bool // the peer's FIN has been received in order (RCV.NXT is past it)
	rdShut    bool // SHUT_RD or Close: reads return EOF
	everRcv   bool // data or FIN ever arrived (a read on a new connection is EAGAIN, not ENOTCONN)
	// totalRTO belongs to retransmission below (here, it packs).
	totalRTO int32 // retransmission timeouts, SYN and SYN,ACK ones included

	err syscall.Errno // pending error (SO_ERROR)

	// Retransmission (RFC 6298).
	srtt, rttvar time.Duration
	rto          time.Duration
	backoff      int32 // consecutive timeouts of the same segment
	totalRetrans int32
	rttAt        instant
	rttSeq       seq.Value // Karn timing of one segment when timestamps are off
	rtoTSval     uint32    // our timestamp clock at the last timeout
	rtoAt        instant   // retransmission or persist deadline; zero: not armed
	tlpAt        instant   // tail loss probe deadline (RFC 8985 7); armed instead of rtoAt
	tlpHigh      seq.Value // SND.NXT when the probe was sent
	lastSegStart seq.Value // where the last new segment sent began (the probe resends it)

	// Congestion control: Reno until the congestion-control issue lands.
	cc             congestionControl
	cwnd, ssthresh int   // bytes; ssthresh 0 means not yet set (infinite)
	caAcked        int32 // bytes acked towards Reno's next increase
	dupAcks        int32

	// Loss recovery (recovery.go).
	sacked        []seqRange // SACKed ranges above SND.UNA, sorted
	recoveryPoint seq.Value  // SND.NXT when recovery began (RFC 6675 RecoveryPoint)
	// sackRecent is where the out-of-order segment received last began:
	// its SACK block goes first (RFC 2018 4).
	sackRecent seq.Value
	dsack      seqRange // the duplicate to report (dsackPending)

	// Transmit records, RACK, delivery rate, pacing (txrec.go, rack.go,
	// rate.go, pacing.go).
	fl        *flightState // nil when nothing is in flight (flight.go)
	reo       reoState
	rate      rateState
	paceSegs  int32         // data segments sent under pacing (Linux's data_segs_out)
	dsackDups int32         // D-SACKs received (tcpi_dsack_dups)
	paceNext  instant       // earliest start of the next burst (Linux's tcp_wstamp_ns)
	minRTT    time.Duration // smallest RTT seen (tcpi_min_rtt)

	// ACK policy.
	delAckAt instant // delayed-ACK deadline; zero: none

	// Keepalive.
	lastRcv instant
	keepAt  instant

	// TIME_WAIT and orphan FIN_WAIT_2 deadline.
	closeAt instant

	// stallSince is when the oldest unacknowledged data (or the wait for
	// the peer's window) began: TCP_USER_TIMEOUT counts from it.
	stallSince instant
	// corkAt is when corked data must go out anyway (TCP_CORK's 200 ms).
	corkAt instant

	stats struct {
		segsIn, segsOut, bytesAcked, bytesRcvd uint64
	}

	// Receive-buffer autotuning (Linux's dynamic right-sizing): what the
	// application read in the current round trip, against the most it read
	// in any; rcvRTT is the receiver's estimate of the round trip.
	rcvqSpace  int32
	rcvqCopied int32
	rcvqAt     instant
	rcvRTT     time.Duration
	rcvRTTAt   instant

	// RFC 5961 challenge ACKs and their rate limit.
	lastOOWAck        instant
	challenges        int32
	challengesSkipped int32
	oowSkipped        int32
	// keepProbes belongs to keepalive above (here, it packs): probes sent
	// without an answer.
	keepProbes int32

	// A stateless SYN,ACK (AnswerWithCookie) hides the peer's options in
	// the low bits of its TSval.
	cookieBits uint32
	// rcvRTTSeq belongs to receive-buffer autotuning above (here, it packs).
	rcvRTTSeq seq.Value // without timestamps: time a window's worth of data
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
	c.tsOffset = tsOffset
	c.rcvBuf, c.sndBuf = int32(cfg.RcvBuf), int32(cfg.SndBuf)
	c.snd.iss = iss
	c.snd.una, c.snd.nxt, c.snd.max = iss, iss, iss
	c.sndData = iss.Add(1)
	c.pushedSeq = iss.Add(1)
	c.sndSml = iss
	c.rto = cfg.RTOInitial
	if cc, err := newCongestion(cfg.Congestion); err == nil {
		c.cc = cc
	} else {
		c.cc, _ = newCongestion(DefaultCongestion)
	}
	c.sndMSS = defaultPeerMSS
	c.rcvMSS = defaultPeerMSS
}

// countRetrans counts a segment sent again.
func (c *Conn) countRetrans() {
	c.totalRetrans++
	c.cfg.Counters.RetransSegs++
}

// countTimeout counts a retransmission timeout.
func (c *Conn) countTimeout() {
	c.totalRTO++
	c.cfg.Counters.Timeouts++
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
		c.rtoAt, c.delAckAt, c.keepAt, c.closeAt, c.tlpAt, c.corkAt = instant(0), instant(0), instant(0), instant(0), instant(0), instant(0)
		c.persist = false
		c.dropSendQueue()
		c.clearOOO()
		if c.rdShut {
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
	c.epoch = now
	c.lastRcv = now
	c.setState(SynSent, "call CONNECT")
	c.rttAt = now
	c.stallSince = now
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
	if c.wrShut || c.orphan {
		return 0, syscall.EPIPE
	}
	switch c.state {
	case SynSent, SynRcvd:
		return 0, syscall.EAGAIN
	case Established, CloseWait:
	default:
		return 0, syscall.EPIPE
	}
	n := min(len(p), c.Writable())
	if n == 0 {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, syscall.EAGAIN
	}
	c.rateCheckAppLimited()
	start := c.sndData.Add(seq.Size(c.sq.n))
	c.sq.ensure(c.cfg.Buffers, c.cfg.Memory, c.sq.n+n, c.sq.n)
	c.sq.writeAt(c.sq.n, p[:n])
	c.sq.n += n
	c.markPush(start, start.Add(seq.Size(n)))
	c.output(now)
	return n, nil
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
	c.ooo = c.ooo[:0]
	c.oooLen = 0
	c.oooFin = false
	c.releaseRcvQueue()
}

// releaseRcvQueue gives the receive buffer back once nothing is in it.
func (c *Conn) releaseRcvQueue() {
	if c.rq.n == 0 && c.oooLen == 0 {
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
		n := min(len(p), c.rq.n)
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
		return n, nil
	}
	if c.err != 0 {
		return 0, c.TakeErr()
	}
	if c.finRcvd || c.rdShut || c.closedByErr {
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
// matter: the advertised window was at most half the maximum and would now at
// least double (Linux's tcp_cleanup_rbuf rule), so a stalled sender restarts.
func (c *Conn) afterRead(now instant, before uint32) {
	if !c.state.Synchronized() || c.finRcvd || c.state == TimeWait {
		return
	}
	wnd := c.rcvWindowNow()
	maxWnd := uint32(min(c.rcvCapacity(), 65535<<c.rcvShift))
	if 2*wnd > maxWnd {
		return
	}
	if nw := c.windowToAdvertise(); nw >= 2*wnd && nw >= uint32(c.rcvMSS) {
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
		c.err = syscall.ECONNRESET
		c.closedByErr = true
		c.setState(Closed, "call SHUTDOWN")
		return nil
	}
	if how == ShutRd || how == ShutRdWr {
		c.rdShut = true
	}
	if how == ShutWr || how == ShutRdWr {
		c.closeWrite(now, "call SHUTDOWN")
	}
	return nil
}

// closeWrite queues our FIN after the data: ESTABLISHED -> FIN_WAIT_1,
// CLOSE_WAIT -> LAST_ACK, SYN_RCVD -> FIN_WAIT_1 (RFC 9293 3.10.4).
func (c *Conn) closeWrite(now instant, cause Cause) {
	if c.wrShut {
		return
	}
	switch c.state {
	case SynRcvd, Established:
		c.wrShut, c.finQueued = true, true
		c.setState(FinWait1, cause)
	case CloseWait:
		c.wrShut, c.finQueued = true, true
		c.setState(LastAck, cause)
	default:
		c.wrShut = true
		return
	}
	c.output(now)
}

// Close is the user CLOSE of the last reference: with unread data it resets
// the connection (as Linux does); otherwise it sends FIN after queued data.
// The connection lives on as an orphan until it reaches CLOSED.
func (c *Conn) Close(t time.Time) {
	now := c.at(t)
	if c.orphan {
		return
	}
	c.orphan = true
	c.rdShut = true
	switch c.state {
	case Closed:
		c.dropRcvQueue() // unread data nobody can read now: its buffer goes back
		return
	case Listen, SynSent:
		c.setState(Closed, "call CLOSE")
		return
	}
	if c.rq.n > 0 || c.oooLen > 0 {
		// RFC 2525 2.17 and Linux: data the application never read is lost,
		// so tell the peer with a reset rather than a clean FIN.
		c.sendRST(now, c.snd.max, true)
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
	c.orphan = true
	c.rdShut = true
	switch c.state {
	case Closed:
		c.dropRcvQueue() // unread data nobody can read now: its buffer goes back
		return
	case SynRcvd, Established, FinWait1, FinWait2, CloseWait:
		c.sendRST(now, c.snd.max, true)
	}
	c.setState(Closed, "call ABORT")
}

// Discard ends the connection without sending anything: the stack forgets a
// half-open passive connection whose listener has gone (Linux drops such a
// request silently; its peer's next segment finds no socket and gets a RST).
func (c *Conn) Discard(cause Cause) {
	c.orphan = true
	c.rdShut = true
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

// Retransmissions returns the segments retransmitted and the
// retransmission timeouts so far (Info's TotalRetrans and TotalRTO),
// without building an Info.
func (c *Conn) Retransmissions() (segs, timeouts int) { return int(c.totalRetrans), int(c.totalRTO) }

// ReadClosed reports whether a Read would return io.EOF now.
func (c *Conn) ReadClosed() bool {
	return c.rq.n == 0 && (c.finRcvd || c.rdShut || c.closedByErr || (c.state == Closed && c.connected))
}

// Writable returns the free space in the send buffer (0 when shut or not
// in a state that sends).
func (c *Conn) Writable() int {
	if c.wrShut || c.orphan || (c.state != Established && c.state != CloseWait) {
		return 0
	}
	room := max(0, int(c.sndBuf)-c.sq.n)
	if c.sq.n+room > len(c.sq.buf) {
		// The ring must grow: as far as the budget lets it (memory.go).
		if _, ok := ringMayHold(&c.sq, c.cfg.Memory, c.sq.n+room); !ok {
			room = min(room, max(len(c.sq.buf), minRing)-c.sq.n)
		}
	}
	return max(0, room)
}

// WriteReady reports whether a writer waiting for room should wake: as
// Linux's sk_stream_is_writeable, when the free space is at least half of
// what is queued, so blocked writers resume in large chunks instead of a
// segment at a time. Poll reports POLLOUT on the same condition.
func (c *Conn) WriteReady() bool {
	free := c.Writable()
	return free > 0 && free >= c.sq.n/2
}

// WriteClosed reports whether the write side is shut (a Write gets EPIPE).
func (c *Conn) WriteClosed() bool {
	switch c.state {
	case FinWait1, FinWait2, Closing, LastAck, TimeWait:
		return true
	}
	return c.wrShut || c.orphan || (c.state == Closed && c.connected) || c.closedByErr
}

// Err returns the pending error without clearing it (0 when none).
func (c *Conn) Err() syscall.Errno { return c.err }

// TakeErr returns the pending error and clears it, as SO_ERROR does.
func (c *Conn) TakeErr() syscall.Errno {
	e := c.err
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
	if c.tsOK && seg.Options.HasTimestamp {
		return int32(seg.Options.TSVal-c.tsRecent) > 0
	}
	return seg.SEQ.GreaterThan(c.rcv.nxt)
}

// SetNoDelay sets TCP_NODELAY. Turning it on sends at once what Nagle, or
// a cork, held back (Linux pushes pending frames on TCP_NODELAY).
func (c *Conn) SetNoDelay(t time.Time, on bool) {
	now := c.at(t)
	c.ownConfig().NoDelay = on
	if on {
		c.corkExpired = true
		c.output(now)
		c.corkExpired = false
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
		c.sendRST(now, c.snd.max, true)
		c.setState(Closed, "FIN_WAIT_2 with TCP_LINGER2 < 0")
		return
	}
	c.closeAt = now.Add(c.cfg.FinTimeout)
}

// SetCork sets TCP_CORK. Removing the cork sends what it held back.
func (c *Conn) SetCork(t time.Time, on bool) {
	now := c.at(t)
	c.ownConfig().Cork = on
	if !on {
		c.corkAt = instant(0)
		c.output(now)
	}
}

// SetBuffers sets SO_RCVBUF and SO_SNDBUF (bytes; 0 leaves one unchanged).
func (c *Conn) SetBuffers(rcv, snd int) {
	if rcv > 0 {
		c.rcvBuf = int32(min(rcv, math.MaxInt32))
	}
	if snd > 0 {
		c.sndBuf = int32(min(snd, math.MaxInt32))
		c.ownConfig().SndBufLocked = true
	}
}

// caState is Linux's tcpi_ca_state for the connection's loss recovery:
// TCP_CA_Open, TCP_CA_Disorder (duplicate ACKs or SACKs seen, no loss
// decided yet), TCP_CA_Recovery (fast recovery), TCP_CA_Loss (after a
// timeout).
func (c *Conn) caState() int {
	switch {
	case c.loss == lossRTO:
		return 4
	case c.loss == lossRecovery:
		return 3
	case c.dupAcks > 0 || len(c.sacked) > 0:
		return 1
	}
	return 0
}

// Info returns the TCP_INFO view of the connection.
func (c *Conn) Info(now time.Time) Info {
	inf := Info{
		State:         c.state,
		Retransmits:   int(c.backoff),
		Backoff:       int(c.backoff),
		RTO:           c.rto,
		RTT:           c.srtt,
		RTTVar:        c.rttvar,
		SndMSS:        c.sndMSS,
		AdvMSS:        int(c.cfg.MSS),
		RcvMSS:        int(c.rcvMSS),
		Cwnd:          c.cwnd / max(c.sndMSS, 1),
		Ssthresh:      c.ssthresh / max(c.sndMSS, 1),
		SndWnd:        int(c.snd.wnd),
		RcvWnd:        int(c.rcv.wnd),
		TotalRetrans:  int(c.totalRetrans),
		TotalRTO:      int(c.totalRTO),
		CAState:       c.caState(),
		Congestion:    c.cc.name(),
		BytesAcked:    c.stats.bytesAcked,
		BytesReceived: c.stats.bytesRcvd,
		SegsOut:       c.stats.segsOut,
		SegsIn:        c.stats.segsIn,
		PacingRate:    c.PacingRate(),
		DeliveryRate:  c.deliveryRate(),
		MinRTT:        c.minRTT,
		DSACKDups:     int(c.dsackDups),
	}
	inf.DeliveryRateAppLimited = c.rateAppLimited
	if b, ok := c.cc.(*bbr); ok && b.inited {
		inf.BBR = &BBRInfo{Mode: b.mode.String(), Bandwidth: uint64(b.maxBW()), MinRTT: b.minRTT,
			PacingGain: b.pacingGain, CwndGain: b.cwndGain}
	}
	if c.state < Established && !c.connected {
		inf.Cwnd = initialCwndSegs
	}
	if c.ssthresh == 0 {
		inf.Ssthresh = 0x7fffffff // TCP_INFINITE_SSTHRESH
	}
	if inflight := int(c.snd.nxt.Sub(c.snd.una)); inflight > 0 && c.sndMSS > 0 {
		inf.Unacked = (inflight + c.sndMSS - 1) / c.sndMSS
	}
	if c.tsOK {
		inf.Options |= 1
	}
	if c.sackOK {
		inf.Options |= 2
	}
	if c.wsOK {
		inf.Options |= 4
		inf.SndWScale, inf.RcvWScale = c.sndShift, c.rcvShift
	}
	return inf
}
