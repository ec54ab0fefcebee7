package sim_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/link/sim"
)

// fetchWithRetry is the application under test: it GETs url, giving each
// attempt perAttempt, and tries again until it succeeds or attempts are
// used up.
func fetchWithRetry(c *http.Client, url string, attempts int, perAttempt time.Duration) (string, int, error) {
	var err error
	for i := 1; i <= attempts; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), perAttempt)
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		var resp *http.Response
		if resp, err = c.Do(req); err == nil {
			body, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			cancel()
			if rerr == nil {
				return string(body), i, nil
			}
			err = rerr
			continue
		}
		cancel()
	}
	return "", attempts, err
}

// TestExampleRetryOverLossyPartitionedNetwork is the example of the
// README's "Test an application over a bad network": an HTTP server and
// a client with a retry loop, on three stacks of a simulated network
// with 20 ms of delay and 2 % loss each way, the client cut off from the
// server for its first 8 seconds. Inside a testing/synctest bubble the
// network runs on the bubble's fake clock: the test covers more than 8
// seconds of the application's life and takes milliseconds of real time.
func TestExampleRetryOverLossyPartitionedNetwork(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := sim.NewNetwork(sim.Options{Seed: 42, Delay: 20 * time.Millisecond, Loss: 0.02, Reorder: 0.01})
		newStack := func(name, addr string) *synstack.Stack {
			a := netip.MustParseAddr(addr)
			st, err := synstack.New(synstack.Config{Link: n.Add(name, a), Addrs: []netip.Prefix{netip.PrefixFrom(a, 24)}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		}
		srvStack := newStack("server", "10.0.0.1")
		cliStack := newStack("client", "10.0.0.2")

		ln, err := srvStack.Listen("tcp", "10.0.0.1:80")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, "hello over a bad network")
		})}
		go srv.Serve(ln)
		defer srv.Close()

		client := &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return cliStack.DialContext(ctx, network, addr)
			},
		}}
		defer client.CloseIdleConnections()

		n.Partition(8*time.Second, []string{"client"}, []string{"server"})
		start := time.Now()
		body, attempts, err := fetchWithRetry(client, "http://10.0.0.1/", 5, 3*time.Second)
		took := time.Since(start) // fake time: the bubble's clock
		if err != nil {
			t.Fatalf("after %d attempts: %v", attempts, err)
		}
		if body != "hello over a bad network" {
			t.Fatalf("body %q", body)
		}
		// The partition lasts 8 s and an attempt 3 s. The third attempt
		// starts at 6 s: its SYN and the retransmission 1 s later fall in
		// the partition, and the next would go at 9 s, after its budget.
		// The fourth, at 9 s, gets through: this is what a retry loop over
		// TCP's SYN backoff looks like, and a test can pin it down.
		if attempts != 4 || took < 9*time.Second {
			t.Errorf("succeeded on attempt %d after %v; want the fourth, after 9 s", attempts, took)
		}
		t.Logf("attempt %d succeeded after %v of simulated time", attempts, took)
	})
}
