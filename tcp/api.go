package tcp

import (
	"syscall"
	"time"

	"github.com/synstack/synstack/tcp/seq"
	"github.com/synstack/synstack/wire"
)

// State is a state of the RFC 9293 connection state diagram.
type State uint8

// The eleven states of RFC 9293 section 3.3.2, in the order of the diagram.
const (
	Closed State = iota
	Listen
	SynSent
	SynRcvd
	Established
	FinWait1
	FinWait2
	CloseWait
	Closing
	LastAck
	TimeWait
)

var stateNames = [...]string{
	Closed:      "CLOSED",
	Listen:      "LISTEN",
	SynSent:     "SYN_SENT",
	SynRcvd:     "SYN_RCVD",
	Established: "ESTABLISHED",
	FinWait1:    "FIN_WAIT_1",
	FinWait2:    "FIN_WAIT_2",
	CloseWait:   "CLOSE_WAIT",
	Closing:     "CLOSING",
	LastAck:     "LAST_ACK",
	TimeWait:    "TIME_WAIT",
}

// String returns the name the world uses: SYN_SENT, FIN_WAIT_1, TIME_WAIT...
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "UNKNOWN"
}

// Synchronized reports whether the state is one of the synchronized states of
// RFC 9293 (ESTABLISHED and every state after it).
func (s State) Synchronized() bool { return s >= Established }

// Segment is one TCP segment as the state machine sees it: the header fields
// that matter to it, parsed options, and the payload. The payload of a segment
// handed to Config.Output is only valid during that call.
type Segment struct {
	SEQ     seq.Value
	ACK     seq.Value
	Flags   wire.TCPFlags
	WND     uint16 // the window field as on the wire, not yet scaled
	Options wire.TCPOptions
	Payload []byte
	// ECN is the IP header's ECN field (ECNNotECT...ECNCE): what the
	// connection asks the stack to send, what the stack received.
	ECN uint8
	// UP is the urgent pointer, meaningful with the URG flag: the
	// offset from SEQ of the byte after the urgent data (urgent.go).
	UP uint16
	// GSOSize, when not zero, says the link is to cut the payload into
	// segments of GSOSize octets (the last may be shorter), each with
	// these headers, its sequence number advanced, and FIN and PSH on
	// the last only: a TSO packet. Only a connection whose
	// Config.SegmentOffload allows it sends one; segments received have
	// it zero.
	GSOSize uint16
}

// Len is SEG.LEN: octets of data plus one for SYN and one for FIN.
func (s *Segment) Len() seq.Size {
	n := seq.Size(len(s.Payload))
	if s.Flags&wire.FlagSYN != 0 {
		n++
	}
	if s.Flags&wire.FlagFIN != 0 {
		n++
	}
	return n
}

// Cause says why a transition happened, for traces: a segment ("rcv SYN,ACK"),
// a user call ("call CLOSE") or a timer ("timer 2MSL").
type Cause string

// Shutdown directions, as the how argument of shutdown(2).
const (
	ShutRd   = syscall.SHUT_RD
	ShutWr   = syscall.SHUT_WR
	ShutRdWr = syscall.SHUT_RDWR
)

