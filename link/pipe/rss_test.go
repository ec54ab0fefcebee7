package pipe

import (
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/synstack/synstack/link"
)

// flowPacket is packet seq of test flow f: TCP over IPv4 for even f, UDP
// over IPv6 for odd f, from a source port that depends on f, carrying f and
// seq as its payload.
func flowPacket(f, seq int) []byte {
	var payload [8]byte
	binary.BigEndian.PutUint32(payload[0:4], uint32(f))
	binary.BigEndian.PutUint32(payload[4:8], uint32(seq))
	if f%2 == 0 {
		return ipv4Packet(v4a, v4b, protoTCP, uint16(20000+f), 80, payload[:])
	}
	return ipv6Packet(v6a, v6b, protoUDP, uint16(20000+f), 53, payload[:])
}

// flowOf reads back the flow and sequence number flowPacket put in pkt.
func flowOf(pkt []byte) (f, seq int) {
	p := pkt[len(pkt)-8:]
	return int(binary.BigEndian.Uint32(p[0:4])), int(binary.BigEndian.Uint32(p[4:8]))
}

// waitFor polls cond until it holds, failing the test after a minute.
// The bound only turns a hang into a failure: no test result depends on
// how fast anything runs.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestQueuesOption(t *testing.T) {
	for _, c := range []struct{ opt, want int }{{0, 1}, {1, 1}, {4, 4}} {
		a, b := NewWithOptions(Options{MTU: 1500, Queues: c.opt})
		if len(a.in) != c.want || len(b.in) != c.want {
			t.Errorf("Queues %d: %d and %d queues, want %d", c.opt, len(a.in), len(b.in), c.want)
		}
		a.Close()
		b.Close()
	}
	a, b := New(1500)
	if len(a.in) != 1 || len(b.in) != 1 {
		t.Errorf("New: %d and %d queues, want 1", len(a.in), len(b.in))
	}
	a.Close()
	b.Close()
}

// seqChecker is a BatchDispatcher, safe for concurrent delivery, that
// checks each flow's packets arrive in sequence, none missing.
type seqChecker struct {
	mu   sync.Mutex
	last map[int]int
	n    int
	errs []string
}

func (c *seqChecker) DeliverPacket(pkt []byte) {
	f, seq := flowOf(pkt)
	c.mu.Lock()
	defer c.mu.Unlock()
	last, ok := c.last[f]
	if !ok {
		last = -1
	}
	if seq != last+1 && len(c.errs) < 10 {
		c.errs = append(c.errs, fmt.Sprintf("flow %d: packet %d after %d", f, seq, last))
	}
	c.last[f] = seq
	c.n++
}

func (c *seqChecker) DeliverPackets(pkts [][]byte) {
	for _, p := range pkts {
		c.DeliverPacket(p)
	}
}

// TestMultiQueueFlowOrder writes several flows at once from several
// goroutines through a four-queue pipe and checks that each flow's packets
// all arrive, in the order written. The writers go in rounds, each of
// fewer packets than one queue holds, so that nothing is dropped however
// the goroutines are scheduled, and every sequence number must arrive.
func TestMultiQueueFlowOrder(t *testing.T) {
	a, b := NewWithOptions(Options{MTU: 1500, Queues: 4})
	defer a.Close()
	defer b.Close()
	c := &seqChecker{last: map[int]int{}}
	b.Attach(c)
	const writers, flowsPerWriter, perRound, rounds = 4, 3, 80, 6
	const flows = writers * flowsPerWriter
	if flows*perRound > QueueLen {
		t.Fatal("a round could overflow a queue")
	}
	delivered := func() int {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.n
	}
	for r := range rounds {
		var wg sync.WaitGroup
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Interleave this writer's flows packet by packet.
				for i := range perRound {
					for j := range flowsPerWriter {
						if err := a.WritePacket(flowPacket(w*flowsPerWriter+j, r*perRound+i)); err != nil {
							t.Error(err)
							return
						}
					}
				}
			}()
		}
		wg.Wait()
		waitFor(t, "delivery of every packet written", func() bool { return delivered() == (r+1)*flows*perRound })
	}
	if s := a.Stats(); s.Sent != flows*perRound*rounds || s.DropFull != 0 {
		t.Errorf("stats %+v", s)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.errs {
		t.Error(e)
	}
	for f := range flows {
		if last, ok := c.last[f]; !ok || last != perRound*rounds-1 {
			t.Errorf("flow %d: last packet %d (seen %v), want %d", f, last, ok, perRound*rounds-1)
		}
	}
	queues := map[int]bool{}
	for f := range flows {
		queues[link.FlowQueue(flowPacket(f, 0), 4)] = true
	}
	if len(queues) < 2 {
		t.Errorf("%d flows all on one queue: the test checks nothing", flows)
	}
}

