package synstack

import (
	"syscall"
	"time"

	"github.com/synstack/synstack/tcp"
)

// sockOpts are a socket's options. Those a connection uses are carried into
// its tcp.Config when it is created (connect, or a SYN at a listener, whose
// children inherit the listener's options) and applied to it when set later.
type sockOpts struct {
	reuseAddr, reusePort bool
	v6only               bool
	linger               syscall.Linger
	keepAlive            bool
	keepIdle, keepIntvl  time.Duration // 0: tcp's default
	keepCnt              int           // 0: tcp's default
	rcvBuf, sndBuf       int           // as set (already doubled); 0: default
	noDelay              bool
	maxSeg               int // TCP_MAXSEG; 0: none
	cork                 bool
	linger2              int           // TCP_LINGER2 seconds; 0: default; -1: reset in FIN_WAIT_2
	userTimeout          time.Duration // TCP_USER_TIMEOUT; 0: off
	congestion           string        // TCP_CONGESTION; "": tcp's default
}

// Linux's limits and defaults for the options.
const (
	sysctlWmemMax    = 212992 // net.core.wmem_max
	sysctlRmemMax    = 212992 // net.core.rmem_max
	sockMinSndBuf    = 4608   // SOCK_MIN_SNDBUF
	sockMinRcvBuf    = 2304   // SOCK_MIN_RCVBUF
	defaultSndBuf    = 16384  // tcp_wmem[1], what getsockopt reports before any set
	defaultRcvBuf    = 131072 // tcp_rmem[1]
	maxTCPKeepIdle   = 32767  // MAX_TCP_KEEPIDLE, seconds
	maxTCPKeepIntvl  = 32767  // MAX_TCP_KEEPINTVL, seconds
	maxTCPKeepCnt    = 127    // MAX_TCP_KEEPCNT
	tcpMinMSS        = 88     // TCP_MIN_MSS
	maxTCPWindow     = 32767  // MAX_TCP_WINDOW, the upper bound of TCP_MAXSEG
	tcpMSSDefault    = 536    // TCP_MSS_DEFAULT, TCP_MAXSEG before connect
	defaultKeepIdle  = 7200 * time.Second
	defaultKeepIntvl = 75 * time.Second
	defaultKeepCnt   = 9
)

// defaultOpts are the options of a new socket, from the stack's tcp defaults.
// internOptsLocked returns the stack's one copy of the option set o, so
// that the sockets that have the same options (most of them: a stack's
// defaults, or Go's for a net.Conn) share one. A socket's options are
// never changed in place (setOptsLocked). Past maxInternedOpts distinct
// sets a new one is not shared.
func (s *Stack) internOptsLocked(o sockOpts) *sockOpts {
	if p, ok := s.opts[o]; ok {
		return p
	}
	p := &o
	if len(s.opts) < maxInternedOpts {
		if s.opts == nil {
			s.opts = make(map[sockOpts]*sockOpts)
		}
		s.opts[o] = p
	}
	return p
}

// maxInternedOpts bounds the option sets a stack keeps to share.
const maxInternedOpts = 256

// setOptsLocked changes sk's options through f, on a copy.
func (s *Stack) setOptsLocked(sk *socket, f func(o *sockOpts)) {
	own := *sk.opts
	f(&own)
	sk.opts = s.internOptsLocked(own)
}

func (s *Stack) defaultOpts() *sockOpts {
	d := &s.tcpDefaults
	return s.internOptsLocked(sockOpts{
		noDelay:   d.NoDelay,
		keepAlive: d.KeepAlive,
		keepIdle:  d.KeepIdle,
		keepIntvl: d.KeepIntvl,
		keepCnt:   d.KeepCnt,
	})
}