// Config holds what a connection needs from outside: where its segments go,
// who hears of its transitions, and its tunables. Zero values take the
// defaults documented on each field (Linux's defaults).
type Config struct {
	// Output is called synchronously for every segment the connection sends.
	// The segment and its payload are only valid during the call. Required
	// by NewConn; a connection set up by Conn.Init sends to its Host.
	Output func(seg *Segment)

	// OnTransition, if set, is called on every state change, after it
	// (NewConn; Conn.Init's connections tell their Host).
	OnTransition func(from, to State, cause Cause)

	// Scratch is working memory a connection uses only during one of its
	// calls: the segment it builds for Output, the rate sample of the ACK
	// it processes. Connections whose methods never run at the same time
	// may share one (the stack shares one among all its connections, which
	// it drives under one lock): an idle connection then does not carry
	// one. Nil gives the connection its own.
	Scratch *Scratch

	// Counters, if set, is added to by the connection (and shared by
	// those that share it); nil gives the connection its own.
	Counters *Counters

	// Buffers lends the memory of the send and receive queues; nil
	// allocates with make. The stack passes a pool shared by its
	// connections.
	Buffers Buffers

	// Memory, if set, is the budget the connection's queues are charged
	// to (memory.go), shared by the connections of a stack as Linux's
	// tcp_mem is by a host's; nil is no budget beyond the buffer sizes.
	Memory *Memory

	// SegmentOffload, when positive, is the most payload one segment may
	// carry on a link that cuts segments itself (TSO: link.SegmentOffloader).
	// The connection then sends what Linux would send as one GSO packet
	// (tcp_tso_autosize's goal, bounded by the windows, pacing, the end
	// of a write and this) as one Segment with GSOSize set to the MSS,
	// while it keeps its books (transmit records, pacing, retransmission)
	// per MSS-sized piece. Zero: every segment fits the MSS.
	SegmentOffload int

	// MinTSOSegs is the fewest segments a GSO packet is sized for when
	// the pacing rate would make it smaller (Linux's tcp_min_tso_segs);
	// 0 is Linux's default, 2. It shapes what leaves as one packet and
	// so where PSH lands (output.go), with or without SegmentOffload.
	MinTSOSegs int

	// MSS is the largest payload this end accepts, advertised in its SYN
	// (link MTU less IP and TCP headers). Default 1460.
	MSS uint16

	// PathMTU is the MTU of the path the connection starts with, the
	// link's (Linux's icsk_pmtu_cookie, set from the route): reported
	// as tcpi_pmtu, lowered by ReduceMSS. Zero: unknown (reported as 0).
	PathMTU int
	// IPv6 says the connection runs over IPv6, whose header is 40
	// octets (IPv4's, 20): ReduceMSS's MSS then stands for a path MTU
	// 60 octets larger rather than 40.
	IPv6 bool

	// RcvBufLocked says SO_RCVBUF was set: the window scale offered then
	// follows the buffer (Linux's tcp_select_initial_window with a locked
	// buffer) instead of WScale, and the buffer is not tuned.
	RcvBufLocked bool

	// SndBufLocked says SO_SNDBUF was set: the send buffer keeps its size.
	// Otherwise it grows with the congestion window (Linux's
	// tcp_sndbuf_expand) up to SndBufMax (tcp_wmem[2], 4 MiB).
	SndBufLocked bool

	// WScale is the window-scale shift this end offers. Default 8
	// (what Linux picks with packetdrill's default tcp_rmem).
	WScale uint8

	// NoTimestamps, NoSACK, NoWindowScale turn off offering those options.
	NoTimestamps, NoSACK, NoWindowScale bool

	// RcvBuf and SndBuf are the receive and send buffer sizes in bytes, as
	// Linux counts them (SO_RCVBUF and SO_SNDBUF report them, twice what
	// was set). Defaults 131072 (tcp_rmem[1]) and 65536. As in Linux, half of
	// the receive buffer holds data: the initial window is 64 KiB. The send
	// buffer counts, as Linux's, the data queued and about 700 bytes for
	// each buffer of the size goal holding it, and a write may queue up to
	// a size goal (64 KiB at most) past it (Conn.Writable).
	RcvBuf, SndBuf int

	// RcvBufMax bounds receive-buffer autotuning (tcp_rmem[2], 6 MiB): an
	// unlocked buffer grows to twice what the application reads per
	// round trip, so the window keeps up with the bandwidth-delay product.
	RcvBufMax int

	// SndBufMax bounds send-buffer growth (tcp_wmem[2], 4 MiB); see
	// SndBufLocked.
	SndBufMax int

	// NoDelay disables Nagle's algorithm (TCP_NODELAY).
	NoDelay bool

	// NoSlowStartAfterIdle keeps the congestion window across idle
	// periods, as Linux with net.ipv4.tcp_slow_start_after_idle = 0. By
	// default (1 on Linux) the window restarts from the initial one after
	// more than an RTO with nothing in flight, and shrinks towards what
	// was used after an RTO of the application leaving it unused
	// (RFC 5681 4.1, RFC 2861; cwnd.go).
	NoSlowStartAfterIdle bool

	// HyStartPlusPlus has CUBIC leave its first slow start by RFC 9406's
	// HyStart++ (a Conservative Slow Start phase once the RTT rises)
	// rather than by Linux's HyStart, which sets ssthresh at once
	// (hystart.go, hystartpp.go). Linux has no HyStart++.
	HyStartPlusPlus bool

	// ECN is when the connection uses Explicit Congestion Notification
	// (RFC 3168; Linux's net.ipv4.tcp_ecn): by default when the peer asks
	// for it, as Linux's 2 (ecn.go).
	ECN ECNMode

	// KeepAlive enables keepalive probes (SO_KEEPALIVE) after KeepIdle of
	// silence (default 2 h), every KeepIntvl (75 s), KeepCnt (9) times.
	KeepAlive bool

	// Cork holds back segments smaller than the MSS until the data fills
	// one, the cork is removed, or 200 ms pass (TCP_CORK).
	Cork bool

	// TSOffset is added to the timestamp clock (RFC 7323 suggests a random
	// per-connection offset; the stack derives it like the ISN). Conn.Init
	// takes it as an argument instead, the Config being shared.
	TSOffset uint32

	// Congestion names the congestion-control algorithm (TCP_CONGESTION):
	// "cubic" (default, RFC 9438), "reno" (RFC 5681 with NewReno) or "bbr"
	// (BBR version 1, as Linux's tcp_bbr, with pacing).
	Congestion string

	// KeepIdle, KeepIntvl and KeepCnt time the keepalive probes: see
	// KeepAlive.
	KeepIdle  time.Duration
	KeepIntvl time.Duration
	KeepCnt   int

	// SynRetries bounds SYN retransmissions (tcp_syn_retries, default 6);
	// SynAckRetries bounds SYN,ACK retransmissions (tcp_synack_retries, 5);
	// Retries2 bounds retransmissions of data and FIN (tcp_retries2, 15).
	SynRetries, SynAckRetries, Retries2 int

	// RTOInitial (1 s), RTOMin (200 ms) and RTOMax (120 s) bound the
	// retransmission timer (RFC 6298, Linux's floor and ceiling).
	RTOInitial, RTOMin, RTOMax time.Duration

	// UserTimeout, when positive, is how long sent data may stay
	// unacknowledged (or the peer's window closed, or keepalive probes
	// unanswered) before the connection is dropped with ETIMEDOUT
	// (TCP_USER_TIMEOUT, RFC 5482); zero leaves it to the retry limits.
	UserTimeout time.Duration

	// TimeWait is how long TIME_WAIT lasts (2MSL; Linux's 60 s).
	TimeWait time.Duration

	// FinTimeout is how long an orphaned connection may sit in FIN_WAIT_2
	// (tcp_fin_timeout, 60 s).
	FinTimeout time.Duration

	// Pacing paces every congestion control at PacingRate, as Linux does
	// under the fq qdisc (BBR paces always).
	Pacing bool

	// NotSentLowat, when positive, bounds the bytes written and not yet
	// sent (TCP_NOTSENT_LOWAT, the tcp_notsent_lowat sysctl): a write
	// takes data while fewer are waiting than this, and the socket is
	// writable for poll once fewer than half as many are. Zero is no
	// bound, as Linux's default (UINT_MAX).
	NotSentLowat int

	// OOBInline leaves urgent data in the stream (SO_OOBINLINE): a read
	// returns the urgent byte in its place instead of skipping it, and
	// there is none to read out of band (urgent.go).
	OOBInline bool

	// MD5Key, when not nil, signs every segment the connection sends and
	// is the key its peer's segments must be signed with (RFC 2385, TCP
	// MD5 signatures; md5.go). The stack sets it per connection
	// (Conn.SetMD5Key), from the keys a socket has for its peer.
	MD5Key []byte

	// prepared: the defaults are filled in (PrepareConfig).
	prepared bool
}

