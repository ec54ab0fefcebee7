package pipe

import (
	"bytes"
	"runtime"
	"sync"
	"testing"
	"time"
)

type collector struct {
	mu   sync.Mutex
	pkts [][]byte
	ch   chan struct{}
}

func newCollector() *collector { return &collector{ch: make(chan struct{}, 4096)} }

func (c *collector) DeliverPacket(pkt []byte) {
	c.mu.Lock()
	c.pkts = append(c.pkts, bytes.Clone(pkt))
	c.mu.Unlock()
	c.ch <- struct{}{}
}

func (c *collector) wait(t *testing.T, n int) [][]byte {
	t.Helper()
	for i := 0; i < n; i++ {
		select {
		case <-c.ch:
		case <-time.After(5 * time.Second):
			t.Fatalf("got %d packets, want %d", i, n)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pkts
}

func TestDeliverBothWays(t *testing.T) {
	a, b := New(1500)
	defer a.Close()
	defer b.Close()
	ca, cb := newCollector(), newCollector()
	a.Attach(ca)
	b.Attach(cb)

	buf := []byte("hello")
	if err := a.WritePacket(buf); err != nil {
		t.Fatal(err)
	}
	buf[0] = 'X' // the pipe must have copied the packet
	if err := b.WritePacket([]byte("world")); err != nil {
		t.Fatal(err)
	}
	if got := cb.wait(t, 1); string(got[0]) != "hello" {
		t.Errorf("b got %q", got[0])
	}
	if got := ca.wait(t, 1); string(got[0]) != "world" {
		t.Errorf("a got %q", got[0])
	}
	if s := a.Stats(); s.Sent != 1 || s.Delivered != 1 {
		t.Errorf("a stats %+v", s)
	}
	if a.MTU() != 1500 {
		t.Errorf("MTU %d", a.MTU())
	}
}

func TestOrderPreserved(t *testing.T) {
	a, b := New(100)
	defer a.Close()
	defer b.Close()
	cb := newCollector()
	b.Attach(cb)
	for i := 0; i < 500; i++ {
		a.WritePacket([]byte{byte(i), byte(i >> 8)})
	}
	got := cb.wait(t, 500)
	for i, p := range got {
		if int(p[0])|int(p[1])<<8 != i {
			t.Fatalf("packet %d out of order", i)
		}
	}
}

func TestDropMTUAndFunc(t *testing.T) {
	a, b := New(10)
	defer a.Close()
	defer b.Close()
	cb := newCollector()
	b.Attach(cb)
	a.WritePacket(make([]byte, 11))
	a.SetDropFunc(func(p []byte) bool { return p[0] == 1 })
	a.WritePacket([]byte{1})
	a.WritePacket([]byte{2})
	a.SetDropFunc(nil)
	a.WritePacket([]byte{1})
	got := cb.wait(t, 2)
	if len(got) != 2 || got[0][0] != 2 || got[1][0] != 1 {
		t.Errorf("got %v", got)
	}
	s := a.Stats()
	if s.DropMTU != 1 || s.DropFunc != 1 || s.Sent != 2 {
		t.Errorf("stats %+v", s)
	}
}

// A packet written in two pieces arrives whole, and the drop function
// sees it whole.
func TestWritePacketGather(t *testing.T) {
	a, b := New(20)
	defer a.Close()
	defer b.Close()
	cb := newCollector()
	b.Attach(cb)
	var seen []byte
	a.SetDropFunc(func(p []byte) bool { seen = bytes.Clone(p); return false })
	hdr, payload := []byte("head:"), []byte("the body")
	if err := a.WritePacketGather(hdr, payload); err != nil {
		t.Fatal(err)
	}
	hdr[0], payload[0] = 'X', 'X' // the pipe must have copied both
	if got := cb.wait(t, 1); string(got[0]) != "head:the body" {
		t.Errorf("delivered %q", got[0])
	}
	if string(seen) != "head:the body" {
		t.Errorf("drop function saw %q", seen)
	}
	a.WritePacketGather(make([]byte, 10), make([]byte, 11)) // 21 > MTU
	if s := a.Stats(); s.DropMTU != 1 || s.Sent != 1 {
		t.Errorf("stats %+v", s)
	}
}

type blocker struct{ release chan struct{} }

func (b *blocker) DeliverPacket([]byte) { <-b.release }

func TestQueueFullDrops(t *testing.T) {
	a, b := New(100)
	bl := &blocker{release: make(chan struct{})}
	b.Attach(bl)
	for i := 0; i < QueueLen+100; i++ {
		a.WritePacket([]byte{1})
	}
	s := a.Stats()
	if s.DropFull == 0 || s.Sent+s.DropFull != QueueLen+100 {
		t.Errorf("stats %+v", s)
	}
	close(bl.release)
	a.Close()
	b.Close()
}

func TestCloseStopsGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	for i := 0; i < 10; i++ {
		a, b := New(1500)
		a.Attach(newCollector())
		b.Attach(newCollector())
		a.WritePacket([]byte{1})
		a.Close()
		b.Close()
		b.Close()
		if err := a.WritePacket([]byte{1}); err != ErrClosed {
			t.Errorf("write after close: %v", err)
		}
	}
	deadline := time.Now().Add(time.Minute) // a hang guard, not a timing
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("goroutines: %d before, %d after", before, n)
	}
}

func TestConcurrentWriters(t *testing.T) {
	a, b := New(1500)
	defer a.Close()
	defer b.Close()
	cb := newCollector()
	b.Attach(cb)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				a.WritePacket([]byte{byte(w), byte(i)})
			}
		}()
	}
	wg.Wait()
	got := cb.wait(t, 400)
	if len(got) != 400 {
		t.Errorf("got %d", len(got))
	}
}

// batcher is a collector that also takes batches, and counts them.
type batcher struct {
	collector
	batches, inBatches int
}

func (c *batcher) DeliverPackets(pkts [][]byte) {
	c.mu.Lock()
	c.batches++
	c.inBatches += len(pkts)
	c.mu.Unlock()
	for _, p := range pkts {
		c.DeliverPacket(p)
	}
}

// TestBatchDelivery writes packets faster than they are delivered (the
// receiver is held up) and checks that a BatchDispatcher gets them in
// batches, each at most batchMax, all of them in order, and that the
// delivered count covers every packet.
func TestBatchDelivery(t *testing.T) {
	a, b := New(100)
	defer a.Close()
	defer b.Close()
	cb := &batcher{collector: *newCollector()}
	cb.mu.Lock() // hold deliveries up while the queue fills
	b.Attach(cb)
	const n = 500
	for i := 0; i < n; i++ {
		a.WritePacket([]byte{byte(i), byte(i >> 8)})
	}
	cb.mu.Unlock()
	got := cb.wait(t, n)
	for i, p := range got {
		if int(p[0])|int(p[1])<<8 != i {
			t.Fatalf("packet %d out of order", i)
		}
	}
	cb.mu.Lock()
	defer cb.mu.Unlock()
	if cb.batches == 0 || cb.inBatches < n/2 {
		t.Errorf("%d batches carried %d of %d packets: the queue was not drained in batches", cb.batches, cb.inBatches, n)
	}
	if cb.inBatches > cb.batches*batchMax {
		t.Errorf("%d packets in %d batches: over %d per batch", cb.inBatches, cb.batches, batchMax)
	}
	if s := b.Stats(); s.Delivered != n {
		t.Errorf("delivered %d, want %d", s.Delivered, n)
	}
}
