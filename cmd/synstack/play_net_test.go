package main

import (
	"strings"
	"testing"
)

// flightIDs is the packets in flight, by ID, in order.
func flightIDs(s playState) []int {
	var ids []int
	for _, p := range s.Flight {
		ids = append(ids, p.ID)
	}
	return ids
}

// TestPlayNetworkFaults delays, duplicates and reorders B's data on its
// way to A. A held packet waits out "deliver all" and arrives when the
// clock reaches it, not before; a duplicate arrives twice and A answers
// it; two segments swapped arrive out of order and A's ACK of the gap
// carries a SACK block. The session's script, with those, passes Strict.
func TestPlayNetworkFaults(t *testing.T) {
	c := newPlayClient(t)
	r := c.post("/api/load", playLoad{Session: playHandshakeSession + ",B.nodelay.3.1"}, false)
	if !strings.Contains(eventRows(r.State)[len(r.State.Events)-1], "setsockopt(3, IPPROTO_TCP, TCP_NODELAY, 1) = 0") {
		t.Fatalf("TCP_NODELAY: %v", eventRows(r.State))
	}
	// Delay: held 150 ms (less than the RTO, 200 ms).
	r = c.post("/api/call", playCall{Host: "B", Op: "write", FD: 3, N: 100}, false)
	data := r.State.Flight[0].ID
	c.post("/api/net", playNet{Op: "delay", ID: data, Ms: 150}, false)
	r = c.post("/api/net", playNet{Op: "deliver-all"}, false)
	if ids := flightIDs(r.State); len(ids) != 1 || ids[0] != data || r.State.Flight[0].Held == nil || *r.State.Flight[0].Held != 150 {
		t.Fatalf("after deliver-all: %+v, want the held packet alone, until 150 ms", r.State.Flight)
	}
	c.post("/api/net", playNet{Op: "deliver"}, true) // only held packets: nothing is next
	r = c.post("/api/clock", playClock{Op: "advance", Ms: 149}, false)
	if len(r.State.Flight) != 1 {
		t.Fatalf("at 149 ms: %+v", r.State.Flight)
	}
	r = c.post("/api/clock", playClock{Op: "advance", Ms: 1}, false)
	if !containsHost(eventRows(r.State), "A", "delivered to A: ") || len(r.State.Flight) == 0 || r.State.Flight[0].From != "A" {
		t.Fatalf("at 150 ms: in flight %+v, want A's answer to the delivered data", r.State.Flight)
	}
	c.post("/api/net", playNet{Op: "deliver-all"}, false)

	// Duplicate: A gets the same segment twice and acknowledges again.
	r = c.post("/api/call", playCall{Host: "B", Op: "write", FD: 3, N: 50}, false)
	seg := r.State.Flight[0].ID
	r = c.post("/api/net", playNet{Op: "dup", ID: seg}, false)
	if len(r.State.Flight) != 2 || r.State.Flight[1].DupOf != seg || r.State.Flight[1].Seq != r.State.Flight[0].Seq {
		t.Fatalf("after dup: %+v", r.State.Flight)
	}
	c.net("deliver", "PSH,ACK")
	r = c.net("deliver", "PSH,ACK")
	var acksA int
	for _, p := range r.State.Flight {
		if p.From == "A" {
			acksA++
		}
	}
	if acksA == 0 {
		t.Errorf("A did not answer the duplicate: in flight %+v", r.State.Flight)
	}
	c.post("/api/net", playNet{Op: "deliver-all"}, false)

	// Reorder: two segments change places; A acknowledges the gap with SACK.
	c.post("/api/call", playCall{Host: "B", Op: "write", FD: 3, N: 10}, false)
	r = c.post("/api/call", playCall{Host: "B", Op: "write", FD: 3, N: 20}, false)
	ids := flightIDs(r.State)
	if len(ids) != 2 {
		t.Fatalf("two writes with TCP_NODELAY: in flight %+v, want two segments", r.State.Flight)
	}
	r = c.post("/api/net", playNet{Op: "swap", ID: ids[0], ID2: ids[1]}, false)
	if got := flightIDs(r.State); got[0] != ids[1] || got[1] != ids[0] {
		t.Fatalf("after swap: %v, want %v reversed", got, ids)
	}
	r = c.post("/api/net", playNet{Op: "deliver"}, false)
	if ack := r.State.Flight[len(r.State.Flight)-1]; ack.From != "A" || !strings.Contains(ack.Rel, "sack") {
		t.Errorf("A's answer to the later segment first: %+v, want an ACK with a SACK block", ack)
	}
	r = c.post("/api/net", playNet{Op: "deliver-all"}, false)
	if got := c.call("A", "read", 4, 0, "").Result.Ret; got != 100+50+10+20 {
		t.Errorf("A read %d bytes, want 180 (each byte once, in order)", got)
	}
	for _, bad := range []playNet{{Op: "swap", ID: ids[0]}, {Op: "delay", ID: 0, Ms: 0}, {Op: "dup", ID: 999}, {Op: "swap", ID: 999, ID2: ids[0]}} {
		c.post("/api/net", bad, true)
	}
	checkPlayScript(t, "faults", c.get("/api/export/script"))
}

