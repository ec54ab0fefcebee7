package synstack

import (
	"cmp"
	"math"
	"syscall"
	"time"

	"github.com/synstack/synstack/internal/engine"
	"github.com/synstack/synstack/tcp"
)

// Linux's limits and defaults for the options.
const (
	sysctlWmemMax     = 212992 // net.core.wmem_max
	sysctlRmemMax     = 212992 // net.core.rmem_max
	sockMinSndBuf     = 4608   // SOCK_MIN_SNDBUF
	sockMinRcvBuf     = 2304   // SOCK_MIN_RCVBUF
	defaultSndBuf     = 16384  // tcp_wmem[1], what getsockopt reports before any set
	defaultRcvBuf     = 131072 // tcp_rmem[1]
	defaultUDPBuf     = 212992 // net.core.rmem_default and wmem_default: a UDP socket's buffers
	maxTCPKeepIdle    = 32767  // MAX_TCP_KEEPIDLE, seconds
	maxTCPKeepIntvl   = 32767  // MAX_TCP_KEEPINTVL, seconds
	maxTCPKeepCnt     = 127    // MAX_TCP_KEEPCNT
	maxTCPSynCnt      = 127    // MAX_TCP_SYNCNT
	defaultSynRetries = 6      // tcp_syn_retries
	tcpMinMSS         = 88     // TCP_MIN_MSS
	maxTCPWindow      = 32767  // MAX_TCP_WINDOW, the upper bound of TCP_MAXSEG
	tcpMSSDefault     = 536    // TCP_MSS_DEFAULT, TCP_MAXSEG before connect
	defaultKeepIdle   = 7200 * time.Second
	defaultKeepIntvl  = 75 * time.Second
	defaultKeepCnt    = 9
)

// The options are one table, sockopts: a row per option with its level,
// name, value type, the values a set takes, and how to read and set it.
// The calls below (SetsockoptInt...) find the row and check the value;
// what an option means lives in its row alone, so a new option is a new
// row.

// optType is the type of an option's value, which says the calls that
// reach it.
type optType uint8

const (
	optInt    optType = iota // an int: SetsockoptInt, GetsockoptInt
	optBool                  // an int read as on (non-zero) or off; reads 0 or 1
	optLinger                // a syscall.Linger: SetsockoptLinger, GetsockoptLinger
	optString                // a string: SetsockoptString, GetsockoptString
)

// optValue is an option's value, of any type.
type optValue struct {
	n      int // optInt; optBool as 0 or 1
	str    string
	linger syscall.Linger
}

// on is the value of an optBool option.
func (v optValue) on() bool { return v.n != 0 }

// sockopt is one option: a row of sockopts.
type sockopt struct {
	level, name int
	linux       string // Linux's name, for messages
	typ         optType
	// v6 marks an IPPROTO_IPV6 option: on an AF_INET socket it does not
	// exist (ENOPROTOOPT).
	v6 bool
	// lo..hi are the values an optInt set takes, else EINVAL; 0 as well
	// when zeroOK (back to the default). lo == hi == 0: any value.
	lo, hi int
	zeroOK bool
	// zeroIsValue: a set of 0 is a value of its own (IP_PMTUDISC_DONT),
	// not a return to the default.
	zeroIsValue bool
	// norm maps an optInt value as set to the value kept (Linux doubles
	// SO_SNDBUF, caps TCP_LINGER2); nil keeps it as is. A kept 0 is "not
	// set": get reads the default.
	norm func(v int) int
	// choices are the values an optString option takes (besides "", the
	// default), for the documentation and the table's test; the setter
	// checks.
	choices []string
	get     func(c optCtx) optValue
	// set stores a checked, normalized value in c.O and applies it to
	// c.Conn; nil for a read-only option (ENOPROTOOPT).
	set func(c optCtx, v optValue) error
}

// optCtx is what an option's getter or setter works on (the engine's
// view of the socket, under its locks).
type optCtx = engine.OptCtx

// takes reports whether an optInt set takes v.
func (p *sockopt) takes(v int) bool {
	if p.lo == 0 && p.hi == 0 || v == 0 && p.zeroOK {
		return true
	}
	return v >= p.lo && v <= p.hi
}

