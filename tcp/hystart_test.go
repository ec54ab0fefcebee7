package tcp_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/synstack/synstack/tcp"
	"github.com/synstack/synstack/tcp/tcptest"
)

// hystartOpen opens a CUBIC connection with SACK whose first flight of ten
// segments is acknowledged after rtt, in one ACK (cwnd 20), with 50 more
// segments queued. The segments sent are left unread.
func hystartOpen(t *testing.T, rtt time.Duration) *tcptest.Conn {
	c := tcptest.New(t, tcp.Config{})
	c.Listen()
	c.In("S 0:0(0) win 65535 <mss 1000,sackOK,nop,nop,nop,wscale 7>")
	c.Out("S. 0:0(0) ack 1")
	c.Advance(rtt)
	c.In(". 1:1(0) ack 1 win 2000")
	c.Write(strings.Repeat("x", 60000))
	c.Advance(rtt)
	c.In(". 1:1(0) ack 10001 win 2000")
	if got := c.Conn().Info(c.Now()).Cwnd; got != 20 {
		t.Fatalf("cwnd %d after the first flight, want 20", got)
	}
	return c
}

func ssthresh(c *tcptest.Conn) int { return c.Conn().Info(c.Now()).Ssthresh }

// The ACK train: ACKs no more than 2 ms apart for more than half the
// minimum delay (plus 1 ms) since the round began end slow start
// (Linux's HYSTART_ACK_TRAIN).
func TestHyStartAckTrain(t *testing.T) {
	c := hystartOpen(t, 10*time.Millisecond)
	c.Advance(10 * time.Millisecond)
	ack := 10001
	for i := range 12 {
		ack += 2000
		c.In(". 1:1(0) ack " + strconv.Itoa(ack) + " win 2000")
		if ss := ssthresh(c); ss != 0x7fffffff {
			// 5.5 ms of train: the seventh ACK, 6 ms after the first.
			if i != 6 {
				t.Fatalf("slow start ended at ACK %d, want the seventh", i+1)
			}
			if want := 20 + 2*6; ss != want {
				t.Fatalf("ssthresh %d, want the window then, %d", ss, want)
			}
			return
		}
		c.Advance(time.Millisecond)
	}
	t.Fatal("an ACK train of 11 ms did not end slow start")
}

// The delay detector: when the ninth and later RTT samples of a round
// are all above the minimum delay by an eighth of it (4..16 ms), slow
// start ends; an increase below that does not end it
// (testdata/scripts/cc/cubic-hystart-delay.pkt).
func TestHyStartDelay(t *testing.T) {
	for _, tc := range []struct {
		extra time.Duration
		exits bool
	}{{25 * time.Millisecond, true}, {10 * time.Millisecond, false}} {
		c := hystartOpen(t, 100*time.Millisecond)
		c.Advance(100*time.Millisecond + tc.extra)
		ack := 10001
		for range 10 {
			ack += 2000
			c.In(". 1:1(0) ack " + strconv.Itoa(ack) + " win 2000")
			c.Advance(3 * time.Millisecond) // no ACK train
		}
		if got := ssthresh(c) != 0x7fffffff; got != tc.exits {
			t.Errorf("RTT 100 ms then +%v: slow start ended %v, want %v", tc.extra, got, tc.exits)
		}
	}
}

// Below 16 segments HyStart does nothing.
func TestHyStartNotBelowLowWindow(t *testing.T) {
	c := tcptest.New(t, tcp.Config{})
	c.Listen()
	c.In("S 0:0(0) win 65535 <mss 1000,sackOK,nop,nop,nop,wscale 7>")
	c.Out("S. 0:0(0) ack 1")
	c.Advance(100 * time.Millisecond)
	c.In(". 1:1(0) ack 1 win 2000")
	c.Write(strings.Repeat("x", 10000))
	c.Advance(100 * time.Millisecond)
	for ack := 1001; ack <= 5001; ack += 1000 { // cwnd 10 to 14, RTT rising
		c.In(". 1:1(0) ack " + strconv.Itoa(ack) + " win 2000")
		c.Advance(10 * time.Millisecond)
	}
	if ss := ssthresh(c); ss != 0x7fffffff {
		t.Fatalf("ssthresh %d below the low window, want infinite", ss)
	}
}
