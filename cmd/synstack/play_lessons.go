package main

import (
	"fmt"
)

// playLesson is a starting point: a demo scenario's opening steps and a
// short text of what to try from there. Its title is the scenario's
// summary (demo --list).
type playLesson struct {
	Name    string // the demo scenario's name
	Session string // the steps that set the scene
	Try     string // what to try
}

// playLessonView is a lesson as the page shows it.
type playLessonView struct {
	Name  string `json:"name"`
	Title string `json:"title"`
	Try   string `json:"try"`
}

// Openings the lessons share. A is the server (10.0.0.1, port 80), B the
// client, as in the demos.
const (
	playOpenListen = "A.socket,A.bind.3.80,A.listen.3.5,B.socket"
	playOpenConn   = playOpenListen + ",B.connect.3.80,N.all,A.accept.3"
)

// playLessons, one per demo scenario, in demo --list's order.
var playLessons = []playLesson{
	{"handshake", playOpenListen,
		"A listens on port 80. Click B's connect (EINPROGRESS: the socket is non-blocking), then Deliver next three times: SYN, SYN-ACK, ACK. B is ESTABLISHED as soon as the SYN-ACK arrives, A only when the last ACK does. Then accept on A: a new descriptor, 4."},
	{"refused", "B.socket",
		"Nobody listens on A. Click B's connect to port 80 and deliver the SYN: A answers RST,ACK. Deliver it: B's socket goes back to CLOSED, and a read on B reports ECONNREFUSED."},
	{"connect-timeout", playOpenListen + ",B.connect.3.80",
		"B's SYN is in flight. Drop it and step the clock: it comes again after 1 s. Keep dropping and stepping: the gaps double (1, 2, 4, 8 s...); after the sixth retransmission B gives up, and a read on B reports ETIMEDOUT."},
	{"simultaneous-open", "A.socket,A.bind.3.80,B.socket,B.bind.3.90",
		"A is bound to port 80, B to port 90, and nobody listens. Connect A to port 90 and B to port 80 before delivering anything: two SYNs cross. Deliver them: each side goes SYN_SENT to SYN_RCVD and answers SYN-ACK; deliver those and both reach ESTABLISHED without a listener."},
	{"active-close", playOpenConn,
		"The connection is open (A's fd 4, B's fd 3). Close B first and deliver: B goes FIN_WAIT_1, A CLOSE_WAIT. A acknowledges a FIN after its delayed-ACK timer (as Linux does): step the clock and deliver, and B is in FIN_WAIT_2. Read on A (0: end of stream), close A, deliver: B reaches TIME_WAIT and stays there until the clock has run 60 s."},
	{"passive-close", playOpenConn,
		"This time the server closes first: close A's fd 4 and deliver the FIN (B's ACK of it waits for the delayed-ACK timer: step the clock). B is the passive side, in CLOSE_WAIT: its read returns 0, and it stays there as long as its application does not close. Step the clock and watch A in FIN_WAIT_2; then close B and follow LAST_ACK to CLOSED."},
	{"simultaneous-close", playOpenConn,
		"Close both A's fd 4 and B's fd 3 before delivering anything: two FINs in flight. Deliver them (in either order, or reorder them with the arrow): each side receives a FIN while in FIN_WAIT_1 and goes to CLOSING, then to TIME_WAIT on the ACK of its own FIN. Both sides sit in TIME_WAIT."},
	{"time-wait", playOpenConn,
		"Close B, deliver; close A and deliver its FIN: B is in TIME_WAIT and sends the last ACK. Drop that ACK and step the clock: A retransmits its FIN, and B, still in TIME_WAIT, answers it. Had B forgotten the connection, A would get a RST. Step the clock to the end of TIME_WAIT (60 s)."},
	{"reuseaddr", "A.socket,A.reuseaddr.3.1,A.bind.3.80,A.listen.3.5,B.socket,B.connect.3.80,N.all,A.accept.3",
		"A's listener has SO_REUSEADDR. Close A's fd 4 first and let the close finish (close B, deliver all): A's old connection is in TIME_WAIT. Close the listener (fd 3), open a socket and bind port 80: EADDRINUSE. Close it, open another, set SO_REUSEADDR (value 1) before bind: it succeeds."},
	{"reuseport", "A.socket,A.reuseport.3.1,A.bind.3.80,A.listen.3.5",
		"A listens on port 80 with SO_REUSEPORT. Open a second socket on A and bind port 80: EADDRINUSE. Open a third, set SO_REUSEPORT, bind and listen: two listeners share the port. Connect several sockets from B and accept on each listener: the stack spreads the connections by a hash of their addresses."},
	{"half-close", playOpenConn,
		"Shut down B's sending side (shutdown WR on fd 3) and deliver: B is in FIN_WAIT_2, A in CLOSE_WAIT, and A's read returns 0. Yet the other direction still works: write on A, deliver, read on B. Close A to finish."},
	{"shutdown-rd", playOpenConn,
		"Shut down B's receiving side (shutdown RD): nothing is sent, the connection stays ESTABLISHED, and B's read returns 0 at once. Write on A and deliver: see what B's stack does with data nobody will read."},
	{"shutdown-rdwr", playOpenConn,
		"shutdown RDWR on B: a FIN goes out as with close, but the descriptor stays open: B's read returns 0, its write fails with EPIPE, and B's fd 3 is still in the table until you close it."},
	{"close-vs-shutdown", playOpenConn + ",B.dup.3",
		"B has two descriptors on one connection: 3 and its dup, 4. Close 3: nothing is sent, the connection lives on through 4. shutdown WR on 4: the FIN goes at once, however many descriptors remain. Try again with unread data on B: close of the last descriptor sends a RST."},
	{"half-open", playOpenConn,
		"Make A forget the connection: set SO_LINGER to 0 on A's fd 4 (value 0) and close it: a RST. Drop the RST: B still believes the connection open. Write on B and deliver: A has no such connection and answers RST; deliver it: B's write or read now reports ECONNRESET."},
	{"syn-flood", "A.socket,A.bind.3.80,A.listen.3.1",
		"A listens with a backlog of 1. Open several sockets on B and connect each, delivering only the SYNs and dropping A's SYN-ACKs: A keeps half-open connections in SYN_RCVD and retransmits their SYN-ACKs as you step the clock. Watch A's counters and connections."},
	{"backlog-overflow", "A.socket,A.bind.3.80,A.listen.3.1,B.socket,B.socket,B.socket",
		"A listens with a backlog of 1 and never accepts. Connect B's sockets 3, 4 and 5 one after the other, delivering everything: the accept queue fills, and A drops the third connection's handshake ACK (see its counters). Accept on A to make room, then step the clock."},
	{"retransmission", playOpenConn,
		"Write 3000 bytes on A's fd 4: three segments in flight. Drop the first and deliver the others: B's duplicate ACKs carry SACK blocks for what it holds. Deliver them: A resends the hole at once, without waiting for a timer (RACK: data sent after it has arrived). Try dropping only the last segment instead: then only a timer can repair it; step the clock to see the tail loss probe."},
	{"zero-window", "A.socket,A.bind.3.80,A.listen.3.5,B.socket,B.rcvbuf.3.2048,B.connect.3.80,N.all,A.accept.3",
		"B's receive buffer is small (SO_RCVBUF). Write 20000 bytes on A's fd 4 and deliver everything without reading on B: B's window falls to 0 and A stops. Step the clock: A probes the zero window (the persist timer), each probe farther apart. Read on B: the window opens again and data flows."},
}

