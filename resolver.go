package synstack

import (
	"context"
	"net"
	"net/netip"
	"sync/atomic"
)

// Resolver returns a resolver whose queries go through the stack to the
// DNS servers given (port 53 when an AddrPort's port is 0), in turn: the
// standard library's own resolver (PreferGo), with its caching rules,
// retries and TCP fallback for truncated answers, dialing through
// Stack.DialContext instead of the host's network. The host's
// /etc/resolv.conf still gives the search list and options; its name
// servers are replaced by servers.
func (s *Stack) Resolver(servers ...netip.AddrPort) *net.Resolver {
	list := make([]netip.AddrPort, len(servers))
	for i, a := range servers {
		if a.Port() == 0 {
			a = netip.AddrPortFrom(a.Addr(), 53)
		}
		list[i] = a
	}
	var next atomic.Uint32
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			if len(list) == 0 {
				return nil, &net.OpError{Op: "dial", Net: network, Err: errNoServers}
			}
			server := list[int(next.Add(1)-1)%len(list)]
			return s.DialContext(ctx, network, server.String())
		},
	}
}

// errNoServers is Resolver's dial error without servers.
var errNoServers = &net.AddrError{Err: "no DNS servers given to Stack.Resolver"}