// Scratch is a connection's working memory for the length of a call; see
// Config.Scratch.
type Scratch struct {
	seg  Segment    // the segment being built: Host.Send must not keep it
	rs   rateSample // the sample the ACK being processed builds (rate.go)
	base time.Time  // what the connections' instants count from (instant.go)
	// flights are idle flight states, kept for the connections that
	// share the scratch to borrow (flight.go): at most maxSpareFlights,
	// their record rings spareRecs records in all.
	flights   []*flightState
	spareRecs int
	// more is set during a MSG_MORE write (sendmsg.go).
	more bool
}

// Counters are MIB counters (named as nstat names them) that connections
// add to as they go: a stack gives its connections one to share
// (Config.Counters), as Linux keeps one per network namespace.
type Counters struct {
	RetransSegs      uint64 // TcpRetransSegs: segments sent again
	Timeouts         uint64 // TcpExtTCPTimeouts: retransmission timeouts, SYN and SYN,ACK ones included
	ChallengeACKs    uint64 // TcpExtTCPChallengeACK: RFC 5961 challenge ACKs sent
	SkippedChallenge uint64 // TcpExtTCPACKSkippedChallenge: challenge ACKs the rate limit held back
	SkippedSeq       uint64 // TcpExtTCPACKSkippedSeq: out-of-window ACKs the rate limit held back
	PruneCalled      uint64 // TcpExtPruneCalled: arrivals the receive queue had no room for (memory.go)
	RcvPruned        uint64 // TcpExtRcvPruned: of those, ones that still had no room after pruning
	OfoPruned        uint64 // TcpExtOfoPruned: times out-of-order data was given back to make room
	RcvQDrop         uint64 // TcpExtTCPRcvQDrop: in-order segments (or parts) dropped for want of room
	OFODrop          uint64 // TcpExtTCPOFODrop: out-of-order segments (or parts) dropped for want of room
	// FastOpenActive and FastOpenActiveFail count SYNs sent with data
	// (TcpExtTCPFastOpenActive) and those whose data the peer did not
	// acknowledge, or that timed out (TcpExtTCPFastOpenActiveFail).
	FastOpenActive, FastOpenActiveFail uint64
	FullUndo                           uint64 // TcpExtTCPFullUndo: recoveries undone at their end, every retransmission needless
	PartialUndo                        uint64 // TcpExtTCPPartialUndo: recoveries undone on a partial ACK a delayed original made
	DSACKUndo                          uint64 // TcpExtTCPDSACKUndo: reductions undone because D-SACKs showed every retransmission needless
	LossUndo                           uint64 // TcpExtTCPLossUndo: retransmission timeouts undone
	// LossProbeRecovery is TcpExtTCPLossProbeRecovery: losses a tail
	// loss probe repaired, each reducing the window (RFC 8985 7.4).
	LossProbeRecovery uint64
}

