package admin_test

import (
	"bytes"
	"context"
	"io"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/synstack/synstack/admin"
	"github.com/synstack/synstack/tcp"
)

var (
	local  = netip.MustParseAddrPort("10.0.0.1:80")
	remote = netip.MustParseAddrPort("10.0.0.2:40000")
)

// TestObserverEvicts checks that a subscriber whose queue fills up is
// dropped (its channel closed after what it queued, counted) while the
// others receive every transition.
func TestObserverEvicts(t *testing.T) {
	o := admin.NewObserver()
	slow := o.Subscribe(2)
	fast := o.Subscribe(10)
	for range 5 {
		o.OnTransition(local, remote, tcp.Established, tcp.FinWait1, "call CLOSE")
	}
	waitFor(t, func() bool { return slow.Evicted() }, func() string { return "the slow subscriber was not dropped" })
	if o.Seen() != 5 || o.Evicted() != 1 || o.Dropped() != 0 || o.Subscribers() != 1 || fast.Evicted() {
		t.Errorf("seen %d, evicted %d, dropped %d, subscribers %d, fast evicted %v", o.Seen(), o.Evicted(), o.Dropped(), o.Subscribers(), fast.Evicted())
	}
	for i := range 5 {
		ev := <-fast.C()
		if ev.Local != local || ev.Remote != remote || ev.From != tcp.Established || ev.To != tcp.FinWait1 || ev.Cause != "call CLOSE" || ev.Time.IsZero() {
			t.Errorf("transition %d: %+v", i, ev)
		}
	}
	n := 0
	for range slow.C() { // closed after the 2 it queued
		n++
	}
	if n != 2 {
		t.Errorf("the dropped subscriber got %d transitions, want its queue's 2", n)
	}
	slow.Close()
	slow.Close()
	o.OnTransition(local, remote, tcp.FinWait1, tcp.FinWait2, "rcv ACK")
	if ev := <-fast.C(); ev.To != tcp.FinWait2 {
		t.Errorf("after the drop: %+v", ev)
	}
	fast.Close()
	fast.Close()
	if o.Subscribers() != 0 || o.Evicted() != 1 {
		t.Errorf("after Close: %d subscribers, %d evicted", o.Subscribers(), o.Evicted())
	}
	// Without subscribers nothing is queued; a new one starts afresh.
	o.OnTransition(local, remote, tcp.FinWait2, tcp.TimeWait, "rcv FIN")
	s := o.Subscribe(1)
	defer s.Close()
	if len(s.C()) != 0 || o.Seen() != 7 {
		t.Errorf("a new subscriber has %d transitions queued; seen %d", len(s.C()), o.Seen())
	}
}

// TestObserverNoAlloc checks that telling the Observer of a transition
// allocates nothing, with or without subscribers.
func TestObserverNoAlloc(t *testing.T) {
	o := admin.NewObserver()
	if n := testing.AllocsPerRun(100, func() { o.OnTransition(local, remote, tcp.Closed, tcp.SynSent, "call CONNECT") }); n != 0 {
		t.Errorf("%v allocations per transition without subscribers", n)
	}
	s := o.Subscribe(256) // room for every run: no drop
	defer s.Close()
	if n := testing.AllocsPerRun(100, func() { o.OnTransition(local, remote, tcp.Closed, tcp.SynSent, "call CONNECT") }); n != 0 {
		t.Errorf("%v allocations per transition with a subscriber", n)
	}
	if s.Evicted() || o.Dropped() != 0 {
		t.Errorf("evicted %v, dropped %d", s.Evicted(), o.Dropped())
	}
}

// TestObserverManySlowSubscribers has thousands of subscribers that never
// read on both stacks of a pair while connections echo on them: the
// connections complete every round trip and every transition, each
// subscriber holds at most its queue and is dropped and counted, and no
// goroutine is left (TestMain's goleak).
func TestObserverManySlowSubscribers(t *testing.T) {
	subs, conns, trips := 3000, 10, 10
	if testing.Short() {
		subs = 300
	}
	const queue = 4
	p := newPair(t)
	var all []*admin.Subscription
	for range subs {
		all = append(all, p.srvObs.Subscribe(queue), p.cliObs.Subscribe(queue))
	}
	defer func() {
		for _, s := range all {
			s.Close()
		}
	}()

	ln, err := p.srv.Listen("tcp4", "10.0.0.1:7")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait() // after the Close below
	defer ln.Close()
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				io.Copy(c, c)
				c.Close()
			})
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range conns {
		c, err := p.cli.DialContext(ctx, "tcp", "10.0.0.1:7")
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64)
		for j := range trips {
			msg := []byte("round trip " + strconv.Itoa(i) + "." + strconv.Itoa(j))
			c.SetDeadline(time.Now().Add(10 * time.Second)) // a hang guard, not a bound on speed
			if _, err := c.Write(msg); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(c, buf[:len(msg)]); err != nil || !bytes.Equal(buf[:len(msg)], msg) {
				t.Fatalf("connection %d, trip %d: %q, %v", i, j, buf[:len(msg)], err)
			}
		}
		c.Close()
	}
	// Every connection finished: the client's in TIME_WAIT, the server's
	// gone; each took 5 transitions on either side.
	waitStates(t, p.cli, map[tcp.State]int{tcp.TimeWait: conns})
	waitStates(t, p.srv, map[tcp.State]int{tcp.Listen: 2})
	for _, side := range []struct {
		name string
		o    *admin.Observer
		want uint64
	}{{"server", p.srvObs, uint64(conns * 5)}, {"client", p.cliObs, uint64(conns * 5)}} {
		o := side.o
		waitFor(t, func() bool { return o.Evicted() == uint64(subs) }, func() string {
			return side.name + ": " + strconv.FormatUint(o.Evicted(), 10) + " subscribers dropped, want " + strconv.Itoa(subs)
		})
		if o.Seen() != side.want || o.Subscribers() != 0 {
			t.Errorf("%s: seen %d transitions, want %d; %d subscribers left", side.name, o.Seen(), side.want, o.Subscribers())
		}
	}
	for i, s := range all {
		if !s.Evicted() || len(s.C()) != queue || cap(s.C()) != queue {
			t.Fatalf("subscriber %d: evicted %v, holds %d of %d", i, s.Evicted(), len(s.C()), cap(s.C()))
		}
	}
}

// BenchmarkObserver measures OnTransition, the cost the Observer adds to
// each state change under the stack's lock, with subscribers that read.
// It reports the transitions the Observer's queue had no room for
// (dropped) and the subscribers that fell behind (evicted): the
// benchmark's loop produces faster than any stack does.
func BenchmarkObserver(b *testing.B) {
	for _, subs := range []int{0, 1, 4} {
		b.Run("subscribers="+strconv.Itoa(subs), func(b *testing.B) {
			o := admin.NewObserver()
			var wg sync.WaitGroup
			done := make(chan struct{})
			for range subs {
				s := o.Subscribe(1 << 16)
				wg.Go(func() {
					defer s.Close()
					for {
						select {
						case <-s.C():
						case <-done:
							return
						}
					}
				})
			}
			b.ReportAllocs()
			for b.Loop() {
				o.OnTransition(local, remote, tcp.Closed, tcp.SynSent, "call CONNECT")
			}
			close(done)
			wg.Wait()
			b.ReportMetric(float64(o.Dropped()), "dropped")
			b.ReportMetric(float64(o.Evicted()), "evicted")
		})
	}
}