// findOpt returns the row of option (level, name) as seen from a socket
// of family fam, or nil if there is none (ENOPROTOOPT).
func findOpt(fam int, level, name int) *sockopt {
	for i := range sockopts {
		p := &sockopts[i]
		if p.level == level && p.name == name {
			if p.v6 && fam != AF_INET6 {
				return nil
			}
			return p
		}
	}
	return nil
}

// wrongType is the error of a call that reaches option p with a value of
// type typ: EINVAL for SO_LINGER read or set as an int (Linux's optlen is
// short for a struct linger), ENOPROTOOPT otherwise.
func (p *sockopt) wrongType(typ optType) error {
	if p.typ == optLinger && typ != optString {
		return syscall.EINVAL
	}
	return syscall.ENOPROTOOPT
}

// lookupOpt returns the row of (level, name) on sk if its value is of
// type typ, else the call's error.
func lookupOpt(sk *engine.Socket, level, name int, typ optType) (*sockopt, error) {
	p := findOpt(sk.Family(), level, name)
	switch {
	case p == nil, p.level == IPPROTO_TCP && sk.UDP():
		return nil, syscall.ENOPROTOOPT
	case p.typ == typ || p.typ == optBool && typ == optInt:
		return p, nil
	}
	return nil, p.wrongType(typ)
}

// getOpt reads option (level, name) of type typ on fd's socket.
func (t *Sockets) getOpt(fd, level, name int, typ optType) (optValue, error) {
	sk, _, err := t.get(fd)
	if err != nil {
		return optValue{}, err
	}
	p, err := lookupOpt(sk, level, name, typ)
	if err != nil {
		return optValue{}, err
	}
	return engine.GetOption(sk, p.get)
}

// setOpt checks v and sets option (level, name) of type typ on fd's
// socket.
func (t *Sockets) setOpt(fd, level, name int, typ optType, v optValue) error {
	sk, _, err := t.get(fd)
	if err != nil {
		return err
	}
	p, err := lookupOpt(sk, level, name, typ)
	if err != nil {
		return err
	}
	if p.set == nil {
		return syscall.ENOPROTOOPT
	}
	switch p.typ {
	case optBool:
		v.n = boolInt(v.on())
	case optInt:
		if !p.takes(v.n) {
			return syscall.EINVAL
		}
		if p.norm != nil {
			v.n = p.norm(v.n)
		}
	}
	return sk.SetOption(func(c optCtx) error { return p.set(c, v) })
}

// SetsockoptInt sets an integer option. SOL_SOCKET: SO_REUSEADDR,
// SO_REUSEPORT (both take effect at the next bind or listen), SO_KEEPALIVE,
// SO_RCVBUF and SO_SNDBUF (doubled as Linux, capped at rmem_max/wmem_max
// before doubling, floors 2304 and 4608). IPPROTO_TCP: TCP_NODELAY,
// TCP_MAXSEG (88..32767 or 0; clamps the MSS of a later connect),
// TCP_KEEPIDLE and TCP_KEEPINTVL (1..32767 s), TCP_KEEPCNT (1..127),
// TCP_CORK, TCP_LINGER2 and TCP_USER_TIMEOUT (0 or more ms), TCP_SYNCNT
// (1..127 SYN retransmissions, for the next connect), TCP_FASTOPEN
// (a listener's Fast Open queue, capped at 4096) and TCP_FASTOPEN_CONNECT
// (EOPNOTSUPP when Config.FastOpen has no FastOpenClient; see fastopen.go),
// TCP_NOTSENT_LOWAT (bytes; 0 back to the stack's default, reads 0 until
// set, as Linux). IPPROTO_IPV6: IPV6_V6ONLY (AF_INET6 only, before bind).
// IP_RECVERR (IPPROTO_IP) and IPV6_RECVERR: an unconnected UDP socket gets
// ICMP errors too, as its next call's error. IP_FREEBIND (IPPROTO_IP):
// bind may name an address the stack does not have. SO_MARK: kept and
// read back; the stack has no routing rules or filters to apply it to.
// IP_MTU_DISCOVER: see
// IP_PMTUDISC_WANT. Read-only
// options (SO_ERROR, SO_TYPE, SO_ACCEPTCONN...) and unknown ones get
// ENOPROTOOPT; SO_LINGER needs SetsockoptLinger (EINVAL here, as for a
// short optlen).
func (t *Sockets) SetsockoptInt(fd, level, opt, value int) error {
	return t.setOpt(fd, level, opt, optInt, optValue{n: value})
}

