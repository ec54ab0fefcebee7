package synstack_test

import (
	"bytes"
	"io"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/link/sim"
	"github.com/synstack/synstack/tcp"
)

// BBR through the stack's own timer on a clock that is not virtual (the
// bubble's fake time): pacing deadlines, RACK's timer and the rest ride on
// the one clock timer the stack runs, and a bulk transfer over a lossy
// 20 Mbit/s link arrives byte-exact, paced near the link's rate.
func TestBBRPacedThroughStackTimer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := sim.Pair(sim.Options{Seed: 3, Delay: 5 * time.Millisecond, Loss: 0.01,
			Bandwidth: 20_000_000, QueueLen: 100, MTU: 1500})
		cfg := tcp.Config{Congestion: "bbr"}
		srv, err := synstack.New(synstack.Config{Link: a, TCP: cfg, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}})
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		cli, err := synstack.New(synstack.Config{Link: b, TCP: cfg, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")}})
		if err != nil {
			t.Fatal(err)
		}
		defer cli.Close()
		ln, err := srv.Listen("tcp", "10.0.0.1:80")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		body := bytes.Repeat([]byte("paced by bbr\n"), 300000) // 3.9 MB
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write(body)
			c.Close()
		}()
		start := time.Now()
		c, err := cli.DialContext(t.Context(), "tcp", "10.0.0.1:80")
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("read %d bytes (err %v), want %d identical", len(got), err, len(body))
		}
		el := time.Since(start)
		rate := float64(len(body)) * 8 / el.Seconds()
		t.Logf("%d bytes in %v of bubble time: %.1f Mbit/s over a 20 Mbit/s link with 1%% loss", len(body), el, rate/1e6)
		if rate < 14e6 {
			t.Errorf("%.1f Mbit/s over a 20 Mbit/s link: BBR through the stack's timer should keep most of it", rate/1e6)
		}
	})
}
