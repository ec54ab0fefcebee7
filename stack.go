// Package synstack is a userspace TCP/IP stack: it terminates TCP connections
// in a Go process over any link.Endpoint (an in-memory pipe, a simulated
// network, a TUN device) and gives programs the interfaces they already use:
// net.Conn, net.Listener and DialContext, plus a BSD socket layer (Sockets).
//
// # Use as a library
//
// A Stack is one host: a link and its addresses. Two stacks on the two ends
// of an in-memory pipe talk TCP to each other:
//
//	a, b := pipe.New(1500)
//	srv, err := synstack.New(synstack.Config{Link: a, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}})
//	cli, err := synstack.New(synstack.Config{Link: b, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")}})
//	ln, err := srv.Listen("tcp", "10.0.0.1:80")         // net.Listener
//	go http.Serve(ln, handler)
//	c, err := cli.DialContext(ctx, "tcp", "10.0.0.1:80") // net.Conn, a *synstack.TCPConn
//	defer srv.Close()                                    // ends every goroutine it started
//
// Stack.Listen, Stack.Dial and Stack.DialContext behave as package net's:
// networks "tcp", "tcp4" and "tcp6"; "tcp" on a wildcard address (":80")
// listens on IPv4 and IPv6 at once; hosts are IP literals (the stack
// resolves no names). Stack.DialContext has the signature of
// http.Transport.DialContext, so an http.Client plugs straight in. Dialer
// and ListenConfig carry the options of net.Dialer and net.ListenConfig
// (timeouts, local address, keepalive, SO_REUSEPORT) and a Control hook
// that sets any socket option before bind. TCPConn has the methods of
// *net.TCPConn that mean something here: CloseRead and CloseWrite
// (half-close), SetLinger, SetNoDelay, SetKeepAlive, SetKeepAliveConfig,
// SetReadBuffer and SetWriteBuffer.
//
// # Errors and deadlines
//
// Errors are package net's: Read returns io.EOF at the end of the stream;
// every other error is a *net.OpError wrapping an *os.SyscallError
// wrapping the syscall.Errno Linux would return, so
// errors.Is(err, syscall.ECONNREFUSED) and errors.Is(err,
// syscall.ECONNRESET) work. Deadlines are absolute, cut off calls already
// blocked, and fail with an error for which errors.Is(err,
// os.ErrDeadlineExceeded) holds and Timeout() is true. Calls on a closed
// connection or listener, or on any after Stack.Close, fail with
// net.ErrClosed. A context done during a dial abandons it (errors.Is(err,
// context.Canceled) or context.DeadlineExceeded).
//
// # The socket layer
//
// Stack.Sockets is the BSD socket API with file descriptors, setsockopt,
// shutdown, dup, poll and Linux's errno values, for programs (and packet
// scripts) that want TCP as Linux exposes it. The two layers meet:
// TCPConn.Control and TCPListener.Control run a function on the
// descriptor under a connection, and Stack.FileConn and
// Stack.FileListener turn a descriptor into a net.Conn or net.Listener.
//
// # IP and ICMP
//
// IPv4 and IPv6 run side by side. The stack answers ICMP and ICMPv6 echo
// requests, and heeds ICMP errors about its own segments, once the quoted
// segment proves to belong to a connection (RFC 5927): destination
// unreachable fails a connect (ECONNREFUSED for port unreachable,
// EHOSTUNREACH for host unreachable, as Linux maps them), and
// fragmentation needed (ICMPv4) or packet too big (ICMPv6) lowers the
// connection's MSS to the path MTU.
//
// # Inside
//
// The protocol itself lives in package tcp, a sans-IO state machine. This
// package is its runtime: it parses and emits IP packets (with package wire),
// demultiplexes segments to connections and listeners, owns the port and
// address tables, drives every connection's timers from one clock timer, and
// implements the socket calls with Linux's semantics and errno values; the
// net.Conn layer sits on the socket layer.
//
// Concurrency: a Stack splits its connections among shards (Config.Shards)
// by a keyed hash of their 4-tuple, each with its own mutex, timer heap,
// scratch space and counters. A segment for an established connection, its
// timers, and the Read, Write and deadlines of its net.Conn take only its
// shard's mutex, so connections of different shards are processed in
// parallel. The control plane (descriptors, listeners, ports, connection
// setup) has a mutex of its own, taken before the one shard a call
// touches, or before every shard for what spans many (a listener's close,
// ICMP, Stats, Close); shard.go says how the two meet. Blocking calls
// release their locks while they wait. Packet delivery parses and
// verifies packets before it takes any lock. With a clock.Virtual everything happens on the
// caller's goroutine: timers run inside Advance, and packets are processed
// inside DeliverPacket, so a test or a packet script is fully deterministic.
// A Stack starts no goroutine of its own: only its link's and its clock's
// timers, which Close stops.
package synstack

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/synstack/synstack/clock"
	"github.com/synstack/synstack/link"
	"github.com/synstack/synstack/tcp"
)

