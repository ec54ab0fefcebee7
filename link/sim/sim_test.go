package sim

import (
	"testing"
	"time"

	"github.com/synstack/synstack/clock"
)

type recorder struct {
	clk *clock.Virtual
	at  []time.Duration
	t0  time.Time
}

func (r *recorder) DeliverPacket(pkt []byte) { r.at = append(r.at, r.clk.Now().Sub(r.t0)) }

func TestDelayOnVirtualClock(t *testing.T) {
	t0 := time.Unix(0, 0)
	vc := clock.NewVirtual(t0)
	a, b := Pair(Options{Clock: vc, Delay: 5 * time.Millisecond})
	r := &recorder{clk: vc, t0: t0}
	b.Attach(r)
	buf := []byte{0x45, 0, 0, 20}
	a.WritePacket(buf)
	buf[0] = 0 // the link must have copied it
	vc.Advance(time.Millisecond)
	a.WritePacket(make([]byte, 2000)) // over the MTU
	a.WritePacket(buf)
	vc.Advance(time.Second)
	if len(r.at) != 2 || r.at[0] != 5*time.Millisecond || r.at[1] != 6*time.Millisecond {
		t.Fatalf("delivered at %v", r.at)
	}
	if s := a.Stats(); s.Sent != 2 || s.Dropped != 1 {
		t.Fatalf("stats %+v", s)
	}
	b.Close()
	a.WritePacket(buf)
	vc.Advance(time.Second)
	if len(r.at) != 2 {
		t.Fatal("delivered to a closed endpoint")
	}
}

func TestSetDrop(t *testing.T) {
	t0 := time.Unix(0, 0)
	vc := clock.NewVirtual(t0)
	a, b := Pair(Options{Clock: vc, Delay: time.Millisecond})
	r := &recorder{clk: vc, t0: t0}
	b.Attach(r)
	a.SetDrop(func(pkt []byte) bool { return pkt[0] == 1 })
	for _, first := range []byte{1, 2, 1, 3} {
		if err := a.WritePacket([]byte{first}); err != nil {
			t.Fatal(err)
		}
	}
	vc.Advance(time.Second)
	if len(r.at) != 2 {
		t.Fatalf("delivered %d packets, want 2", len(r.at))
	}
	if s := a.Stats(); s.Sent != 2 || s.Dropped != 2 {
		t.Fatalf("stats %+v", s)
	}
	a.SetDrop(nil)
	a.WritePacket([]byte{1})
	vc.Advance(time.Second)
	if len(r.at) != 3 {
		t.Fatalf("delivered %d packets after SetDrop(nil), want 3", len(r.at))
	}
}
