package synstack_test

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/link/pipe"
	"golang.org/x/net/nettest"
)

// stackPair returns two stacks joined by a pipe of the given MTU: srv has
// 10.0.0.1 and fd00::1, cli 10.0.0.2 and fd00::2. mod, if set, adjusts
// both configs. The stacks close when the test ends.
func stackPair(t testing.TB, mtu int, mod func(c *synstack.Config)) (srv, cli *synstack.Stack) {
	t.Helper()
	// Two receive queues: packets of different connections reach a
	// stack from two goroutines at once.
	a, b := pipe.NewWithOptions(pipe.Options{MTU: mtu, Queues: 2})
	ca := synstack.Config{Link: a, Addrs: []netip.Prefix{
		netip.MustParsePrefix("10.0.0.1/24"), netip.MustParsePrefix("fd00::1/64")}}
	cb := synstack.Config{Link: b, Addrs: []netip.Prefix{
		netip.MustParsePrefix("10.0.0.2/24"), netip.MustParsePrefix("fd00::2/64")}}
	if mod != nil {
		mod(&ca)
		mod(&cb)
	}
	srv, err := synstack.New(ca)
	if err != nil {
		t.Fatal(err)
	}
	cli, err = synstack.New(cb)
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cli.Close()
		srv.Close()
	})
	return srv, cli
}

// connPair returns a connected pair: c1 dialed from cli, c2 accepted on srv.
func connPair(t testing.TB, srv, cli *synstack.Stack, network, addr string) (c1, c2 *synstack.TCPConn) {
	t.Helper()
	ln, err := srv.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	c, err := cli.DialContext(context.Background(), network, ln.Addr().String())
	if err != nil {
		if addr != "" && ln.Addr().(*net.TCPAddr).IP.IsUnspecified() {
			t.Fatalf("dial %s: %v", ln.Addr(), err)
		}
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	return c.(*synstack.TCPConn), r.c.(*synstack.TCPConn)
}

// TestNettestConn runs x/net's conformance suite for net.Conn on pairs of
// synstack connections, IPv4 and IPv6, each on a fresh pair of stacks.
func TestNettestConn(t *testing.T) {
	for _, tc := range []struct{ name, addr string }{
		{"IPv4", "10.0.0.1:80"},
		{"IPv6", "[fd00::1]:80"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
				a, b := pipe.New(1500)
				srv, err := synstack.New(synstack.Config{Link: a, Addrs: []netip.Prefix{
					netip.MustParsePrefix("10.0.0.1/24"), netip.MustParsePrefix("fd00::1/64")}})
				if err != nil {
					return nil, nil, nil, err
				}
				cli, err := synstack.New(synstack.Config{Link: b, Addrs: []netip.Prefix{
					netip.MustParsePrefix("10.0.0.2/24"), netip.MustParsePrefix("fd00::2/64")}})
				if err != nil {
					srv.Close()
					return nil, nil, nil, err
				}
				ln, err := srv.Listen("tcp", tc.addr)
				if err != nil {
					return nil, nil, nil, err
				}
				defer ln.Close()
				acc := make(chan net.Conn, 1)
				go func() {
					c, _ := ln.Accept()
					acc <- c
				}()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				c1, err = cli.DialContext(ctx, "tcp", tc.addr)
				if err != nil {
					return nil, nil, nil, err
				}
				c2 = <-acc
				stop = func() {
					c1.Close()
					c2.Close()
					cli.Close()
					srv.Close()
				}
				return c1, c2, stop, nil
			})
		})
	}
}

// stackPairAddrs are the addresses stackPair gives its two stacks.
var stackPairAddrs = [2][]netip.Prefix{
	{netip.MustParsePrefix("10.0.0.1/24"), netip.MustParsePrefix("fd00::1/64")},
	{netip.MustParsePrefix("10.0.0.2/24"), netip.MustParsePrefix("fd00::2/64")},
}

func stackPairAddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
