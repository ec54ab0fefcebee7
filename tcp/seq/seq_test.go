package seq

import (
	"math"
	"testing"
)

func TestCompareAcrossWrap(t *testing.T) {
	cases := []struct {
		a, b Value
		less bool
	}{
		{0, 1, true},
		{1, 0, false},
		{math.MaxUint32, 0, true},
		{math.MaxUint32 - 10, 5, true},
		{5, math.MaxUint32 - 10, false},
		{0, 1<<31 - 1, true},
	}
	for _, c := range cases {
		if got := c.a.LessThan(c.b); got != c.less {
			t.Errorf("%d.LessThan(%d) = %v, want %v", c.a, c.b, got, c.less)
		}
		if c.a != c.b {
			if got := c.b.GreaterThan(c.a); got != c.less {
				t.Errorf("%d.GreaterThan(%d) = %v, want %v", c.b, c.a, got, c.less)
			}
		}
	}
	var v Value = 7
	if !v.LessThanEq(v) || !v.GreaterThanEq(v) || v.LessThan(v) || v.GreaterThan(v) {
		t.Error("a value must equal itself and be neither less nor greater")
	}
}

func TestAddSubAcrossWrap(t *testing.T) {
	v := Value(math.MaxUint32 - 2)
	w := v.Add(5)
	if w != 2 {
		t.Fatalf("Add across wrap = %d, want 2", w)
	}
	if d := w.Sub(v); d != 5 {
		t.Fatalf("Sub across wrap = %d, want 5", d)
	}
	if d := v.Sub(w); d != -5 {
		t.Fatalf("Sub backwards across wrap = %d, want -5", d)
	}
	if Max(v, w) != w || Min(v, w) != v {
		t.Fatal("Max/Min across wrap picked the wrong value")
	}
}

func TestInWindow(t *testing.T) {
	first := Value(math.MaxUint32 - 1)
	for _, c := range []struct {
		v    Value
		n    Size
		want bool
	}{
		{first, 4, true},
		{first.Add(3), 4, true},
		{first.Add(4), 4, false},
		{first - 1, 4, false},
		{first, 0, false},
		{1, 4, true},
	} {
		if got := c.v.InWindow(first, c.n); got != c.want {
			t.Errorf("%d.InWindow(%d, %d) = %v, want %v", c.v, first, c.n, got, c.want)
		}
		if got := c.v.InRange(first, first.Add(c.n)); got != c.want {
			t.Errorf("%d.InRange(%d, +%d) = %v, want %v", c.v, first, c.n, got, c.want)
		}
	}
}

func FuzzOrder(f *testing.F) {
	f.Add(uint32(0), uint32(1), uint32(3))
	f.Add(uint32(math.MaxUint32), uint32(0), uint32(1<<30))
	f.Fuzz(func(t *testing.T, a, b, n uint32) {
		x, y := Value(a), Value(b)
		if x.LessThan(y) && y.LessThan(x) {
			t.Fatal("both less than each other")
		}
		if x.LessThan(y) != y.GreaterThan(x) {
			t.Fatal("LessThan and GreaterThan disagree")
		}
		if n < 1<<31 && x.Add(Size(n)).Sub(x) != int32(n) {
			t.Fatal("Add and Sub do not invert")
		}
	})
}