// Config configures a Stack.
type Config struct {
	// Link is the link the stack sends and receives IP packets on. Required.
	Link link.Endpoint
	// Addrs are the stack's addresses (IPv4 and/or IPv6) with their
	// prefixes; the prefix picks the source address of a connection.
	Addrs []netip.Prefix
	// Clock is the stack's time. Default clock.Real{}.
	Clock clock.Clock
	// Seed makes ISNs, ephemeral ports and timestamp offsets deterministic
	// when non-zero (tests, packet scripts); zero draws the secret key from
	// crypto/rand.
	Seed uint64
	// TCP holds the default tunables of new connections (every tcp.Config
	// field except Output, OnTransition, Scratch, Counters, Memory and TSOffset,
	// which the stack sets itself; zero values take tcp's defaults). MSS
	// defaults to the link MTU less 40 (IPv4) or 60 (IPv6).
	TCP tcp.Config
	// OnTransition, if set, is called for every state change of every
	// connection. A passive connection's first is LISTEN -> SYN_RCVD (it
	// starts as its listener's clone, as in Linux). It runs under the lock of the connection's shard, one
	// call at a time (the stack serializes its hooks), and must not call
	// back into the stack.
	OnTransition func(local, remote netip.AddrPort, from, to tcp.State, cause tcp.Cause)
	// OnPacket, if set, sees every IP packet sent (dir "out") and received
	// (dir "in"): a received packet before it is processed, a sent one
	// before it goes to the link. pkt is valid only during the call, which
	// runs under a lock of the stack, one call at a time (with
	// OnTransition's).
	OnPacket func(dir string, pkt []byte)
	// MaxOrphans bounds the closed-but-unfinished connections kept
	// (tcp_max_orphans); beyond it a newly closed connection is reset.
	// Default 4096.
	MaxOrphans int
	// SomaxConn caps the backlog of listen (net.core.somaxconn). Default 4096.
	SomaxConn int
	// MaxConns bounds the stack's connections, in every state from
	// SYN_SENT or SYN_RCVD to TIME_WAIT's end: beyond it a SYN at a
	// listener or for the forwarder is dropped (counted in
	// SynstackConnLimitDrops; the client retransmits) and connect fails
	// with ENOBUFS. Default DefaultMaxConns. A listener may have a bound
	// of its own (ListenConfig.MaxConns).
	MaxConns int
	// MaxSynBacklog bounds each listener's SYN queue (tcp_max_syn_backlog).
	// Default 1024.
	MaxSynBacklog int
	// Shards is the number of locks the stack's connections are split
	// among (rounded up to a power of two, at most 256): connections in
	// different shards are processed in parallel (see the package
	// documentation). Default: four per GOMAXPROCS, between 4 and 64. One
	// makes the stack run under a single lock.
	Shards int
	// TCPMem is the budget for the memory all of the stack's connections'
	// send and receive queues hold together (Linux's tcp_mem, in bytes):
	// above Pressure buffers stop growing and windows open by four
	// segments at most; High is the hard limit, past which arriving data
	// is dropped (counted in TcpExtTCPRcvQDrop) and writers wait, each
	// connection keeping one 2 KiB buffer so that it still makes progress.
	// Zero fields are sized as Linux sizes tcp_mem from the memory it has:
	// Low 3/64, Pressure 1/16 and High 3/32 of the machine's memory, or of
	// the Go runtime's memory limit (GOMEMLIMIT) when that is lower. See
	// tcp.Memory.
	TCPMem tcp.MemoryLimits
	// NoSynCookies turns SYN cookies off (Linux's tcp_syncookies=0): a
	// listener whose SYN queue is full then drops new SYNs. By default, as
	// Linux's tcp_syncookies=1, it answers them statelessly instead
	// (RFC 4987 3.6), so a SYN flood cannot lock legitimate clients out.
	NoSynCookies bool
}

