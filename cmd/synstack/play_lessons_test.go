package main

import (
	"strings"
	"testing"
)

// playWalks does what each lesson's text says to try, as steps after its
// opening, and names what the ladder must then show besides the demo
// scenario's key states.
var playWalks = map[string]struct {
	steps string
	want  []string
}{
	"handshake":          {"B.connect.3.80,N.deliver.0,N.deliver.0,N.deliver.0,A.accept.3", []string{"accept(3) = 4"}},
	"refused":            {"B.connect.3.80,N.deliver.0,N.deliver.0,B.read.3.100", []string{"R.", "ECONNREFUSED"}},
	"connect-timeout":    {strings.Repeat("N.drop.0,T.next,", 7) + "B.read.3.100", []string{"(retransmission)", "ETIMEDOUT"}},
	"simultaneous-open":  {"A.connect.3.90,B.connect.3.80,N.all", []string{"SYN_SENT → SYN_RCVD"}},
	"active-close":       {"B.close.3,N.all,T.next,N.all,A.read.4.1000,A.close.4,N.all", []string{"end of stream"}},
	"passive-close":      {"A.close.4,N.all,T.next,N.all,B.read.3.1000,B.close.3,N.all", []string{"end of stream"}},
	"simultaneous-close": {"A.close.4,B.close.3,N.all", []string{"FIN_WAIT_1 → CLOSING"}},
	"time-wait":          {"B.close.3,N.all,T.next,N.all,A.close.4,N.deliver.0,N.drop.0,T.next,N.all", []string{"(retransmission)", "dropped"}},
	"reuseaddr": {"A.close.4,B.close.3,N.all,T.next,N.all,A.close.3,A.socket,A.bind.3.80,A.close.3,A.socket,A.reuseaddr.3.1,A.bind.3.80",
		[]string{"bind(3, 10.0.0.1:80) = -1 EADDRINUSE", "setsockopt(3, SOL_SOCKET, SO_REUSEADDR, 1) = 0\nA bind(3, 10.0.0.1:80) = 0"}},
	"reuseport": {"A.socket,A.bind.4.80,A.close.4,A.socket,A.reuseport.4.1,A.bind.4.80,A.listen.4.5,B.socket,B.connect.3.80,N.all",
		[]string{"bind(4, 10.0.0.1:80) = -1 EADDRINUSE", "listen(4, 5) = 0"}},
	"half-close":        {"B.shutdown.3.WR,N.all,A.read.4.1000,A.write.4.100,N.all,B.read.3.1000,A.close.4,N.all", []string{"read(3, 1000) = 100"}},
	"shutdown-rd":       {"B.shutdown.3.RD,B.read.3.100,A.write.4.100,N.all", []string{"read(3, 100) = 0"}},
	"shutdown-rdwr":     {"B.shutdown.3.RDWR,N.all,B.read.3.100,B.write.3.10", []string{"read(3, 100) = 0", "EPIPE"}},
	"close-vs-shutdown": {"B.close.3,B.shutdown.4.WR,N.all,A.write.4.10,N.all,B.close.4", []string{"close(3) = 0\nB shutdown(4, SHUT_WR) = 0"}},
	"half-open":         {"A.linger.4.0,A.close.4,N.drop.0,B.write.3.10,N.all,B.read.3.100", []string{"ECONNRESET"}},
	"syn-flood":         {"B.socket,B.connect.3.80,N.deliver.0,N.drop.0,B.socket,B.connect.4.80,N.deliver.0,N.drop.0,T.next,N.all", []string{"(retransmission)"}},
	"backlog-overflow":  {"B.connect.3.80,N.all,B.connect.4.80,N.all,B.connect.5.80,N.all,A.accept.3,T.next,N.all", []string{"accept(3) = 4"}},
	"retransmission":    {"A.write.4.3000,N.drop.0,N.all", []string{"sack", "(retransmission)"}},
	"zero-window":       {"A.write.4.20000,N.all,T.next,N.all,B.read.3.65536,N.all", []string{" win 0"}},
}

// TestPlayLessons: every demo scenario is a lesson, in demo --list's
// order, with a text; each opens (its steps replay, the page is told
// which lesson it is), and doing what its text says shows the scenario's
// key states and what the text promises.
func TestPlayLessons(t *testing.T) {
	if len(playLessons) != len(scenarios) {
		t.Fatalf("%d lessons for %d scenarios", len(playLessons), len(scenarios))
	}
	for i, sc := range scenarios {
		l := playLessons[i]
		if l.Name != sc.name || len(l.Try) < 80 {
			t.Errorf("lesson %d: %q (%d bytes of text), want scenario %q's", i, l.Name, len(l.Try), sc.name)
			continue
		}
		t.Run(l.Name, func(t *testing.T) {
			c := newPlayClient(t)
			st := c.post("/api/load", playLoad{Lesson: l.Name}, false).State
			if st.Lesson == nil || st.Lesson.Name != l.Name || st.Lesson.Title != sc.summary || st.Session != l.Session {
				t.Fatalf("opened: lesson %+v, session %q", st.Lesson, st.Session)
			}
			walk, ok := playWalks[l.Name]
			if !ok {
				t.Fatal("no walk-through")
			}
			st = c.post("/api/load", playLoad{Lesson: l.Name, Session: l.Session + "," + walk.steps}, false).State
			ladder := strings.Join(eventRows(st), "\n")
			for _, s := range sc.keyStates {
				if !strings.Contains(ladder, "→ "+s+" (") && !strings.Contains(ladder, " "+s+" →") {
					t.Errorf("the ladder never shows %s", s)
				}
			}
			for _, w := range walk.want {
				if !strings.Contains(ladder, w) {
					t.Errorf("the ladder lacks %q", w)
				}
			}
			if t.Failed() {
				t.Logf("the ladder:\n%s", ladder)
			}
		})
	}
	c := newPlayClient(t)
	c.post("/api/load", playLoad{Lesson: "no-such"}, true)
	var out strings.Builder
	if err := runPlay(&out, []string{"--lesson", "no-such"}); err == nil || !strings.Contains(err.Error(), "no lesson") {
		t.Errorf("play --lesson no-such: %v", err)
	}
}
