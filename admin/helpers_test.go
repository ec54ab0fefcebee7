package admin_test

import (
	"context"
	"io"
	"net"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/admin"
	"github.com/synstack/synstack/link/pipe"
	"github.com/synstack/synstack/tcp"
)

// pair is two stacks on an in-memory link: a server at 10.0.0.1 listening
// on port 80, where each connection reads until EOF and then closes, and a
// client at 10.0.0.2. Each has an Observer and an admin server on
// 127.0.0.1.
type pair struct {
	t                  *testing.T
	srv, cli           *synstack.Stack
	srvObs, cliObs     *admin.Observer
	srvAdmin, cliAdmin *httptest.Server
	conns              []net.Conn
	wg                 sync.WaitGroup
}

const serverAddr = "10.0.0.1:80"

func newPair(t *testing.T, opts ...admin.Option) *pair {
	t.Helper()
	p := &pair{t: t, srvObs: admin.NewObserver(), cliObs: admin.NewObserver()}
	la, lb := pipe.New(1500)
	var err error
	p.srv, err = synstack.New(synstack.Config{Link: la, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")},
		OnTransition: p.srvObs.OnTransition})
	if err != nil {
		t.Fatal(err)
	}
	p.cli, err = synstack.New(synstack.Config{Link: lb, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")},
		OnTransition: p.cliObs.OnTransition})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := p.srv.Listen("tcp4", serverAddr)
	if err != nil {
		t.Fatal(err)
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				io.Copy(io.Discard, c)
				c.Close()
			}()
		}
	}()
	p.srvAdmin = httptest.NewServer(admin.Handler(p.srv, append([]admin.Option{p.srvObs}, opts...)...))
	p.cliAdmin = httptest.NewServer(admin.Handler(p.cli, append([]admin.Option{p.cliObs}, opts...)...))
	t.Cleanup(func() {
		p.srvAdmin.CloseClientConnections()
		p.cliAdmin.CloseClientConnections()
		p.srvAdmin.Close()
		p.cliAdmin.Close()
		p.cli.Close()
		p.srv.Close()
		p.wg.Wait()
	})
	return p
}

// dial opens n more connections from the client and writes a little on
// each.
func (p *pair) dial(n int) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range n {
		c, err := p.cli.DialContext(ctx, "tcp", serverAddr)
		if err != nil {
			p.t.Fatal(err)
		}
		if _, err := c.Write([]byte("hello\n")); err != nil {
			p.t.Fatal(err)
		}
		p.conns = append(p.conns, c)
	}
}

// closeFirst closes the first n connections the client opened and not yet
// closed: the client ends in TIME_WAIT, the server's side goes away.
func (p *pair) closeFirst(n int) {
	p.t.Helper()
	for _, c := range p.conns[:n] {
		if err := c.Close(); err != nil {
			p.t.Fatal(err)
		}
	}
	p.conns = p.conns[n:]
}

// waitStates waits until st's sockets per state are want's (states not in
// want: zero).
func waitStates(t *testing.T, st *synstack.Stack, want map[tcp.State]int) {
	t.Helper()
	var w synstack.StateCounts
	for s, n := range want {
		w[s] = n
	}
	waitFor(t, func() bool { return st.CountStates() == w }, func() string {
		return "states " + fmtCounts(st.CountStates()) + ", want " + fmtCounts(w)
	})
}

func fmtCounts(c synstack.StateCounts) string {
	s := ""
	for st, n := range c {
		if n > 0 {
			s += tcp.State(st).String() + ":" + strconv.Itoa(n) + " "
		}
	}
	return "[" + s + "]"
}

// waitFor polls cond for up to a minute (a hang guard, not a timing).
func waitFor(t *testing.T, cond func() bool, what func() string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out: " + what())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
