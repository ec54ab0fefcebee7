package tun

import "testing"

// TxRoom says no once a queue reaches its high-water mark, or once
// bigHighWater large (TSO) packets are out, and the writers' check
// (roomReturned) calls back only when both have drained to half, once.
func TestTxRoom(t *testing.T) {
	e := newEndpoint(1500)
	e.queues = []*queue{{out: make(chan *[]byte, 16)}}
	e.highWater, e.lowWater = 14, 8
	calls := 0
	e.OnTxRoom(func() { calls++ })
	if !e.TxRoom() {
		t.Fatal("an empty link has no room")
	}
	fill := func(n int) {
		for range n {
			e.queues[0].out <- new([]byte)
		}
	}
	drain := func(n int) {
		for range n {
			<-e.queues[0].out
		}
	}
	fill(14)
	if e.TxRoom() {
		t.Fatal("room at the queue's high-water mark")
	}
	drain(5) // 9 queued: above the low-water mark
	e.roomReturned()
	if calls != 0 {
		t.Fatal("called back above the low-water mark")
	}
	drain(1)
	e.roomReturned()
	e.roomReturned()
	if calls != 1 {
		t.Fatalf("%d call backs at the low-water mark, want 1", calls)
	}
	drain(8)

	// Large packets: few in the queue, but their buffers are bounded.
	e.bigOut.Store(bigHighWater)
	if e.TxRoom() {
		t.Fatal("room with bigHighWater large packets out")
	}
	e.bigOut.Store(bigLowWater + 1)
	e.roomReturned()
	if calls != 1 {
		t.Fatal("called back with more than half the large packets out")
	}
	e.bigOut.Store(bigLowWater)
	e.roomReturned()
	if calls != 2 || !e.TxRoom() {
		t.Fatalf("%d call backs and room %v with the large packets at half; want 2, true", calls, e.TxRoom())
	}
	if st := e.Stats(); st.Throttled != 2 {
		t.Errorf("Throttled %d, want 2", st.Throttled)
	}
}