// SetsockoptInt sets an integer option. SOL_SOCKET: SO_REUSEADDR,
// SO_REUSEPORT (both take effect at the next bind or listen), SO_KEEPALIVE,
// SO_RCVBUF and SO_SNDBUF (doubled as Linux, capped at rmem_max/wmem_max
// before doubling, floors 2304 and 4608). IPPROTO_TCP: TCP_NODELAY,
// TCP_MAXSEG (88..32767 or 0; clamps the MSS of a later connect),
// TCP_KEEPIDLE and TCP_KEEPINTVL (1..32767 s), TCP_KEEPCNT (1..127).
// IPPROTO_IPV6: IPV6_V6ONLY (AF_INET6 only, before bind). Read-only
// options (SO_ERROR, SO_TYPE, SO_ACCEPTCONN...) and unknown ones get
// ENOPROTOOPT; SO_LINGER needs SetsockoptLinger (EINVAL here, as for a
// short optlen).
func (t *Sockets) SetsockoptInt(fd, level, opt, value int) error {
	var l locks
	t.lockFD(fd, &l)
	defer t.s.release(&l)
	return t.setsockoptIntLocked(fd, level, opt, value)
}

// setsockoptIntLocked is SetsockoptInt under ctl and the socket's shards
// (Stack.lockSocket).
func (t *Sockets) setsockoptIntLocked(fd, level, opt, value int) error {
	s := t.s
	sk, err := t.getLocked(fd)
	if err != nil {
		return err
	}
	own := *sk.opts // options are shared: change a copy, then intern it
	o := &own
	var conn *tcp.Conn
	if sk.ep != nil {
		conn = &sk.ep.conn
	}
	on := value != 0
	switch level {
	case SOL_SOCKET:
		switch opt {
		case SO_REUSEADDR:
			o.reuseAddr = on
		case SO_REUSEPORT:
			o.reusePort = on
		case SO_KEEPALIVE:
			o.keepAlive = on
		case SO_SNDBUF:
			o.sndBuf = bufSize(value, sysctlWmemMax, sockMinSndBuf)
			if conn != nil {
				conn.SetBuffers(0, o.sndBuf)
			}
		case SO_RCVBUF:
			o.rcvBuf = bufSize(value, sysctlRmemMax, sockMinRcvBuf)
			if conn != nil {
				conn.SetBuffers(o.rcvBuf, 0)
			}
		case SO_LINGER:
			return syscall.EINVAL
		default:
			return syscall.ENOPROTOOPT
		}
	case IPPROTO_TCP:
		switch opt {
		case TCP_NODELAY:
			o.noDelay = on
			if conn != nil {
				conn.SetNoDelay(s.clock.Now(), on)
			}
		case TCP_MAXSEG:
			if value != 0 && (value < tcpMinMSS || value > maxTCPWindow) {
				return syscall.EINVAL
			}
			o.maxSeg = value
		case TCP_KEEPIDLE:
			if value < 1 || value > maxTCPKeepIdle {
				return syscall.EINVAL
			}
			o.keepIdle = time.Duration(value) * time.Second
		case TCP_KEEPINTVL:
			if value < 1 || value > maxTCPKeepIntvl {
				return syscall.EINVAL
			}
			o.keepIntvl = time.Duration(value) * time.Second
		case TCP_KEEPCNT:
			if value < 1 || value > maxTCPKeepCnt {
				return syscall.EINVAL
			}
			o.keepCnt = value
		case TCP_CORK:
			o.cork = on
			if conn != nil {
				conn.SetCork(s.clock.Now(), on)
			}
		case TCP_LINGER2:
			// Linux: negative means reset instead of waiting, zero the
			// default, larger values are capped at TCP_FIN_TIMEOUT_MAX.
			switch {
			case value < 0:
				o.linger2 = -1
			case value > finTimeoutMax:
				o.linger2 = finTimeoutMax
			default:
				o.linger2 = value
			}
			if conn != nil {
				conn.SetFinTimeout(linger2Duration(o.linger2))
			}
		case TCP_USER_TIMEOUT:
			if value < 0 {
				return syscall.EINVAL
			}
			o.userTimeout = time.Duration(value) * time.Millisecond
			if conn != nil {
				conn.SetUserTimeout(o.userTimeout)
			}
		default:
			return syscall.ENOPROTOOPT
		}
	case IPPROTO_IPV6:
		if sk.family != AF_INET6 {
			return syscall.ENOPROTOOPT
		}
		switch opt {
		case IPV6_V6ONLY:
			if sk.bind != nil || sk.ep != nil {
				return syscall.EINVAL
			}
			o.v6only = on
		default:
			return syscall.ENOPROTOOPT
		}
	default:
		return syscall.ENOPROTOOPT
	}
	if conn != nil && (level == SOL_SOCKET && opt == SO_KEEPALIVE || level == IPPROTO_TCP && opt >= TCP_KEEPIDLE && opt <= TCP_KEEPCNT) {
		conn.SetKeepAlive(s.clock.Now(), o.keepAlive, o.keepIdle, o.keepIntvl, o.keepCnt)
	}
	sk.opts = s.internOptsLocked(own)
	if sk.ep != nil {
		s.afterLocked(sk.ep)
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

// GetsockoptInt reads an integer option: those SetsockoptInt sets, plus
// SO_ERROR (the pending error, cleared by the read; 0 when none), SO_TYPE,
// SO_DOMAIN, SO_PROTOCOL and SO_ACCEPTCONN. TCP_MAXSEG reports the MSS in
// use once connected, the value set before, else 536; TCP_KEEP* report
// Linux's defaults (7200, 75, 9) until set. SO_LINGER needs
// GetsockoptLinger (EINVAL here). Unknown options get ENOPROTOOPT.
func (t *Sockets) GetsockoptInt(fd, level, opt int) (int, error) {
	s := t.s
	s.lock()
	defer s.unlock()
	sk, err := t.getLocked(fd)
	if err != nil {
		return -1, err
	}
	o := sk.opts
	b2i := func(b bool) int {
		if b {
			return 1
		}
		return 0
	}
	switch level {
	case SOL_SOCKET:
		switch opt {
		case SO_REUSEADDR:
			return b2i(o.reuseAddr), nil
		case SO_REUSEPORT:
			return b2i(o.reusePort), nil
		case SO_KEEPALIVE:
			return b2i(o.keepAlive), nil
		case SO_SNDBUF:
			if o.sndBuf > 0 {
				return o.sndBuf, nil
			}
			if s.tcpDefaults.SndBuf > 0 {
				return s.tcpDefaults.SndBuf, nil
			}
			return defaultSndBuf, nil
		case SO_RCVBUF:
			if o.rcvBuf > 0 {
				return o.rcvBuf, nil
			}
			if s.tcpDefaults.RcvBuf > 0 {
				return s.tcpDefaults.RcvBuf, nil
			}
			return defaultRcvBuf, nil
		case SO_ERROR:
			return int(s.takeErrLocked(sk)), nil
		case SO_TYPE:
			return SOCK_STREAM, nil
		case SO_DOMAIN:
			return int(sk.family), nil
		case SO_PROTOCOL:
			return IPPROTO_TCP, nil
		case SO_ACCEPTCONN:
			return b2i(sk.l != nil), nil
		case SO_LINGER:
			return -1, syscall.EINVAL
		}
	case IPPROTO_TCP:
		switch opt {
		case TCP_NODELAY:
			return b2i(o.noDelay), nil
		case TCP_MAXSEG:
			if sk.ep != nil {
				if st := sk.ep.conn.State(); st != tcp.Closed && st != tcp.Listen {
					return sk.ep.conn.Info(s.clock.Now()).SndMSS, nil
				}
			}
			if o.maxSeg != 0 {
				return o.maxSeg, nil
			}
			return tcpMSSDefault, nil
		case TCP_KEEPIDLE:
			return durOr(o.keepIdle, defaultKeepIdle), nil
		case TCP_KEEPINTVL:
			return durOr(o.keepIntvl, defaultKeepIntvl), nil
		case TCP_KEEPCNT:
			if o.keepCnt > 0 {
				return o.keepCnt, nil
			}
			return defaultKeepCnt, nil
		case TCP_CORK:
			return b2i(o.cork), nil
		case TCP_LINGER2:
			if o.linger2 == 0 {
				return int(defaultFinTimeout / time.Second), nil
			}
			return o.linger2, nil
		case TCP_USER_TIMEOUT:
			return int(o.userTimeout / time.Millisecond), nil
		}
	case IPPROTO_IPV6:
		if sk.family == AF_INET6 && opt == IPV6_V6ONLY {
			return b2i(o.v6only), nil
		}
	}
	return -1, syscall.ENOPROTOOPT
}

func durOr(d, def time.Duration) int {
	if d <= 0 {
		d = def
	}
	return int(d / time.Second)
}

// takeErrLocked returns and clears the socket's pending error.
func (s *Stack) takeErrLocked(sk *socket) syscall.Errno {
	if sk.ep == nil {
		return 0
	}
	e := sk.ep.conn.TakeErr()
	s.afterLocked(sk.ep)
	return e
}

// SetsockoptLinger sets SO_LINGER. With Onoff set and Linger 0, closing
// the last descriptor resets the connection. A non-zero linger time is
// stored and reported but Close does not wait for it.
func (t *Sockets) SetsockoptLinger(fd int, l syscall.Linger) error {
	s := t.s
	var lk locks
	sk, err := t.lockFD(fd, &lk)
	defer s.release(&lk)
	if err != nil {
		return err
	}
	if l.Onoff != 0 {
		l.Onoff = 1
	}
	if l.Linger < 0 {
		l.Linger = 0
	}
	s.setOptsLocked(sk, func(o *sockOpts) { o.linger = l })
	return nil
}

// GetsockoptLinger reads SO_LINGER.
func (t *Sockets) GetsockoptLinger(fd int) (syscall.Linger, error) {
	s := t.s
	s.lock()
	defer s.unlock()
	sk, err := t.getLocked(fd)
	if err != nil {
		return syscall.Linger{}, err
	}
	return sk.opts.linger, nil
}

// GetsockoptTCPInfo returns TCP_INFO: the connection's tcp.Info, or for a
// socket without connection just its state (CLOSED or LISTEN).
func (t *Sockets) GetsockoptTCPInfo(fd int) (tcp.Info, error) {
	s := t.s
	s.lock()
	defer s.unlock()
	sk, err := t.getLocked(fd)
	if err != nil {
		return tcp.Info{}, err
	}
	switch {
	case sk.ep != nil:
		return sk.ep.conn.Info(s.clock.Now()), nil
	case sk.l != nil:
		return tcp.Info{State: tcp.Listen}, nil
	}
	return tcp.Info{State: tcp.Closed}, nil
}

// finTimeoutMax caps TCP_LINGER2 (Linux's TCP_FIN_TIMEOUT_MAX, seconds).
const finTimeoutMax = 120

// defaultFinTimeout is tcp_fin_timeout, what TCP_LINGER2 reads before a set.
const defaultFinTimeout = 60 * time.Second

// linger2Duration turns a TCP_LINGER2 value into tcp.Config.FinTimeout:
// zero keeps the default, -1 becomes a negative timeout (reset at once).
func linger2Duration(v int) time.Duration {
	if v < 0 {
		return -1
	}
	return time.Duration(v) * time.Second
}

// SetsockoptString sets an option whose value is a string. IPPROTO_TCP:
// TCP_CONGESTION, "cubic" (the default), "reno" or "bbr"; an unknown name gives
// ENOENT, as Linux.
func (t *Sockets) SetsockoptString(fd, level, opt int, value string) error {
	s := t.s
	s.lock()
	defer s.unlock()
	sk, err := t.getLocked(fd)
	if err != nil {
		return err
	}
	if level != IPPROTO_TCP || opt != TCP_CONGESTION {
		return syscall.ENOPROTOOPT
	}
	probe := tcp.NewConn(tcp.Config{}, 0)
	if err := probe.SetCongestion(value); err != nil {
		return err
	}
	s.setOptsLocked(sk, func(o *sockOpts) { o.congestion = value })
	if sk.ep != nil {
		sk.ep.conn.SetCongestion(value)
	}
	return nil
}

// GetsockoptString reads an option whose value is a string: TCP_CONGESTION.
func (t *Sockets) GetsockoptString(fd, level, opt int) (string, error) {
	s := t.s
	s.lock()
	defer s.unlock()
	sk, err := t.getLocked(fd)
	if err != nil {
		return "", err
	}
	if level != IPPROTO_TCP || opt != TCP_CONGESTION {
		return "", syscall.ENOPROTOOPT
	}
	if sk.ep != nil {
		return sk.ep.conn.Congestion(), nil
	}
	if sk.opts.congestion != "" {
		return sk.opts.congestion, nil
	}
	return tcp.DefaultCongestion, nil
}