// Host carries a connection (see Conn.Init): it takes the segments the
// connection sends and hears of its state changes. Both are called
// synchronously, during the connection's own calls.
type Host interface {
	// Send is called for every segment the connection sends. The segment
	// and its payload are only valid during the call.
	Send(seg *Segment)
	// Transition is called on every state change, after it.
	Transition(from, to State, cause Cause)
}

// RoomHost is a Host whose link can say that it has no room for more of
// the connection's data now (link.Backpressure), as Linux's TCP Small
// Queues hold a socket's data out of a full qdisc. The connection asks
// before each data segment, new or retransmitted; when Room returns
// false it stops sending, and the host calls Conn.Push once the link has
// room again. ACKs, SYNs, FINs without data and resets are not held.
type RoomHost interface {
	Host
	Room() bool
}

// SeqVars are a connection's send and receive sequence variables (RFC
// 9293 section 3.3.1): ISS, SND.UNA, SND.NXT (which a retransmission
// timeout rewinds; SndMax is the highest it reached), SND.WND; IRS,
// RCV.NXT, RCV.WND. IRS and RCV.NXT are zero before a SYN arrived.
type SeqVars struct {
	ISS, SndUna, SndNxt, SndMax seq.Value
	SndWnd                      uint32
	IRS, RcvNxt                 seq.Value
	RcvWnd                      uint32
}

