package synstack

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/synstack/synstack/link/pipe"
	"github.com/synstack/synstack/tcp"
)

// shardedPair joins two stacks of the given shard count on link/pipe and
// opens n connections between them (client ends first, server ends in
// the same order). cliMod and srvMod, if set, change the stacks' configs.
// The pipe has 4 receive queues: each stack is handed packets of
// different connections from 4 goroutines at once.
func shardedPair(t *testing.T, shards, n int, cliMod, srvMod func(*Config)) (cli, srv *Stack, cs, ss []*TCPConn) {
	t.Helper()
	la, lb := pipe.NewWithOptions(pipe.Options{MTU: 1500, Queues: 4})
	cc := Config{Link: lb, Shards: shards, Addrs: []netip.Prefix{netip.PrefixFrom(addrB, 24)}}
	sc := Config{Link: la, Shards: shards, Addrs: []netip.Prefix{netip.PrefixFrom(addrA, 24)}}
	for _, m := range []struct {
		mod func(*Config)
		c   *Config
	}{{cliMod, &cc}, {srvMod, &sc}} {
		if m.mod != nil {
			m.mod(m.c)
		}
	}
	var err error
	srv, err = New(sc)
	must(t, err)
	cli, err = New(cc)
	must(t, err)
	t.Cleanup(func() { cli.Close(); srv.Close() })
	ln, err := srv.Listen("tcp", "10.0.0.1:80")
	must(t, err)
	defer ln.Close()
	for range n {
		c, err := cli.DialContext(context.Background(), "tcp", "10.0.0.1:80")
		must(t, err)
		a, err := ln.Accept()
		must(t, err)
		cs = append(cs, c.(*TCPConn))
		ss = append(ss, a.(*TCPConn))
	}
	return cli, srv, cs, ss
}

func TestShardCount(t *testing.T) {
	shards := func(ask int) int {
		a, b := pipe.New(1500)
		defer b.Close()
		s, err := New(Config{Link: a, Shards: ask})
		must(t, err)
		defer s.Close()
		return s.h.ShardCount()
	}
	for _, c := range []struct{ ask, want int }{{1, 1}, {2, 2}, {5, 8}, {64, 64}, {1000, 256}} {
		if got := shards(c.ask); got != c.want {
			t.Errorf("Shards %d: %d shards, want %d", c.ask, got, c.want)
		}
	}
	if n := shards(0); n < 4 || n > 64 || n&(n-1) != 0 {
		t.Errorf("default: %d shards, want a power of two in [4, 64]", n)
	}
}

// TestShardsSpreadConnections checks that connections are spread over
// the shards, that each is in the shard its tuple names, and that the
// counters summed over the shards are the stack's.
func TestShardsSpreadConnections(t *testing.T) {
	const n = 32
	cli, srv, cs, _ := shardedPair(t, 8, n, nil, nil)
	used := map[int]bool{}
	cli.lock()
	for ep := range cli.allConns() {
		if ep.Shard != cli.h.ShardIndex(ep.Local, ep.Remote) || !ep.InShard {
			t.Errorf("%v: not in the shard of its tuple", ep.Local)
		}
	}
	for _, c := range cs {
		used[c.c.Shard()] = true
	}
	total := cli.connCount()
	cli.unlock()
	if len(used) < 2 {
		t.Errorf("%d connections in %d shard(s) of 8", n, len(used))
	}
	if total != n {
		t.Errorf("client holds %d connections, want %d", total, n)
	}
	for _, st := range []*Stack{cli, srv} {
		if got := st.Stats().TcpCurrEstab; got != n {
			t.Errorf("TcpCurrEstab %d, want %d", got, n)
		}
	}
}

