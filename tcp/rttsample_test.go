package tcp_test

import (
	"strings"
	"testing"
	"time"

	"github.com/synstack/synstack/tcp"
)

// Without timestamps every ACK of new data is an RTT sample, timed from
// the first segment it acknowledges, as Linux's tcp_clean_rtx_queue does,
// not one timed segment per round trip: the ACK of the last two of three
// segments sent together gives 30 ms, and SRTT moves toward it (checked on
// Linux 6.18: packetdrill's notsent-lowat-setsockopt.pkt, whose ACKs come
// 10, 20 and 30 ms after its first burst, shows tcpi_rtt between 12 and
// 15 ms there, not 10).
func TestRTTSampleEveryAck(t *testing.T) {
	c := passiveOpen(t, tcp.Config{}, "257") // handshake: 100 ms
	c.Write(strings.Repeat("x", 3000))
	for _, seg := range []string{". 1:1001", "P. 1001:2001", "P. 2001:3001"} {
		c.Out(seg + "(1000) ack 1")
	}
	c.NoOut()
	for _, ack := range []struct {
		after time.Duration
		una   string
	}{{10 * time.Millisecond, "1001"}, {20 * time.Millisecond, "3001"}} {
		c.Advance(ack.after)
		c.In(". 1:1(0) ack " + ack.una + " win 257")
	}
	// RFC 6298 2.3 on 100, 10 and 30 ms.
	srtt := 100 * time.Millisecond
	for _, r := range []time.Duration{10 * time.Millisecond, 30 * time.Millisecond} {
		srtt += (r - srtt) / 8
	}
	if got := c.Conn().Info(c.Now()).RTT; got != srtt {
		t.Fatalf("SRTT %v, want %v", got, srtt)
	}
}
