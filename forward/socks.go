package forward

import (
	"context"
	"net"
	"strings"
	"syscall"

	"golang.org/x/net/proxy"
)

// SOCKS5 returns a DialFunc that connects through the SOCKS5 proxy at addr
// (golang.org/x/net/proxy), with auth if not nil, reaching the proxy with
// forward (nil: a net.Dialer). The connection it returns is the one to the
// proxy itself (a *net.TCPConn with a net.Dialer), so that the relay can
// half-close and reset it. The proxy's replies become errnos that
// synstack.ForwardRequest.Reject understands: "connection refused" is
// ECONNREFUSED, "host unreachable" EHOSTUNREACH, "network unreachable"
// ENETUNREACH, "connection not allowed by ruleset" EACCES, "TTL expired"
// ETIMEDOUT.
//
// For a "udp" network it makes a UDP association (UDP ASSOCIATE, RFC 1928
// section 7; see socksUDP): the net.Conn it returns sends datagrams to
// address through the proxy's relay, and closing it ends the association.
func SOCKS5(addr string, auth *proxy.Auth, forward DialFunc) DialFunc {
	if forward == nil {
		forward = (&net.Dialer{}).DialContext
	}
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		if strings.HasPrefix(network, "udp") {
			return socksUDP(ctx, addr, auth, forward, address)
		}
		cd := &captureDialer{dial: forward}
		d, err := proxy.SOCKS5("tcp", addr, auth, cd)
		if err != nil {
			return nil, err
		}
		c, err := d.(proxy.ContextDialer).DialContext(ctx, network, address)
		if err != nil {
			return nil, socksError(err)
		}
		if cd.conn == nil {
			return c, nil
		}
		return cd.conn, nil
	}
}

// captureDialer dials the proxy and remembers the connection.
type captureDialer struct {
	dial DialFunc
	conn net.Conn
}

func (d *captureDialer) Dial(network, address string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, address)
}

func (d *captureDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	c, err := d.dial(ctx, network, address)
	if err == nil {
		d.conn = c
	}
	return c, err
}

// socksReplies maps the SOCKS5 replies (as golang.org/x/net/proxy words
// them) to errnos.
var socksReplies = []struct {
	text  string
	errno syscall.Errno
}{
	{"connection refused", syscall.ECONNREFUSED},
	{"host unreachable", syscall.EHOSTUNREACH},
	{"network unreachable", syscall.ENETUNREACH},
	{"connection not allowed by ruleset", syscall.EACCES},
	{"TTL expired", syscall.ETIMEDOUT},
}

// socksError wraps a failed SOCKS dial so that errors.Is finds the errno
// its reply means.
func socksError(err error) error {
	msg := err.Error()
	for _, r := range socksReplies {
		if strings.HasSuffix(msg, "unknown error "+r.text) {
			return &replyError{err: err, errno: r.errno}
		}
	}
	return err
}

type replyError struct {
	err   error
	errno syscall.Errno
}

func (e *replyError) Error() string { return e.err.Error() }
func (e *replyError) Unwrap() []error {
	return []error{e.err, e.errno}
}