// TestShardLockDoesNotStopOtherShards holds the lock of one connection's
// shard and checks that a connection of another shard of the same stack
// still carries data both ways: with one lock per stack this would hang.
func TestShardLockDoesNotStopOtherShards(t *testing.T) {
	cli, _, cs, ss := shardedPair(t, 8, 16, nil, nil)
	held := cs[0].c.Shard()
	other := -1
	for i, c := range cs {
		if c.c.Shard() != held {
			other = i
			break
		}
	}
	if other < 0 {
		t.Fatal("all 16 connections in one shard")
	}
	cli.h.FreezeShard(held)
	done := make(chan error, 1)
	go func() { done <- roundTrip(cs[other], ss[other], []byte("through another shard")) }()
	select {
	case err := <-done:
		must(t, err)
	case <-time.After(30 * time.Second): // a hang, not a timing
		cli.h.ThawShard(held)
		t.Fatal("a round trip on another shard did not complete while one shard's lock was held")
	}
	// The held shard's connection waits for its lock, then goes on.
	wrote := make(chan error, 1)
	go func() {
		_, err := cs[0].Write([]byte("x"))
		wrote <- err
	}()
	cli.h.ThawShard(held)
	must(t, <-wrote)
	buf := make([]byte, 1)
	_, err := io.ReadFull(ss[0], buf)
	must(t, err)
	_ = cli
}

// TestControlPlaneDoesNotStopConnections holds both stacks' control-plane
// lock (ctl: taken by connection setup, accept, close, setsockopt) and
// checks that an established connection still carries data both ways.
func TestControlPlaneDoesNotStopConnections(t *testing.T) {
	cli, srv, cs, ss := shardedPair(t, 8, 2, nil, nil)
	cli.h.FreezeControl()
	srv.h.FreezeControl()
	done := make(chan error, 1)
	go func() { done <- roundTrip(cs[1], ss[1], []byte("while ctl is held")) }()
	select {
	case err := <-done:
		must(t, err)
	case <-time.After(30 * time.Second): // a hang, not a timing
		t.Error("a round trip did not complete while the control plane's lock was held")
	}
	srv.h.ThawControl()
	cli.h.ThawControl()
}

// roundTrip sends msg from c to s and back.
func roundTrip(c, s net.Conn, msg []byte) error {
	if _, err := c.Write(msg); err != nil {
		return err
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(s, buf); err != nil {
		return err
	}
	if _, err := s.Write(buf); err != nil {
		return err
	}
	_, err := io.ReadFull(c, buf)
	return err
}

// TestHooksNeverRunConcurrently moves data on connections of several
// shards at once, between two stacks whose hooks keep unsynchronized
// state: the race detector sees any two calls of one stack's hooks that
// overlap (sends from Write run beside receives on the link's goroutine).
func TestHooksNeverRunConcurrently(t *testing.T) {
	type counts struct{ in, out, transitions int } // no lock: each stack serializes its hooks
	var cliN, srvN counts
	hooks := func(n *counts) func(*Config) {
		return func(c *Config) {
			c.OnPacket = func(dir string, pkt []byte) {
				if dir == "in" {
					n.in++
				} else {
					n.out++
				}
			}
			c.OnTransition = func(_, _ netip.AddrPort, _, _ tcp.State, _ tcp.Cause) { n.transitions++ }
		}
	}
	const n = 8
	cli, srv, cs, ss := shardedPair(t, 8, n, hooks(&cliN), hooks(&srvN))
	var wg sync.WaitGroup
	buf := make([]byte, 64<<10)
	for i := range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for range 16 {
				if _, err := cs[i].Write(buf); err != nil {
					t.Error(err)
					return
				}
			}
			cs[i].Close()
		}()
		go func() {
			defer wg.Done()
			if _, err := io.Copy(io.Discard, ss[i]); err != nil {
				t.Error(err)
			}
			ss[i].Close()
		}()
	}
	wg.Wait()
	cli.lock()
	srv.lock()
	c, s := cliN, srvN
	srv.unlock()
	cli.unlock()
	// A client goes SYN_SENT, ESTABLISHED, FIN_WAIT_1 at least; a server
	// SYN_RCVD, ESTABLISHED, CLOSE_WAIT, LAST_ACK.
	if c.transitions < 3*n || s.transitions < 4*n {
		t.Errorf("%d and %d transitions seen, want at least %d and %d", c.transitions, s.transitions, 3*n, 4*n)
	}
	if c.out == 0 || s.in == 0 {
		t.Errorf("packets seen: client %+v, server %+v", c, s)
	}
}

