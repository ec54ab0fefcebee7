package trace_test

import (
	"io"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/clock"
	"github.com/synstack/synstack/link/sim"
	"github.com/synstack/synstack/tcp"
	"github.com/synstack/synstack/trace"
)

// The cost of a hook with nobody subscribed: one atomic load.
func BenchmarkHookIdle(b *testing.B) {
	tr := trace.NewTracer(nil)
	hook := tr.PacketHook("h")
	p := make([]byte, 1500)
	b.ReportAllocs()
	for b.Loop() {
		hook("out", p)
	}
}

// The cost with one subscriber that does nothing: a clock read and a copy
// of the packet.
func BenchmarkHookSubscribed(b *testing.B) {
	tr := trace.NewTracer(nil)
	tr.Subscribe(trace.Func(func(trace.Event) {}))
	hook := tr.PacketHook("h")
	p := make([]byte, 1500)
	b.ReportAllocs()
	for b.Loop() {
		hook("out", p)
	}
}

// BenchmarkStack runs one 1 KB request and its 1 KB answer between two
// stacks per operation, with the stacks' hooks absent, wired to a tracer
// nobody listens to, and wired to a ladder printing to io.Discard. The
// first two should cost the same.
func BenchmarkStack(b *testing.B) {
	for _, mode := range []string{"no-hooks", "idle-tracer", "ladder"} {
		b.Run(mode, func(b *testing.B) {
			clk := clock.NewVirtual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			tr := trace.NewTracer(clk)
			if mode == "ladder" {
				tr.Subscribe(trace.NewLadder(io.Discard, "client", "server"))
			}
			a, z := sim.Pair(sim.Options{Clock: clk})
			cfg := func(ep *sim.Endpoint, addr, host string) synstack.Config {
				c := synstack.Config{Link: ep, Clock: clk, Seed: 1, Addrs: []netip.Prefix{netip.MustParsePrefix(addr)}}
				if mode != "no-hooks" {
					c.OnPacket = tr.PacketHook(host)
					c.OnTransition = trace.TransitionHook[tcp.State, tcp.Cause](tr, host)
				}
				return c
			}
			cli, err := synstack.New(cfg(a, "10.0.0.2/24", "client"))
			if err != nil {
				b.Fatal(err)
			}
			defer cli.Close()
			srv, err := synstack.New(cfg(z, "10.0.0.1/24", "server"))
			if err != nil {
				b.Fatal(err)
			}
			defer srv.Close()
			cs, ss := cli.Sockets(), srv.Sockets()
			lfd, _ := ss.Socket(syscall.AF_INET, syscall.SOCK_STREAM|synstack.SOCK_NONBLOCK, 0)
			ss.Bind(lfd, netip.MustParseAddrPort("10.0.0.1:80"))
			ss.Listen(lfd, 1)
			fd, _ := cs.Socket(syscall.AF_INET, syscall.SOCK_STREAM|synstack.SOCK_NONBLOCK, 0)
			cs.Connect(fd, netip.MustParseAddrPort("10.0.0.1:80"))
			clk.Advance(time.Millisecond)
			afd, _, err := ss.Accept(lfd)
			if err != nil {
				b.Fatal(err)
			}
			ss.Fcntl(afd, synstack.F_SETFL, synstack.O_NONBLOCK)
			msg := make([]byte, 1024)
			buf := make([]byte, 4096)
			b.SetBytes(2 * int64(len(msg)))
			b.ReportAllocs()
			exchange := func(from, to *synstack.Sockets, wfd, rfd int) {
				if _, err := from.Write(wfd, msg); err != nil {
					b.Fatal(err)
				}
				clk.Advance(time.Millisecond)
				for got := 0; got < len(msg); {
					n, err := to.Read(rfd, buf)
					if err != nil {
						b.Fatalf("read after %d bytes: %v", got, err)
					}
					got += n
				}
			}
			for b.Loop() {
				exchange(cs, ss, fd, afd)
				exchange(ss, cs, afd, fd)
			}
		})
	}
}