// GetsockoptInt reads an integer option: those SetsockoptInt sets, plus
// SO_ERROR (the pending error, cleared by the read; 0 when none), SO_TYPE,
// SO_DOMAIN, SO_PROTOCOL and SO_ACCEPTCONN. TCP_MAXSEG reports the MSS in
// use once connected, the value set before, else 536; TCP_KEEP* report
// Linux's defaults (7200, 75, 9) until set. SO_LINGER needs
// GetsockoptLinger (EINVAL here). Unknown options get ENOPROTOOPT.
func (t *Sockets) GetsockoptInt(fd, level, opt int) (int, error) {
	v, err := t.getOpt(fd, level, opt, optInt)
	if err != nil {
		return -1, err
	}
	return v.n, nil
}

// SetsockoptLinger sets SO_LINGER. With Onoff set and Linger 0, closing
// the last descriptor resets the connection. A non-zero linger time is
// stored and reported but Close does not wait for it.
func (t *Sockets) SetsockoptLinger(fd int, l syscall.Linger) error {
	return t.setOpt(fd, SOL_SOCKET, SO_LINGER, optLinger, optValue{linger: l})
}

// GetsockoptLinger reads SO_LINGER.
func (t *Sockets) GetsockoptLinger(fd int) (syscall.Linger, error) {
	v, err := t.getOpt(fd, SOL_SOCKET, SO_LINGER, optLinger)
	return v.linger, err
}

// SetsockoptString sets an option whose value is a string. IPPROTO_TCP:
// TCP_CONGESTION, "cubic" (the default), "reno" or "bbr"; an unknown name gives
// ENOENT, as Linux. TCP_FASTOPEN_KEY: a listener's own Fast Open key, 16
// bytes, or 32 for a primary and a backup key (anything else is EINVAL).
func (t *Sockets) SetsockoptString(fd, level, opt int, value string) error {
	return t.setOpt(fd, level, opt, optString, optValue{str: value})
}

// GetsockoptString reads an option whose value is a string: TCP_CONGESTION,
// TCP_FASTOPEN_KEY (the key set on the socket, "" when none).
func (t *Sockets) GetsockoptString(fd, level, opt int) (string, error) {
	v, err := t.getOpt(fd, level, opt, optString)
	return v.str, err
}

// GetsockoptTCPInfo returns TCP_INFO: the connection's tcp.Info, or for a
// socket without connection just its state (CLOSED or LISTEN).
func (t *Sockets) GetsockoptTCPInfo(fd int) (tcp.Info, error) {
	sk, _, err := t.get(fd)
	if err != nil {
		return tcp.Info{}, err
	}
	return sk.TCPInfo()
}

