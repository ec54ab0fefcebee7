package synstack

import (
	"io"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/synstack/synstack/internal/engine"
)

// TCPConn is a TCP connection of a Stack: a net.Conn with the methods of
// *net.TCPConn that mean something here. Dial, DialContext, DialTCP and
// the Accept of a listener return one.
//
// It behaves as package net's: Read returns io.EOF at the end of the
// stream; every other error is a *net.OpError whose Err is an
// *os.SyscallError wrapping the syscall.Errno (errors.Is(err,
// syscall.ECONNRESET) holds), net.ErrClosed after Close (also when the
// Stack is closed), or os.ErrDeadlineExceeded when a deadline passed.
// Deadlines are absolute times on the stack's clock and also cut off calls
// already blocked. All methods may be called from several goroutines at
// once; concurrent Writes are not interleaved with each other, nor are
// concurrent Reads.
//
// Under it is a descriptor of the stack's socket layer, reachable with
// Control. As Go does, a new TCPConn has TCP_NODELAY set and, unless its
// Dialer or ListenConfig says otherwise, keepalive probes every 15 s.
type TCPConn struct {
	descriptor
	c       engine.ConnRef // the socket and its connection: kept, so that a descriptor reused after Close is never touched
	network network

	rmu, wmu sync.Mutex // one Read at a time, one Write at a time
	rd, wd   engine.Deadline
}

// network is "tcp", "tcp4" or "tcp6", in a byte.
type network uint8

const (
	netTCP network = iota
	netTCP4
	netTCP6
)

func (n network) String() string { return [...]string{"tcp", "tcp4", "tcp6"}[n] }

// networkOf returns the network named s, one of the three.
func networkOf(s string) network {
	switch s {
	case "tcp4":
		return netTCP4
	case "tcp6":
		return netTCP6
	}
	return netTCP
}

// addrs returns the connection's local and remote addresses.
func (c *TCPConn) addrs() (local, remote netip.AddrPort) { return c.c.Addrs() }

var _ net.Conn = (*TCPConn)(nil)

// connOnFD makes the TCPConn of fd, whose socket sk is connected.
func (s *Stack) connOnFD(fd int, sk *engine.Socket, network string) (*TCPConn, error) {
	ref, err := sk.Hold()
	if err != nil {
		return nil, err
	}
	return &TCPConn{descriptor: descriptor{s: s, fd: int32(fd)}, c: ref, network: networkOf(network)}, nil
}

// newTCPConn gives the connected socket sk a descriptor and makes its
// TCPConn.
func (s *Stack) newTCPConn(sk *engine.Socket, network string) (*TCPConn, error) {
	fd, err := s.sockets.open(sk, false)
	if err != nil {
		return nil, err
	}
	c, err := s.connOnFD(fd, sk, network)
	if err != nil {
		s.sockets.Close(fd)
	}
	return c, err
}