// Info is what TCP_INFO reports.
type Info struct {
	State State
	// Seq is the connection's sequence variables (RFC 9293 3.3.1), which
	// Linux's tcp_info does not report: for tools that show them, as the
	// playground's sequence-space view.
	Seq             SeqVars
	Retransmits     int           // consecutive retransmissions of the current head (icsk_retransmits)
	Backoff         int           // RTO backoff exponent
	RTO             time.Duration // current retransmission timeout
	RTT, RTTVar     time.Duration // smoothed round-trip time and its variation
	SndMSS          int           // MSS for sending
	AdvMSS          int           // MSS this end advertised in its SYN
	RcvMSS          int           // MSS advertised for receiving
	SndWScale       uint8
	RcvWScale       uint8
	Options         uint8 // TCPI_OPT_* bits: 1 timestamps, 2 SACK, 4 window scale, 32 SYN_DATA (Fast Open: the SYN's data was acknowledged, or taken)
	Cwnd            int   // congestion window, segments
	Ssthresh        int
	SndWnd          int // peer's window, bytes
	RcvWnd          int // window we advertise, bytes
	Unacked         int // segments in flight
	TotalRetrans    int
	TotalRTO        int    // retransmission timeouts, SYN and SYN,ACK ones included (tcpi_total_rto)
	CAState         int    // congestion-control state, as tcpi_ca_state: 0 open, 1 disorder, 3 recovery, 4 loss
	Congestion      string // the congestion-control algorithm (TCP_CONGESTION)
	BytesAcked      uint64
	BytesReceived   uint64
	SegsOut, SegsIn uint64
	// PacingRate is the rate segments are paced at, bytes per second
	// (tcpi_pacing_rate); see Conn.PacingRate.
	PacingRate uint64
	// DeliveryRate is the last delivery-rate sample that was not
	// application-limited, bytes per second (tcpi_delivery_rate), and
	// DeliveryRateAppLimited whether it was (tcpi_delivery_rate_app_limited).
	DeliveryRate           uint64
	DeliveryRateAppLimited bool
	MinRTT                 time.Duration // smallest RTT seen (tcpi_min_rtt)
	DSACKDups              int           // D-SACKs received (tcpi_dsack_dups)
	// FastOpenClientFail is why a client's Fast Open did not carry its
	// data (tcpi_fastopen_client_fail): FastOpenFailNoCookie...
	FastOpenClientFail int

	// Probes are the zero-window or keepalive probes sent and not yet
	// answered (tcpi_probes).
	Probes int
	// Sacked, Lost and Retrans count segments in flight, as Linux's
	// sacked_out, lost_out and retrans_out: SACKed; marked lost
	// (retransmitted or not); retransmitted and not yet acknowledged
	// (tcpi_sacked, tcpi_lost, tcpi_retrans).
	Sacked, Lost, Retrans int
	// Reordering is the reordering degree the connection tolerates, in
	// segments: 3, or the largest reordering seen (tcpi_reordering).
	Reordering int
	// ReordSeen counts the reorderings seen: ACKs whose SACK blocks, or
	// whose cumulative acknowledgment, delivered a segment never sent
	// again below one delivered before, and holes a delayed original
	// filled during recovery (tcpi_reord_seen).
	ReordSeen int
	// Delivered counts segments delivered, by cumulative ACK or SACK, the
	// SYN or SYN,ACK included (tcpi_delivered).
	Delivered uint64
	// LastDataSent, LastDataRecv and LastAckRecv are how long ago data
	// was last sent (a retransmission counts), data last arrived and an
	// ACK last arrived, counted from the handshake
	// (tcpi_last_data_sent, tcpi_last_data_recv, tcpi_last_ack_recv; 0
	// when never).
	LastDataSent, LastDataRecv, LastAckRecv time.Duration
	// BusyTime is how long the connection has had data to send;
	// RwndLimited and SndbufLimited how much of it the peer's window or a
	// full send buffer held it back (tcpi_busy_time, tcpi_rwnd_limited,
	// tcpi_sndbuf_limited). Millisecond resolution, as Linux's jiffies at
	// HZ=1000.
	BusyTime, RwndLimited, SndbufLimited time.Duration
	// NotsentBytes are written bytes not yet sent (tcpi_notsent_bytes).
	NotsentBytes int
	// RcvRTT is the receiver's estimate of the round trip, and RcvSpace
	// the most the application read in one (tcpi_rcv_rtt,
	// tcpi_rcv_space): receive-buffer autotuning's view.
	RcvRTT   time.Duration
	RcvSpace int
	// PMTU is the path MTU the connection sends by (tcpi_pmtu): the
	// link's, or less once ICMP has shown a smaller one.
	PMTU int
	// RcvSsthresh is the slow-start threshold of the window this end
	// offers, bytes (tcpi_rcv_ssthresh).
	RcvSsthresh int
	// ATO is the delayed-ACK timeout (tcpi_ato, Linux's icsk_ack.ato):
	// 0 until data first arrives, then TCP_ATO_MIN (40 ms), adapted to
	// the gaps between data segments.
	ATO time.Duration
	// DataSegsIn and DataSegsOut count segments carrying data received
	// and sent, retransmissions included (tcpi_data_segs_in,
	// tcpi_data_segs_out); BytesSent counts the data octets sent,
	// retransmissions included, BytesRetrans those sent again
	// (tcpi_bytes_sent, tcpi_bytes_retrans).
	DataSegsIn, DataSegsOut uint64
	BytesSent, BytesRetrans uint64
	// RcvOOOPack counts segments received out of order
	// (tcpi_rcv_ooopack).
	RcvOOOPack int
	// TotalRTORecoveries counts RTO recovery episodes: runs of
	// retransmission timeouts, each begun by a timeout with no timeout
	// before it since SND.UNA last moved (tcpi_total_rto_recoveries);
	// TotalRTOTime is the time spent in them, from that first timeout
	// until the connection leaves loss recovery, in milliseconds
	// (tcpi_total_rto_time).
	TotalRTORecoveries int
	TotalRTOTime       time.Duration
	// BBR is BBR's model when the connection uses it (what Linux reports
	// in INET_DIAG_BBRINFO, and ss -ti shows as bbr:(...)).
	BBR *BBRInfo
}

// BBRInfo is BBR's model of the path.
type BBRInfo struct {
	Mode       string        // STARTUP, DRAIN, PROBE_BW or PROBE_RTT
	Bandwidth  uint64        // the max-filtered delivery rate, bytes per second (bbr_bw)
	MinRTT     time.Duration // the windowed minimum RTT (bbr_min_rtt)
	PacingGain float64       // the current pacing gain (bbr_pacing_gain / 256)
	CwndGain   float64       // the current cwnd gain (bbr_cwnd_gain / 256)
}
