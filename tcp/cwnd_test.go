package tcp_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/synstack/synstack/tcp"
	"github.com/synstack/synstack/tcp/tcptest"
)

// grownTo20 opens a connection and grows its window to 20 segments with
// one flight of ten, all acknowledged.
func grownTo20(t *testing.T, cfg tcp.Config) *tcptest.Conn {
	c := passiveOpen(t, cfg, "320")
	c.Write(strings.Repeat("x", 10000))
	outPairs(c, 0, 10)
	c.Advance(100 * time.Millisecond)
	c.In(". 1:1(0) ack 10001 win 320")
	if got := c.Conn().Info(c.Now()).Cwnd; got != 20 {
		t.Fatalf("cwnd %d after slow start, want 20", got)
	}
	return c
}

// After more than an RTO with nothing in flight, the next data restarts
// the window from the initial one (testdata/scripts/cc/restart-after-idle.pkt);
// NoSlowStartAfterIdle keeps it.
func TestRestartAfterIdle(t *testing.T) {
	for _, keep := range []bool{false, true} {
		c := grownTo20(t, tcp.Config{NoSlowStartAfterIdle: keep})
		c.Advance(3 * time.Second)
		c.Write(strings.Repeat("x", 1000))
		c.Out("P. 10001:11001(1000) ack 1")
		want := 10
		if keep {
			want = 20
		}
		if got := c.Conn().Info(c.Now()).Cwnd; got != want {
			t.Errorf("NoSlowStartAfterIdle %v: cwnd %d after 3 s idle, want %d", keep, got, want)
		}
	}
}

// Less than an RTO of idleness keeps the window.
func TestNoRestartWithinRTO(t *testing.T) {
	c := grownTo20(t, tcp.Config{})
	c.Advance(100 * time.Millisecond)
	c.Write(strings.Repeat("x", 1000))
	c.Out("P. 10001:11001(1000) ack 1")
	if got := c.Conn().Info(c.Now()).Cwnd; got != 20 {
		t.Errorf("cwnd %d after 100 ms idle, want 20", got)
	}
}

// In slow start an application-limited sender grows the window to twice
// what it had in flight, no further (testdata/scripts/cc/slow-start-app-limited.pkt).
func TestSlowStartAppLimited(t *testing.T) {
	c := passiveOpen(t, tcp.Config{}, "320")
	c.Write(strings.Repeat("x", 6000))
	outPairs(c, 0, 6)
	c.Advance(100 * time.Millisecond)
	for _, ack := range []string{"2001", "4001", "6001"} {
		c.In(". 1:1(0) ack " + ack + " win 320")
		if got := c.Conn().Info(c.Now()).Cwnd; got != 12 {
			t.Fatalf("cwnd %d after ack %s, want 12", got, ack)
		}
	}
}

// A sender that keeps a window mostly unused for RTOs on end, one or two
// segments always in flight, sees it shrink halfway towards what it used,
// never below the initial window (RFC 2861, Linux's
// tcp_cwnd_application_limited); not with NoSlowStartAfterIdle.
func TestApplicationLimitedWindowShrinks(t *testing.T) {
	for _, keep := range []bool{false, true} {
		c := grownTo20(t, tcp.Config{NoSlowStartAfterIdle: keep})
		next, acked := 10001, 10001
		send := func() {
			c.Write(strings.Repeat("x", 1000))
			c.Out("P. " + strconv.Itoa(next) + ":" + strconv.Itoa(next+1000) + "(1000) ack 1")
			next += 1000
		}
		send()
		for range 30 {
			c.Advance(50 * time.Millisecond)
			send()
			acked += 1000
			c.In(". 1:1(0) ack " + strconv.Itoa(acked) + " win 320")
		}
		got := c.Conn().Info(c.Now()).Cwnd
		if keep && got != 20 || !keep && (got >= 20 || got < 10) {
			t.Errorf("NoSlowStartAfterIdle %v: cwnd %d after 1.5 s of one segment at a time; want 20 kept, or between 10 and 20", keep, got)
		}
	}
}
