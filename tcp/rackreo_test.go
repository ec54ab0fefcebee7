package tcp_test

import (
	"strings"
	"testing"
	"time"

	"github.com/synstack/synstack/tcp"
)

// A D-SACK widens RACK's reordering window only once reordering has been
// seen (Linux's tcp_dsack_seen; testdata/scripts/recovery/
// rack-dsack-reo-wnd.pkt): a spurious resend alone leaves the window at a
// quarter of the minimum RTT (25 ms, the timer 27 ms); after a SACK below
// an earlier one, the next D-SACK makes it two quarters (the timer 52 ms).
func TestRackDSACKWidensOnlyAfterReordering(t *testing.T) {
	c := passiveOpen(t, tcp.Config{}, "257")
	// round writes five segments from k; the one at lost is late by more
	// than the window: the ACK SACKs the next one (reordered: the one
	// after next, then the next), RACK resends the late one after resend,
	// and then the original and the resend both arrive.
	round := func(k, lost int, reordered bool, resend time.Duration) {
		t.Helper()
		c.Write(strings.Repeat("x", 5000))
		outBurst(c, k, 5)
		c.Advance(100 * time.Millisecond)
		ack := ". 1:1(0) ack " + seqOf(lost) + " win 257 <nop,nop,sack "
		if reordered {
			c.In(ack + span(lost+2, lost+3) + ">")
			c.In(ack + span(lost+1, lost+3) + ">")
		} else {
			c.In(ack + span(lost+1, lost+2) + ">")
		}
		c.Fire(resend)
		c.Out(". " + seg(lost) + " ack 1")
		c.Advance(30 * time.Millisecond)
		c.In(". 1:1(0) ack " + seqOf(k+5) + " win 257")
		c.In(". 1:1(0) ack " + seqOf(k+5) + " win 257 <nop,nop,sack " + span(lost, lost+1) + ">")
		c.NoOut()
	}
	round(0, 1, false, 27*time.Millisecond)
	round(5, 6, false, 27*time.Millisecond)  // the D-SACK changed nothing
	round(10, 10, true, 27*time.Millisecond) // reordering seen, then a D-SACK
	c.Write(strings.Repeat("x", 4000))
	outBurst(c, 15, 4)
	c.Advance(100 * time.Millisecond)
	c.In(". 1:1(0) ack 16001 win 257 <nop,nop,sack " + span(17, 18) + ">")
	c.Fire(52 * time.Millisecond)
	c.Out(". " + seg(16) + " ack 1")
	if got := c.Conn().Info(c.Now()).DSACKDups; got != 3 {
		t.Fatalf("tcpi_dsack_dups %d, want 3", got)
	}
}
