package forward

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/internal/kernelnet"
)

// countingDial is a net.Dialer's DialContext that counts its calls.
func countingDial(n *atomic.Int64) DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		n.Add(1)
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
}

// echoOnce sends a line on c and reads it back: the relay is running.
func echoOnce(t *testing.T, c net.Conn) {
	t.Helper()
	if _, err := c.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping\n" {
		t.Fatalf("echo: %q %v", buf, err)
	}
}

// MaxRelays bounds the requests handled at once: beyond it a client is
// refused (RST: ECONNREFUSED) at once, in both modes, nothing is dialed,
// and the refusal is counted; once a relay ends its slot is free again.
func TestForwardMaxRelays(t *testing.T) {
	modes(t, func(t *testing.T, deferred bool) {
		up := kernelnet.Serve(t, kernelnet.Echo)
		var dials atomic.Int64
		fw := &Forwarder{Deferred: deferred, Target: To(up), MaxRelays: 2, Dial: countingDial(&dials)}
		client, fwd := setup(t, fw, synstack.ForwardOptions{})
		var conns []net.Conn
		for range 2 {
			c, err := client.Dial("tcp", "198.18.0.1:80")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			echoOnce(t, c)
			conns = append(conns, c)
		}
		if _, err := client.Dial("tcp", "198.18.0.2:80"); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("third dial: %v, want ECONNREFUSED", err)
		}
		st := fw.Stats()
		if st.LimitRefused != 1 || st.Forwarded != 2 || st.Active != 2 || dials.Load() != 2 {
			t.Fatalf("stats %+v, %d dials; want 1 refused over the limit, 2 forwarded and active, 2 dials", st, dials.Load())
		}
		if s := fwd.Stats(); s.SynstackForwardRefused != 1 {
			t.Errorf("SynstackForwardRefused %d, want 1", s.SynstackForwardRefused)
		}
		conns[0].Close()
		waitFor(t, func() bool { return fw.Stats().Active == 1 })
		c, err := client.Dial("tcp", "198.18.0.3:80")
		if err != nil {
			t.Fatalf("dial after a relay ended: %v", err)
		}
		defer c.Close()
		echoOnce(t, c)
	})
}

// MaxRelaysPerSource bounds the relays of one client address: a second
// connection from the client's IPv4 address is refused, one from its IPv6
// address is relayed.
func TestForwardMaxRelaysPerSource(t *testing.T) {
	modes(t, func(t *testing.T, deferred bool) {
		up := kernelnet.Serve(t, kernelnet.Echo)
		var dials atomic.Int64
		fw := &Forwarder{Deferred: deferred, Target: To(up), MaxRelaysPerSource: 1, Dial: countingDial(&dials)}
		client, _ := setup(t, fw, synstack.ForwardOptions{})
		c, err := client.Dial("tcp", "198.18.0.1:80")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		echoOnce(t, c)
		if _, err := client.Dial("tcp", "198.18.0.1:81"); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("second dial from 10.0.0.2: %v, want ECONNREFUSED", err)
		}
		c6, err := client.Dial("tcp", "[fd99::1]:80")
		if err != nil {
			t.Fatalf("dial from the other source: %v", err)
		}
		defer c6.Close()
		echoOnce(t, c6)
		if st := fw.Stats(); st.SourceLimitRefused != 1 || st.LimitRefused != 0 || st.Forwarded != 2 || dials.Load() != 2 {
			t.Fatalf("stats %+v, %d dials", st, dials.Load())
		}
	})
}

// Check refuses a request before anything is dialed or accepted: a loop
// (ErrLoop) is answered with RST and counted in Loops, an unreachable
// errno with ICMP and counted in Denied; no relay, no dial, in both modes.
func TestForwardCheck(t *testing.T) {
	modes(t, func(t *testing.T, deferred bool) {
		up := kernelnet.Serve(t, kernelnet.Echo)
		var dials atomic.Int64
		var (
			mu      sync.Mutex
			targets []string
		)
		fw := &Forwarder{Deferred: deferred, Dial: countingDial(&dials),
			Target: func(req *synstack.ForwardRequest) string {
				if req.Local.Port() == 7 {
					return up
				}
				return req.Local.String()
			},
			Check: func(req *synstack.ForwardRequest, target string) error {
				mu.Lock()
				targets = append(targets, target)
				mu.Unlock()
				switch req.Local.Addr().String() {
				case "198.18.0.1":
					return fmt.Errorf("%s routes back into the device: %w", target, ErrLoop)
				case "198.18.0.2":
					return &net.OpError{Op: "route", Net: "ip", Err: syscall.EHOSTUNREACH}
				}
				return nil
			}}
		client, fwd := setup(t, fw, synstack.ForwardOptions{})
		if _, err := client.Dial("tcp", "198.18.0.1:80"); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("dial to a loop: %v, want ECONNREFUSED", err)
		}
		if _, err := client.Dial("tcp", "198.18.0.2:80"); !errors.Is(err, syscall.EHOSTUNREACH) {
			t.Errorf("dial to a denied address: %v, want EHOSTUNREACH", err)
		}
		c, err := client.Dial("tcp", "198.18.0.3:7")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		echoOnce(t, c)
		st := fw.Stats()
		if st.Loops != 1 || st.Denied != 1 || st.Forwarded != 1 || dials.Load() != 1 {
			t.Fatalf("stats %+v, %d dials; want 1 loop, 1 denied, 1 forwarded, 1 dial", st, dials.Load())
		}
		if s := fwd.Stats(); s.SynstackForwarded != 1 || s.SynstackForwardRefused != 1 || s.SynstackForwardUnreachables != 1 {
			t.Errorf("stack: forwarded %d refused %d unreachable %d", s.SynstackForwarded, s.SynstackForwardRefused, s.SynstackForwardUnreachables)
		}
		mu.Lock()
		defer mu.Unlock()
		if want := "198.18.0.1:80 198.18.0.2:80 " + up; fmt.Sprint(targets) != "["+want+"]" {
			t.Errorf("Check saw targets %v, want [%s]", targets, want)
		}
	})
}