// TestOneShardStack runs a stack on a single lock (Shards: 1), the
// behaviour before shards.
func TestOneShardStack(t *testing.T) {
	_, _, cs, ss := shardedPair(t, 1, 4, nil, nil)
	for i := range cs {
		if _, err := cs[i].Write([]byte("one")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 3)
		if _, err := io.ReadFull(ss[i], buf); err != nil {
			t.Fatal(err)
		}
	}
}

// TestShardedSetupUnderLoad opens, uses and closes connections from 8
// goroutines at once between two stacks on a 4-queue pipe, while data
// flows on established connections of every shard: connection setup and
// teardown (ctl and one shard), segments at the listener (escalated from
// a shard), data (one shard) and closes, half of the client's by RST,
// all overlap.
// The race detector watches; at the end no connection is left but those
// in TIME_WAIT.
func TestShardedSetupUnderLoad(t *testing.T) {
	const dialers, rounds = 8, 40
	cli, srv, cs, ss := shardedPair(t, 8, 8, nil, nil)
	ln, err := srv.Listen("tcp", "10.0.0.1:81")
	must(t, err)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { // a length byte, that many bytes, echoed
				defer c.Close()
				var n [1]byte
				if _, err := io.ReadFull(c, n[:]); err != nil {
					t.Error(err)
					return
				}
				buf := make([]byte, n[0])
				if _, err := io.ReadFull(c, buf); err != nil {
					t.Error(err)
					return
				}
				if _, err := c.Write(buf); err != nil {
					t.Error(err)
				}
			}()
		}
	}()
	stop := make(chan struct{})
	var bg sync.WaitGroup
	for i := range cs {
		bg.Add(1)
		go func() { // data on the established connections meanwhile
			defer bg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := roundTrip(cs[i], ss[i], make([]byte, 1000)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	var wg sync.WaitGroup
	for d := range dialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				c, err := cli.Dial("tcp", "10.0.0.1:81")
				if err != nil {
					t.Error(err)
					return
				}
				// At least one byte to echo: the client resets only once
				// the echo is in, so after the server has read.
				msg := make([]byte, 2+(d+r)%40)
				msg[0] = byte(len(msg) - 1)
				buf := make([]byte, len(msg)-1)
				if _, err := c.Write(msg); err != nil {
					t.Error(err)
				} else if _, err := io.ReadFull(c, buf); err != nil {
					t.Error(err)
				}
				if r%2 == 1 {
					c.(*TCPConn).SetLinger(0) // close with a RST
				}
				c.Close()
			}
		}()
	}
	wg.Wait()
	close(stop)
	bg.Wait()
	for _, c := range append(cs, ss...) {
		c.SetLinger(0)
		c.Close()
	}
	for _, st := range []*Stack{cli, srv} {
		var n StateCounts
		for end := time.Now().Add(time.Minute); time.Now().Before(end); { // the last FINs and RSTs are in flight; a hang guard, not a timing
			n = st.CountStates()
			left := 0
			for s, k := range n {
				if tcp.State(s) != tcp.TimeWait && tcp.State(s) != tcp.Listen {
					left += k
				}
			}
			if left == 0 {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		for s, k := range n {
			if k != 0 && tcp.State(s) != tcp.TimeWait && tcp.State(s) != tcp.Listen {
				t.Errorf("%d connection(s) left in %v", k, tcp.State(s))
			}
		}
	}
}

// TestShardedChaos mixes, from many goroutines at once, every kind of
// call that takes a different set of locks: connections made and used
// (ctl and a shard; a shard), socket options set on live connections
// (ctl and a shard), half-closes and resets, a listener closed and
// opened again under load (ctl and every shard, resetting its queued
// children), and Stats, Connections and CountStates (every lock). Every
// echoed byte is checked; the race detector watches the rest.
func TestShardedChaos(t *testing.T) {
	const clients, rounds = 6, 100
	cli, srv, _, _ := shardedPair(t, 8, 0, nil, nil)
	var echoed, refused, reset, relistened atomic.Int64
	var lmu sync.Mutex
	var ln net.Listener
	serve := func() {
		l, err := srv.Listen("tcp", "10.0.0.1:90")
		if err != nil {
			t.Error(err)
			return
		}
		lmu.Lock()
		ln = l
		lmu.Unlock()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				go func() { // echo until EOF, then close
					defer c.Close()
					io.Copy(c, c)
				}()
			}
		}()
	}
	serve()
	stop := make(chan struct{})
	var bg sync.WaitGroup
	bg.Add(2)
	go func() { // the listener goes and comes back
		defer bg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			lmu.Lock()
			l := ln
			lmu.Unlock()
			l.Close()
			serve()
			relistened.Add(1)
		}
	}()
	go func() { // whole-stack readers
		defer bg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			for _, st := range []*Stack{cli, srv} {
				st.Stats()
				st.Connections()
				st.CountStates()
			}
		}
	}()
	var wg sync.WaitGroup
	for g := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				c, err := cli.Dial("tcp", "10.0.0.1:90")
				if err != nil {
					if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, syscall.ECONNRESET) {
						t.Errorf("client %d round %d: %v", g, r, err)
					}
					refused.Add(1) // the listener was away
					continue
				}
				tc := c.(*TCPConn)
				tc.SetDeadline(time.Now().Add(20 * time.Second)) // a hang fails, not a timing
				msg := make([]byte, 1+(g*rounds+r)*997%20000)
				for i := range msg {
					msg[i] = byte(g + r + i)
				}
				switch r % 4 {
				case 1:
					tc.SetNoDelay(false)
				case 2:
					tc.SetReadBuffer(8192)
				}
				// At most 20,000 bytes: written at once, the echo fits in
				// the receive buffer meanwhile. One call sees a reset.
				got := make([]byte, len(msg))
				if _, err = tc.Write(msg); err == nil {
					_, err = io.ReadFull(tc, got)
				}
				switch {
				case err == nil && !bytes.Equal(got, msg):
					t.Errorf("client %d round %d: echo differs", g, r)
				case err == nil:
					echoed.Add(1)
				case errors.Is(err, syscall.ECONNRESET):
					reset.Add(1) // its listener closed before accepting it
				default:
					t.Errorf("client %d round %d: %v", g, r, err)
				}
				switch r % 3 {
				case 0:
					tc.CloseWrite()
					io.Copy(io.Discard, tc)
				case 1:
					tc.SetLinger(0)
				}
				tc.Close()
			}
		}()
	}
	wg.Wait()
	close(stop)
	bg.Wait()
	lmu.Lock()
	ln.Close()
	lmu.Unlock()
	t.Logf("%d echoed, %d refused, %d reset; the listener reopened %d times", echoed.Load(), refused.Load(), reset.Load(), relistened.Load())
	if echoed.Load() == 0 {
		t.Error("no connection carried its echo")
	}
}

