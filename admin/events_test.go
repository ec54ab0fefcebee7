package admin_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/synstack/synstack/admin"
	"github.com/synstack/synstack/tcp"
)

// openEvents opens /events and reads up to its first counts event: the
// stream is then being served.
func openEvents(t *testing.T, url string) io.ReadCloser {
	t.Helper()
	resp, err := http.Get(url + "/events")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		t.Fatalf("/events: %s", resp.Status)
	}
	r := bufio.NewReader(resp.Body)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			resp.Body.Close()
			t.Fatalf("/events: %v before the first counts", err)
		}
		if line == "event: counts\n" {
			return resp.Body
		}
	}
}

// closeAll closes every element of *cs.
func closeAll[C io.Closer](cs *[]C) {
	for _, c := range *cs {
		c.Close()
	}
}

// eventClients returns synstack_admin_event_clients and
// synstack_admin_event_clients_refused_total from url's /metrics.
func eventClients(t *testing.T, url string) (clients, refused float64) {
	t.Helper()
	fams := scrape(t, url)
	return value(t, fams, "synstack_admin_event_clients"), value(t, fams, "synstack_admin_event_clients_refused_total")
}

// TestEventsCap checks MaxEventClients: beyond it /events answers 503
// with a body that says why, counted; a stream that ends frees its place.
func TestEventsCap(t *testing.T) {
	const max = 3
	p := newPair(t, admin.MaxEventClients(max), admin.CountsInterval(time.Hour))
	var streams []io.ReadCloser
	defer closeAll(&streams)
	for range max {
		streams = append(streams, openEvents(t, p.srvAdmin.URL))
	}
	for i := range 2 {
		resp, err := http.Get(p.srvAdmin.URL + "/events")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "too many /events clients: 3 streams already") ||
			resp.Header.Get("Retry-After") == "" {
			t.Errorf("request %d beyond the cap: %s %q", i, resp.Status, body)
		}
	}
	if c, r := eventClients(t, p.srvAdmin.URL); c != max || r != 2 {
		t.Errorf("%v clients, %v refused; want %d and 2", c, r, max)
	}
	if n := p.srvObs.Subscribers(); n != max {
		t.Errorf("%d subscribers, want %d: a refused request subscribed", n, max)
	}

	streams[0].Close()
	streams = streams[1:]
	waitFor(t, func() bool { c, _ := eventClients(t, p.srvAdmin.URL); return c == max-1 },
		func() string { return "the closed stream still counts" })
	streams = append(streams, openEvents(t, p.srvAdmin.URL))
	if c, r := eventClients(t, p.srvAdmin.URL); c != max || r != 2 {
		t.Errorf("after one left and one came: %v clients, %v refused; want %d and 2", c, r, max)
	}
}

// TestEventsDisconnect opens streams and drops their clients: each
// handler ends and unsubscribes (TestMain's goleak checks the goroutines).
func TestEventsDisconnect(t *testing.T) {
	p := newPair(t)
	var streams []io.ReadCloser
	for range 20 {
		streams = append(streams, openEvents(t, p.srvAdmin.URL))
	}
	if n := p.srvObs.Subscribers(); n != 20 {
		t.Errorf("%d subscribers, want 20", n)
	}
	p.dial(2) // transitions flow meanwhile
	for _, s := range streams {
		s.Close()
	}
	waitFor(t, func() bool {
		c, _ := eventClients(t, p.srvAdmin.URL)
		return c == 0 && p.srvObs.Subscribers() == 0
	}, func() string { return strconv.Itoa(p.srvObs.Subscribers()) + " subscribers left" })
}

// rawEvents opens /events on a connection of its own, and reads nothing.
func rawEvents(t *testing.T, url string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, "GET /events HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestEventsSlowClients has clients that read nothing while transitions
// pour in: each stream's queue fills, the stream is dropped and counted,
// and when a client reads at last it finds the "dropped" event and the end
// of the stream. With the default queue, transitions come slowly enough
// for a reading client, and the streams fall behind only once the sockets
// to their clients are full; with EventQueue(4), a burst overflows them.
func TestEventsSlowClients(t *testing.T) {
	t.Run("never-read", func(t *testing.T) { testSlowClients(t, admin.DefaultEventQueue, 100) })
	t.Run("burst", func(t *testing.T) { testSlowClients(t, 4, 1000, admin.EventQueue(4)) })
}

// testSlowClients pushes transitions by batch (one batch a millisecond)
// to clients that never read, until every stream is dropped.
func testSlowClients(t *testing.T, queue, batch int, opts ...admin.Option) {
	const slow = 5
	p := newPair(t, append(opts, admin.CountsInterval(time.Hour))...)
	var conns []net.Conn
	defer closeAll(&conns)
	for range slow {
		conns = append(conns, rawEvents(t, p.srvAdmin.URL))
	}
	waitFor(t, func() bool { return p.srvObs.Subscribers() == slow }, func() string { return "the streams never subscribed" })

	pushed := 0
	for p.srvObs.Evicted() < slow {
		if pushed >= 5_000_000 {
			t.Fatalf("%d transitions pushed, %d of %d streams dropped", pushed, p.srvObs.Evicted(), slow)
		}
		for range batch {
			p.srvObs.OnTransition(local, remote, tcp.Established, tcp.FinWait1, "call CLOSE")
		}
		pushed += batch
		time.Sleep(time.Millisecond)
	}
	if n := p.srvObs.Subscribers(); n != 0 {
		t.Errorf("%d subscribers after every stream was dropped", n)
	}
	fams := scrape(t, p.srvAdmin.URL)
	if got := value(t, fams, "synstack_admin_event_clients_dropped_total"); got != slow {
		t.Errorf("synstack_admin_event_clients_dropped_total = %v, want %d", got, slow)
	}
	t.Logf("%d transitions pushed, %v not queued (synstack_admin_events_dropped_total)", pushed, value(t, fams, "synstack_admin_events_dropped_total"))

	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(20 * time.Second)) // a hang guard
		all, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("client %d: %v after %d bytes", i, err, len(all))
		}
		tail := string(all[max(0, len(all)-300):])
		if !strings.Contains(tail, "event: dropped\ndata: {") || !strings.Contains(tail, `"queue":`+strconv.Itoa(queue)+"}") {
			t.Errorf("client %d: the stream (%d bytes) ends without the dropped event: ...%q", i, len(all), tail)
		}
	}
	waitFor(t, func() bool { c, _ := eventClients(t, p.srvAdmin.URL); return c == 0 },
		func() string { return "streams still counted" })
}
