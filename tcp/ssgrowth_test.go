package tcp_test

import (
	"strings"
	"testing"
	"time"

	"github.com/synstack/synstack/tcp"
)

// Slow start grows the window by what an ACK delivered, the segments its
// SACK blocks newly cover included, as Linux's tcp_cong_control passes
// acked_sacked to the algorithm (testdata/scripts/cc/cubic-backoff.pkt,
// reno-backoff.pkt).
func TestSlowStartCountsSackedSegments(t *testing.T) {
	for _, cc := range []struct {
		name     string
		ssthresh int
	}{{tcp.CongestionCubic, 8}, {tcp.CongestionReno, 4}} { // Reno: half the flight (RFC 5681), not Linux's half of cwnd
		t.Run(cc.name, func(t *testing.T) {
			c := passiveOpen(t, tcp.Config{}, "257")
			if err := c.Conn().SetCongestion(cc.name); err != nil {
				t.Fatal(err)
			}
			c.Write(strings.Repeat("x", 10000))
			outPairs(c, 0, 10)
			c.Advance(100 * time.Millisecond)
			// One segment acknowledged, one SACKed: two delivered.
			c.In(". 1:1(0) ack 1001 win 257 <nop,nop,sack 2001:3001>")
			if got := c.Conn().Info(c.Now()).Cwnd; got != 12 {
				t.Fatalf("cwnd %d segments after an ACK delivering two, want 12", got)
			}
			// Duplicate ACKs deliver by SACK but advance nothing: no growth
			// (Linux's tcp_may_raise_cwnd); the third SACKed segment starts
			// recovery from the 12-segment window.
			c.In(". 1:1(0) ack 1001 win 257 <nop,nop,sack 2001:4001>")
			c.In(". 1:1(0) ack 1001 win 257 <nop,nop,sack 2001:5001>")
			c.Out(". 1001:2001(1000) ack 1")
			inf := c.Conn().Info(c.Now())
			if inf.Ssthresh != cc.ssthresh || inf.CAState != 3 {
				t.Fatalf("ssthresh %d, state %d after the loss; want %d in recovery (3)", inf.Ssthresh, inf.CAState, cc.ssthresh)
			}
		})
	}
}