// twoQueueFlows returns two test flows that a four-queue pipe steers to
// different queues.
func twoQueueFlows(t *testing.T) (f1, f2 int) {
	t.Helper()
	q0 := link.FlowQueue(flowPacket(0, 0), 4)
	for f := 1; f < 100; f++ {
		if link.FlowQueue(flowPacket(f, 0), 4) != q0 {
			return 0, f
		}
	}
	t.Fatal("100 flows all hash to one queue")
	return
}

// holdFlow is a Dispatcher that holds up the delivery of flow held until
// release is closed, telling entered when it starts holding; other flows'
// packets it passes on to got.
type holdFlow struct {
	held    int
	entered chan struct{}
	release chan struct{}
	got     chan int
}

func (d *holdFlow) DeliverPacket(pkt []byte) {
	f, _ := flowOf(pkt)
	if f == d.held {
		d.entered <- struct{}{}
		<-d.release
		return
	}
	d.got <- f
}

// TestMultiQueueConcurrentDelivery checks that with several queues one
// flow is delivered while another flow's delivery is held up: the two are
// delivered from different goroutines, at the same time.
func TestMultiQueueConcurrentDelivery(t *testing.T) {
	a, b := NewWithOptions(Options{MTU: 1500, Queues: 4})
	defer a.Close()
	defer b.Close()
	f1, f2 := twoQueueFlows(t)
	d := &holdFlow{held: f1, entered: make(chan struct{}, 1), release: make(chan struct{}), got: make(chan int, 1)}
	defer close(d.release)
	b.Attach(d)
	a.WritePacket(flowPacket(f1, 0))
	select {
	case <-d.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("flow 1 never delivered")
	}
	// Flow f1's delivery is now blocked inside the dispatcher.
	a.WritePacket(flowPacket(f2, 0))
	select {
	case f := <-d.got:
		if f != f2 {
			t.Errorf("delivered flow %d, want %d", f, f2)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("flow 2 not delivered while flow 1 was held up: deliveries are not concurrent")
	}
}

// parking is a Dispatcher every delivery to which blocks until release is
// closed, after telling entered if it has room.
type parking struct {
	entered chan struct{}
	release chan struct{}
}

func (d *parking) DeliverPacket([]byte) {
	select {
	case d.entered <- struct{}{}:
	default:
	}
	<-d.release
}

// TestMultiQueueSpread writes one packet each of many flows through a
// four-queue pipe to a dispatcher that holds every delivery up, and checks
// that as many deliveries are then in progress at once as there are
// queues: the flows were spread over all of them, each delivered by its
// own goroutine.
func TestMultiQueueSpread(t *testing.T) {
	const queues, flows = 4, 64
	a, b := NewWithOptions(Options{MTU: 1500, Queues: queues})
	defer a.Close()
	defer b.Close()
	d := &parking{entered: make(chan struct{}, flows), release: make(chan struct{})}
	b.Attach(d)
	used := map[int]bool{}
	for f := range flows {
		used[link.FlowQueue(flowPacket(f, 0), queues)] = true
		a.WritePacket(flowPacket(f, 0))
	}
	if len(used) != queues {
		t.Errorf("%d flows use %d of %d queues", flows, len(used), queues)
	}
	for i := range len(used) {
		select {
		case <-d.entered:
		case <-time.After(5 * time.Second):
			t.Fatalf("%d deliveries in progress at once, want %d", i, len(used))
		}
	}
	// Every delivery blocks until release, so len(used) goroutines are
	// inside the dispatcher now.
	close(d.release)
	waitFor(t, "delivery of every packet", func() bool { return b.Stats().Delivered == flows })
}

// TestMultiQueueFullDrops checks that each queue drops on its own: one
// flow filling its queue does not stop another flow on another queue.
func TestMultiQueueFullDrops(t *testing.T) {
	a, b := NewWithOptions(Options{MTU: 1500, Queues: 4})
	f1, f2 := twoQueueFlows(t)
	d := &parking{entered: make(chan struct{}, 2), release: make(chan struct{})}
	b.Attach(d)
	const n = QueueLen + 100
	for i := range n {
		a.WritePacket(flowPacket(f1, i))
	}
	s := a.Stats()
	if s.DropFull == 0 || s.Sent+s.DropFull != n {
		t.Errorf("one flow: %+v", s)
	}
	a.WritePacket(flowPacket(f2, 0))
	if s2 := a.Stats(); s2.Sent != s.Sent+1 || s2.DropFull != s.DropFull {
		t.Errorf("second flow on another queue not queued: %+v, before %+v", s2, s)
	}
	close(d.release)
	a.Close()
	b.Close()
}

// TestMultiQueueClose closes a four-queue end while its queues are full
// and its deliveries held up, and checks that every goroutine stops, that
// every queue is emptied (its buffers put back), and that each packet sent
// is counted once, as delivered or as dropped on close.
func TestMultiQueueClose(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const queues = 4
	a, b := NewWithOptions(Options{MTU: 1500, Queues: queues})
	d := &parking{entered: make(chan struct{}, queues), release: make(chan struct{})}
	b.Attach(d)
	for seq := range 20 {
		for f := range 64 {
			a.WritePacket(flowPacket(f, seq))
		}
	}
	for range queues {
		<-d.entered // every delivery goroutine is held up
	}
	closed := make(chan struct{})
	go func() {
		b.Close()
		close(closed)
	}()
	waitFor(t, "Close to stop writes", func() bool { return b.closed.Load() })
	close(d.release)
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	for i, in := range b.in {
		if len(in) != 0 {
			t.Errorf("queue %d: %d packets left after Close", i, len(in))
		}
	}
	sa, sb := a.Stats(), b.Stats()
	if sa.Sent != sb.Delivered+sb.DropClosed {
		t.Errorf("sent %d != delivered %d + dropped on close %d", sa.Sent, sb.Delivered, sb.DropClosed)
	}
	t.Logf("sent %d, delivered %d, dropped on close %d", sa.Sent, sb.Delivered, sb.DropClosed)
	if err := b.WritePacket(flowPacket(0, 0)); err != ErrClosed {
		t.Errorf("write after close: %v", err)
	}
	a.Close()
}

// TestMultiQueueUnparsableInOrder checks that packets the hash cannot
// parse all go to one queue, so they arrive in the order written, as over
// a single-queue pipe.
func TestMultiQueueUnparsableInOrder(t *testing.T) {
	a, b := NewWithOptions(Options{MTU: 100, Queues: 4})
	defer a.Close()
	defer b.Close()
	cb := newCollector()
	b.Attach(cb)
	for i := range 500 {
		a.WritePacket([]byte{byte(i), byte(i >> 8)}) // version nibble 0..15, too short for any
	}
	got := cb.wait(t, 500)
	for i, p := range got {
		if int(p[0])|int(p[1])<<8 != i {
			t.Fatalf("packet %d out of order", i)
		}
	}
}

// TestCloseDuringWrite closes the receiving end at the worst moment of a
// write: after the writer has found it open, before it queues the packet
// (the drop function runs in between). The packet must not be stranded
// in the closed end's queue: it is counted as dropped on close and its
// buffer put back.
func TestCloseDuringWrite(t *testing.T) {
	for _, queues := range []int{1, 4} {
		a, b := NewWithOptions(Options{MTU: 1500, Queues: queues})
		b.Attach(newCollector())
		a.SetDropFunc(func([]byte) bool {
			b.Close()
			return false
		})
		a.WritePacket(flowPacket(0, 0))
		for i, in := range b.in {
			if len(in) != 0 {
				t.Errorf("queues %d: queue %d holds %d packets after Close", queues, i, len(in))
			}
		}
		sa, sb := a.Stats(), b.Stats()
		if sa.Sent != sb.Delivered+sb.DropClosed {
			t.Errorf("queues %d: sent %d != delivered %d + dropped on close %d", queues, sa.Sent, sb.Delivered, sb.DropClosed)
		}
		a.Close()
	}
}

// TestCloseWhileWriting closes an end while the peer writes to it from
// several goroutines, and checks that every packet sent is accounted for,
// delivered or dropped on close, none left in a queue. It rarely hits the
// window TestCloseDuringWrite opens on purpose; it checks the accounting
// under real concurrency, with the race detector watching.
func TestCloseWhileWriting(t *testing.T) {
	for _, queues := range []int{1, 4} {
		for range 50 {
			a, b := NewWithOptions(Options{MTU: 1500, Queues: queues})
			b.Attach(&seqChecker{last: map[int]int{}})
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range 300 {
						a.WritePacket(flowPacket(w, i))
					}
				}()
			}
			b.Close()
			wg.Wait()
			for i, in := range b.in {
				if len(in) != 0 {
					t.Fatalf("queues %d: queue %d holds %d packets after Close", queues, i, len(in))
				}
			}
			sa, sb := a.Stats(), b.Stats()
			if sa.Sent != sb.Delivered+sb.DropClosed {
				t.Fatalf("queues %d: sent %d != delivered %d + dropped on close %d", queues, sa.Sent, sb.Delivered, sb.DropClosed)
			}
			a.Close()
		}
	}
}
