package admin_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/synstack/synstack/admin"
	"github.com/synstack/synstack/tcp"
)

func getSockets(t *testing.T, url string) []admin.Socket {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %s", url, resp.Status)
	}
	var out []admin.Socket
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSockets checks /debug/sockets against the connections the test
// opened.
func TestSockets(t *testing.T) {
	p := newPair(t)
	p.dial(4)
	p.closeFirst(1)
	waitStates(t, p.cli, map[tcp.State]int{tcp.Established: 3, tcp.TimeWait: 1})
	waitStates(t, p.srv, map[tcp.State]int{tcp.Listen: 1, tcp.Established: 3})

	open := map[string]bool{} // client-side local addresses of the open connections
	for _, c := range p.conns {
		open[c.LocalAddr().String()] = true
	}
	// The server's data has arrived and been read: wait for its ACKs, so
	// that nothing is left in the client's Send-Q.
	waitFor(t, func() bool {
		for _, s := range getSockets(t, p.cliAdmin.URL+"/debug/sockets") {
			if s.SendQ != 0 || s.BytesAcked < 6 {
				return false
			}
		}
		return true
	}, func() string { return "client data never acknowledged" })

	cli := getSockets(t, p.cliAdmin.URL+"/debug/sockets")
	if len(cli) != 4 {
		t.Fatalf("client sockets: %+v, want 4", cli)
	}
	var est, tw int
	for _, s := range cli {
		if s.Remote != serverAddr || s.Listening {
			t.Errorf("client socket %+v: want remote %s", s, serverAddr)
		}
		switch s.State {
		case "ESTABLISHED":
			est++
			if !open[s.Local] {
				t.Errorf("ESTABLISHED %s is not one of the open connections %v", s.Local, open)
			}
			if s.Orphan || s.BytesAcked != 6 || s.SegsOut < 3 || s.MSS != 1448 || s.Cwnd != 10 ||
				s.RTO < 200 || s.RTT < 0 || s.Congestion != "cubic" || strings.Join(s.Options, ",") != "ts,sack,wscale" {
				t.Errorf("ESTABLISHED socket %+v", s)
			}
		case "TIME_WAIT":
			tw++
			if open[s.Local] || !s.Orphan {
				t.Errorf("TIME_WAIT socket %+v: should be the closed connection", s)
			}
		default:
			t.Errorf("client socket in %s", s.State)
		}
	}
	if est != 3 || tw != 1 {
		t.Errorf("client: %d ESTABLISHED, %d TIME_WAIT, want 3 and 1", est, tw)
	}

	srv := getSockets(t, p.srvAdmin.URL+"/debug/sockets")
	if len(srv) != 4 {
		t.Fatalf("server sockets: %+v, want a listener and 3 connections", srv)
	}
	if l := srv[0]; !l.Listening || l.State != "LISTEN" || l.Local != serverAddr || l.Remote != "" || l.RecvQ != 0 || l.SendQ <= 0 {
		t.Errorf("listener %+v", l)
	}
	for _, s := range srv[1:] {
		if s.State != "ESTABLISHED" || s.Local != serverAddr || !open[s.Remote] || s.BytesReceived != 6 || s.RecvQ != 0 {
			t.Errorf("server socket %+v", s)
		}
	}

	// Filters.
	if got := getSockets(t, p.cliAdmin.URL+"/debug/sockets?state=time-wait"); len(got) != 1 || got[0].State != "TIME_WAIT" {
		t.Errorf("state=time-wait: %+v", got)
	}
	if got := getSockets(t, p.srvAdmin.URL+"/debug/sockets?state=LISTEN,ESTABLISHED&limit=2"); len(got) != 2 || got[0].State != "LISTEN" {
		t.Errorf("limit=2: %+v", got)
	}
	for _, q := range []string{"state=OPEN", "limit=-1", "limit=x"} {
		resp, err := http.Get(p.srvAdmin.URL + "/debug/sockets?" + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("?%s: %s, want 400", q, resp.Status)
		}
	}
	resp, err := http.Post(p.srvAdmin.URL+"/debug/sockets", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %s, want 405", resp.Status)
	}
}

