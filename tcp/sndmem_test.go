package tcp_test

import (
	"testing"
	"time"

	"github.com/synstack/synstack/tcp"
)

// A write takes whole buffers of the size goal while the send buffer's
// memory, payload and about 700 bytes a buffer, is below SO_SNDBUF, and
// fills the buffer it starts. The figures are what Linux 6.18 takes in one
// non-blocking write of 200,000 right after the handshake (MSS 1000, the
// peer's window 50,000: a size goal of 25,000; cwnd 10): the first buffer
// is pushed when full, its unsent rest topped up to the goal.
func TestWriteTakesWholeBuffers(t *testing.T) {
	for _, tc := range []struct{ sndbuf, want int }{
		{10000, 35000},
		{20000, 35000},
		{42000, 60000},
		{60000, 60000},
		{100000, 110000},
	} {
		c := passiveOpen(t, tcp.Config{}, "391") // 50,048
		c.Conn().SetBuffers(0, tc.sndbuf)
		n, err := c.Conn().Write(c.Now(), make([]byte, 200000))
		if err != nil || n != tc.want {
			t.Errorf("SO_SNDBUF %d: Write = %d, %v; want %d", tc.sndbuf, n, err, tc.want)
		}
	}
}

// With buffers of one segment the overhead counts: Linux's SO_SNDBUF floor
// of 4,608 holds three segments of 1,000 (packetdrill's
// timestamping/partial.pkt, with 988).
func TestWriteSmallBufferCountsOverhead(t *testing.T) {
	c := passiveOpen(t, tcp.Config{}, "16") // 2,048: a goal of one segment
	c.Conn().SetBuffers(0, 4608)
	n, err := c.Conn().Write(c.Now(), make([]byte, 10000))
	if err != nil || n != 3000 {
		t.Fatalf("Write = %d, %v; want 3000", n, err)
	}
	c.Out(". 1:1001(1000) ack 1")
	c.Out("P. 1001:2001(1000) ack 1")
	c.NoOut()
}

// A blocked writer wakes when the free memory is at least half of what the
// queue holds, overhead included, each packet in flight a buffer of its
// own (packetdrill's blocking/blocking-write.pkt, tcp_min_tso_segs 10:
// 60,000 of a 61,000 write queued at once with SO_SNDBUF 42,000; then
// everything in flight in three packets of 10,000; Linux 6.18 does not
// wake the writer at the ACK of 34,001, 26,000 in three buffers, and
// wakes it at that of 35,001, 25,000 in three).
func TestWriteWakeCountsBuffers(t *testing.T) {
	c := passiveOpen(t, tcp.Config{MinTSOSegs: 10}, "391")
	c.Conn().SetBuffers(0, 42000)
	if n, _ := c.Conn().Write(c.Now(), make([]byte, 61000)); n != 60000 {
		t.Fatalf("Write = %d, want 60000", n)
	}
	for _, step := range []struct {
		ack   string
		ready bool
	}{
		{"10001", false},
		{"30001", false},
		{"34001", false},
		{"35001", true},
	} {
		c.Advance(100 * time.Millisecond)
		c.In(". 1:1(0) ack " + step.ack + " win 391")
		if got := c.Conn().WriteReady(); got != step.ready {
			t.Fatalf("after ACK %s: WriteReady() = %v, want %v", step.ack, got, step.ready)
		}
	}
	if n, _ := c.Conn().Write(c.Now(), make([]byte, 1000)); n != 1000 {
		t.Fatalf("the last write took %d, want 1000", n)
	}
}

// A write tops up the last unsent buffer to the size goal without looking
// at the send buffer, and starts none past it: as Linux 6.18, which takes
// 30,000, then 5,000, then nothing with SO_SNDBUF 20,000 (the size goal
// 25,000; the first 10,000 left at once, the rest is a buffer of its own).
func TestWriteTopsUpLastBuffer(t *testing.T) {
	c := passiveOpen(t, tcp.Config{}, "391")
	c.Conn().SetBuffers(0, 20000)
	for i, w := range []struct{ size, want int }{{30000, 30000}, {100000, 5000}, {100000, 0}} {
		if n, _ := c.Conn().Write(c.Now(), make([]byte, w.size)); n != w.want {
			t.Fatalf("write %d took %d, want %d", i+1, n, w.want)
		}
	}
}
