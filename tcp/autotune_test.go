package tcp

import (
	"math/rand/v2"
	"testing"
	"time"
)

// bulk moves size bytes from A to B over a path with the given one-way
// delay and no loss, B reading everything as it arrives, and returns the
// virtual time it took and B's final receive buffer.
func bulk(t *testing.T, size int, delay time.Duration, mod func(*Config)) (time.Duration, int) {
	t.Helper()
	net := &lossyNet{rng: rand.New(rand.NewPCG(1, 2)), now: time.Unix(10000, 0), delay: delay}
	var conns [2]*Conn
	for i := range conns {
		i := i
		cfg := Config{Output: func(s *Segment) { net.send(1-i, s) }, SndBuf: 8 << 20}
		if mod != nil {
			mod(&cfg)
		}
		conns[i] = NewConn(cfg, 1000)
	}
	a, b := conns[0], conns[1]
	b.Listen()
	start := net.now
	a.Connect(net.now)
	data := make([]byte, size)
	written, got := 0, 0
	buf := make([]byte, 1<<20)
	for steps := 0; got < size; steps++ {
		if steps > 10_000_000 {
			t.Fatalf("stalled at %d of %d", got, size)
		}
		if a.State() == Established && written < size {
			n, _ := a.Write(net.now, data[written:])
			written += n
		}
		for {
			n, _ := b.Read(net.now, buf)
			if n == 0 {
				break
			}
			got += n
		}
		if !net.step(conns, nil) {
			t.Fatalf("nothing to do at %d of %d", got, size)
		}
	}
	return net.now.Sub(start), int(b.rq.bufSize)
}

// Autotuning lets the window outgrow the initial 64 KiB on a long path:
// the transfer ends in a fraction of the time a fixed buffer takes, and the
// buffer stops at tcp_rmem[2].
func TestReceiveBufferAutotuning(t *testing.T) {
	const size = 32 << 20
	const delay = 50 * time.Millisecond // 100 ms round trip
	for _, ts := range []bool{true, false} {
		tuned, buf := bulk(t, size, delay, func(c *Config) { c.NoTimestamps = !ts })
		fixed, fbuf := bulk(t, size, delay, func(c *Config) { c.NoTimestamps = !ts; c.RcvBufLocked = true })
		t.Logf("timestamps %v: autotuned %v (buffer %d), fixed %v (buffer %d)", ts, tuned, buf, fixed, fbuf)
		if buf <= defaultRcvBuf*8 || buf > defaultRcvBufMax {
			t.Errorf("timestamps %v: buffer grew to %d, want well above %d and at most %d", ts, buf, defaultRcvBuf, defaultRcvBufMax)
		}
		if fbuf != defaultRcvBuf {
			t.Errorf("a locked buffer changed to %d", fbuf)
		}
		if tuned*4 > fixed {
			t.Errorf("timestamps %v: autotuned transfer took %v, not a quarter of the fixed buffer's %v", ts, tuned, fixed)
		}
	}
}
