package engine

import (
	"cmp"
	"syscall"
	"time"

	"github.com/synstack/synstack/tcp"
)

// Options are a socket's options, as the socket layer's setsockopt leaves
// them: the value the engine reads when it makes a connection and when an
// option changes on one. Sockets with the same options share one interned
// Options (Host.internOptsLocked), so a set is never changed in place: a
// change makes a new set (Socket.SetOption).
type Options struct {
	ReuseAddr, ReusePort bool
	V6Only               bool
	Linger               syscall.Linger
	KeepAlive            bool
	KeepIdle, KeepIntvl  time.Duration // 0: tcp's default
	KeepCnt              int           // 0: tcp's default
	RcvBuf, SndBuf       int           // as set (already doubled); 0: default
	NoDelay              bool
	MaxSeg               int // TCP_MAXSEG; 0: none
	Cork                 bool
	Linger2              int           // TCP_LINGER2 seconds; 0: default; -1: reset in FIN_WAIT_2
	UserTimeout          time.Duration // TCP_USER_TIMEOUT; 0: off
	Congestion           string        // TCP_CONGESTION; "": tcp's default
	RecvErr              bool          // IP_RECVERR, IPV6_RECVERR: ICMP errors reach an unconnected datagram socket
	ZeroCopy             bool          // SO_ZEROCOPY: MSG_ZEROCOPY sends report completions (errqueue.go)
	Timestamping         int           // SO_TIMESTAMPING flags (errqueue.go)
	RecvInq              bool          // TCP_INQ: recvmsg reports the bytes left to read
	// TCP Fast Open (fastopen.go): TCP_FASTOPEN's queue length (0: off,
	// unless the host's mode turns it on for every listener),
	// TCP_FASTOPEN_CONNECT, and TCP_FASTOPEN_KEY's key or keys (16 or 32
	// bytes; "": the host's).
	SynCnt          int // TCP_SYNCNT; 0: the stack's SynRetries
	FastOpenQLen    int
	FastOpenConnect bool
	FastOpenKey     string
	NotSentLowat    int    // TCP_NOTSENT_LOWAT; 0: the host's (tcp.Config.NotSentLowat)
	Mark            uint32 // SO_MARK: kept and read back, unused (no routing rules here)
	FreeBind        bool   // IP_FREEBIND: bind may name an address the host does not have
	MTUDiscover     int8   // IP_MTU_DISCOVER's mode plus one; 0: not set (see PMTUDiscMode)
	TOS             uint8  // IP_TOS, its ECN bits clear (TCP owns them)
	// MD5 holds the socket's TCP MD5 keys (TCP_MD5SIG, md5.go): never
	// changed in place, a change makes a new list.
	MD5 *MD5Keys
	// OOBInline is SO_OOBINLINE: urgent data stays in the stream.
	OOBInline bool
}

// Linger2Duration is TCP_LINGER2's value v as tcp.Config.FinTimeout: -1
// (reset at once) for a negative v.
func Linger2Duration(v int) time.Duration {
	if v < 0 {
		return -1
	}
	return time.Duration(v) * time.Second
}

// internOptsLocked returns the shared copy of o. Under ctl.
//
// +checklocks:s.ctl
func (s *Host) internOptsLocked(o Options) *Options {
	if p, ok := s.opts[o]; ok {
		return p
	}
	p := new(Options) // not &o: o would then be on the heap from the start, hit or miss
	*p = o
	if len(s.opts) < maxInternedOpts {
		if s.opts == nil {
			s.opts = make(map[Options]*Options)
		}
		s.opts[o] = p
	}
	return p
}

// maxInternedOpts bounds the option sets a host keeps to share; past it a
// new set is not kept (each socket then has its own).
const maxInternedOpts = 256

// setOptsLocked changes sk's options with f. Under ctl.
//
// +checklocks:s.ctl
func (s *Host) setOptsLocked(sk *Socket, f func(o *Options)) {
	own := *sk.opts
	f(&own)
	sk.opts = s.internOptsLocked(own)
}

