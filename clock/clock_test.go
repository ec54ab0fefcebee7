package clock

import (
	"testing"
	"time"
)

func TestVirtualRunsTimersInOrder(t *testing.T) {
	start := time.Unix(0, 0)
	v := NewVirtual(start)
	var got []time.Duration
	rec := func() { got = append(got, v.Now().Sub(start)) }
	v.AfterFunc(3*time.Second, rec)
	v.AfterFunc(1*time.Second, func() {
		rec()
		v.AfterFunc(time.Second, rec) // due at 2 s, inside the same Advance
	})
	stopped := v.AfterFunc(2500*time.Millisecond, rec)
	if !stopped.Stop() || stopped.Stop() {
		t.Fatal("Stop must succeed once")
	}
	v.Advance(10 * time.Second)
	want := []time.Duration{time.Second, 2 * time.Second, 3 * time.Second}
	if len(got) != len(want) {
		t.Fatalf("fired at %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("fired at %v, want %v", got, want)
		}
	}
	if v.Now().Sub(start) != 10*time.Second {
		t.Fatalf("clock reads %v after Advance(10s)", v.Now().Sub(start))
	}
	if _, ok := v.Next(); ok {
		t.Fatal("no timer should be left")
	}
}
