package admin_test

import (
	"net/netip"
	"testing"

	"github.com/synstack/synstack/admin"
	"github.com/synstack/synstack/tcp"
)

var (
	local  = netip.MustParseAddrPort("10.0.0.1:80")
	remote = netip.MustParseAddrPort("10.0.0.2:40000")
)

// TestObserverDrops checks that a full subscriber misses transitions
// instead of blocking the stack, and that the misses are counted.
func TestObserverDrops(t *testing.T) {
	o := admin.NewObserver()
	slow := o.Subscribe(2)
	fast := o.Subscribe(10)
	for range 5 {
		o.OnTransition(local, remote, tcp.Established, tcp.FinWait1, "call CLOSE")
	}
	if o.Seen() != 5 || slow.Dropped() != 3 || fast.Dropped() != 0 || o.Dropped() != 3 || o.Subscribers() != 2 {
		t.Errorf("seen %d, dropped %d+%d (total %d), subscribers %d", o.Seen(), slow.Dropped(), fast.Dropped(), o.Dropped(), o.Subscribers())
	}
	ev := <-fast.C()
	if ev.Local != local || ev.Remote != remote || ev.From != tcp.Established || ev.To != tcp.FinWait1 || ev.Cause != "call CLOSE" || ev.Time.IsZero() {
		t.Errorf("transition %+v", ev)
	}
	if len(slow.C()) != 2 || len(fast.C()) != 4 {
		t.Errorf("queued %d and %d", len(slow.C()), len(fast.C()))
	}
	slow.Close()
	slow.Close()
	o.OnTransition(local, remote, tcp.FinWait1, tcp.FinWait2, "rcv ACK")
	if o.Subscribers() != 1 || len(slow.C()) != 2 || len(fast.C()) != 5 {
		t.Errorf("after Close: %d subscribers, queued %d and %d", o.Subscribers(), len(slow.C()), len(fast.C()))
	}
	fast.Close()
}

// TestObserverNoAlloc checks that telling the Observer of a transition
// allocates nothing, with or without subscribers.
func TestObserverNoAlloc(t *testing.T) {
	o := admin.NewObserver()
	if n := testing.AllocsPerRun(100, func() { o.OnTransition(local, remote, tcp.Closed, tcp.SynSent, "call CONNECT") }); n != 0 {
		t.Errorf("%v allocations per transition without subscribers", n)
	}
	s := o.Subscribe(1)
	defer s.Close()
	if n := testing.AllocsPerRun(100, func() { o.OnTransition(local, remote, tcp.Closed, tcp.SynSent, "call CONNECT") }); n != 0 {
		t.Errorf("%v allocations per transition with a subscriber", n)
	}
}

// BenchmarkObserver measures OnTransition, the cost the Observer adds to
// each state change under the stack's lock.
func BenchmarkObserver(b *testing.B) {
	for _, subs := range []int{0, 1, 4} {
		b.Run("subscribers="+string(rune('0'+subs)), func(b *testing.B) {
			o := admin.NewObserver()
			for range subs {
				s := o.Subscribe(1)
				defer s.Close()
			}
			b.ReportAllocs()
			for b.Loop() {
				o.OnTransition(local, remote, tcp.Closed, tcp.SynSent, "call CONNECT")
			}
		})
	}
}
