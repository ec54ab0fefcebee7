package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// playClient drives a playground through its HTTP API.
type playClient struct {
	t   *testing.T
	url string
}

func newPlayClient(t *testing.T) *playClient {
	t.Helper()
	pg, err := newPlayground()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(pg.handler())
	t.Cleanup(func() { srv.Close(); pg.close() })
	return &playClient{t: t, url: srv.URL}
}

// post sends body to path and returns the reply; wantErr says whether the
// request itself (not the socket call) should fail.
func (c *playClient) post(path string, body any, wantErr bool) playReply {
	c.t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		c.t.Fatal(err)
	}
	resp, err := http.Post(c.url+path, "application/json", bytes.NewReader(b))
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var r playReply
	if err := json.Unmarshal(raw, &r); err != nil {
		c.t.Fatalf("%s %s: %v in %q", path, b, err, raw)
	}
	if (r.Error != "") != wantErr {
		c.t.Fatalf("%s %s: error %q (status %d), want an error: %v", path, b, r.Error, resp.StatusCode, wantErr)
	}
	return r
}

// call makes a socket call and checks its errno ("" for success).
func (c *playClient) call(host, op string, fd, port int, wantErrno string) playReply {
	c.t.Helper()
	r := c.post("/api/call", playCall{Host: host, Op: op, FD: fd, Port: port, Backlog: 5, Value: 1}, false)
	if r.Result == nil {
		c.t.Fatalf("%s %s: no result", host, op)
	}
	if r.Result.Errno != wantErrno {
		c.t.Fatalf("%s: %s, want errno %q", host, r.Result.Text, wantErrno)
	}
	return r
}

// net delivers or drops the oldest packet in flight and checks its flags.
func (c *playClient) net(op, wantFlags string) playReply {
	c.t.Helper()
	before := c.state()
	if len(before.Flight) == 0 {
		c.t.Fatalf("%s: nothing in flight", op)
	}
	if got := before.Flight[0].Flags; got != wantFlags {
		c.t.Fatalf("%s: the next packet is %s (%s), want %s", op, got, before.Flight[0].Rel, wantFlags)
	}
	return c.post("/api/net", playNet{Op: op}, false)
}

// listenAndConnect has A listen on port 80 and B connect to it (the SYN
// is in flight). It returns A's listener, B's descriptor and the connect's
// reply.
func (c *playClient) listenAndConnect() (lfd, cfd int, r playReply) {
	c.t.Helper()
	lfd = c.call("A", "socket", 0, 0, "").Result.Ret
	c.call("A", "bind", lfd, 80, "")
	c.call("A", "listen", lfd, 0, "")
	cfd = c.call("B", "socket", 0, 0, "").Result.Ret
	r = c.call("B", "connect", cfd, 80, "EINPROGRESS")
	return lfd, cfd, r
}

func (c *playClient) state() playState {
	c.t.Helper()
	resp, err := http.Get(c.url + "/api/state")
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var r playReply
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		c.t.Fatal(err)
	}
	return r.State
}

// states returns each host's sockets' states by descriptor.
func playStates(s playState) map[string]map[int]string {
	m := map[string]map[int]string{}
	for _, h := range s.Hosts {
		m[h.Name] = map[int]string{}
		for _, so := range h.Sockets {
			m[h.Name][so.FD] = so.State
		}
	}
	return m
}

