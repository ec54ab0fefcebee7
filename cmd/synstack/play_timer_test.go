package main

import (
	"slices"
	"testing"
)

// TestPlayIdleTimer looks at the timer the page shows pending after a
// handshake (at 1,000 ms, the initial RTO of the SYN and the SYN,ACK).
// Stepping to it must send nothing and change no state. It is the
// engine's shard clock timer, armed for the handshake's retransmission
// and left armed when the deadline went (internal/engine/timers.go keeps
// a timer armed earlier than needed, and fires it to find nothing due):
// the refused connect shows it with no connection left at all.
func TestPlayIdleTimer(t *testing.T) {
	c := newPlayClient(t)
	for _, sess := range []string{
		playHandshakeSession,
		"B.socket,B.connect.3.80,N.deliver.0,N.deliver.0", // refused: B's connection is gone
	} {
		st := c.post("/api/load", playLoad{Session: sess}, false).State
		if st.NextMs == nil {
			continue // the engine stops its timer: nothing to check
		}
		t.Logf("%s: a timer pending at %d ms with %d connections open", sess, *st.NextMs, len(playConnsOpen(st)))
		after := c.post("/api/clock", playClock{Op: "next"}, false).State
		if len(after.Flight) != 0 || len(after.Events) != len(st.Events)+1 || !slices.Equal(playConnsOpen(after), playConnsOpen(st)) {
			t.Errorf("%s: stepping to the idle timer changed something: %v", sess, eventRows(after)[len(st.Events):])
		}
	}
}

// playConnsOpen lists the connections not CLOSED, as "host state".
func playConnsOpen(s playState) []string {
	var out []string
	for _, h := range s.Hosts {
		for _, c := range h.Conns {
			if c.State != "CLOSED" {
				out = append(out, h.Name+" "+c.State)
			}
		}
	}
	return out
}