// sockopts are the options, one row each (see sockopt).
var sockopts = []sockopt{
	{level: SOL_SOCKET, name: SO_REUSEADDR, linux: "SO_REUSEADDR", typ: optBool,
		get: getBool(func(o *engine.Options) bool { return o.ReuseAddr }),
		set: setBool(func(o *engine.Options, on bool) { o.ReuseAddr = on }, nil)},
	{level: SOL_SOCKET, name: SO_REUSEPORT, linux: "SO_REUSEPORT", typ: optBool,
		get: getBool(func(o *engine.Options) bool { return o.ReusePort }),
		set: setBool(func(o *engine.Options, on bool) { o.ReusePort = on }, nil)},
	{level: SOL_SOCKET, name: SO_KEEPALIVE, linux: "SO_KEEPALIVE", typ: optBool,
		get: getBool(func(o *engine.Options) bool { return o.KeepAlive }),
		set: setBool(func(o *engine.Options, on bool) { o.KeepAlive = on }, applyKeepAlive)},
	{level: SOL_SOCKET, name: SO_SNDBUF, linux: "SO_SNDBUF", typ: optInt,
		norm: func(v int) int { return bufSize(v, sysctlWmemMax, sockMinSndBuf) },
		get: func(c optCtx) optValue {
			if c.UDP {
				return intOr(c.O.SndBuf, defaultUDPBuf)
			}
			return intOr(c.O.SndBuf, c.Defaults.SndBuf, defaultSndBuf)
		},
		set: setInt(func(o *engine.Options, v int) { o.SndBuf = v },
			func(c optCtx) { c.Conn.SetBuffers(0, c.O.SndBuf) })},
	{level: SOL_SOCKET, name: SO_RCVBUF, linux: "SO_RCVBUF", typ: optInt,
		norm: func(v int) int { return bufSize(v, sysctlRmemMax, sockMinRcvBuf) },
		get: func(c optCtx) optValue {
			if c.UDP {
				return intOr(c.O.RcvBuf, defaultUDPBuf)
			}
			return intOr(c.O.RcvBuf, c.Defaults.RcvBuf, defaultRcvBuf)
		},
		set: setInt(func(o *engine.Options, v int) { o.RcvBuf = v },
			func(c optCtx) { c.Conn.SetBuffers(c.O.RcvBuf, 0) })},
	{level: SOL_SOCKET, name: SO_LINGER, linux: "SO_LINGER", typ: optLinger,
		get: func(c optCtx) optValue { return optValue{linger: c.O.Linger} },
		set: func(c optCtx, v optValue) error {
			l := v.linger
			l.Onoff = int32(boolInt(l.Onoff != 0))
			l.Linger = max(l.Linger, 0)
			c.O.Linger = l
			return nil
		}},
	{level: SOL_SOCKET, name: SO_OOBINLINE, linux: "SO_OOBINLINE", typ: optBool,
		get: getBool(func(o *engine.Options) bool { return o.OOBInline }),
		set: setBool(func(o *engine.Options, on bool) { o.OOBInline = on },
			func(c optCtx) { c.Conn.SetOOBInline(c.O.OOBInline) })},
	{level: SOL_SOCKET, name: SO_ERROR, linux: "SO_ERROR", typ: optInt,
		get: func(c optCtx) optValue { return optValue{n: int(c.TakeErr())} }},
	{level: SOL_SOCKET, name: SO_TYPE, linux: "SO_TYPE", typ: optInt,
		get: func(c optCtx) optValue { return optValue{n: pick(c.UDP, SOCK_DGRAM, SOCK_STREAM)} }},
	{level: SOL_SOCKET, name: SO_DOMAIN, linux: "SO_DOMAIN", typ: optInt,
		get: func(c optCtx) optValue { return optValue{n: c.Family} }},
	{level: SOL_SOCKET, name: SO_PROTOCOL, linux: "SO_PROTOCOL", typ: optInt,
		get: func(c optCtx) optValue { return optValue{n: c.Proto} }},
	{level: SOL_SOCKET, name: SO_ACCEPTCONN, linux: "SO_ACCEPTCONN", typ: optBool,
		get: func(c optCtx) optValue { return optValue{n: boolInt(c.Listening)} }},
	{level: SOL_SOCKET, name: SO_MARK, linux: "SO_MARK", typ: optInt,
		// Linux marks the socket's packets for its routing rules and
		// netfilter; the stack has neither, so the mark is only kept.
		get: func(c optCtx) optValue { return optValue{n: int(int32(c.O.Mark))} },
		set: func(c optCtx, v optValue) error { c.O.Mark = uint32(v.n); return nil }},
	{level: SOL_SOCKET, name: SO_ZEROCOPY, linux: "SO_ZEROCOPY", typ: optInt, lo: 0, hi: 1,
		get: func(c optCtx) optValue { return optValue{n: boolInt(c.O.ZeroCopy)} },
		set: func(c optCtx, v optValue) error {
			if c.Proto != IPPROTO_TCP && c.Proto != IPPROTO_UDP {
				return syscall.EOPNOTSUPP
			}
			c.O.ZeroCopy = v.n != 0
			return nil
		}},
	{level: SOL_SOCKET, name: SO_TIMESTAMPING, linux: "SO_TIMESTAMPING", typ: optInt,
		lo: 0, hi: engine.SOF_TIMESTAMPING_MASK,
		get: func(c optCtx) optValue { return optValue{n: c.O.Timestamping} },
		set: setTimestamping},
	{level: IPPROTO_TCP, name: TCP_INQ, linux: "TCP_INQ", typ: optBool,
		get: getBool(func(o *engine.Options) bool { return o.RecvInq }),
		set: setBool(func(o *engine.Options, on bool) { o.RecvInq = on }, nil)},

	{level: IPPROTO_TCP, name: TCP_NODELAY, linux: "TCP_NODELAY", typ: optBool,
		get: getBool(func(o *engine.Options) bool { return o.NoDelay }),
		set: setBool(func(o *engine.Options, on bool) { o.NoDelay = on },
			func(c optCtx) { c.Conn.SetNoDelay(c.Now, c.O.NoDelay) })},
	{level: IPPROTO_TCP, name: TCP_MAXSEG, linux: "TCP_MAXSEG", typ: optInt,
		lo: tcpMinMSS, hi: maxTCPWindow, zeroOK: true,
		get: getMaxSeg,
		set: setInt(func(o *engine.Options, v int) { o.MaxSeg = v }, nil)},
	{level: IPPROTO_TCP, name: TCP_KEEPIDLE, linux: "TCP_KEEPIDLE", typ: optInt,
		lo: 1, hi: maxTCPKeepIdle,
		get: func(c optCtx) optValue { return optValue{n: durOr(c.O.KeepIdle, defaultKeepIdle)} },
		set: setInt(func(o *engine.Options, v int) { o.KeepIdle = time.Duration(v) * time.Second }, applyKeepAlive)},
	{level: IPPROTO_TCP, name: TCP_KEEPINTVL, linux: "TCP_KEEPINTVL", typ: optInt,
		lo: 1, hi: maxTCPKeepIntvl,
		get: func(c optCtx) optValue { return optValue{n: durOr(c.O.KeepIntvl, defaultKeepIntvl)} },
		set: setInt(func(o *engine.Options, v int) { o.KeepIntvl = time.Duration(v) * time.Second }, applyKeepAlive)},
	{level: IPPROTO_TCP, name: TCP_KEEPCNT, linux: "TCP_KEEPCNT", typ: optInt,
		lo: 1, hi: maxTCPKeepCnt,
		get: func(c optCtx) optValue { return intOr(c.O.KeepCnt, defaultKeepCnt) },
		set: setInt(func(o *engine.Options, v int) { o.KeepCnt = v }, applyKeepAlive)},
	{level: IPPROTO_TCP, name: TCP_CORK, linux: "TCP_CORK", typ: optBool,
		get: getBool(func(o *engine.Options) bool { return o.Cork }),
		set: setBool(func(o *engine.Options, on bool) { o.Cork = on },
			func(c optCtx) { c.Conn.SetCork(c.Now, c.O.Cork) })},
	{level: IPPROTO_TCP, name: TCP_LINGER2, linux: "TCP_LINGER2", typ: optInt,
		// Linux: negative means reset instead of waiting, zero the
		// default, larger values are capped at TCP_FIN_TIMEOUT_MAX.
		norm: func(v int) int { return min(max(v, -1), finTimeoutMax) },
		get: func(c optCtx) optValue {
			if c.O.Linger2 == 0 {
				return optValue{n: int(defaultFinTimeout / time.Second)}
			}
			return optValue{n: c.O.Linger2}
		},
		set: setInt(func(o *engine.Options, v int) { o.Linger2 = v },
			func(c optCtx) { c.Conn.SetFinTimeout(engine.Linger2Duration(c.O.Linger2)) })},
	{level: IPPROTO_TCP, name: TCP_USER_TIMEOUT, linux: "TCP_USER_TIMEOUT", typ: optInt,
		lo: 0, hi: math.MaxInt,
		get: func(c optCtx) optValue { return optValue{n: int(c.O.UserTimeout / time.Millisecond)} },
		set: setInt(func(o *engine.Options, v int) { o.UserTimeout = time.Duration(v) * time.Millisecond },
			func(c optCtx) { c.Conn.SetUserTimeout(c.O.UserTimeout) })},
	{level: IPPROTO_TCP, name: TCP_NOTSENT_LOWAT, linux: "TCP_NOTSENT_LOWAT", typ: optInt,
		// Any value, as Linux (a u32 there: negative ones and 0xffffffff
		// are no bound); 0 is the stack's default.
		get: func(c optCtx) optValue { return optValue{n: c.O.NotSentLowat} },
		set: setInt(func(o *engine.Options, v int) { o.NotSentLowat = v },
			func(c optCtx) { c.Conn.SetNotSentLowat(cmp.Or(c.O.NotSentLowat, c.Defaults.NotSentLowat)) })},
	{level: IPPROTO_TCP, name: TCP_CONGESTION, linux: "TCP_CONGESTION", typ: optString,
		choices: []string{tcp.CongestionCubic, tcp.CongestionReno, tcp.CongestionBBR},
		get:     getCongestion,
		set:     setCongestion},

	{level: IPPROTO_TCP, name: TCP_SYNCNT, linux: "TCP_SYNCNT", typ: optInt,
		lo: 1, hi: maxTCPSynCnt,
		get: func(c optCtx) optValue { return intOr(c.O.SynCnt, c.Defaults.SynRetries, defaultSynRetries) },
		set: setInt(func(o *engine.Options, v int) { o.SynCnt = v },
			func(c optCtx) { c.Conn.SetSynRetries(c.O.SynCnt) })},
	{level: IPPROTO_TCP, name: TCP_FASTOPEN, linux: "TCP_FASTOPEN", typ: optInt,
		// Linux caps the queue at somaxconn.
		lo: 0, hi: math.MaxInt32, norm: func(v int) int { return min(v, DefaultSomaxConn) },
		get: func(c optCtx) optValue { return optValue{n: c.O.FastOpenQLen} },
		set: func(c optCtx, v optValue) error {
			if c.Conn != nil {
				return syscall.EINVAL // Linux: only before connect, or listening
			}
			c.O.FastOpenQLen = v.n
			return nil
		}},
	{level: IPPROTO_TCP, name: TCP_FASTOPEN_CONNECT, linux: "TCP_FASTOPEN_CONNECT", typ: optBool,
		get: getBool(func(o *engine.Options) bool { return o.FastOpenConnect }),
		set: func(c optCtx, v optValue) error {
			// As Linux: EOPNOTSUPP with the client's Fast Open off,
			// EINVAL once the socket is under way.
			switch {
			case c.FastOpenMode()&FastOpenClient == 0:
				return syscall.EOPNOTSUPP
			case c.Conn != nil || c.Listening:
				return syscall.EINVAL
			}
			c.O.FastOpenConnect = v.on()
			return nil
		}},
	{level: IPPROTO_TCP, name: TCP_FASTOPEN_KEY, linux: "TCP_FASTOPEN_KEY", typ: optString,
		// Raw key bytes: a primary key, or a primary and a backup.
		choices: []string{"0123456789abcdef", "0123456789abcdef" + "fedcba9876543210"},
		get:     func(c optCtx) optValue { return optValue{str: c.O.FastOpenKey} },
		set:     fastOpenKeyOpt},

	{level: IPPROTO_IPV6, name: IPV6_V6ONLY, linux: "IPV6_V6ONLY", typ: optBool, v6: true,
		get: getBool(func(o *engine.Options) bool { return o.V6Only }),
		set: func(c optCtx, v optValue) error {
			if c.Bound {
				return syscall.EINVAL
			}
			c.O.V6Only = v.on()
			return nil
		}},
	{level: IPPROTO_IP, name: IP_RECVERR, linux: "IP_RECVERR", typ: optBool,
		get: getBool(func(o *engine.Options) bool { return o.RecvErr }),
		set: setBool(func(o *engine.Options, on bool) { o.RecvErr = on }, nil)},
	{level: IPPROTO_IP, name: IP_FREEBIND, linux: "IP_FREEBIND", typ: optBool,
		get: getBool(func(o *engine.Options) bool { return o.FreeBind }),
		set: setBool(func(o *engine.Options, on bool) { o.FreeBind = on }, nil)},
	{level: IPPROTO_IP, name: IP_MTU_DISCOVER, linux: "IP_MTU_DISCOVER", typ: optInt,
		// TCP segments carry DF under WANT and DO only, and the path MTU
		// from ICMP lowers the MSS except under DONT, INTERFACE and OMIT,
		// as Linux (internal/engine/ipopts.go).
		lo: IP_PMTUDISC_DONT, hi: IP_PMTUDISC_OMIT, zeroIsValue: true,
		get: func(c optCtx) optValue { return optValue{n: c.O.PMTUDiscMode()} },
		set: setInt(func(o *engine.Options, v int) { o.SetPMTUDiscMode(v) }, nil)},
	{level: IPPROTO_IP, name: IP_TOS, linux: "IP_TOS", typ: optInt,
		// The TOS byte of the IPv4 header; on TCP its ECN bits stay
		// TCP's, as Linux's do_ip_setsockopt. Any int is taken, its
		// low byte kept.
		norm: func(v int) int { return int(uint8(v) &^ ipTOSECN) },
		get:  func(c optCtx) optValue { return optValue{n: int(c.O.TOS)} },
		set:  setInt(func(o *engine.Options, v int) { o.TOS = uint8(v) }, nil)},
	{level: IPPROTO_IPV6, name: IPV6_RECVERR, linux: "IPV6_RECVERR", typ: optBool, v6: true,
		get: getBool(func(o *engine.Options) bool { return o.RecvErr }),
		set: setBool(func(o *engine.Options, on bool) { o.RecvErr = on }, nil)},
}

