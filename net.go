package synstack

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/synstack/synstack/internal/engine"
)

// This file holds what the net.Conn layer shares: the networks it takes,
// address parsing, the choice of socket family, and the errors it returns,
// made the way package net makes them.

// checkNetwork returns UnknownNetworkError unless network is one of
// proto's: proto, proto+"4" or proto+"6".
func checkNetwork(proto, network string) error {
	switch network {
	case proto, proto + "4", proto + "6":
		return nil
	}
	return net.UnknownNetworkError(network)
}

// resolveTCP parses a "host:port" address of a TCP network.
func resolveTCP(ctx context.Context, network, address string) (netip.AddrPort, error) {
	return resolve(ctx, "tcp", network, address)
}

// resolve parses a "host:port" address of one of proto's networks
// ("tcp" or "udp", optionally with 4 or 6), as package net does for IP
// literals: an empty host is the unspecified address (IPv4's for the "4"
// network, else IPv6's, which covers both); a name is not resolved
// (*net.DNSError); a port may be a service name of proto.
func resolve(ctx context.Context, proto, network, address string) (netip.AddrPort, error) {
	if err := checkNetwork(proto, network); err != nil {
		return netip.AddrPort{}, err
	}
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return netip.AddrPort{}, err
	}
	port, err := parsePort(ctx, proto, portStr)
	if err != nil {
		return netip.AddrPort{}, err
	}
	v4, v6 := network == proto+"4", network == proto+"6"
	var ip netip.Addr
	if host == "" {
		if v4 {
			ip = netip.IPv4Unspecified()
		} else {
			ip = netip.IPv6Unspecified()
		}
		return netip.AddrPortFrom(ip, port), nil
	}
	ip, err = netip.ParseAddr(host)
	if err != nil {
		return netip.AddrPort{}, &net.DNSError{
			Err:        "synstack resolves no names: not an IP address",
			Name:       host,
			IsNotFound: true,
		}
	}
	ip = ip.Unmap().WithZone("")
	if (v4 && !ip.Is4()) || (v6 && !ip.Is6()) {
		return netip.AddrPort{}, &net.AddrError{Err: "no suitable address found", Addr: address}
	}
	return netip.AddrPortFrom(ip, port), nil
}

// parsePort reads a port number or service name.
func parsePort(ctx context.Context, proto, s string) (uint16, error) {
	if s == "" {
		return 0, nil
	}
	if n, err := strconv.ParseUint(s, 10, 16); err == nil {
		return uint16(n), nil
	}
	p, err := net.DefaultResolver.LookupPort(ctx, proto, s)
	if err != nil {
		return 0, err
	}
	return uint16(p), nil
}

// family picks the socket family for a network and its addresses, as
// package net's favoriteAddrFamily: "tcp4" is AF_INET; "tcp6" is AF_INET6
// and IPv6 only; "tcp" listening on a wildcard address is a dual-stack
// AF_INET6 socket (IPv4 and IPv6); otherwise "tcp" takes the family of
// the addresses.
func family(network string, laddr, raddr netip.Addr, listen bool) (fam int, v6only bool) {
	switch network {
	case "tcp4", "udp4", "ping4":
		return AF_INET, false
	case "tcp6", "udp6", "ping6":
		return AF_INET6, true
	}
	if listen && (!laddr.IsValid() || laddr.IsUnspecified()) {
		return AF_INET6, false
	}
	if (!laddr.IsValid() || laddr.Is4()) && (!raddr.IsValid() || raddr.Is4()) {
		return AF_INET, false
	}
	return AF_INET6, false
}

// tcpAddr converts an address to a *net.TCPAddr, nil for the zero one.
func tcpAddr(ap netip.AddrPort) *net.TCPAddr {
	if !ap.IsValid() {
		return nil
	}
	return net.TCPAddrFromAddrPort(ap)
}

// netAddr returns a as a net.Addr, an untyped nil for a nil a (so that
// net.OpError leaves it out).
func netAddr(a *net.TCPAddr) net.Addr {
	if a == nil {
		return nil
	}
	return a
}

// syscallNames are the system calls package net names in its errors for
// each operation of a net.OpError.
var syscallNames = map[string]string{
	"read":   "read",
	"write":  "write",
	"dial":   "connect",
	"listen": "listen",
	"accept": "accept",
	"close":  "shutdown",
	"set":    "setsockopt",
}

// mapErr turns an error of the socket layer into what package net puts in
// a net.OpError's Err: an Errno wrapped in an *os.SyscallError naming the
// call, net.ErrClosed for a closed descriptor or stack (EBADF) or when
// closed is set, os.ErrDeadlineExceeded for a deadline that passed.
func mapErr(op string, err error, closed bool) error {
	switch {
	case closed || err == syscall.EBADF:
		return net.ErrClosed
	case err == engine.ErrCanceled:
		return os.ErrDeadlineExceeded
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return os.NewSyscallError(syscallNames[op], errno)
	}
	return err
}

// opError wraps err as package net does: a *net.OpError, except io.EOF
// and nil, which are returned as they are.
func opError(op, network string, source, addr *net.TCPAddr, err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	return &net.OpError{Op: op, Net: network, Source: netAddr(source), Addr: netAddr(addr), Err: err}
}

// ctxError is the error of a dial cut short by its context, as package
// net's: "operation was canceled" (errors.Is context.Canceled) or
// "i/o timeout" (a timeout, errors.Is context.DeadlineExceeded and
// os.ErrDeadlineExceeded).
func ctxError(err error) error {
	switch err {
	case context.Canceled:
		return canceledError{}
	case context.DeadlineExceeded:
		return timeoutError{}
	}
	return err
}

type canceledError struct{}

func (canceledError) Error() string        { return "operation was canceled" }
func (canceledError) Is(target error) bool { return target == context.Canceled }

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }
func (timeoutError) Is(target error) bool {
	return target == context.DeadlineExceeded || target == os.ErrDeadlineExceeded
}

// orNil returns v, or the nil I when err is set: never an interface that
// holds a nil pointer (which is not == nil).
func orNil[I any](v I, err error) (I, error) {
	if err != nil {
		var zero I
		return zero, err
	}
	return v, nil
}

// descriptor is what a net.Conn or net.Listener keeps of the descriptor
// under it: its number, kept open while it is used by number (cmu: shared
// by Control and the option setters, exclusive for Close), and whether
// Close was called.
type descriptor struct {
	s      *Stack
	fd     int32
	closed atomic.Bool
	cmu    sync.RWMutex
}

// control runs f on the descriptor while it is sure to be open:
// net.ErrClosed once Close was called.
func (d *descriptor) control(f func(t *Sockets, fd int) error) error {
	d.cmu.RLock()
	defer d.cmu.RUnlock()
	if d.closed.Load() {
		return net.ErrClosed
	}
	return f(d.s.sockets, int(d.fd))
}

// close closes the descriptor, once: net.ErrClosed the next times.
// cutOff, run first, ends the calls blocked on it.
func (d *descriptor) close(cutOff func()) error {
	if !d.closed.CompareAndSwap(false, true) {
		return net.ErrClosed
	}
	cutOff()
	d.cmu.Lock()
	defer d.cmu.Unlock()
	// EBADF means the stack is closed: the socket is already gone.
	_ = d.s.sockets.Close(int(d.fd))
	return nil
}
