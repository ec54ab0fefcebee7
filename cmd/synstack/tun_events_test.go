//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Issue 14's third finding: 3,000 /events streams that never read made 1,500
// requests to the served site take 68 s instead of 0.7 s, and RSS went from
// 166 MB to 2.7 GB, as every transition was fanned out to every stream under
// the stack's lock. Now the admin handler serves a bounded number of
// streams (admin.MaxEventClients, 503 beyond), each with a bounded queue,
// fanned out by a goroutine of its own: the subscribers cost the stack
// nothing. The test asserts outcomes (every request served, the refusals
// counted, memory bounded); the requests' time with and without the
// subscribers is logged, for the "within 2x", not asserted.
func TestTunAdminEventsFlood(t *testing.T) {
	subs := attackSize(300, 3000)
	reqs := attackSize(300, 1500)
	raiseNoFile(t, uint64(subs+4096))
	ns := newNetns(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte(strings.Repeat("synstack\n", 100)), 0o644); err != nil {
		t.Fatal(err)
	}
	const adminAddr = "127.0.0.1:9909"
	srv := ns.start("main", "serve", "--tun", nsDev, "--addr", nsStack+"/24", "--host-addr", nsKernel+"/24",
		"--http", dir, "--admin", adminAddr)
	srv.waitLog("kernel side of "+nsDev+" is up", 10*time.Second)

	// A client whose connections are made inside the namespace.
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (c net.Conn, err error) {
			err = ns.in(func() (err error) {
				c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
				return err
			})
			return c, err
		},
	}}
	get := func(url string) string {
		t.Helper()
		resp, err := client.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s, %v", url, resp.Status, err)
		}
		return string(b)
	}
	site := "http://" + nsStack + ":80/"
	fetch := func(n int) time.Duration {
		start := time.Now()
		for range n {
			if body := get(site); len(body) != 900 {
				t.Fatalf("GET %s: %d bytes, want 900", site, len(body))
			}
		}
		return time.Since(start)
	}
	fetch(20) // warm up
	without := fetch(reqs)
	st0 := srv.stats()
	mem0, what := srv.memory(t, st0)

	// The subscribers: each asks for /events and never reads a byte.
	streams := ns.dialN(t, subs, adminAddr, 4096)
	eachConn(streams, func(i int, c net.Conn) {
		fmt.Fprintf(c, "GET /events HTTP/1.1\r\nHost: admin\r\n\r\n")
	})
	// Every subscriber is taken in (served, or refused and let go) before
	// the site is measured again: what is measured is what they cost while
	// they sit there, not the admin server's work of answering them.
	var refused, clients float64
	for end := time.Now().Add(time.Minute); ; {
		metrics := get("http://" + adminAddr + "/metrics")
		refused = metricValue(t, metrics, "synstack_admin_event_clients_refused_total")
		clients = metricValue(t, metrics, "synstack_admin_event_clients")
		if int(refused+clients) >= subs {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("after a minute the admin endpoint had taken %v of %d /events requests", refused+clients, subs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	with := fetch(reqs)
	st1 := srv.stats()
	mem1, _ := srv.memory(t, st1)
	t.Logf("%d requests: %v without subscribers, %v with %d that never read (%.2fx); %s %s -> %s; /events clients %.0f, refused %.0f",
		reqs, without.Round(time.Millisecond), with.Round(time.Millisecond), subs, float64(with)/float64(without),
		what, mib(mem0), mib(mem1), clients, refused)
	if clients > 64 || refused < float64(subs-64) {
		t.Errorf("%v /events streams served and %v refused of %d: want at most 64 served (admin.MaxEventClients) and the rest refused", clients, refused, subs)
	}
	if grow := mem1 - mem0; grow > 100<<20 {
		t.Errorf("%s grew by %s with %d subscribers, over 100 MiB", what, mib(grow), subs)
	}
	// And once they are gone: what a second run costs by itself (TIME_WAIT
	// connections left by the first, a warmer heap) shows apart from what
	// the subscribers cost.
	for _, c := range streams {
		c.Close()
	}
	after := fetch(reqs)
	t.Logf("%d requests again, the subscribers gone: %v (%.2fx the first run; with them %.2fx this one)",
		reqs, after.Round(time.Millisecond), float64(after)/float64(without), float64(with)/float64(after))
	srv.stop()
}

// metricValue returns the value of an unlabelled metric in a Prometheus
// text exposition.
func metricValue(t *testing.T, text, name string) float64 {
	t.Helper()
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("no metric %s on /metrics", name)
	return 0
}
