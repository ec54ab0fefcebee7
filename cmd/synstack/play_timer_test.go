package main

import (
	"testing"
)

// TestPlayIdleTimer: once no connection has a deadline, no timer is
// pending. The engine's shard clock timer was once left armed when its
// last deadline went, so the page showed a timer at 1,000 ms after a
// handshake (the SYN's and SYN,ACK's first RTO) and after a refused
// connect with no connection left; stepping to it changed nothing.
func TestPlayIdleTimer(t *testing.T) {
	c := newPlayClient(t)
	for _, sess := range []string{
		playHandshakeSession,
		"B.socket,B.connect.3.80,N.deliver.0,N.deliver.0", // refused: B's connection is gone
	} {
		st := c.post("/api/load", playLoad{Session: sess}, false).State
		if st.NextMs != nil {
			t.Errorf("%s: a timer pending at %d ms with %d connections open and nothing due", sess, *st.NextMs, len(playConnsOpen(st)))
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