// Defaults of the Config limits.
const (
	DefaultMaxOrphans    = 4096
	DefaultSomaxConn     = 4096
	DefaultMaxSynBacklog = 1024
	DefaultMaxConns      = 1 << 21
)

// Linux's ephemeral port range (net.ipv4.ip_local_port_range).
const (
	EphemeralPortFirst = 32768
	EphemeralPortLast  = 60999
)

// ipTTL is the TTL (IPv4) and hop limit (IPv6) of every packet sent, Linux's default.
const ipTTL = 64

// Stats are the stack's counters, named as Linux's nstat names them
// (IpInReceives, TcpInSegs, TcpExtListenDrops...). Counters Linux does not
// have are prefixed with Synstack.
type Stats struct {
	IpInReceives      uint64 // IP packets received
	IpInHdrErrors     uint64 // dropped: malformed IP header, bad header checksum
	IpInAddrErrors    uint64 // dropped: destination is not one of the stack's addresses
	IpInUnknownProtos uint64 // dropped: neither TCP nor ICMP
	IpReasmFails      uint64 // dropped: fragments (no reassembly)
	IpInDelivers      uint64 // IP packets handed to TCP or ICMP
	IpOutRequests     uint64 // IP packets sent
	IpOutDiscards     uint64 // packets that could not be built or written

	TcpActiveOpens  uint64 // CLOSED -> SYN_SENT
	TcpPassiveOpens uint64 // LISTEN -> SYN_RCVD
	TcpAttemptFails uint64 // SYN_SENT/SYN_RCVD -> CLOSED, SYN_RCVD -> LISTEN
	TcpEstabResets  uint64 // ESTABLISHED/CLOSE_WAIT -> CLOSED
	TcpCurrEstab    uint64 // connections now in ESTABLISHED or CLOSE_WAIT (a gauge)
	TcpInSegs       uint64 // segments received (checksum verified)
	TcpOutSegs      uint64 // segments sent
	TcpRetransSegs  uint64 // segments retransmitted (timeouts, fast retransmit, tail loss probes)
	TcpInErrs       uint64 // segments dropped: bad checksum or malformed header
	TcpInCsumErrors uint64 // segments dropped: bad checksum
	TcpOutRsts      uint64 // segments sent with RST

	TcpExtListenOverflows        uint64 // SYN or handshake-completing ACK dropped: accept queue full
	TcpExtListenDrops            uint64 // SYN or ACK dropped at a listener for any reason
	TcpExtSyncookiesSent         uint64 // SYN,ACKs sent with a SYN cookie (SYN queue full)
	TcpExtSyncookiesRecv         uint64 // ACKs that returned a valid cookie: connections opened from it
	TcpExtSyncookiesFailed       uint64 // ACKs at a listener whose cookie did not check out
	TcpExtTCPAbortOnMemory       uint64 // connections reset on close because of MaxOrphans
	TcpExtTCPTimeouts            uint64 // retransmission timeouts, SYN and SYN,ACK ones included
	TcpExtTCPChallengeACK        uint64 // RFC 5961 challenge ACKs sent (in-window RST, SYN, implausible ACK)
	TcpExtTCPACKSkippedChallenge uint64 // challenge ACKs not sent: the per-connection rate limit (500 ms)
	TcpExtTCPACKSkippedSeq       uint64 // duplicate ACKs to out-of-window segments not sent: the same limit

	TcpExtOutOfWindowIcmps uint64 // ICMP errors dropped: the quoted sequence number is not in flight (RFC 5927)

	// Memory (Config.TCPMem, tcp.Memory).
	TcpExtPruneCalled        uint64 // arrivals a receive queue had no room for: over its buffer, or the budget's High
	TcpExtRcvPruned          uint64 // of those, ones that still had no room after out-of-order data was pruned
	TcpExtOfoPruned          uint64 // times a connection gave back its out-of-order data to make room
	TcpExtTCPRcvQDrop        uint64 // in-order segments (or their ends) dropped for want of room
	TcpExtTCPOFODrop         uint64 // out-of-order segments (or their ends) dropped for want of room
	TcpExtTCPMemoryPressures uint64 // times the stack's budget went above its Pressure mark
	SynstackTCPMemBytes      uint64 // bytes the connections' queues hold now, charged to the budget (a gauge; /proc/net/sockstat's "mem", in bytes)

	IcmpInMsgs          uint64 // ICMPv4 messages received (checksum errors included)
	IcmpInErrors        uint64 // ICMPv4 messages dropped: bad checksum, or an error quoting no connection of ours
	IcmpInEchos         uint64 // ICMPv4 echo requests
	IcmpInDestUnreachs  uint64 // ICMPv4 destination unreachable (fragmentation needed included)
	IcmpInTimeExcds     uint64 // ICMPv4 time exceeded
	IcmpInParmProbs     uint64 // ICMPv4 parameter problem
	IcmpOutMsgs         uint64 // ICMPv4 messages sent
	IcmpOutEchoReps     uint64 // ICMPv4 echo replies sent
	Icmp6InMsgs         uint64 // ICMPv6 messages received (checksum errors included)
	Icmp6InErrors       uint64 // ICMPv6 messages dropped: bad checksum, or an error quoting no connection of ours
	Icmp6InEchos        uint64 // ICMPv6 echo requests
	Icmp6InDestUnreachs uint64 // ICMPv6 destination unreachable
	Icmp6InPktTooBigs   uint64 // ICMPv6 packet too big
	Icmp6InTimeExcds    uint64 // ICMPv6 time exceeded
	Icmp6InParmProblems uint64 // ICMPv6 parameter problem
	Icmp6OutMsgs        uint64 // ICMPv6 messages sent
	Icmp6OutEchoReplies uint64 // ICMPv6 echo replies sent

	SynstackNoSocket uint64 // segments that matched no connection or listener (answered by RST unless RST)

	SynstackConnLimitDrops uint64 // SYNs dropped and connects failed (ENOBUFS): Config.MaxConns or a listener's MaxConns reached

	// Martians (martian.go), dropped unanswered; Linux logs them (log_martians).
	SynstackInMartianSources      uint64 // packets from a broadcast, multicast, loopback, unspecified, IPv4-mapped or own address
	SynstackInMartianDestinations uint64 // packets to a broadcast, multicast, loopback, unspecified or IPv4-mapped address

	// Forwarding (Stack.SetForwarder, see forward.go).
	SynstackForwardRequests     uint64 // SYNs offered to the Forwarder (retransmissions of a pending one are not)
	SynstackForwarded           uint64 // forwarded connections whose handshake completed (ForwardRequest.Accept)
	SynstackForwardRefused      uint64 // requests answered with RST (Refuse, or Reject of a refused upstream)
	SynstackForwardUnreachables uint64 // requests answered with ICMP destination unreachable (timeouts not included)
	SynstackForwardTimeouts     uint64 // requests rejected because the upstream timed out (answered with ICMP host unreachable)
	SynstackForwardResets       uint64 // forwarded connections that ended with a RST, sent or received
	SynstackForwardPendingDrops uint64 // SYNs dropped: ForwardOptions.MaxPending requests already waiting, or MaxPendingPerSource from the client's address
	SynstackForwardSourceDrops  uint64 // of those, SYNs dropped for MaxPendingPerSource
	IcmpOutDestUnreachs         uint64 // ICMPv4 destination unreachable sent (ForwardRequest.Unreachable)
	Icmp6OutDestUnreachs        uint64 // ICMPv6 destination unreachable sent (ForwardRequest.Unreachable)
}

