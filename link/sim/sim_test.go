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

// collect runs n packets of size sz through a link with opts and returns
// what arrived, in order.
func collect(t *testing.T, opts Options, n, sz int) ([][]byte, Stats, []Event) {
	t.Helper()
	vc := clock.NewVirtual(time.Unix(0, 0))
	opts.Clock = vc
	var events []Event
	opts.Trace = func(e Event) { events = append(events, e) }
	a, b := Pair(opts)
	var got [][]byte
	b.Attach(dispatchFunc(func(p []byte) { got = append(got, append([]byte(nil), p...)) }))
	for i := 0; i < n; i++ {
		p := make([]byte, sz)
		p[0], p[1] = byte(i>>8), byte(i)
		a.WritePacket(p)
		vc.Advance(time.Millisecond)
	}
	vc.Advance(time.Minute)
	return got, a.Stats(), events
}

type dispatchFunc func([]byte)

func (f dispatchFunc) DeliverPacket(p []byte) { f(p) }

func TestSameSeedSameRun(t *testing.T) {
	o := Options{Seed: 42, Delay: 10 * time.Millisecond, Jitter: 5 * time.Millisecond,
		Loss: 0.05, Duplicate: 0.05, Reorder: 0.05, Corrupt: 0.05}
	g1, s1, e1 := collect(t, o, 2000, 100)
	g2, s2, e2 := collect(t, o, 2000, 100)
	if s1 != s2 || len(g1) != len(g2) || len(e1) != len(e2) {
		t.Fatalf("same seed, different runs: %+v vs %+v", s1, s2)
	}
	for i := range e1 {
		if e1[i] != e2[i] {
			t.Fatalf("event %d differs: %+v vs %+v", i, e1[i], e2[i])
		}
	}
	o.Seed = 43
	_, s3, _ := collect(t, o, 2000, 100)
	if s3 == s1 {
		t.Fatal("a different seed gave the same run")
	}
	// The rates are about what was asked for.
	for name, v := range map[string]uint64{"lost": s1.Lost, "duplicated": s1.Duplicated, "reordered": s1.Reordered, "corrupted": s1.Corrupted} {
		if v < 60 || v > 150 {
			t.Errorf("%s %d of 2000, want about 100", name, v)
		}
	}
	if uint64(len(g1)) != s1.Sent-s1.Lost+s1.Duplicated {
		t.Errorf("delivered %d, want sent %d - lost %d + duplicated %d", len(g1), s1.Sent, s1.Lost, s1.Duplicated)
	}
}

func TestReorderAndCorrupt(t *testing.T) {
	got, st, _ := collect(t, Options{Seed: 1, Delay: 10 * time.Millisecond, Reorder: 0.2, Corrupt: 0.2}, 500, 64)
	inversions, corrupted := 0, 0
	for i := 1; i < len(got); i++ {
		if int(got[i][0])<<8|int(got[i][1]) < int(got[i-1][0])<<8|int(got[i-1][1]) {
			inversions++
		}
	}
	for _, p := range got {
		for _, c := range p[2:] {
			if c != 0 {
				corrupted++
				break
			}
		}
	}
	if inversions == 0 || st.Reordered == 0 {
		t.Errorf("no reordering seen (%d inversions, %d reordered)", inversions, st.Reordered)
	}
	if corrupted == 0 || st.Corrupted == 0 {
		t.Errorf("no corruption seen (%d packets, %d counted)", corrupted, st.Corrupted)
	}
}

func TestBandwidthAndQueue(t *testing.T) {
	vc := clock.NewVirtual(time.Unix(0, 0))
	// 1 Mbit/s: a 1250-byte packet takes 10 ms; the queue holds 5.
	a, b := Pair(Options{Clock: vc, Bandwidth: 1_000_000, QueueLen: 5})
	var at []time.Duration
	b.Attach(dispatchFunc(func(p []byte) { at = append(at, vc.Now().Sub(time.Unix(0, 0))) }))
	for i := 0; i < 8; i++ {
		a.WritePacket(make([]byte, 1250))
	}
	vc.Advance(time.Second)
	if len(at) != 5 || at[0] != 10*time.Millisecond || at[4] != 50*time.Millisecond {
		t.Fatalf("arrivals %v, want 5 packets 10 ms apart", at)
	}
	if st := a.Stats(); st.QueueDrops != 3 {
		t.Fatalf("queue drops %d, want 3", st.QueueDrops)
	}
}

func TestPartitionHeals(t *testing.T) {
	vc := clock.NewVirtual(time.Unix(0, 0))
	a, b := Pair(Options{Clock: vc, Delay: time.Millisecond})
	n := 0
	a.Attach(dispatchFunc(func([]byte) {}))
	b.Attach(dispatchFunc(func([]byte) { n++ }))
	b.Partition(time.Second) // either end cuts both ways
	a.WritePacket([]byte{1})
	vc.Advance(2 * time.Second)
	a.WritePacket([]byte{2})
	vc.Advance(time.Second)
	if n != 1 || a.Stats().Dropped != 1 {
		t.Fatalf("delivered %d (want 1: after the heal), dropped %d", n, a.Stats().Dropped)
	}
}

// On the real clock every packet has a timer of its own, and timers due
// together run in goroutines in any order: the link still delivers the
// packets of one direction in the order they were sent.
func TestOrderOnRealClock(t *testing.T) {
	a, b := Pair(Options{Delay: time.Millisecond})
	const n = 3000
	got := make(chan int, n)
	b.Attach(dispatchFunc(func(p []byte) { got <- int(p[0])<<8 | int(p[1]) }))
	for i := range n {
		a.WritePacket([]byte{byte(i >> 8), byte(i)})
	}
	for i := range n {
		if k := <-got; k != i {
			t.Fatalf("packet %d arrived in place %d", k, i)
		}
	}
	b.Close()
}