// defaultOpts are the options of a new socket: the host's tcp defaults.
// Under ctl.
//
// +checklocks:s.ctl
func (s *Host) defaultOpts() *Options {
	d := &s.tcpDefaults
	return s.internOptsLocked(Options{
		NoDelay:   d.NoDelay,
		KeepAlive: d.KeepAlive,
		KeepIdle:  d.KeepIdle,
		KeepIntvl: d.KeepIntvl,
		KeepCnt:   d.KeepCnt,
	})
}

// OptCtx is what a socket option's getter or setter sees, under the
// socket's locks: the options (a copy, for a setter), the connection if
// there is one, and the socket's state.
type OptCtx struct {
	O *Options
	// Conn is the socket's connection, nil if none: a setter applies the
	// change to it.
	Conn      *tcp.Conn
	Now       time.Time
	Family    int
	Listening bool // the socket listens
	Bound     bool // bound or connected
	// Defaults are the host's tcp defaults (the buffers getsockopt reports
	// before any set).
	Defaults *tcp.Config
	// UDP marks a datagram socket, UDP or ping (its buffers' defaults are
	// Linux's rmem_default and wmem_default; TCP options do not apply).
	UDP bool
	// Proto is the socket's protocol number: TCP, UDP, ICMP or ICMPv6.
	Proto int
	sk    *Socket
}

// TakeErr returns and clears the socket's pending error (SO_ERROR).
func (c OptCtx) TakeErr() syscall.Errno {
	ep := c.sk.ep
	if ep == nil {
		return 0
	}
	e := ep.conn.TakeErr()
	c.sk.h.afterLocked(ep)
	return e
}

// ctx returns the OptCtx of the socket with options o. Under its locks.
//
// +checklocks:sk.h.ctl
func (sk *Socket) ctx(o *Options) OptCtx {
	s := sk.h
	c := OptCtx{O: o, Now: s.clock.Now(), Family: int(sk.family), Listening: sk.l != nil,
		Bound: sk.bind != nil || sk.ep != nil || sk.udp != nil && sk.udp.hashed, Defaults: &s.tcpDefaults,
		UDP: sk.udp != nil, Proto: sk.proto(), sk: sk}
	if sk.ep != nil {
		c.Conn = &sk.ep.conn
	}
	return c
}

// Family returns the socket's family, AF_INET or AF_INET6 (fixed at
// creation: it needs no lock).
func (sk *Socket) Family() int { return int(sk.family) }

// GetOption runs get on the socket's options, under every lock (a getter
// may read the connection, or take its pending error).
func GetOption[T any](sk *Socket, get func(c OptCtx) T) (T, error) {
	var l locks
	defer sk.h.releaseCtl(&l)
	if err := sk.lock(allLocks, &l); err != nil {
		var zero T
		return zero, err
	}
	return get(sk.ctx(sk.opts)), nil
}

// SetOption runs set on a copy of the socket's options, under the
// socket's locks; if it succeeds the copy becomes the socket's options
// (interned), and a connection's changed timers are rescheduled.
func (sk *Socket) SetOption(set func(c OptCtx) error) error {
	var l locks
	defer sk.h.releaseCtl(&l)
	if err := sk.lock(sockLocks, &l); err != nil {
		return err
	}
	s := sk.h
	own := &s.optScratch
	*own = *sk.opts
	if err := set(sk.ctx(own)); err != nil {
		return err
	}
	sk.opts = s.internOptsLocked(*own)
	if u := sk.udp; u != nil {
		u.mu.Lock()
		u.rcvBuf = cmp.Or(own.RcvBuf, udpDefaultRcvBuf)
		u.mu.Unlock()
		u.recvErr.Store(own.RecvErr)
		u.rxStamp.Store(own.Timestamping&rxStampFlags == rxStampFlags)
		u.txStamp.Store(own.Timestamping&sofTX != 0)
	}
	if sk.ep != nil {
		sk.ep.ipOpts = ipOptsOf(sk.opts)
		s.afterLocked(sk.ep)
	}
	return nil
}

// StartTSKeys starts the keys of SO_TIMESTAMPING's OPT_ID: from the
// connection's SND.UNA, or the end of what was written when fromWrite
// (OPT_ID_TCP), as Linux does when the option is turned on.
func (c OptCtx) StartTSKeys(fromWrite bool) {
	c.sk.setTSBaseLocked(fromWrite)
}
