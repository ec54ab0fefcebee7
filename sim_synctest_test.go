package synstack_test

import (
	"bytes"
	"crypto/sha256"
	"io"
	"net/http"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/link/sim"
)

// An HTTP download over a lossy, reordering, duplicating, corrupting link,
// inside a testing/synctest bubble: the link and the stacks run on the
// bubble's fake clock, so seconds of simulated retransmissions take
// milliseconds, and the body still arrives byte-exact.
func TestHTTPOverLossyLinkInSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := sim.Pair(sim.Options{Seed: 7, Delay: 10 * time.Millisecond, Loss: 0.01,
			Reorder: 0.02, Duplicate: 0.01, Corrupt: 0.001, MTU: 1500})
		srv, err := synstack.New(synstack.Config{Link: a, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}})
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		cli, err := synstack.New(synstack.Config{Link: b, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")}})
		if err != nil {
			t.Fatal(err)
		}
		defer cli.Close()
		body := bytes.Repeat([]byte("synstack over a bad link\n"), 40000) // 1 MB
		ln, err := srv.Listen("tcp", "10.0.0.1:80")
		if err != nil {
			t.Fatal(err)
		}
		hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) })}
		go hs.Serve(ln)
		defer hs.Close()
		tr := &http.Transport{DialContext: cli.DialContext}
		defer tr.CloseIdleConnections()
		start := time.Now()
		resp, err := (&http.Client{Transport: tr}).Get("http://10.0.0.1/")
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || sha256.Sum256(got) != sha256.Sum256(body) {
			t.Fatalf("body: %d bytes, err %v; want %d identical bytes", len(got), err, len(body))
		}
		t.Logf("1 MB in %v of bubble time; link a>b %+v", time.Since(start), a.Stats())
	})
}