// Stack is a userspace TCP/IP stack attached to one link.
type Stack struct {
	// Set by New, then read-only.
	link link.Endpoint
	// txCsumOff and rxCsumOff: the link takes care of TCP checksums
	// (link.ChecksumOffloader), so segments go out without one and come in
	// unchecked.
	txCsumOff, rxCsumOff bool
	clock                clock.Clock
	mtu                  int
	addrs                []netip.Prefix
	key                  secret
	tcpDefaults          tcp.Config
	// loopback: one of addrs is a loopback address, so loopback sources
	// and destinations are not martians (martian.go).
	loopback bool
	// broadcasts are the subnet broadcasts of addrs (martian.go).
	broadcasts []netip.Addr
	// mem is the budget every connection's queues are charged to
	// (Config.TCPMem); tcpDefaults.Memory points at it.
	mem           *tcp.Memory
	onTransition  func(local, remote netip.AddrPort, from, to tcp.State, cause tcp.Cause)
	onPacket      func(dir string, pkt []byte)
	maxOrphans    int
	somaxconn     int
	maxSynBacklog int
	maxConns      int
	synCookies    bool
	sockets       *Sockets

	// fwd is the forwarding table (forward.go); guarded by lock.
	fwd forwardState

	// shards hold the connections (shard.go); shardShift turns a tuple's
	// hash into a shard index. Set by New.
	shards     []*shard
	shardShift uint8

	// ctl guards the fields below, the Sockets table, and every socket
	// without a connection, listener and binding of the stack: the
	// control plane (shard.go). ctlShard is its shard (g). Methods that
	// must be called with a lock held end in Locked; they say which.
	ctl      sync.Mutex
	ctlShard *shard

	// closed is written under lock (ctl and every shard).
	closed bool
	// conns counts the connections in the shards' tables (MaxConns).
	conns atomic.Int64
	// orphans counts the connections whose last descriptor is closed but
	// that have not finished (FIN_WAIT_1, FIN_WAIT_2, CLOSING,
	// LAST_ACK...). As in Linux, TIME_WAIT connections are not counted.
	orphans atomic.Int64
	// listeners holds the listening sockets by local port.
	listeners map[uint16][]*listener
	// ports holds every claim on a local port (bound sockets, listeners,
	// connections) for bind conflict checks. Under lock it needs nothing
	// more; a connection finishing under its shard's lock alone releases
	// its claim under portsMu.
	ports   map[uint16][]*binding
	portsMu sync.Mutex
	// hookMu serializes the OnTransition and OnPacket hooks.
	hookMu sync.Mutex

	// timerEpoch is what the heaps' deadlines count from (timers.go).
	timerEpoch time.Time
	// opts holds the option sets sockets share (internOptsLocked).
	opts map[sockOpts]*sockOpts

	// pollCh, when it holds a channel, has it closed (and cleared) on any
	// socket event to wake Poll callers.
	pollCh atomic.Pointer[chan struct{}]
	// gather is the link, when it takes packets in pieces.
	gather link.GatherWriter
	// portNext is RFC 6056 algorithm 3's table of increments, simplified
	// to a single counter; bindNext does the same for bind(port 0).
	portNext uint32
	bindNext uint32
}