// TestSocketsLimit checks that /debug/sockets?limit=N returns N sockets,
// and that Stack.ConnectionsLimit, which serves it, visits N sockets, not
// every connection: keep is called once per socket visited.
func TestSocketsLimit(t *testing.T) {
	conns := 300
	if testing.Short() {
		conns = 60
	}
	p := newPair(t)
	p.dial(conns)
	waitStates(t, p.srv, map[tcp.State]int{tcp.Listen: 1, tcp.Established: conns})

	for _, n := range []int{0, 1, 7, conns + 1, conns + 5} {
		got := getSockets(t, p.srvAdmin.URL+"/debug/sockets?limit="+strconv.Itoa(n))
		if len(got) != min(n, conns+1) {
			t.Errorf("limit=%d: %d sockets, want %d", n, len(got), min(n, conns+1))
		}
		if n > 0 && len(got) > 0 && !got[0].Listening {
			t.Errorf("limit=%d: the listener is not first: %+v", n, got[0])
		}
	}
	if got := getSockets(t, p.srvAdmin.URL+"/debug/sockets?state=ESTABLISHED&limit=7"); len(got) != 7 || got[0].State != "ESTABLISHED" || got[6].State != "ESTABLISHED" {
		t.Errorf("state=ESTABLISHED&limit=7: %d sockets %+v", len(got), got)
	}

	visited := 0
	all := func(tcp.State) bool { visited++; return true }
	if got := p.srv.ConnectionsLimit(7, all); len(got) != 7 || visited != 7 {
		t.Errorf("ConnectionsLimit(7) returned %d sockets, visited %d of %d; want 7 and 7", len(got), visited, conns+1)
	}
	visited = 0
	if got := p.srv.ConnectionsLimit(0, all); len(got) != 0 || visited != 0 {
		t.Errorf("ConnectionsLimit(0) returned %d sockets, visited %d", len(got), visited)
	}
	visited = 0
	if got := p.srv.ConnectionsLimit(-1, all); len(got) != conns+1 || visited != conns+1 {
		t.Errorf("ConnectionsLimit(-1) returned %d sockets, visited %d; want %d", len(got), visited, conns+1)
	}
	// The listener is skipped by the filter; the first 5 connections kept
	// end the walk.
	visited = 0
	est := func(s tcp.State) bool { visited++; return s == tcp.Established }
	if got := p.srv.ConnectionsLimit(5, est); len(got) != 5 || visited > 6 {
		t.Errorf("ConnectionsLimit(5, ESTABLISHED) returned %d sockets, visited %d; want 5 and at most 6", len(got), visited)
	}
}

// sseEvent is one server-sent event.
type sseEvent struct{ name, data string }

// readEvents reads server-sent events from r into ch until it fails.
func readEvents(r *bufio.Reader, ch chan<- sseEvent) {
	defer close(ch)
	var ev sseEvent
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if ev.name != "" {
				ch <- ev
			}
			ev = sseEvent{}
		case strings.HasPrefix(line, "event: "):
			ev.name = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			ev.data = line[len("data: "):]
		}
	}
}

// TestEvents follows the server's /events while a connection opens and
// closes: the transitions arrive in order, with their causes, and counts
// follow them.
func TestEvents(t *testing.T) {
	p := newPair(t, admin.CountsInterval(time.Hour))
	resp, err := http.Get(p.srvAdmin.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	ch := make(chan sseEvent, 100)
	go readEvents(bufio.NewReader(resp.Body), ch)
	next := func(name string) string {
		t.Helper()
		for {
			select {
			case ev, ok := <-ch:
				if !ok {
					t.Fatalf("stream ended waiting for %s", name)
				}
				if ev.name == name {
					return ev.data
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("no %s event", name)
			}
		}
	}
	var c admin.CountsEvent
	if err := json.Unmarshal([]byte(next("counts")), &c); err != nil {
		t.Fatal(err)
	}
	if !c.Observed || c.States["LISTEN"] != 1 || c.States["ESTABLISHED"] != 0 || len(c.States) != 11 {
		t.Errorf("first counts %+v", c)
	}
	waitFor(t, func() bool { return p.srvObs.Subscribers() == 1 }, func() string { return "no subscriber" })

	p.dial(1)
	p.closeFirst(1)
	want := []string{
		"LISTEN -> SYN_RCVD (rcv SYN)",
		"SYN_RCVD -> ESTABLISHED",
		"ESTABLISHED -> CLOSE_WAIT (rcv FIN)",
		"CLOSE_WAIT -> LAST_ACK (call CLOSE)",
		"LAST_ACK -> CLOSED",
	}
	for _, w := range want {
		var tr admin.TransitionEvent
		if err := json.Unmarshal([]byte(next("transition")), &tr); err != nil {
			t.Fatal(err)
		}
		got := tr.From + " -> " + tr.To + " (" + tr.Cause + ")"
		if !strings.HasPrefix(got, w) || tr.Local != serverAddr || !strings.HasPrefix(tr.Remote, "10.0.0.2:") || tr.Time == 0 {
			t.Errorf("transition %+v, want %s", tr, w)
		}
	}
	// The counts follow the transitions (the interval is an hour).
	for c.Stats.TcpPassiveOpens != 1 || c.States["ESTABLISHED"] != 0 || c.States["LAST_ACK"] != 0 {
		if err := json.Unmarshal([]byte(next("counts")), &c); err != nil {
			t.Fatal(err)
		}
	}
	if c.Transitions != 5 || c.Dropped != 0 {
		t.Errorf("counts %+v", c)
	}
}
