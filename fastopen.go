package synstack

import (
	"net"
	"syscall"

	"github.com/synstack/synstack/internal/engine"
)

// TCP Fast Open (RFC 7413). A client that has a cookie from a server puts
// its first data in the SYN, and a server that finds the cookie good hands
// the data to the application at once: a request and its answer take one
// round trip instead of two. The stack plays the roles Config.FastOpen
// turns on (Linux's net.ipv4.tcp_fastopen); a program asks for it with
// Dialer.FastOpen and ListenConfig.FastOpen, or through the socket layer
// with TCP_FASTOPEN, TCP_FASTOPEN_CONNECT and MSG_FASTOPEN.

// Fast Open modes, the bits of Config.FastOpen (net.ipv4.tcp_fastopen).
const (
	FastOpenClient         = engine.FastOpenClient         // connects may carry data in the SYN
	FastOpenServer         = engine.FastOpenServer         // listeners that enable it (TCP_FASTOPEN, ListenConfig.FastOpen) take data in SYNs with a good cookie
	FastOpenClientNoCookie = engine.FastOpenClientNoCookie // the client sends data in the SYN without a cookie
	FastOpenServerNoCookie = engine.FastOpenServerNoCookie // the server takes data in a SYN without a cookie
	FastOpenServerAll      = engine.FastOpenServerAll      // every listener does Fast Open, its queue the listen backlog
	// FastOpenOff, as Config.FastOpen, turns Fast Open off (Linux's 0).
	FastOpenOff = -1
)

// Socket-layer names of Fast Open, Linux's values.
const (
	TCP_FASTOPEN         = 23         // level IPPROTO_TCP: a listener's Fast Open queue length (0 turns it off)
	TCP_FASTOPEN_CONNECT = 30         // level IPPROTO_TCP: connect defers the SYN to the first write, which it carries
	TCP_FASTOPEN_KEY     = 33         // level IPPROTO_TCP: the listener's key(s), 16 or 32 bytes (SetsockoptString)
	MSG_FASTOPEN         = 0x20000000 // sendto on an unconnected TCP socket: connect with the data in the SYN
	TCPI_OPT_SYN_DATA    = 32         // tcp.Info.Options: the SYN's data was acknowledged (client) or taken (server)
)

// FastOpenKey is a server key for Fast Open cookies (tcp_fastopen_key):
// 16 bytes, read as Linux reads them, so that the same key gives the
// same cookies.
type FastOpenKey = engine.FastOpenKey

// fastOpenMode is Config.FastOpen as the engine takes it.
func fastOpenMode(v int) int {
	switch {
	case v == 0:
		return engine.FastOpenDefault
	case v < 0:
		return 0
	}
	return v
}

// SetFastOpenKeys sets the keys of the stack's Fast Open cookies
// (tcp_fastopen_key): the primary key makes the cookies sent; a backup
// key, if given, is still accepted, so that keys can be rotated without
// turning clients away. One or two keys, else EINVAL.
func (s *Stack) SetFastOpenKeys(keys ...FastOpenKey) error {
	if err := s.h.SetFastOpenKeys(keys...); err != nil {
		return &net.OpError{Op: "setfastopenkeys", Net: "tcp", Err: err}
	}
	return nil
}

// FastOpenKeys returns the keys of the stack's Fast Open cookies, the
// primary first.
func (s *Stack) FastOpenKeys() []FastOpenKey { return s.h.FastOpenKeys() }

// FlushFastOpenCache forgets the Fast Open cookies (and the MSS each
// server announced) the stack's clients remember, as `ip tcp_metrics
// flush` does on Linux: the next Fast Open connect to each server asks
// for a cookie again.
func (s *Stack) FlushFastOpenCache() { s.h.FlushFastOpenCache() }

// SetFastOpen sets the Fast Open modes (as Config.FastOpen) of the
// stack's connections and listeners from now on.
func (s *Stack) SetFastOpen(mode int) { s.h.SetFastOpenMode(fastOpenMode(mode)) }

// fastOpenKeyOpt checks TCP_FASTOPEN_KEY's value: one key or two (an
// empty one is EINVAL, as Linux).
func fastOpenKeyOpt(c optCtx, v optValue) error {
	if n := len(v.str); n != 16 && n != 32 {
		return syscall.EINVAL
	}
	c.O.FastOpenKey = v.str
	return nil
}