// TestPlayHandshake does a three-way handshake by hand: A listens, B
// connects (EINPROGRESS), the SYN, SYN,ACK and ACK are delivered one by
// one, A accepts. Both ends are then ESTABLISHED, the ladder has the
// calls, packets and transitions in order, and nothing is left in flight.
func TestPlayHandshake(t *testing.T) {
	c := newPlayClient(t)
	lfd, cfd, r := c.listenAndConnect()
	if r.Result.Meaning == "" || !strings.Contains(r.Result.Text, "EINPROGRESS") {
		t.Errorf("connect's result %+v: want the errno's meaning and text", r.Result)
	}
	if got := playStates(r.State)["B"][cfd]; got != "SYN_SENT" {
		t.Fatalf("B after connect: %s, want SYN_SENT", got)
	}
	if n := len(r.State.Flight); n != 1 || r.State.Flight[0].From != "B" || r.State.Flight[0].To != "A" {
		t.Fatalf("in flight after connect: %+v, want B's SYN to A", r.State.Flight)
	}
	// Accepting before the handshake ends finds nothing.
	c.call("A", "accept", lfd, 0, "EAGAIN")

	c.net("deliver", "SYN")
	c.net("deliver", "SYN,ACK")
	if got := playStates(c.state())["B"][cfd]; got != "ESTABLISHED" {
		t.Errorf("B after the SYN,ACK: %s, want ESTABLISHED", got)
	}
	c.net("deliver", "ACK")
	r = c.call("A", "accept", lfd, 0, "")
	afd := r.Result.Ret
	st := playStates(r.State)
	if st["A"][afd] != "ESTABLISHED" || st["B"][cfd] != "ESTABLISHED" || st["A"][lfd] != "LISTEN" {
		t.Errorf("after the handshake: %v, want A's %d ESTABLISHED, %d LISTEN and B's %d ESTABLISHED", st, afd, lfd, cfd)
	}
	if len(r.State.Flight) != 0 {
		t.Errorf("still in flight: %+v", r.State.Flight)
	}
	// The ladder, in order: B's connect call, its transition, the SYN
	// sent, delivered; A's passive transitions; the accept last.
	var rows []string
	for _, ev := range r.State.Events {
		rows = append(rows, ev.Host+" "+ev.Kind+" "+ev.Text)
	}
	ladder := strings.Join(rows, "\n")
	for _, want := range []string{
		"A transition :80 CLOSED → LISTEN (call LISTEN)",
		"B call connect(" + itoa(cfd) + ", 10.0.0.1:80) = -1 EINPROGRESS",
		"SYN_SENT (call CONNECT)",
		"B send #1 B → A:",
		"A deliver #1 delivered to A",
		"LISTEN → SYN_RCVD (rcv SYN)",
		"SYN_SENT → ESTABLISHED (rcv SYN,ACK)",
		"SYN_RCVD → ESTABLISHED (rcv ACK of SYN)",
		"A call accept(" + itoa(lfd) + ") = " + itoa(afd) + "  from 10.0.0.2:",
	} {
		if !strings.Contains(ladder, want) {
			t.Errorf("the ladder lacks %q:\n%s", want, ladder)
		}
	}
	callAt := strings.Index(ladder, "B call connect")
	synAt := strings.Index(ladder, "B send #1")
	if callAt < 0 || synAt < callAt {
		t.Errorf("the connect call is not before its SYN:\n%s", ladder)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestPlayLostSYN drops B's SYN: nothing changes until the clock steps to
// the next timer, the SYN retransmission, which puts the same SYN in
// flight again (a second later, as RFC 6298's initial RTO); delivered,
// it completes the handshake.
func TestPlayLostSYN(t *testing.T) {
	c := newPlayClient(t)
	lfd, cfd, _ := c.listenAndConnect()
	first := c.state().Flight[0]
	r := c.net("drop", "SYN")
	if len(r.State.Flight) != 0 || r.State.NextMs == nil {
		t.Fatalf("after the drop: in flight %+v, next timer %v: want nothing in flight and a timer", r.State.Flight, r.State.NextMs)
	}
	next := *r.State.NextMs
	r = c.post("/api/clock", playClock{Op: "next"}, false)
	if r.State.Ms != next {
		t.Errorf("the clock stepped to %d ms, want the timer's %d", r.State.Ms, next)
	}
	if len(r.State.Flight) != 1 {
		t.Fatalf("after the timer: in flight %+v, want the SYN again", r.State.Flight)
	}
	again := r.State.Flight[0]
	if again.Flags != "SYN" || again.Seq != first.Seq || again.From != "B" || !strings.Contains(again.Rel, "retransmission") {
		t.Errorf("after the timer: %+v, want B's SYN retransmitted with seq %d", again, first.Seq)
	}
	if again.Sent != next || next < 1000 {
		t.Errorf("SYN retransmitted at %d ms (timer %d ms), want at the timer, at least 1 s in", again.Sent, next)
	}
	c.post("/api/net", playNet{Op: "deliver-all"}, false)
	afd := c.call("A", "accept", lfd, 0, "").Result.Ret
	st := playStates(c.state())
	if st["A"][afd] != "ESTABLISHED" || st["B"][cfd] != "ESTABLISHED" {
		t.Errorf("after the retransmitted SYN: %v, want ESTABLISHED both sides", st)
	}
}

// TestPlayErrors checks that bad requests get a clear error, not a crash,
// and that socket calls return the socket layer's errno with its meaning.
func TestPlayErrors(t *testing.T) {
	c := newPlayClient(t)
	c.post("/api/net", playNet{Op: "deliver"}, true)                  // nothing in flight
	c.post("/api/clock", playClock{Op: "next"}, true)                 // no timer
	c.post("/api/clock", playClock{Op: "advance", Ms: -5}, true)      // backwards
	c.post("/api/call", playCall{Host: "C", Op: "socket"}, true)      // no such host
	c.post("/api/call", playCall{Host: "A", Op: "fork"}, true)        // no such call
	c.post("/api/call", playCall{Host: "A", Op: "write", N: 0}, true) // nothing to write
	r := c.call("A", "close", 42, 0, "EBADF")
	if !strings.Contains(r.Result.Meaning, "bad file descriptor") {
		t.Errorf("EBADF's meaning: %q", r.Result.Meaning)
	}
	resp, err := http.Post(c.url+"/api/call", "application/json", strings.NewReader(`{"host":"A","op":"socket","bogus":1}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("an unknown field: status %d, want 400", resp.StatusCode)
	}
	// Binding A's port 80 twice without SO_REUSEADDR: EADDRINUSE.
	fd1 := c.call("A", "socket", 0, 0, "").Result.Ret
	c.call("A", "bind", fd1, 80, "")
	c.call("A", "listen", fd1, 0, "")
	fd2 := c.call("A", "socket", 0, 0, "").Result.Ret
	c.call("A", "bind", fd2, 80, "EADDRINUSE")
}

// TestPlayPage serves the page, whole and without references to other
// sites (it works offline).
func TestPlayPage(t *testing.T) {
	c := newPlayClient(t)
	resp, err := http.Get(c.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("</html>")) {
		t.Fatalf("GET /: %d, %d bytes", resp.StatusCode, len(body))
	}
	// The SVG namespace is a name, not an address: the page fetches nothing.
	page := bytes.ReplaceAll(body, []byte(`"http://www.w3.org/2000/svg"`), nil)
	for _, ext := range []string{"http://", "https://", "//cdn", "src=\"//", "url(http", "@import"} {
		if bytes.Contains(page, []byte(ext)) {
			t.Errorf("the page refers to %q: it must work offline", ext)
		}
	}
	if len(body) > 300<<10 {
		t.Errorf("the page is %d bytes, want under 300 KB", len(body))
	}
}

// TestPlaySimultaneousClose closes both ends before either FIN is
// delivered; the FINs are then delivered by their IDs, B's first: both
// ends pass through CLOSING to TIME_WAIT, and stepping the clock ends
// TIME_WAIT.
func TestPlaySimultaneousClose(t *testing.T) {
	c := newPlayClient(t)
	lfd, cfd, _ := c.listenAndConnect()
	c.post("/api/net", playNet{Op: "deliver-all"}, false)
	afd := c.call("A", "accept", lfd, 0, "").Result.Ret
	c.call("A", "close", afd, 0, "")
	r := c.call("B", "close", cfd, 0, "")
	if len(r.State.Flight) != 2 {
		t.Fatalf("in flight after both closes: %+v, want the two FINs", r.State.Flight)
	}
	finA, finB := r.State.Flight[0], r.State.Flight[1]
	if finA.From != "A" || finB.From != "B" || !strings.Contains(finA.Flags, "FIN") || !strings.Contains(finB.Flags, "FIN") {
		t.Fatalf("in flight: %+v, want A's FIN then B's", r.State.Flight)
	}
	c.post("/api/net", playNet{Op: "deliver", ID: finB.ID}, false)
	c.post("/api/net", playNet{Op: "deliver", ID: finA.ID}, false)
	c.post("/api/net", playNet{Op: "deliver", ID: finA.ID}, true) // delivered already
	r = c.post("/api/net", playNet{Op: "deliver-all"}, false)
	ladder := eventRows(r.State)
	all := strings.Join(ladder, "\n")
	for _, h := range []string{"A", "B"} {
		for _, want := range []string{"FIN_WAIT_1 → CLOSING (rcv FIN)", "CLOSING → TIME_WAIT (rcv ACK of FIN)"} {
			if !containsHost(ladder, h, want) {
				t.Errorf("host %s never went %s:\n%s", h, want, all)
			}
		}
	}
	// Closed descriptors leave the table; TIME_WAIT ends on the clock.
	if st := playStates(r.State); len(st["A"]) != 1 || len(st["B"]) != 0 {
		t.Errorf("descriptors after the closes: %v, want only A's listener", st)
	}
	for i := 0; i < 10 && !containsHost(ladder, "A", "TIME_WAIT → CLOSED"); i++ {
		ladder = eventRows(c.post("/api/clock", playClock{Op: "next"}, false).State)
	}
	if !containsHost(ladder, "A", "TIME_WAIT → CLOSED") || !containsHost(ladder, "B", "TIME_WAIT → CLOSED") {
		t.Errorf("TIME_WAIT never ended on either side after 10 clock steps:\n%s", strings.Join(ladder, "\n"))
	}
}

// containsHost reports whether a row of host h contains want.
func containsHost(rows []string, h, want string) bool {
	for _, r := range rows {
		if strings.HasPrefix(r, h+" ") && strings.Contains(r, want) {
			return true
		}
	}
	return false
}

// TestPlayReset starts over: after a handshake and a clock step, reset
// gives two hosts without sockets, an empty network and ladder, the clock
// at zero; and the same calls then give the same packets (the stacks are
// seeded: a session replays exactly).
func TestPlayReset(t *testing.T) {
	c := newPlayClient(t)
	c.listenAndConnect()
	first := c.state().Flight[0]
	c.post("/api/net", playNet{Op: "deliver-all"}, false)
	c.post("/api/clock", playClock{Op: "advance", Ms: 1500}, false)
	r := c.post("/api/reset", struct{}{}, false)
	s := r.State
	if s.Ms != 0 || len(s.Flight) != 0 || len(s.Events) != 0 || len(s.Hosts) != 2 ||
		len(s.Hosts[0].Sockets) != 0 || len(s.Hosts[1].Sockets) != 0 {
		t.Fatalf("after reset: %+v", s)
	}
	c.listenAndConnect()
	again := c.state().Flight[0]
	if again.ID != 1 || again.Seq != first.Seq || again.Rel != first.Rel {
		t.Errorf("the SYN after reset: %+v, want the first session's %+v", again, first)
	}
}

// TestPlayArgs: play takes --listen and nothing else.
func TestPlayArgs(t *testing.T) {
	var out strings.Builder
	if err := runPlay(&out, []string{"extra"}); err == nil || !strings.Contains(err.Error(), "unexpected arguments") {
		t.Errorf("play extra: %v", err)
	}
	if err := runPlay(&out, []string{"--listen", "not an address"}); err == nil {
		t.Error("play --listen 'not an address' served")
	}
}

// TestPlayReuseAddr: A's listener has SO_REUSEADDR; A closes first, so
// its connection sits in TIME_WAIT; after A closes its listener too,
// binding port 80 again fails with EADDRINUSE, and succeeds once the new
// socket sets SO_REUSEADDR too (as Linux: both sockets must have it).
func TestPlayReuseAddr(t *testing.T) {
	c := newPlayClient(t)
	lfd := c.call("A", "socket", 0, 0, "").Result.Ret
	c.call("A", "reuseaddr", lfd, 0, "")
	c.call("A", "bind", lfd, 80, "")
	c.call("A", "listen", lfd, 0, "")
	cfd := c.call("B", "socket", 0, 0, "").Result.Ret
	c.call("B", "connect", cfd, 80, "EINPROGRESS")
	c.post("/api/net", playNet{Op: "deliver-all"}, false)
	afd := c.call("A", "accept", lfd, 0, "").Result.Ret
	c.call("A", "close", afd, 0, "")
	c.call("B", "close", cfd, 0, "")
	r := c.post("/api/net", playNet{Op: "deliver-all"}, false)
	if !containsHost(eventRows(r.State), "A", "→ TIME_WAIT") {
		t.Fatalf("A never reached TIME_WAIT:\n%s", strings.Join(eventRows(r.State), "\n"))
	}
	c.call("A", "close", lfd, 0, "")
	fd := c.call("A", "socket", 0, 0, "").Result.Ret
	r = c.call("A", "bind", fd, 80, "EADDRINUSE")
	if r.Result.Meaning != "address already in use" {
		t.Errorf("EADDRINUSE's meaning: %q", r.Result.Meaning)
	}
	c.call("A", "close", fd, 0, "")
	fd = c.call("A", "socket", 0, 0, "").Result.Ret
	c.call("A", "reuseaddr", fd, 0, "")
	c.call("A", "bind", fd, 80, "")
}

// eventRows is the ladder as "host text" lines.
func eventRows(s playState) []string {
	var rows []string
	for _, ev := range s.Events {
		rows = append(rows, ev.Host+" "+ev.Text)
	}
	return rows
}