// connKey is a connection's 4-tuple, with unmapped addresses.
type connKey struct {
	local, remote netip.AddrPort
}

// New returns a stack attached to cfg.Link.
func New(cfg Config) (*Stack, error) {
	if cfg.Link == nil {
		return nil, errors.New("synstack: Config.Link is required")
	}
	s := &Stack{
		link:          cfg.Link,
		clock:         cfg.Clock,
		mtu:           cfg.Link.MTU(),
		tcpDefaults:   cfg.TCP,
		onTransition:  cfg.OnTransition,
		onPacket:      cfg.OnPacket,
		maxOrphans:    cfg.MaxOrphans,
		somaxconn:     cfg.SomaxConn,
		maxSynBacklog: cfg.MaxSynBacklog,
		maxConns:      cfg.MaxConns,
		synCookies:    !cfg.NoSynCookies,
		listeners:     make(map[uint16][]*listener),
		ports:         make(map[uint16][]*binding),
	}
	if s.mtu < 68 {
		return nil, errors.New("synstack: link MTU too small")
	}
	for _, p := range cfg.Addrs {
		if !p.IsValid() {
			return nil, errors.New("synstack: invalid address " + p.String())
		}
		s.addrs = append(s.addrs, netip.PrefixFrom(p.Addr().Unmap(), p.Bits()))
		s.loopback = s.loopback || p.Addr().IsLoopback()
	}
	s.broadcasts = subnetBroadcasts(s.addrs)
	if s.clock == nil {
		s.clock = clock.Real{}
	}
	s.timerEpoch = s.clock.Now()
	if s.maxOrphans <= 0 {
		s.maxOrphans = DefaultMaxOrphans
	}
	if s.somaxconn <= 0 {
		s.somaxconn = DefaultSomaxConn
	}
	if s.maxSynBacklog <= 0 {
		s.maxSynBacklog = DefaultMaxSynBacklog
	}
	if s.maxConns <= 0 {
		s.maxConns = DefaultMaxConns
	}
	s.tcpDefaults.Output = nil
	s.tcpDefaults.OnTransition = nil
	s.gather, _ = cfg.Link.(link.GatherWriter)
	if o, ok := cfg.Link.(link.ChecksumOffloader); ok {
		s.txCsumOff, s.rxCsumOff = o.ChecksumOffload()
	}
	if s.tcpDefaults.Buffers == nil {
		s.tcpDefaults.Buffers = &buffers
	}
	s.mem = tcp.NewMemory(memoryLimits(cfg.TCPMem))
	s.tcpDefaults.Memory = s.mem
	// Each shard gives its connections their Scratch and Counters
	// (sharedConfigLocked).
	s.tcpDefaults.Scratch = nil
	s.tcpDefaults.Counters = nil
	if cfg.Seed != 0 {
		s.key.k0 = splitmix64(cfg.Seed)
		s.key.k1 = splitmix64(s.key.k0)
	} else {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, err
		}
		s.key.k0 = binary.LittleEndian.Uint64(b[:8])
		s.key.k1 = binary.LittleEndian.Uint64(b[8:])
	}
	shards := cfg.Shards
	if shards <= 0 {
		shards = defaultShards()
	}
	s.initShards(shards)
	s.portNext = uint32(s.key.k1)
	s.bindNext = uint32(s.key.k1 >> 32)
	s.sockets = &Sockets{s: s}
	s.link.Attach(s)
	return s, nil
}