// TestPlayOptions sets the remaining options through the panel: each
// returns what the socket layer returns; SO_LINGER 0 makes close reset;
// SO_REUSEPORT lets two listeners share a port; SO_RCVBUF shrinks the
// window A advertises; dup keeps a connection open past the first close.
func TestPlayOptions(t *testing.T) {
	c := newPlayClient(t)
	opt := func(host, op string, fd, v int, errno string) playReply {
		t.Helper()
		r := c.post("/api/call", playCall{Host: host, Op: op, FD: fd, Value: v}, false)
		if r.Result.Errno != errno {
			t.Fatalf("%s: want errno %q", r.Result.Text, errno)
		}
		return r
	}
	// Two listeners on port 80 with SO_REUSEPORT.
	l1 := c.call("A", "socket", 0, 0, "").Result.Ret
	opt("A", "reuseport", l1, 1, "")
	opt("A", "rcvbuf", l1, 4096, "")
	opt("A", "keepalive", l1, 1, "")
	opt("A", "sndbuf", l1, 8192, "")
	c.call("A", "bind", l1, 80, "")
	c.call("A", "listen", l1, 0, "")
	l2 := c.call("A", "socket", 0, 0, "").Result.Ret
	c.call("A", "bind", l2, 80, "EADDRINUSE")
	opt("A", "reuseport", l2, 1, "")
	c.call("A", "bind", l2, 80, "")
	opt("A", "linger", 99, 0, "EBADF")
	c.post("/api/call", playCall{Host: "A", Op: "linger", FD: l1, Value: -2}, true)

	cfd := c.call("B", "socket", 0, 0, "").Result.Ret
	c.call("B", "connect", cfd, 80, "EINPROGRESS")
	c.net("deliver", "SYN")
	synack := c.state().Flight[0]
	if synack.Flags != "SYN,ACK" || synack.Win == 65535 {
		t.Errorf("A's SYN,ACK with SO_RCVBUF 4096: %+v, want a smaller window than 65535", synack)
	}
	c.post("/api/net", playNet{Op: "deliver-all"}, false)
	afd := c.call("A", "accept", l1, 0, "").Result.Ret
	// dup: closing one descriptor sends nothing; the last one sends the FIN.
	d := c.call("B", "dup", cfd, 0, "").Result.Ret
	r := c.call("B", "close", cfd, 0, "")
	if len(r.State.Flight) != 0 {
		t.Errorf("closing a dup'ed descriptor sent %+v", r.State.Flight)
	}
	r = c.call("B", "close", d, 0, "")
	if len(r.State.Flight) != 1 || !strings.Contains(r.State.Flight[0].Flags, "FIN") {
		t.Errorf("closing the last descriptor: in flight %+v, want a FIN", r.State.Flight)
	}
	c.post("/api/net", playNet{Op: "deliver-all"}, false)
	// SO_LINGER 0: close resets.
	opt("A", "linger", afd, 0, "")
	r = c.call("A", "close", afd, 0, "")
	if len(r.State.Flight) != 1 || !strings.Contains(r.State.Flight[0].Flags, "RST") {
		t.Errorf("close with SO_LINGER 0: in flight %+v, want a RST", r.State.Flight)
	}
	checkPlayScript(t, "options", c.get("/api/export/script"))
}