// Read reads data from the connection. It returns io.EOF at the end of
// the stream (the peer's FIN, or after CloseRead), and ECONNRESET once
// after a reset.
func (c *TCPConn) Read(p []byte) (int, error) {
	if c.closed.Load() {
		return 0, c.opErr("read", net.ErrClosed)
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	n, err := c.c.Read(p, &c.rd)
	switch {
	case err != nil:
		return n, c.opErr("read", err)
	case n == 0 && len(p) > 0:
		return 0, io.EOF
	}
	return n, nil
}

// Write writes p to the connection, waiting for room in the send buffer.
// It returns len(p), or fewer bytes and an error: EPIPE after CloseWrite,
// ECONNRESET once after a reset, ETIMEDOUT when the peer stopped
// answering, or a deadline.
func (c *TCPConn) Write(p []byte) (int, error) {
	if c.closed.Load() {
		return 0, c.opErr("write", net.ErrClosed)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	n, err := c.c.Write(p, &c.wd)
	if err != nil {
		return n, c.opErr("write", err)
	}
	return n, nil
}

// Close closes the connection: blocked Reads and Writes return
// net.ErrClosed, and the connection ends as close(2) ends it (a FIN after
// the data still queued, or a reset if received data was left unread or
// SetLinger(0) was called), on its own after Close returns.
func (c *TCPConn) Close() error {
	if err := c.close(func() { c.c.CloseDeadline(&c.rd, &c.wd) }); err != nil {
		return c.opErr("close", err)
	}
	return nil
}

// CloseRead shuts down the reading side (shutdown SHUT_RD): later Reads
// return io.EOF.
func (c *TCPConn) CloseRead() error {
	return c.control("close", func(t *Sockets, fd int) error { return t.Shutdown(fd, SHUT_RD) })
}

// CloseWrite shuts down the writing side (shutdown SHUT_WR): a FIN follows
// the data already written, and later Writes fail with EPIPE. Reading goes
// on: this is TCP's half-close.
func (c *TCPConn) CloseWrite() error {
	return c.control("close", func(t *Sockets, fd int) error { return t.Shutdown(fd, SHUT_WR) })
}

// LocalAddr returns the local address, a *net.TCPAddr.
func (c *TCPConn) LocalAddr() net.Addr {
	l, _ := c.addrs()
	return netAddr(tcpAddr(l))
}

// RemoteAddr returns the peer's address, a *net.TCPAddr.
func (c *TCPConn) RemoteAddr() net.Addr {
	_, r := c.addrs()
	return netAddr(tcpAddr(r))
}

// SetDeadline sets the read and write deadlines, as net.Conn says: an
// absolute time (on the stack's clock) after which Read and Write, even
// those already blocked, fail with os.ErrDeadlineExceeded; the zero time
// means none.
func (c *TCPConn) SetDeadline(t time.Time) error {
	if c.closed.Load() {
		return c.opErr("set", net.ErrClosed)
	}
	c.c.SetDeadline(t, &c.rd, &c.wd)
	return nil
}

// SetReadDeadline sets the deadline of Read (see SetDeadline).
func (c *TCPConn) SetReadDeadline(t time.Time) error {
	if c.closed.Load() {
		return c.opErr("set", net.ErrClosed)
	}
	c.c.SetDeadline(t, &c.rd)
	return nil
}

// SetWriteDeadline sets the deadline of Write (see SetDeadline). A Write
// that times out may have written part of its data.
func (c *TCPConn) SetWriteDeadline(t time.Time) error {
	if c.closed.Load() {
		return c.opErr("set", net.ErrClosed)
	}
	c.c.SetDeadline(t, &c.wd)
	return nil
}

// SetLinger sets what Close does with data not yet sent, as
// (*net.TCPConn).SetLinger: sec < 0 (the default) sends it, then the FIN,
// after Close returns; sec == 0 discards it and resets the connection
// (RST). A positive sec is stored (SO_LINGER) but, unlike Linux, Close does
// not wait: it behaves as sec < 0.
func (c *TCPConn) SetLinger(sec int) error {
	l := syscall.Linger{}
	if sec >= 0 {
		l = syscall.Linger{Onoff: 1, Linger: int32(sec)}
	}
	return c.control("set", func(t *Sockets, fd int) error { return t.SetsockoptLinger(fd, l) })
}

// SetNoDelay turns Nagle's algorithm off (true, the default) or on
// (false): TCP_NODELAY.
func (c *TCPConn) SetNoDelay(noDelay bool) error {
	return c.control("set", func(t *Sockets, fd int) error {
		return t.SetsockoptInt(fd, IPPROTO_TCP, TCP_NODELAY, boolInt(noDelay))
	})
}

// SetReadBuffer sets the receive buffer (SO_RCVBUF; doubled, as Linux
// does), which bounds the window offered to the peer.
func (c *TCPConn) SetReadBuffer(bytes int) error {
	return c.control("set", func(t *Sockets, fd int) error {
		return t.SetsockoptInt(fd, SOL_SOCKET, SO_RCVBUF, bytes)
	})
}

// SetWriteBuffer sets the send buffer (SO_SNDBUF; doubled, as Linux does).
func (c *TCPConn) SetWriteBuffer(bytes int) error {
	return c.control("set", func(t *Sockets, fd int) error {
		return t.SetsockoptInt(fd, SOL_SOCKET, SO_SNDBUF, bytes)
	})
}

// SetKeepAlive turns keepalive probes on or off (SO_KEEPALIVE).
func (c *TCPConn) SetKeepAlive(keepalive bool) error {
	return c.control("set", func(t *Sockets, fd int) error {
		return t.SetsockoptInt(fd, SOL_SOCKET, SO_KEEPALIVE, boolInt(keepalive))
	})
}

// SetKeepAlivePeriod sets how long the connection stays idle before the
// first keepalive probe (TCP_KEEPIDLE, rounded up to whole seconds; zero
// means 15 s).
func (c *TCPConn) SetKeepAlivePeriod(d time.Duration) error {
	return c.control("set", func(t *Sockets, fd int) error {
		return setKeepIdle(t.SetsockoptInt, fd, d)
	})
}

// SetKeepAliveConfig configures keepalive as (*net.TCPConn).SetKeepAliveConfig:
// Enable turns the probes on; Idle and Interval (rounded up to seconds)
// and Count take defaults of 15 s, 15 s and 9 when zero and are left
// unchanged when negative.
func (c *TCPConn) SetKeepAliveConfig(config net.KeepAliveConfig) error {
	return c.control("set", func(t *Sockets, fd int) error {
		return setKeepAliveConfig(t.SetsockoptInt, fd, config)
	})
}

// Control calls f with the stack's socket layer and the descriptor under
// the connection, as syscall.RawConn's Control does: the descriptor stays
// open during the call. f may use any Sockets call on it (Getsockopt,
// Setsockopt, GetsockoptTCPInfo...) but must not close it. Control fails
// with net.ErrClosed once the connection is closed.
func (c *TCPConn) Control(f func(s *Sockets, fd int)) error {
	return c.control("raw-control", func(t *Sockets, fd int) error {
		f(t, fd)
		return nil
	})
}

// control runs f on the descriptor while it is sure to be open.
func (c *TCPConn) control(op string, f func(t *Sockets, fd int) error) error {
	if err := c.descriptor.control(f); err != nil {
		return c.opErr(op, err)
	}
	return nil
}

// opErr wraps an error of op as package net does.
func (c *TCPConn) opErr(op string, err error) error {
	l, r := c.addrs()
	return opError(op, c.network.String(), tcpAddr(l), tcpAddr(r), mapErr(op, err, c.closed.Load()))
}

// Keepalive defaults of package net.
const (
	defaultKeepAliveIdle     = 15 * time.Second
	defaultKeepAliveInterval = 15 * time.Second
	defaultKeepAliveCount    = 9
)

// setsockoptInt is Sockets.SetsockoptInt, or its Locked form.
type setsockoptInt func(fd, level, opt, value int) error

// setKeepAliveConfig applies a net.KeepAliveConfig to a socket with set, as
// package net does.
func setKeepAliveConfig(set setsockoptInt, fd int, cfg net.KeepAliveConfig) error {
	if err := set(fd, SOL_SOCKET, SO_KEEPALIVE, boolInt(cfg.Enable)); err != nil {
		return err
	}
	if err := setKeepIdle(set, fd, cfg.Idle); err != nil {
		return err
	}
	if cfg.Interval >= 0 {
		secs := roundSeconds(cfg.Interval, defaultKeepAliveInterval)
		if err := set(fd, IPPROTO_TCP, TCP_KEEPINTVL, secs); err != nil {
			return err
		}
	}
	if cfg.Count >= 0 {
		n := cfg.Count
		if n == 0 {
			n = defaultKeepAliveCount
		}
		if err := set(fd, IPPROTO_TCP, TCP_KEEPCNT, n); err != nil {
			return err
		}
	}
	return nil
}

// setKeepIdle sets TCP_KEEPIDLE from a duration: zero is the default,
// negative leaves it unchanged.
func setKeepIdle(set setsockoptInt, fd int, d time.Duration) error {
	if d < 0 {
		return nil
	}
	return set(fd, IPPROTO_TCP, TCP_KEEPIDLE, roundSeconds(d, defaultKeepAliveIdle))
}

// roundSeconds rounds d up to whole seconds, def when d is zero.
func roundSeconds(d, def time.Duration) int {
	if d == 0 {
		d = def
	}
	return int((d + time.Second - 1) / time.Second)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
