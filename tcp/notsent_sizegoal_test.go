package tcp_test

import (
	"testing"

	"github.com/synstack/synstack/tcp"
)

// Under TCP_NOTSENT_LOWAT a write fills segments of Linux's size goal (half
// the peer's largest window, in whole MSS) and checks the mark only before
// it starts a new one. The figures are what Linux 6.18 returns for a
// non-blocking write of 59000 bytes right after the handshake (cwnd 10,
// MSS 1000), measured with real packetdrill for these windows and marks.
func TestNotSentLowatWriteRoom(t *testing.T) {
	for _, tc := range []struct {
		win   string // the ACK's window field, scale 7
		lowat int
		want  int
	}{
		{"257", 1, 26000},     // goal 16000: 10000 leave, the rest of the first segment and one more
		{"257", 4000, 26000},  // the same: the mark is checked with 6000 unsent
		{"257", 16001, 42000}, // 16000 unsent is under the mark: one more segment
		{"100", 4000, 16000},  // goal 6000, the window (12800) sends 10000
		{"400", 4000, 35000},  // goal 25000
		{"1000", 4000, 74000}, // goal 64000: Linux takes the whole 59000
	} {
		c := passiveOpen(t, tcp.Config{SndBuf: 1 << 20, NotSentLowat: tc.lowat}, tc.win)
		if got := c.Conn().Writable(); got != tc.want {
			t.Errorf("win %s, lowat %d: Writable() = %d, want %d", tc.win, tc.lowat, got, tc.want)
		}
	}
}