// TestBatchOfSegmentsGetsOneACK delivers a run of in-order segments of
// one connection in one DeliverPackets call: the receiver answers with one
// ACK for all of it, as Linux does for a GRO aggregate. The same segments
// one DeliverPacket at a time draw an ACK every second segment at least.
func TestBatchOfSegmentsGetsOneACK(t *testing.T) {
	for _, batched := range []bool{false, true} {
		n := newVnet(t, nil)
		lfd := listenOn(t, n.b, netip.MustParseAddrPort("10.0.0.2:80"), 8, false)
		cfd, sfd := n.connect(netip.MustParseAddrPort("10.0.0.2:80"), lfd)
		const segs = 16
		if _, err := n.a.Sockets().Write(cfd, make([]byte, segs*1448)); err != nil {
			t.Fatal(err)
		}
		n.mu.Lock()
		var pkts [][]byte
		for _, q := range n.q {
			pkts = append(pkts, q.pkt)
		}
		n.q = nil
		n.mu.Unlock()
		if len(pkts) < 8 {
			t.Fatalf("the client sent %d segments at once", len(pkts))
		}
		before := n.b.Stats().TcpOutSegs
		if batched {
			n.b.DeliverPackets(pkts)
		} else {
			for _, p := range pkts {
				n.b.DeliverPacket(p)
			}
		}
		acks := n.b.Stats().TcpOutSegs - before
		switch {
		case batched && acks != 1:
			t.Errorf("%d segments in one batch drew %d ACKs, want 1", len(pkts), acks)
		case !batched && acks < uint64(len(pkts)/2):
			t.Errorf("%d segments one at a time drew %d ACKs, want one every two at least", len(pkts), acks)
		}
		n.pump()
		buf := make([]byte, 64<<10)
		got := 0
		for got < len(pkts)*1448 {
			k, err := n.b.Sockets().Read(sfd, buf)
			if err != nil {
				t.Fatal(err)
			}
			got += k
		}
	}
}

