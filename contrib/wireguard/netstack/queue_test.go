package netstack

import (
	"errors"
	"os"
	"testing"
)

// TestQueueBounds: the queue holds queueLen packets and drops the next
// one, drops a packet over the MTU, and Read takes as many as its buffers
// hold, in order, dropping one longer than its buffer.
func TestQueueBounds(t *testing.T) {
	q := newQueue(1280)
	if err := q.WritePacket(make([]byte, 1281)); err != nil {
		t.Fatal(err)
	}
	if d := q.drops.Load(); d != 1 {
		t.Fatalf("a packet over the MTU: %d drops, want 1", d)
	}
	// Packet i is 2 bytes (i, little-endian) and more: packet 5 is 50.
	for i := range queueLen + 1 {
		pad := 0
		if i == 5 {
			pad = 48
		}
		if err := q.WritePacketGather([]byte{byte(i), byte(i >> 8)}, make([]byte, pad)); err != nil {
			t.Fatal(err)
		}
	}
	if d := q.drops.Load(); d != 2 || q.n != queueLen {
		t.Fatalf("%d queued, %d drops after %d writes; want %d queued, 2 drops", q.n, d, queueLen+1, queueLen)
	}
	bufs := make([][]byte, batchSize)
	for i := range bufs {
		bufs[i] = make([]byte, 4+10)
	}
	sizes := make([]int, len(bufs))
	n, err := q.read(bufs, sizes, 4)
	if err != nil || n != batchSize {
		t.Fatalf("read: %d packets, %v; want %d", n, err, batchSize)
	}
	for i := range n {
		want := i
		if i >= 5 {
			want = i + 1 // packet 5 was dropped
		}
		if got := int(bufs[i][4]) | int(bufs[i][5])<<8; got != want || sizes[i] != 2 {
			t.Fatalf("buffer %d holds packet %d of %d bytes, want packet %d of 2", i, got, sizes[i], want)
		}
	}
	if d := q.drops.Load(); d != 3 {
		t.Fatalf("%d drops after a packet longer than its buffer, want 3", d)
	}
	if q.n != queueLen-batchSize-1 || len(q.free) != batchSize+1 {
		t.Fatalf("%d queued and %d free buffers after the read, want %d and %d", q.n, len(q.free), queueLen-batchSize-1, batchSize+1)
	}
	q.Close()
	if _, err := q.read(bufs, sizes, 4); !errors.Is(err, os.ErrClosed) {
		t.Errorf("read after Close: %v", err)
	}
	if err := q.WritePacket([]byte{1}); !errors.Is(err, os.ErrClosed) {
		t.Errorf("write after Close: %v", err)
	}
}
