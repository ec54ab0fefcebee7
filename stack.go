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
// The protocol itself lives in package tcp, a sans-IO state machine. Its
// runtime, the engine (internal/engine), parses and emits IP packets
// (with package wire), demultiplexes segments to connections and
// listeners, owns the port and address tables and drives every
// connection's timers. This package is the faces on it: Config and
// Stack, the socket layer with its descriptors and Linux's errno values,
// and the net.Conn layer on that.
//
// Concurrency: a Stack splits its connections among shards (Config.Shards)
// by a keyed hash of their 4-tuple, each with its own mutex, timer heap,
// scratch space and counters. A segment for an established connection, its
// timers, and the Read, Write and deadlines of its net.Conn take only its
// shard's mutex, so connections of different shards are processed in
// parallel. The control plane (listeners, ports, connection setup) has a
// mutex of its own, taken before the one shard a call touches, or before
// every shard for what spans many (a listener's close, ICMP, Stats,
// Close). Blocking calls release their locks while they wait. Packet
// delivery parses and verifies packets before it takes any lock. With a
// clock.Virtual everything happens on the caller's goroutine: timers run
// inside Advance, and packets are processed inside DeliverPacket, so a
// test or a packet script is fully deterministic.
// A Stack starts no goroutine of its own: only its link's and its clock's
// timers, which Close stops.
package synstack

import (
	"errors"
	"net/netip"

	"github.com/synstack/synstack/clock"
	"github.com/synstack/synstack/internal/engine"
	"github.com/synstack/synstack/link"
	"github.com/synstack/synstack/nstat"
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
	// FastOpen is net.ipv4.tcp_fastopen: the TCP Fast Open roles the
	// stack plays, FastOpenClient, FastOpenServer and the others (see
	// fastopen.go). Zero is Linux's default, FastOpenClient;
	// FastOpenOff turns Fast Open off.
	FastOpen int
	// FastOpenKeys are the keys of the stack's Fast Open cookies
	// (tcp_fastopen_key): the primary one, then optionally a backup one
	// still accepted. None: a key drawn from the stack's secret (Seed).
	FastOpenKeys []FastOpenKey
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
	EphemeralPortFirst = engine.EphemeralPortFirst
	EphemeralPortLast  = engine.EphemeralPortLast
)

// Stats are the stack's counters, named as Linux's nstat names them
// (IpInReceives, TcpInSegs, TcpExtListenDrops...); see package nstat for
// each field. Counters Linux does not have are prefixed with Synstack.
type Stats = nstat.Counters

// Stack is a userspace TCP/IP stack attached to one link: the public face
// of an engine host (internal/engine), with its socket layer.
type Stack struct {
	h       *engine.Host
	clock   clock.Clock
	sockets *Sockets
}

// New returns a stack attached to cfg.Link.
func New(cfg Config) (*Stack, error) {
	ec := engine.Config{
		Link:   cfg.Link,
		Addrs:  cfg.Addrs,
		Clock:  cfg.Clock,
		Seed:   cfg.Seed,
		TCP:    cfg.TCP,
		Hooks:  engine.Hooks{OnTransition: cfg.OnTransition, OnPacket: cfg.OnPacket},
		Shards: cfg.Shards,
		TCPMem: cfg.TCPMem,
		Limits: engine.Limits{
			MaxOrphans:    orDefault(cfg.MaxOrphans, DefaultMaxOrphans),
			SomaxConn:     orDefault(cfg.SomaxConn, DefaultSomaxConn),
			MaxSynBacklog: orDefault(cfg.MaxSynBacklog, DefaultMaxSynBacklog),
			MaxConns:      orDefault(cfg.MaxConns, DefaultMaxConns),
		},
		SynCookies:   !cfg.NoSynCookies,
		FastOpen:     fastOpenMode(cfg.FastOpen),
		FastOpenKeys: cfg.FastOpenKeys,
	}
	if len(cfg.FastOpenKeys) > 2 {
		return nil, errors.New("synstack: at most two FastOpenKeys (primary and backup)")
	}
	if ec.Clock == nil {
		ec.Clock = clock.Real{}
	}
	h, err := engine.New(ec)
	if err != nil {
		return nil, err
	}
	s := &Stack{h: h, clock: ec.Clock}
	s.sockets = &Sockets{s: s}
	return s, nil
}

// orDefault is v, or def when v is not positive.
func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// Sockets returns the stack's file-descriptor table: one per stack, as one
// process has one.
func (s *Stack) Sockets() *Sockets { return s.sockets }

// Clock returns the stack's clock.
func (s *Stack) Clock() clock.Clock { return s.clock }

// UpdateTCP changes the TCP configuration that connections made from now
// on start with, as writing a net.ipv4.tcp_* sysctl on a running Linux
// applies to sockets created after it: f gets the stack's current
// defaults (Config.TCP as the stack completed it) and changes them;
// connections already open keep theirs. Output, OnTransition, Buffers,
// Memory, Scratch and Counters stay the stack's whatever f sets.
func (s *Stack) UpdateTCP(f func(c *tcp.Config)) { s.h.UpdateTCPDefaults(f) }

// Stats returns a copy of the stack's counters.
func (s *Stack) Stats() Stats { return s.h.Stats() }

// Close aborts every connection (sending RST where the state calls for it),
// stops the stack's timer, wakes every blocked socket call (which then fails
// with EBADF; in the net.Conn layer, with net.ErrClosed) and closes the
// link. Every later socket call fails with EBADF.
// The stack starts no goroutine of its own beyond clock timers, which Close
// stops; a timer callback already running returns at once.
func (s *Stack) Close() error {
	s.sockets.markClosed()
	return s.h.Close()
}

// DeliverPacket processes one received IP packet (link.Dispatcher): the
// link calls it; a test or a packet script may too.
func (s *Stack) DeliverPacket(pkt []byte) { s.h.DeliverPacket(pkt) }

// DeliverPackets processes a batch of received IP packets
// (link.BatchDispatcher).
func (s *Stack) DeliverPackets(pkts [][]byte) { s.h.DeliverPackets(pkts) }
