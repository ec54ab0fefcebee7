package tcp

import (
	"testing"
	"time"
)

// TestChrono follows Linux's tcp_chrono: one kind runs at a time, a more
// specific one takes over, stopping it falls back to busy while data
// remains and to nothing once all is acknowledged; busy time is the sum.
func TestChrono(t *testing.T) {
	var c Conn
	at := func(ms int) instant { return instant(time.Hour) + instant(ms)*instant(time.Millisecond) }
	want := func(now int, busy, rwnd, sndbuf int) {
		t.Helper()
		b, r, s := c.chronoTimes(at(now))
		ms := time.Millisecond
		if b != time.Duration(busy)*ms || r != time.Duration(rwnd)*ms || s != time.Duration(sndbuf)*ms {
			t.Errorf("at %d ms: busy %v rwnd %v sndbuf %v, want %d %d %d ms", now, b, r, s, busy, rwnd, sndbuf)
		}
	}
	want(0, 0, 0, 0)
	c.sq.n = 100 // data queued
	c.chronoStart(at(0), chronoBusy)
	c.chronoStart(at(10), chronoRwnd)
	c.chronoStart(at(15), chronoBusy) // less specific: no change
	want(20, 20, 10, 0)
	c.chronoStop(at(30), chronoRwnd) // data remains: busy again
	c.chronoStop(at(35), chronoSndbuf)
	c.chronoStart(at(40), chronoSndbuf)
	want(45, 45, 20, 5)
	c.sq.n = 0 // all acknowledged
	c.chronoStop(at(50), chronoSndbuf)
	want(100, 50, 20, 10)
	if k := c.stats.more.chronoKind; k != chronoNone {
		t.Errorf("kind %d after the queues emptied, want none", k)
	}
	if d := since(at(100), chronoMS(at(40))); d != 60*time.Millisecond {
		t.Errorf("since = %v, want 60ms", d)
	}
	if d := since(at(100), 0); d != 0 {
		t.Errorf("since(never) = %v, want 0", d)
	}
}
