package engine

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
	"github.com/synstack/synstack/internal/frag"
	"github.com/synstack/synstack/link"
	"github.com/synstack/synstack/nstat"
	"github.com/synstack/synstack/tcp"
)

// Config is what the engine runs with: package synstack's Config with its
// defaults resolved.
type Config struct {
	Clock clock.Clock    // the host's time; not nil
	Link  link.Endpoint  // the link the host is attached to
	Addrs []netip.Prefix // the host's addresses, with their prefixes
	// Seed makes keys deterministic when non-zero (see synstack.Config.Seed).
	Seed uint64
	// TCP are the defaults of new connections; the engine sets Output,
	// OnTransition, Scratch, Counters and Memory itself.
	TCP    tcp.Config
	Hooks  Hooks  // observers of transitions and packets
	Limits Limits // bounds of the tables
	// Shards is the number of shards (rounded up to a power of two, at
	// most 256); zero picks four per GOMAXPROCS, between 4 and 64.
	Shards int
	// TCPMem is the budget of the connections' queues; zero fields are
	// sized as Linux sizes tcp_mem (memory.go).
	TCPMem tcp.MemoryLimits
	// SynCookies answers SYNs beyond a full SYN queue with a cookie.
	SynCookies bool
	// FastOpen is net.ipv4.tcp_fastopen (FastOpenClient...); FastOpenKeys
	// the server's keys, primary then backup (none: drawn from the
	// host's secret).
	FastOpen     int
	FastOpenKeys []FastOpenKey
}

// Hooks are the observers of synstack.Config: OnTransition and OnPacket.
// The engine runs them one call at a time, under a lock (hookMu).
type Hooks struct {
	OnTransition func(local, remote netip.AddrPort, from, to tcp.State, cause tcp.Cause)
	OnPacket     func(dir string, pkt []byte)
}

// Limits are the bounds of synstack.Config, every one positive.
type Limits struct {
	MaxOrphans, SomaxConn, MaxSynBacklog, MaxConns int
}

// ipTTL is the TTL (IPv4) and hop limit (IPv6) of every packet sent, Linux's default.
const ipTTL = 64

// Ephemeral port range, Linux's (net.ipv4.ip_local_port_range).
const (
	EphemeralPortFirst = 32768
	EphemeralPortLast  = 60999
)

// Host is one host of the engine: a link, its addresses, and the
// connections, listeners and sockets on them (see doc.go and locks.go).
type Host struct {
	// errQueues are the error queues of TCP sockets (errqueue.go), by
	// socket: few sockets have one.
	errQueues sync.Map

	// Set by New, then read-only.
	link link.Endpoint
	// txCsumOff and rxCsumOff: the link takes care of checksums
	// (link.ChecksumOffloader), so TCP segments go out without one, and
	// TCP segments and UDP datagrams come in unchecked (UDP datagrams
	// still go out with theirs).
	txCsumOff   bool
	rxCsumOff   bool
	clock       clock.Clock
	mtu         int
	addrs       []netip.Prefix
	key         secret
	tcpDefaults tcp.Config
	// loopback: one of addrs is a loopback address, so loopback sources
	// and destinations are not martians (martian.go).
	loopback bool
	// broadcasts are the subnet broadcasts of addrs (martian.go).
	broadcasts []netip.Addr
	// mem is the budget every connection's queues are charged to
	// (Config.TCPMem); tcpDefaults.Memory points at it.
	mem          *tcp.Memory
	onTransition func(local, remote netip.AddrPort, from, to tcp.State, cause tcp.Cause)
	onPacket     func(dir string, pkt []byte)
	synCookies   bool
	limits       Limits
	// tfo is TCP Fast Open's state: modes, keys, the client's cookie
	// cache (fastopen.go), under its own leaf lock.
	tfo fastOpenState

	// fwd is the forwarding table (forward.go), guarded by ctl; its f is
	// written under lock (every shard's lock too), so a shard's lock
	// suffices to read it, and its queued is atomic.
	// +checklocks:ctl
	fwd forwardState

	// shards hold the connections (shard.go, locks.go); shardShift turns a tuple's
	// hash into a shard index. Set by New.
	shards     []*shard
	shardShift uint8

	// ctl guards the fields below, and every socket without a
	// connection, listener and binding of the host: the control plane
	// (locks.go). ctlShard is its shard (g).
	ctl      sync.Mutex
	ctlShard *shard

	// closed is written under lock (ctl and every shard); done is closed
	// with it, for the calls waiting on a socket.
	closed bool
	done   chan struct{}
	// conns counts the connections in the shards' tables (MaxConns).
	conns atomic.Int64
	// md5Used is set once a socket has had a TCP MD5 key: from then on
	// the control plane looks for keys (md5.go).
	md5Used atomic.Bool
	// orphans counts the connections whose last descriptor is closed but
	// that have not finished (FIN_WAIT_1, FIN_WAIT_2, CLOSING,
	// LAST_ACK...). As in Linux, TIME_WAIT connections are not counted.
	orphans atomic.Int64
	// listeners holds the listening sockets by local port.
	// +checklocks:ctl
	listeners map[uint16][]*listener
	// ports holds every claim on a local port (bound sockets, listeners,
	// connections) for bind conflict checks. Under lock it needs nothing
	// more; a connection finishing under its shard's lock alone releases
	// its claim under portsMu.
	// +checklocks:portsMu
	ports   map[uint16][]*binding
	portsMu sync.Mutex
	// hookMu serializes the OnTransition and OnPacket hooks.
	hookMu sync.Mutex

	// timerEpoch is what the heaps' deadlines count from (timers.go).
	timerEpoch time.Time
	// opts holds the option sets sockets share (internOptsLocked), and
	// optScratch is the copy a SetOption changes.
	// +checklocks:ctl
	opts map[Options]*Options
	// +checklocks:ctl
	optScratch Options

	// pollCh, when it holds a channel, has it closed (and cleared) on any
	// socket event to wake Poll callers.
	pollCh atomic.Pointer[chan struct{}]
	// udp is the UDP table (udp.go). fragmenter cuts the datagrams larger
	// than the MTU, udpFragID numbers IPv6 ones, udpJoin is where a
	// fragment is put together for a link that takes one piece; all three
	// under ctl.
	udp        udpTable
	pings      dgramTable  // ping sockets by echo identifier (ping.go)
	udpFwd     udpForward  // UDP forwarding (udpforward.go)
	pingFwd    pingForward // ping forwarding (ping.go)
	reasm      reasmState
	fragmenter frag.Fragmenter
	udpFragID  uint32
	udpJoin    []byte
	udpIPID    atomic.Uint32 // IPv4 IDs of the datagrams sent without ctl (sendSmallUDP)
	// pmtu is the path MTU learned for destinations of datagrams (udp.go),
	// under ctl.
	pmtu map[netip.Addr]pathMTU
	// gather is the link, when it takes packets in pieces.
	gather link.GatherWriter
	// backpressure is the link's, if it can say its transmit queue is
	// full (txroom.go).
	backpressure link.Backpressure
	tx           txWait
	// segOff is the link when it cuts large TCP segments (TSO), and
	// segMax the largest packet it takes then; nil and 0 otherwise.
	segOff link.SegmentOffloader
	segMax int
	// portNext is RFC 6056 algorithm 3's table of increments, simplified
	// to a single counter; bindNext does the same for bind(port 0).
	// +checklocks:ctl
	portNext uint32
	// +checklocks:ctl
	bindNext uint32
}