// Sockets returns the stack's file-descriptor table: one per stack, as one
// process has one.
func (s *Stack) Sockets() *Sockets { return s.sockets }

// Clock returns the stack's clock.
func (s *Stack) Clock() clock.Clock { return s.clock }

// Stats returns a copy of the stack's counters.
func (s *Stack) Stats() Stats {
	s.lock()
	defer s.unlock()
	var st Stats
	for _, sh := range append([]*shard{s.g()}, s.shards...) {
		addStats(&st, &sh.stats)
		c := &sh.counters
		st.TcpRetransSegs += c.RetransSegs
		st.TcpExtTCPTimeouts += c.Timeouts
		st.TcpExtTCPChallengeACK += c.ChallengeACKs
		st.TcpExtTCPACKSkippedChallenge += c.SkippedChallenge
		st.TcpExtTCPACKSkippedSeq += c.SkippedSeq
		st.TcpExtPruneCalled += c.PruneCalled
		st.TcpExtRcvPruned += c.RcvPruned
		st.TcpExtOfoPruned += c.OfoPruned
		st.TcpExtTCPRcvQDrop += c.RcvQDrop
		st.TcpExtTCPOFODrop += c.OFODrop
	}
	st.TcpExtTCPMemoryPressures = s.mem.Pressures()
	st.SynstackTCPMemBytes = uint64(max(s.mem.Used(), 0))
	return st
}