// getBool reads an optBool option from its field.
func getBool(field func(o *engine.Options) bool) func(c optCtx) optValue {
	return func(c optCtx) optValue { return optValue{n: boolInt(field(c.O))} }
}

// setBool is the setter of an optBool option kept in a field.
func setBool(field func(o *engine.Options, on bool), apply func(c optCtx)) func(c optCtx, v optValue) error {
	return setField(func(o *engine.Options, v optValue) { field(o, v.on()) }, apply)
}

// setInt is the setter of an optInt option kept in a field.
func setInt(field func(o *engine.Options, v int), apply func(c optCtx)) func(c optCtx, v optValue) error {
	return setField(func(o *engine.Options, v optValue) { field(o, v.n) }, apply)
}

// setField returns a setter that stores the value with store and then,
// on a connection, calls apply (if any) to give it the new options.
func setField(store func(o *engine.Options, v optValue), apply func(c optCtx)) func(c optCtx, v optValue) error {
	return func(c optCtx, v optValue) error {
		store(c.O, v)
		if apply != nil && c.Conn != nil {
			apply(c)
		}
		return nil
	}
}

// applyKeepAlive gives the connection the socket's keepalive options.
func applyKeepAlive(c optCtx) {
	o := c.O
	c.Conn.SetKeepAlive(c.Now, o.KeepAlive, o.KeepIdle, o.KeepIntvl, o.KeepCnt)
}

