package bench

import (
	"context"
	"errors"
	"testing"
	"time"
)

// The smoke tests run every figure at a tiny size for every kind and check
// only that the work was done and the numbers make sense: never a timing.

func TestBulkSmoke(t *testing.T) {
	for _, k := range Kinds {
		for _, mtu := range []int{1500, 65535} {
			r, err := Bulk(context.Background(), k, mtu, Budget{Count: 4})
			if err != nil {
				t.Fatalf("%s mtu %d: %v", k, mtu, err)
			}
			if r.Bytes != 4<<20 || r.Elapsed <= 0 || r.MBps() <= 0 || r.Gbps() <= 0 {
				t.Errorf("%s mtu %d: %+v", k, mtu, r)
			}
			a, ok := r.AllocsPerSegment()
			if ok != (k != Kernel) || (ok && (r.Segments == 0 || a < 0)) {
				t.Errorf("%s mtu %d: allocs/segment %v %v from %+v", k, mtu, a, ok, r)
			}
		}
	}
}

// TestBulkByDuration runs Bulk with a time budget. The window is long
// enough that some data arrives in it even under -race on a busy machine
// (a 30 ms one once saw none, with two race suites running at once).
func TestBulkByDuration(t *testing.T) {
	r, err := Bulk(context.Background(), Synstack, 1500, Budget{Warmup: 20 * time.Millisecond, Duration: 250 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.Bytes <= 0 || r.Elapsed <= 0 {
		t.Errorf("%+v", r)
	}
}

func TestConnSetupSmoke(t *testing.T) {
	for _, k := range Kinds {
		for _, d := range []int{1, 8} {
			r, err := ConnSetup(context.Background(), k, d, Budget{Count: 40})
			if err != nil {
				t.Fatalf("%s, %d dialers: %v", k, d, err)
			}
			if r.N != 40 || r.PerSecond() <= 0 {
				t.Errorf("%s, %d dialers: %+v", k, d, r)
			}
		}
	}
}

func TestPingPongSmoke(t *testing.T) {
	for _, k := range Kinds {
		r, err := PingPong(context.Background(), k, Budget{Count: 100})
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		if r.N != 100 || r.PerSecond() <= 0 {
			t.Errorf("%s: %+v", k, r)
		}
	}
	r, err := PingPong(context.Background(), Synstack, Budget{Warmup: 5 * time.Millisecond, Duration: 20 * time.Millisecond})
	if err != nil || r.N <= 0 {
		t.Fatalf("by duration: %+v, %v", r, err)
	}
}

func TestIdleHeapSmoke(t *testing.T) {
	for _, k := range []Kind{Synstack, GVisor} {
		r, err := IdleHeap(context.Background(), k, 200)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		// The heap is the whole process's, so only its sign is checked:
		// 200 connections hold something.
		if r.Conns != 200 || r.PerConn() <= 0 || r.PerEndpoint() != r.PerConn()/2 {
			t.Errorf("%s: %+v", k, r)
		}
	}
	if _, err := IdleHeap(context.Background(), Kernel, 10); !errors.Is(err, ErrNotApplicable) {
		t.Errorf("kernel: %v, want ErrNotApplicable", err)
	}
}

// Several client addresses: the connections are spread over them.
func TestIdleHeapManyAddrs(t *testing.T) {
	defer func(n int) { connsPerClientAddr = n }(connsPerClientAddr)
	connsPerClientAddr = 100
	for _, k := range []Kind{Synstack, GVisor} {
		if _, err := IdleHeap(context.Background(), k, 250); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
	}
}

func TestMultiBulkSmoke(t *testing.T) {
	for _, k := range Kinds {
		r, err := MultiBulk(context.Background(), k, 1500, 4, Budget{Count: 2})
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		if r.Bytes != 2<<20 || r.Elapsed <= 0 || r.MBps() <= 0 {
			t.Errorf("%s: %+v", k, r)
		}
	}
	if r, err := MultiBulkSynstack(context.Background(), 1500, 4, Budget{Count: 2}, SynOptions{NoOffload: true}); err != nil || r.Bytes != 2<<20 {
		t.Fatalf("with checksums: %+v, %v", r, err)
	}
	r, err := MultiBulk(context.Background(), Synstack, 1500, 2, Budget{Warmup: 10 * time.Millisecond, Duration: 30 * time.Millisecond})
	if err != nil || r.Bytes <= 0 {
		t.Fatalf("by duration: %+v, %v", r, err)
	}
}
