package gvisortest_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/compare/internal/gvisortest"
	"github.com/synstack/synstack/tcp"
)

var bigFlag = flag.Bool("synstack.big", false, "move 1 GiB each way in the interop bulk tests instead of 16 MiB")

// bulkSize is what the bulk tests move each way: 16 MiB by default (about
// a second per case under -race on two cores), 1 MiB with -short, 1 GiB
// with -synstack.big.
func bulkSize() int64 {
	switch {
	case *bigFlag:
		return 1 << 30
	case testing.Short():
		return 1 << 20
	}
	return 16 << 20
}

// timeWait is the TIME_WAIT of both stacks: short, so that the tests see
// every connection reach CLOSED.
const timeWait = 200 * time.Millisecond

// rig is a synstack stack (10.0.0.1, fd00::1) and a gVisor stack
// (10.0.0.2, fd00::2) on one link, with every state synstack's
// connections go through.
type rig struct {
	syn *synstack.Stack
	gv  *gvisortest.Peer

	mu     sync.Mutex
	states map[[2]netip.AddrPort][]tcp.State
}

func newRig(t *testing.T, mtu int) *rig {
	t.Helper()
	gv, err := gvisortest.NewWithOptions(mtu, gvisortest.Options{TimeWait: timeWait},
		netip.MustParsePrefix("10.0.0.2/24"), netip.MustParsePrefix("fd00::2/64"))
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{gv: gv, states: make(map[[2]netip.AddrPort][]tcp.State)}
	r.syn, err = synstack.New(synstack.Config{
		Link:  gv.Link(),
		Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24"), netip.MustParsePrefix("fd00::1/64")},
		TCP:   tcp.Config{TimeWait: timeWait},
		OnTransition: func(local, remote netip.AddrPort, from, to tcp.State, cause tcp.Cause) {
			r.mu.Lock()
			k := [2]netip.AddrPort{local, remote}
			if len(r.states[k]) == 0 {
				r.states[k] = append(r.states[k], from)
			}
			r.states[k] = append(r.states[k], to)
			r.mu.Unlock()
		},
	})
	if err != nil {
		gv.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.syn.Close()
		r.gv.Close()
	})
	return r
}

// history returns the states synstack's connection c went through.
func (r *rig) history(c net.Conn) []tcp.State {
	l := c.LocalAddr().(*net.TCPAddr).AddrPort()
	p := c.RemoteAddr().(*net.TCPAddr).AddrPort()
	k := [2]netip.AddrPort{
		netip.AddrPortFrom(l.Addr().Unmap(), l.Port()),
		netip.AddrPortFrom(p.Addr().Unmap(), p.Port()),
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.states[k])
}