// Close aborts every connection (sending RST where the state calls for it),
// stops the stack's timer, wakes every blocked socket call (which then fails
// with EBADF; in the net.Conn layer, with net.ErrClosed) and closes the
// link. Every later socket call fails with EBADF.
// The stack starts no goroutine of its own beyond clock timers, which Close
// stops; a timer callback already running returns at once.
func (s *Stack) Close() error {
	s.lock()
	if s.closed {
		s.unlock()
		return nil
	}
	now := s.clock.Now()
	// Abort in a fixed order so that the RSTs go out deterministically.
	eps := make([]*endpoint, 0, s.connCount())
	for ep := range s.allConns() {
		eps = append(eps, ep)
	}
	slices.SortFunc(eps, func(a, b *endpoint) int {
		if c := strings.Compare(a.local.String(), b.local.String()); c != 0 {
			return c
		}
		return strings.Compare(a.remote.String(), b.remote.String())
	})
	for _, ep := range eps {
		if ep.hashed {
			ep.conn.Abort(now)
			s.afterLocked(ep)
		}
	}
	s.closed = true
	s.closeForwardsLocked()
	for _, sh := range s.shards {
		if sh.timer != nil {
			sh.timer.Stop()
			sh.timerArmed = false
		}
		sh.timers = nil
	}
	for _, sk := range s.sockets.fds {
		if sk != nil {
			s.wakeSocketLocked(sk)
		}
	}
	s.wakePollLocked()
	s.unlock()
	return s.link.Close()
}

// isLocalAddr reports whether a is one of the stack's addresses.
func (s *Stack) isLocalAddr(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range s.addrs {
		if p.Addr() == a {
			return true
		}
	}
	return false
}

// sourceAddrFor picks the local address for a connection to dst: the first
// of the stack's addresses whose prefix contains dst, else the first of the
// same family.
func (s *Stack) sourceAddrFor(dst netip.Addr) (netip.Addr, bool) {
	for _, p := range s.addrs {
		if p.Addr().Is4() == dst.Is4() && p.Contains(dst) {
			return p.Addr(), true
		}
	}
	for _, p := range s.addrs {
		if p.Addr().Is4() == dst.Is4() {
			return p.Addr(), true
		}
	}
	return netip.Addr{}, false
}

// wakeSocketLocked wakes every call blocked on sk, and Poll callers. It
// needs the lock that guards sk: its connection's shard's, or lock.
func (s *Stack) wakeSocketLocked(sk *socket) {
	for _, w := range sk.waiters {
		select {
		case w <- struct{}{}:
		default: // already woken
		}
	}
	clear(sk.waiters)
	sk.waiters = sk.waiters[:0]
	s.wakePollLocked()
}

// wakePollLocked wakes Poll callers. It needs no lock of its own: the
// channel is swapped out atomically, and only when a Poll is waiting.
func (s *Stack) wakePollLocked() {
	if s.pollCh.Load() == nil {
		return
	}
	if ch := s.pollCh.Swap(nil); ch != nil {
		close(*ch)
	}
}

// waitLocked releases the locks l names until something happens to sk (or
// the stack closes), or until cancel (if not nil) is closed, then takes
// them again: with ctl, sk's connection's shard's lock, which may not be
// the one l named before (l then names the new one). The caller
// re-checks its condition.
func (s *Stack) waitLocked(sk *socket, cancel <-chan struct{}, l *locks) {
	pool := s.chansFor(l)
	w := pool.get()
	sk.waiters = append(sk.waiters, w)
	s.release(l)
	select {
	case <-w:
	case <-cancel:
	}
	if l.ctl && !l.all {
		// ctl first: then sk.ep stays put while its shard is taken.
		s.ctl.Lock()
		l.sh = nil
		if sk.ep != nil {
			l.sh = sk.ep.sh
			l.sh.mu.Lock()
		}
	} else {
		s.acquire(l)
	}
	// Cancelled: leave the list; woken: the waker emptied it. Either way
	// no token may stay in the channel when it is kept for the next wait.
	for i, x := range sk.waiters {
		if x == w {
			last := len(sk.waiters) - 1
			sk.waiters[i] = sk.waiters[last]
			sk.waiters[last] = nil
			sk.waiters = sk.waiters[:last]
			break
		}
	}
	select {
	case <-w:
	default:
	}
	pool.put(w)
}