// findLesson returns the lesson named name, or nil.
func findLesson(name string) *playLesson {
	for i := range playLessons {
		if playLessons[i].Name == name {
			return &playLessons[i]
		}
	}
	return nil
}

// lessonView is the page's view of the lesson named name (nil for none).
func lessonView(name string) *playLessonView {
	l := findLesson(name)
	if l == nil {
		return nil
	}
	return &playLessonView{Name: l.Name, Title: findScenario(l.Name).summary, Try: l.Try}
}

// lessonList is every lesson, as the page's menu lists them.
func lessonList() []playLessonView {
	out := make([]playLessonView, len(playLessons))
	for i := range playLessons {
		out[i] = *lessonView(playLessons[i].Name)
	}
	return out
}

// playLoad is the body of a load request: a session to replay, from a
// lesson's start if Session is empty and Lesson names one.
type playLoad struct {
	Session string `json:"session"`
	Lesson  string `json:"lesson"`
}

// load replays a session (or a lesson's opening). pg.mu is held.
func (pg *playground) load(l playLoad) error {
	text := l.Session
	if l.Lesson != "" {
		ls := findLesson(l.Lesson)
		if ls == nil {
			return fmt.Errorf("no lesson %q", l.Lesson)
		}
		if text == "" {
			text = ls.Session
		}
	}
	steps, err := parseSession(text)
	if err != nil {
		return err
	}
	pg.lesson = l.Lesson
	return pg.replay(steps)
}
