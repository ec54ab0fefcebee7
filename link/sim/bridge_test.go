package sim_test

import (
	"bytes"
	"io"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/link/pipe"
	"github.com/synstack/synstack/link/sim"
)

// Two stacks, each on an in-memory link whose far end a Bridge joins to
// the other's through 10 ms of delay and 2 % loss each way: TCP crosses
// byte-exact, the handshake takes at least the round trip the bridge adds,
// and the bridge counts what it lost.
func TestBridge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a1, x := pipe.New(1500)
		y, b1 := pipe.New(1500)
		defer x.Close()
		defer y.Close()
		o := sim.Options{Seed: 3, Delay: 10 * time.Millisecond, Loss: 0.02}
		br := sim.NewBridge(x, y, o, o)
		defer br.Close()
		mk := func(l *pipe.Endpoint, addr string) *synstack.Stack {
			st, err := synstack.New(synstack.Config{Link: l, Addrs: []netip.Prefix{netip.MustParsePrefix(addr)}})
			if err != nil {
				t.Fatal(err)
			}
			return st
		}
		sa, sb := mk(a1, "10.0.0.1/24"), mk(b1, "10.0.0.2/24")
		defer sa.Close()
		defer sb.Close()
		ln, err := sb.Listen("tcp", "10.0.0.2:80")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		body := bytes.Repeat([]byte("across the bridge\n"), 50000)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write(body)
			c.Close()
		}()
		// The counters are read while packets cross.
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(5 * time.Millisecond):
					br.Stats()
				}
			}
		}()
		start := time.Now()
		c, err := sa.Dial("tcp", "10.0.0.2:80")
		if err != nil {
			t.Fatal(err)
		}
		if rtt := time.Since(start); rtt < 20*time.Millisecond {
			t.Errorf("handshake in %v, want at least the 20 ms round trip", rtt)
		}
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("%d bytes, %v; want %d", len(got), err, len(body))
		}
		xy, yx := br.Stats()
		if yx.Lost == 0 || yx.Delivered == 0 || xy.Delivered == 0 || yx.Delivered+yx.Lost > yx.Sent {
			t.Errorf("bridge counters x>y %+v, y>x %+v", xy, yx)
		}
	})
}
