package tcp

import (
	"testing"
	"time"
)

// TestFQPacing: with Config.Pacing (Linux under the fq qdisc) CUBIC paces
// at PacingRate once it has an RTT sample (before it, as Linux's
// sk_pacing_rate, unlimited); without it only BBR paces.
func TestFQPacing(t *testing.T) {
	for _, on := range []bool{false, true} {
		n := newNet(t, func(c *Config) { c.Pacing = on })
		a := n.a.c
		if r := a.pacingRate(a.at(n.now)); r != 0 {
			t.Errorf("pacing %v: rate %v before the handshake, want 0 (unlimited)", on, r)
		}
		n.b.c.Listen()
		if err := a.Connect(n.now); err != nil {
			t.Fatal(err)
		}
		n.wait(10 * time.Millisecond) // the SYN,ACK comes back 10 ms later: an RTT sample
		n.settle()
		got, want := a.pacingRate(a.at(n.now)), float64(a.PacingRate())
		if want <= 0 {
			t.Fatalf("PacingRate %v after the handshake: no RTT sample?", want)
		}
		if !on {
			want = 0
		}
		if got != want {
			t.Errorf("pacing %v: cubic paces at %v, want %v", on, got, want)
		}
	}
}