// connKey is a connection's 4-tuple, with unmapped addresses.
type connKey struct {
	local, remote netip.AddrPort
}

// New returns a host attached to cfg.Link.
func New(cfg Config) (*Host, error) {
	if cfg.Link == nil {
		return nil, errors.New("synstack: Config.Link is required")
	}
	s := &Host{
		link:         cfg.Link,
		clock:        cfg.Clock,
		mtu:          cfg.Link.MTU(),
		tcpDefaults:  cfg.TCP,
		onTransition: cfg.Hooks.OnTransition,
		onPacket:     cfg.Hooks.OnPacket,
		limits:       cfg.Limits,
		synCookies:   cfg.SynCookies,
		listeners:    make(map[uint16][]*listener),
		ports:        make(map[uint16][]*binding),
		done:         make(chan struct{}),
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
	s.timerEpoch = s.clock.Now()
	s.tcpDefaults.Output = nil
	s.tcpDefaults.OnTransition = nil
	s.gather, _ = cfg.Link.(link.GatherWriter)
	if o, ok := cfg.Link.(link.ChecksumOffloader); ok {
		s.txCsumOff, s.rxCsumOff = o.ChecksumOffload()
	}
	// Connections send segments larger than the MSS only to a link that
	// cuts them (connConfig).
	s.tcpDefaults.SegmentOffload = 0
	if o, ok := cfg.Link.(link.SegmentOffloader); ok && o.SegmentOffload() > s.mtu {
		s.segOff, s.segMax = o, o.SegmentOffload()
	}
	if s.tcpDefaults.Buffers == nil {
		s.tcpDefaults.Buffers = &buffers
	}
	lim := memoryLimits(cfg.TCPMem)
	s.mem = tcp.NewMemory(lim)
	s.udp.high = lim.High // Linux sizes udp_mem as tcp_mem
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
	s.initFastOpen(cfg.FastOpen, cfg.FastOpenKeys)
	s.portNext = uint32(s.key.k1)
	s.bindNext = uint32(s.key.k1 >> 32)
	s.watchBackpressure(s.link)
	s.link.Attach(s)
	return s, nil
}

// Clock returns the host's clock.
func (s *Host) Clock() clock.Clock { return s.clock }

// Stats returns the sum of the host's counters.
func (s *Host) Stats() nstat.Counters {
	s.lock()
	defer s.unlock()
	var st nstat.Counters
	for _, sh := range append([]*shard{s.g()}, s.shards...) {
		st.Add(&sh.stats)
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
		st.TcpExtTCPFastOpenActive += c.FastOpenActive
		st.TcpExtTCPFastOpenActiveFail += c.FastOpenActiveFail
		st.TcpExtTCPFullUndo += c.FullUndo
		st.TcpExtTCPPartialUndo += c.PartialUndo
		st.TcpExtTCPDSACKUndo += c.DSACKUndo
		st.TcpExtTCPLossUndo += c.LossUndo
		st.TcpExtTCPLossProbeRecovery += c.LossProbeRecovery
	}
	s.udp.stats.addTo(&st)
	s.addReasmStats(&st)
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
func (s *Host) Close() error {
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
		sh.stopTimersLocked() // +checklocksforce: under Host.lock, every shard's lock
	}
	close(s.done) // every blocked call wakes, and finds the host closed
	s.reasm.mu.Lock()
	if s.reasm.timer != nil {
		s.reasm.timer.Stop()
	}
	s.reasm.mu.Unlock()
	s.wakePollLocked()
	s.unlock()
	return s.link.Close()
}

// isLocalAddr reports whether a is one of the stack's addresses.
func (s *Host) isLocalAddr(a netip.Addr) bool {
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
func (s *Host) sourceAddrFor(dst netip.Addr) (netip.Addr, bool) {
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
