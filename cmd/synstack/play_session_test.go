package main

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// playSnapshot is what must be the same in two runs of a session: the
// clock, the sockets, the packets in flight and the ladder.
func playSnapshot(t *testing.T, s playState) string {
	t.Helper()
	b, err := json.Marshal(struct {
		Ms     int64
		NextMs *int64
		Hosts  []playHostView
		Flight []*playPacket
		Events []playEvent
		Sess   string
	}{s.Ms, s.NextMs, s.Hosts, s.Flight, s.Events, s.Session})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestPlaySession plays a session with calls, network decisions and
// clock steps (a dropped SYN retransmitted, data, a close); the state
// carries it as text, and a fresh playground loading that text ends in
// the same state: the same clock, sockets, packets and ladder. "back"
// then undoes the last step exactly, and, at the start, refuses.
func TestPlaySession(t *testing.T) {
	c := newPlayClient(t)
	lfd, cfd, _ := c.listenAndConnect()
	c.net("drop", "SYN")
	c.post("/api/clock", playClock{Op: "next"}, false)
	c.post("/api/net", playNet{Op: "deliver-all"}, false)
	afd := c.call("A", "accept", lfd, 0, "").Result.Ret
	c.post("/api/call", playCall{Host: "B", Op: "write", FD: cfd, N: 10}, false)
	before := c.post("/api/clock", playClock{Op: "advance", Ms: 30}, false).State
	last := c.call("A", "close", afd, 0, "").State
	want := "A.socket,A.bind.3.80,A.listen.3.5,B.socket,B.connect.3.80,N.drop.0,T.next,N.all,A.accept.3,B.write.3.10,T.advance.30,A.close.4"
	if last.Session != want || last.Steps != 12 {
		t.Fatalf("session %q (%d steps), want %q", last.Session, last.Steps, want)
	}

	d := newPlayClient(t)
	got := d.post("/api/load", playLoad{Session: last.Session}, false).State
	if a, b := playSnapshot(t, last), playSnapshot(t, got); a != b {
		t.Errorf("the session loaded elsewhere differs:\n%s\nwant\n%s", b, a)
	}
	back := d.post("/api/back", struct{}{}, false).State
	if a, b := playSnapshot(t, before), playSnapshot(t, back); a != b {
		t.Errorf("back gives\n%s\nwant the state before the last step\n%s", b, a)
	}
	for range 11 {
		back = d.post("/api/back", struct{}{}, false).State
	}
	if back.Steps != 0 || len(back.Events) != 0 || back.Ms != 0 {
		t.Errorf("after undoing every step: %+v", back)
	}
	d.post("/api/back", struct{}{}, true)

	// A session that goes wrong stops at the step, keeping those before.
	r := d.post("/api/load", playLoad{Session: "A.socket,N.deliver.0,A.bind.3.80"}, true)
	if !strings.Contains(r.Error, "step 2") || r.State.Session != "A.socket" {
		t.Errorf("a failing step: error %q, session %q", r.Error, r.State.Session)
	}
}

// TestPlaySessionText reads and writes every kind of step, and refuses
// bad text with a message.
func TestPlaySessionText(t *testing.T) {
	good := "A.socket,A.reuseaddr.3.1,A.bind.3.80,A.listen.3.5,B.socket,B.connect.3.80,A.accept.3,A.write.4.100," +
		"B.read.3.1000,A.shutdown.4.WR,A.dup.4,A.linger.4.0,B.rcvbuf.3.2048,N.deliver.0,N.drop.7,N.all,N.delay.3.200," +
		"N.dup.3,N.swap.3.4,T.next,T.advance.200,B.close.3"
	steps, err := parseSession(good)
	if err != nil {
		t.Fatal(err)
	}
	var back []string
	for _, s := range steps {
		back = append(back, s.String())
	}
	if got := strings.Join(back, ","); got != good {
		t.Errorf("written back: %q, want %q", got, good)
	}
	if !reflect.DeepEqual(*steps[2].Call, playCall{Host: "A", Op: "bind", FD: 3, Port: 80}) {
		t.Errorf("A.bind.3.80 reads %+v", *steps[2].Call)
	}
	for _, bad := range []string{"A", "C.socket", "A.fork.3", "A.bind.3", "A.bind.x.80", "A.socket.3", "N.deliver",
		"N.swap.1", "T.later", "T.advance.x", "A.close.3.4", ",", "A.socket,,B.socket"} {
		if _, err := parseSession(bad); err == nil {
			t.Errorf("%q read without an error", bad)
		}
	}
	if _, err := parseSession(strings.Repeat("T.next,", playMaxSteps) + "T.next"); err == nil {
		t.Error("a session over the step limit was read")
	}
}

// FuzzPlaySession: any text is read without a panic; a session read is
// written back as text that reads the same; loading it (its first 40
// steps) on a playground never panics.
func FuzzPlaySession(f *testing.F) {
	for _, s := range []string{playHandshakeSession, playSimCloseSession, playLostFINSession, "N.delay.1.5,N.dup.1,N.swap.1.2", "A.linger.3.-1", ",,", "A.bind.3"} {
		f.Add(s)
	}
	pg, err := newPlayground()
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(pg.close)
	f.Fuzz(func(t *testing.T, text string) {
		steps, err := parseSession(text)
		if err != nil {
			return
		}
		var parts []string
		for _, s := range steps {
			parts = append(parts, s.String())
		}
		again, err := parseSession(strings.Join(parts, ","))
		if err != nil || !reflect.DeepEqual(again, steps) {
			t.Fatalf("%q read back as %q: %v", text, strings.Join(parts, ","), err)
		}
		pg.mu.Lock()
		defer pg.mu.Unlock()
		pg.replay(steps[:min(len(steps), 40)])
	})
}
