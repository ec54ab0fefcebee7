package synstack_test

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/link"
	"github.com/synstack/synstack/link/pipe"
)

// chokeLink is a link whose transmit queue is short and drained by a
// slow writer, as a TUN device's is when its writer goroutine is
// descheduled: it implements link.Backpressure, and drops (counting) what
// a full queue cannot take, as link/tun does.
type chokeLink struct {
	out  *pipe.Endpoint // where drained packets go
	peer *pipe.Endpoint // the other end of out

	mu      sync.Mutex
	q       [][]byte
	cap     int
	onRoom  func()
	waiting bool
	dropped atomic.Int64
	said    atomic.Int64 // times TxRoom said no
	kick    chan struct{}
	done    chan struct{}
}

var _ link.Backpressure = (*chokeLink)(nil)

func newChokeLink(ep, peer *pipe.Endpoint, capacity int) *chokeLink {
	l := &chokeLink{out: ep, peer: peer, cap: capacity, kick: make(chan struct{}, 1), done: make(chan struct{})}
	go l.writer()
	return l
}

func (l *chokeLink) WritePacket(pkt []byte) error {
	l.mu.Lock()
	if len(l.q) >= l.cap {
		l.mu.Unlock()
		l.dropped.Add(1)
		return nil
	}
	l.q = append(l.q, bytes.Clone(pkt))
	l.mu.Unlock()
	select {
	case l.kick <- struct{}{}:
	default:
	}
	return nil
}

// TxRoom says no once the queue is three quarters full.
func (l *chokeLink) TxRoom() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.q) >= l.cap*3/4 {
		l.waiting = true
		l.said.Add(1)
		return false
	}
	return true
}

func (l *chokeLink) OnTxRoom(f func()) {
	l.mu.Lock()
	l.onRoom = f
	l.mu.Unlock()
}

// writer moves at most four packets at a time to the pipe, yielding
// between batches (and while the pipe holds more than half of what it
// can), and calls back once the queue is a quarter full.
func (l *chokeLink) writer() {
	for {
		select {
		case <-l.done:
			return
		case <-l.kick:
		}
		for {
			l.mu.Lock()
			n := min(len(l.q), 4)
			batch := append([][]byte(nil), l.q[:n]...)
			l.q = l.q[n:]
			var f func()
			if l.waiting && len(l.q) <= l.cap/4 {
				l.waiting, f = false, l.onRoom
			}
			l.mu.Unlock()
			for _, p := range batch {
				// The pipe must not drop what the choke lets through:
				// wait while the receiving stack is far behind.
				for l.out.Stats().Sent-l.peer.Stats().Delivered > 512 {
					runtime.Gosched()
				}
				l.out.WritePacket(p)
			}
			if f != nil {
				f()
			}
			if n == 0 {
				break
			}
			runtime.Gosched()
		}
	}
}

func (l *chokeLink) MTU() int                 { return l.out.MTU() }
func (l *chokeLink) Attach(d link.Dispatcher) { l.out.Attach(d) }

func (l *chokeLink) Close() error {
	close(l.done)
	return l.out.Close()
}

// TestBackpressureHoldsData: a sender on a link whose short queue a slow
// writer drains (link.Backpressure) holds its data while the link has no
// room instead of having it dropped: several connections' 4 MiB arrive
// byte-exact, the link drops nothing, nothing is retransmitted, and the
// connections were told to wait (SynstackTxThrottled). Without the hold
// the choke drops a few packets in a hundred.
func TestBackpressureHoldsData(t *testing.T) {
	a, b := pipe.New(1500)
	choke := newChokeLink(a, b, 64)
	srv, err := synstack.New(synstack.Config{Link: b, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cli, err := synstack.New(synstack.Config{Link: choke, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")}})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ln, err := srv.Listen("tcp", "10.0.0.1:80")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const conns, size = 4, 4 << 20
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(rand.Uint32())
	}
	got := make(chan []byte, conns)
	go func() {
		for range conns {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				b, _ := io.ReadAll(c)
				c.Close()
				got <- b
			}()
		}
	}()
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := cli.Dial("tcp", "10.0.0.1:80")
			if err != nil {
				t.Error(err)
				return
			}
			if _, err := c.Write(data); err != nil {
				t.Error(err)
			}
			c.Close()
		}()
	}
	wg.Wait()
	for range conns {
		if b := <-got; !bytes.Equal(b, data) {
			t.Fatalf("a connection delivered %d bytes, not the %d sent", len(b), len(data))
		}
	}
	st := cli.Stats()
	t.Logf("link said no %d times; %d throttles, %d retransmissions (%d timeouts), %d dropped; pipe %+v / %+v", choke.said.Load(), st.SynstackTxThrottled, st.TcpRetransSegs, st.TcpExtTCPTimeouts, choke.dropped.Load(), a.Stats(), b.Stats())
	if sa, sb := a.Stats(), b.Stats(); sa.DropFull+sb.DropFull != 0 {
		t.Fatalf("the pipe dropped %d packets: the test's own link lost them", sa.DropFull+sb.DropFull)
	}
	// Nothing is lost. On a real clock a timer may still fire when the
	// scheduler holds ACKs back (a tail loss probe: a few segments in a
	// thousand under -race on a loaded machine), but never a storm.
	if choke.dropped.Load() != 0 || st.TcpRetransSegs*10 > st.TcpOutSegs {
		t.Errorf("the link dropped %d packets and the sender retransmitted %d of %d segments; want none dropped, under 10%% retransmitted",
			choke.dropped.Load(), st.TcpRetransSegs, st.TcpOutSegs)
	}
	if st.SynstackTxThrottled == 0 || choke.said.Load() == 0 {
		t.Errorf("no connection waited for room (%d throttles, the link said no %d times): the test did not fill the link", st.SynstackTxThrottled, choke.said.Load())
	}
}