// pair connects the two stacks: synstack dials gVisor when synDials, else
// the reverse. It returns synstack's end and gVisor's.
func (r *rig) pair(t *testing.T, synDials bool, v6 bool) (*synstack.TCPConn, *gvisortest.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	synAddr, gvAddr := "10.0.0.1:80", netip.MustParseAddrPort("10.0.0.2:80")
	if v6 {
		synAddr, gvAddr = "[fd00::1]:80", netip.MustParseAddrPort("[fd00::2]:80")
	}
	if synDials {
		ln, err := r.gv.Listen(gvAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		type res struct {
			c   *gvisortest.Conn
			err error
		}
		ch := make(chan res, 1)
		go func() {
			c, err := ln.Accept(ctx)
			ch <- res{c, err}
		}()
		c, err := r.syn.DialContext(ctx, "tcp", gvAddr.String())
		if err != nil {
			t.Fatal(err)
		}
		a := <-ch
		if a.err != nil {
			t.Fatal(a.err)
		}
		return c.(*synstack.TCPConn), a.c
	}
	ln, err := r.syn.Listen("tcp", synAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	gc, err := r.gv.Dial(ctx, netip.MustParseAddrPort(synAddr))
	if err != nil {
		t.Fatal(err)
	}
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	return c.(*synstack.TCPConn), gc
}

// waitFinal waits until synstack's connection has reached CLOSED and
// gVisor's reports one of the gvStates, and checks synstack went through
// one of wantVia on the way.
func (r *rig) waitFinal(t *testing.T, sc net.Conn, gc *gvisortest.Conn, wantVia []tcp.State, gvStates ...string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute) // a hang guard, not a timing
	for {
		h := r.history(sc)
		synDone := len(h) > 0 && h[len(h)-1] == tcp.Closed
		gvDone := slices.Contains(gvStates, gc.State())
		if synDone && gvDone {
			if len(wantVia) > 0 && !slices.ContainsFunc(h, func(s tcp.State) bool { return slices.Contains(wantVia, s) }) {
				t.Errorf("synstack went %v, want through one of %v", h, wantVia)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("final states not reached: synstack %v, gVisor %s (want %v)", h, gc.State(), gvStates)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// copyHashed writes n pseudo-random bytes with io.Copy and returns their hash.
func copyHashed(w io.Writer, seed uint64, n int64) ([32]byte, error) {
	h := sha256.New()
	src := io.LimitReader(mrand.NewChaCha8([32]byte{byte(seed)}), n)
	k, err := io.Copy(w, io.TeeReader(src, h))
	if err == nil && k != n {
		err = fmt.Errorf("copied %d of %d", k, n)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum, err
}

func readHashed(r io.Reader) ([32]byte, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	var sum [32]byte
	h.Sum(sum[:0])
	return sum, n, err
}

type closeWriter interface {
	net.Conn
	CloseWrite() error
}

// TestInterop runs synstack against gVisor netstack, each as client and
// as server, at MTU 1500 and 65535: bulk data both ways at once, each
// direction ended by a half-close, byte-exact by hash; an ordered
// half-close each way; a reset each way. Every case waits for both ends
// to reach CLOSED.
func TestInterop(t *testing.T) {
	for _, mtu := range []int{1500, 65535} {
		for _, synDials := range []bool{true, false} {
			who := "gvisor-dials-synstack"
			if synDials {
				who = "synstack-dials-gvisor"
			}
			name := fmt.Sprintf("mtu%d/%s", mtu, who)
			t.Run(name+"/bulk", func(t *testing.T) { testBulk(t, mtu, synDials, false) })
			if mtu == 1500 {
				t.Run(name+"/bulk-ipv6", func(t *testing.T) { testBulk(t, mtu, synDials, true) })
			}
			t.Run(name+"/half-close", func(t *testing.T) { testHalfClose(t, mtu, synDials) })
			t.Run(name+"/reset", func(t *testing.T) { testReset(t, mtu, synDials) })
		}
	}
}

func testBulk(t *testing.T, mtu int, synDials, v6 bool) {
	r := newRig(t, mtu)
	sc, gc := r.pair(t, synDials, v6)
	n := bulkSize()
	type result struct {
		sum [32]byte
		n   int64
		err error
	}
	ends := [2]closeWriter{sc, gc}
	var sent, got [2]chan result
	start := time.Now()
	for i := range 2 {
		sent[i], got[i] = make(chan result, 1), make(chan result, 1)
		from, to := ends[i], ends[1-i]
		go func() {
			sum, err := copyHashed(from, uint64(i+1), n)
			if err == nil {
				err = from.CloseWrite()
			}
			sent[i] <- result{sum, n, err}
		}()
		go func() {
			sum, k, err := readHashed(to)
			got[i] <- result{sum, k, err}
		}()
	}
	for i, dir := range []string{"synstack to gVisor", "gVisor to synstack"} {
		s, g := <-sent[i], <-got[i]
		switch {
		case s.err != nil:
			t.Fatalf("%s: send: %v", dir, s.err)
		case g.err != nil:
			t.Fatalf("%s: receive: %v", dir, g.err)
		case g.n != n || g.sum != s.sum:
			t.Fatalf("%s: %d bytes of %d arrived, hash %x, sent %x", dir, g.n, n, g.sum[:6], s.sum[:6])
		}
	}
	d := time.Since(start)
	t.Logf("%d MiB each way in %v (%.1f MB/s)", n>>20, d.Round(time.Millisecond), float64(2*n)/d.Seconds()/1e6)
	sc.Close()
	gc.Close()
	r.waitFinal(t, sc, gc, nil, "CLOSED")
}

// testHalfClose: the client sends a request and half-closes; the server
// reads it to EOF, answers, and half-closes too; the client reads the
// answer to EOF. Both then close.
func testHalfClose(t *testing.T, mtu int, synDials bool) {
	r := newRig(t, mtu)
	sc, gc := r.pair(t, synDials, false)
	var client, server closeWriter = sc, gc
	if !synDials {
		client, server = gc, sc
	}
	req := strings.Repeat("request ", 10000)
	errc := make(chan error, 1)
	go func() {
		b, err := io.ReadAll(server)
		if err == nil && string(b) != req {
			err = fmt.Errorf("server read %d bytes of %d", len(b), len(req))
		}
		if err == nil {
			_, err = fmt.Fprintf(server, "got %d bytes", len(b))
		}
		if err == nil {
			err = server.CloseWrite()
		}
		errc <- err
	}()
	if _, err := io.WriteString(client, req); err != nil {
		t.Fatal(err)
	}
	if err := client.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Write([]byte("x")); err == nil {
		t.Errorf("write after CloseWrite succeeded")
	}
	reply, err := io.ReadAll(client)
	if err != nil || string(reply) != fmt.Sprintf("got %d bytes", len(req)) {
		t.Fatalf("client read %q, %v", reply, err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	// The client's FIN went first: it ends in TIME_WAIT, the server in LAST_ACK.
	synVia := tcp.LastAck
	if synDials {
		synVia = tcp.TimeWait
	}
	sc.Close()
	gc.Close()
	r.waitFinal(t, sc, gc, []tcp.State{synVia}, "CLOSED")
	h := r.history(sc)
	if !slices.Contains(h, synVia) {
		t.Errorf("synstack went %v, want through %v", h, synVia)
	}
}

// testReset: each side in turn aborts a connection (SO_LINGER 0) and the
// other sees a reset.
func testReset(t *testing.T, mtu int, synDials bool) {
	r := newRig(t, mtu)

	// synstack resets: gVisor's Read fails with "connection reset by peer".
	sc, gc := r.pair(t, synDials, false)
	if err := sc.SetLinger(0); err != nil {
		t.Fatal(err)
	}
	sc.Write([]byte("some data first"))
	sc.Close()
	b := make([]byte, 100)
	var err error
	for err == nil {
		_, err = gc.Read(b)
	}
	if !strings.Contains(err.Error(), "connection reset by peer") {
		t.Errorf("gVisor read after synstack's reset: %v", err)
	}
	gc.Close()
	r.waitFinal(t, sc, gc, nil, "CLOSED", "ERROR")

	// gVisor resets: synstack's Read fails with ECONNRESET.
	sc, gc = r.pair(t, synDials, false)
	gc.Abort()
	gc.Close()
	_, err = sc.Read(b)
	var oe *net.OpError
	if !errors.As(err, &oe) || !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("synstack read after gVisor's reset: %v, want ECONNRESET", err)
	}
	sc.Close()
	r.waitFinal(t, sc, gc, nil, "CLOSED", "ERROR")
	if h := r.history(sc); !slices.Contains(h, tcp.Established) {
		t.Errorf("synstack went %v", h)
	}
}