// TestBatchedACKsUnderLoss moves data both ways over a multi-queue pipe
// that drops one packet in 50 each way: runs of segments get one ACK
// while losses, out-of-order arrivals and retransmissions go on. Every
// byte must arrive, in order.
func TestBatchedACKsUnderLoss(t *testing.T) {
	la, lb := pipe.NewWithOptions(pipe.Options{MTU: 1500, Queues: 2})
	var na, nb atomic.Uint64
	la.SetDropFunc(func([]byte) bool { return na.Add(1)%50 == 0 })
	lb.SetDropFunc(func([]byte) bool { return nb.Add(1)%50 == 0 })
	srv, err := New(Config{Link: la, Addrs: []netip.Prefix{netip.PrefixFrom(addrA, 24)}})
	must(t, err)
	cli, err := New(Config{Link: lb, Addrs: []netip.Prefix{netip.PrefixFrom(addrB, 24)}})
	must(t, err)
	t.Cleanup(func() { cli.Close(); srv.Close() })
	ln, err := srv.Listen("tcp", "10.0.0.1:80")
	must(t, err)
	defer ln.Close()
	const conns, size = 4, 2 << 20
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := cli.Dial("tcp", "10.0.0.1:80")
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			s, err := ln.Accept()
			if err != nil {
				t.Error(err)
				return
			}
			defer s.Close()
			c.SetDeadline(time.Now().Add(60 * time.Second)) // a hang fails, not a timing
			s.SetDeadline(time.Now().Add(60 * time.Second))
			// The same stream on every connection: Accept may hand this
			// goroutine another's server end.
			msg := make([]byte, size)
			for j := range msg {
				msg[j] = byte(j*7 + j>>11)
			}
			for _, dir := range [][2]net.Conn{{c, s}, {s, c}} {
				errc := make(chan error, 1)
				go func() { _, err := dir[0].Write(msg); errc <- err }()
				got := make([]byte, size)
				if _, err := io.ReadFull(dir[1], got); err != nil {
					t.Error(err)
					return
				}
				if err := <-errc; err != nil {
					t.Error(err)
					return
				}
				if !bytes.Equal(got, msg) {
					t.Errorf("connection %d: the stream arrived altered", i)
					return
				}
			}
		}()
	}
	wg.Wait()
	if r := cli.Stats().TcpRetransSegs + srv.Stats().TcpRetransSegs; r == 0 {
		t.Error("no retransmission: the drops did not bite")
	}
}