// intOr is the first positive of vs, or the last.
func intOr(vs ...int) optValue {
	for _, v := range vs {
		if v > 0 {
			return optValue{n: v}
		}
	}
	return optValue{n: vs[len(vs)-1]}
}

// getMaxSeg reads TCP_MAXSEG: the MSS in use once connected, the value
// set before, else TCP_MSS_DEFAULT.
func getMaxSeg(c optCtx) optValue {
	if c.Conn != nil {
		if st := c.Conn.State(); st != tcp.Closed && st != tcp.Listen {
			return optValue{n: c.Conn.Info(c.Now).SndMSS}
		}
	}
	return intOr(c.O.MaxSeg, tcpMSSDefault)
}

// getCongestion reads TCP_CONGESTION: the connection's algorithm, else
// the one set, else tcp's default.
func getCongestion(c optCtx) optValue {
	switch {
	case c.Conn != nil:
		return optValue{str: c.Conn.Congestion()}
	case c.O.Congestion != "":
		return optValue{str: c.O.Congestion}
	}
	return optValue{str: tcp.DefaultCongestion}
}

// setCongestion sets TCP_CONGESTION; tcp refuses an unknown name
// (ENOENT, as Linux).
func setCongestion(c optCtx, v optValue) error {
	probe := tcp.NewConn(tcp.Config{}, 0)
	if err := probe.SetCongestion(v.str); err != nil {
		return err
	}
	c.O.Congestion = v.str
	if c.Conn != nil {
		c.Conn.SetCongestion(v.str)
	}
	return nil
}

// bufSize is Linux's sock_setsockopt for SO_SNDBUF/SO_RCVBUF: the value
// (negative read as huge) capped at the sysctl maximum, doubled, floored.
func bufSize(v, maxv, minv int) int {
	if v < 0 || v > maxv {
		v = maxv
	}
	return max(2*v, minv)
}

func durOr(d, def time.Duration) int {
	if d <= 0 {
		d = def
	}
	return int(d / time.Second)
}

// ipTOSECN are the TOS byte's ECN bits, which IP_TOS leaves to TCP.
const ipTOSECN = 0x3

// finTimeoutMax caps TCP_LINGER2 (Linux's TCP_FIN_TIMEOUT_MAX, seconds).
const finTimeoutMax = 120

// defaultFinTimeout is tcp_fin_timeout, what TCP_LINGER2 reads before a set.
const defaultFinTimeout = 60 * time.Second

// pick is a if cond, else b.
func pick(cond bool, a, b int) int {
	if cond {
		return a
	}
	return b
}
