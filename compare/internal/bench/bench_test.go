package bench

import (
	"context"
	"flag"
	"strconv"
	"testing"
)

// The Go benchmarks of the same figures, each kind a sub-benchmark, with
// the figure's own unit reported by b.ReportMetric (the ns/op includes
// setting the stacks up and is not the figure). For example
//
//	go test -run '^$' -bench . ./internal/bench/
//	go test -run '^$' -bench 'PingPong|ConnSetup' -count 5 ./internal/bench/
//
// Each figure's rate is measured by the function itself over the b.N
// units of work (MiB, connections, round trips), so -benchtime sets how
// long each runs.

var benchIdle = flag.Int("bench.idle", 2000, "idle connections held by BenchmarkIdleHeap")

func BenchmarkBulk(b *testing.B) {
	for _, mtu := range []int{1500, 65535} {
		for _, k := range Kinds {
			if k == Kernel && mtu != 65535 {
				continue // one kernel figure: lo's MTU is 65536 whatever is asked
			}
			b.Run(string(k)+"/mtu"+itoa(mtu), func(b *testing.B) {
				r, err := Bulk(context.Background(), k, mtu, Budget{Count: b.N})
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(r.MBps(), "MB/s")
				b.ReportMetric(r.Gbps(), "Gbit/s")
				if a, ok := r.AllocsPerSegment(); ok {
					b.ReportMetric(a, "allocs/seg")
				}
			})
		}
	}
}

// BenchmarkMultiBulk runs 8 connections between one pair of hosts, each
// carrying a bulk stream both ways at once (16 streams), b.N MiB in all,
// and reports the aggregate MB/s: the figure for a stack using several
// cores, with the cores it kept busy and the time its goroutines spent
// waiting for mutexes, per second. synstack-csum is synstack with
// checksum offload off on the pipe (every TCP checksum computed and
// verified, as over a link without offload); synstack-1shard runs each
// stack under a single lock (Config.Shards 1).
func BenchmarkMultiBulk(b *testing.B) {
	report := func(b *testing.B, r BulkResult) {
		b.ReportMetric(r.MBps(), "MB/s")
		b.ReportMetric(r.Cores(), "cores")
		b.ReportMetric(r.MutexWaitRatio(), "mutexwait/s")
		if a, ok := r.AllocsPerSegment(); ok {
			b.ReportMetric(a, "allocs/seg")
		}
	}
	for _, v := range []struct {
		name string
		o    SynOptions
	}{{"synstack-csum", SynOptions{NoOffload: true}}, {"synstack-1shard", SynOptions{Shards: 1}}, {"synstack-2queues", SynOptions{Queues: 2}}} {
		b.Run(v.name+"/conns8", func(b *testing.B) {
			r, err := MultiBulkSynstack(context.Background(), 1500, 8, Budget{Count: b.N}, v.o)
			if err != nil {
				b.Fatal(err)
			}
			report(b, r)
		})
	}
	for _, k := range Kinds {
		b.Run(string(k)+"/conns8", func(b *testing.B) {
			r, err := MultiBulk(context.Background(), k, 1500, 8, Budget{Count: b.N})
			if err != nil {
				b.Fatal(err)
			}
			report(b, r)
		})
	}
}

func BenchmarkConnSetup(b *testing.B) {
	for _, d := range []int{1, 8} {
		for _, k := range Kinds {
			b.Run(string(k)+"/dialers"+itoa(d), func(b *testing.B) {
				r, err := ConnSetup(context.Background(), k, d, Budget{Count: b.N})
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(r.PerSecond(), "conns/s")
			})
		}
	}
}

func BenchmarkPingPong(b *testing.B) {
	for _, k := range Kinds {
		b.Run(string(k), func(b *testing.B) {
			r, err := PingPong(context.Background(), k, Budget{Count: b.N})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(r.PerSecond(), "rtt/s")
		})
	}
}

// BenchmarkUDP sends b.N datagrams over 1 or 8 flows at once (each
// sender keeping at most UDPWindow in flight) and reports the datagrams
// received per second and the share lost.
func BenchmarkUDP(b *testing.B) {
	for _, size := range UDPSizes {
		for _, flows := range UDPFlows {
			for _, k := range Kinds {
				b.Run(string(k)+"/size"+itoa(size)+"/flows"+itoa(flows), func(b *testing.B) {
					r, err := UDP(context.Background(), k, size, flows, Budget{Count: b.N})
					if err != nil {
						b.Fatal(err)
					}
					b.ReportMetric(r.PerSecond(), "datagrams/s")
					b.ReportMetric(r.LossPercent(), "%lost")
				})
			}
		}
	}
}

// BenchmarkIdleHeap holds -bench.idle idle connections per iteration and
// reports the mean heap per connection and per endpoint.
func BenchmarkIdleHeap(b *testing.B) { benchIdleHeap(b, IdleHeap) }

// BenchmarkUsedIdleHeap is BenchmarkIdleHeap for connections that each
// carried one exchange before going idle (UsedIdleHeap).
func BenchmarkUsedIdleHeap(b *testing.B) { benchIdleHeap(b, UsedIdleHeap) }

func benchIdleHeap(b *testing.B, f func(context.Context, Kind, int) (HeapResult, error)) {
	for _, k := range []Kind{Synstack, GVisor} {
		b.Run(string(k), func(b *testing.B) {
			var sum float64
			for range b.N {
				r, err := f(context.Background(), k, *benchIdle)
				if err != nil {
					b.Fatal(err)
				}
				sum += r.PerConn()
			}
			b.ReportMetric(sum/float64(b.N), "B/conn")
			b.ReportMetric(sum/float64(b.N)/2, "B/endpoint")
		})
	}
}

// BenchmarkAllocsPerSegment is BenchmarkBulk at MTU 1500 for the two
// userspace stacks, reporting only the allocations per segment.
func BenchmarkAllocsPerSegment(b *testing.B) {
	for _, k := range []Kind{Synstack, GVisor} {
		b.Run(string(k), func(b *testing.B) {
			r, err := Bulk(context.Background(), k, 1500, Budget{Count: b.N})
			if err != nil {
				b.Fatal(err)
			}
			a, _ := r.AllocsPerSegment()
			b.ReportMetric(a, "allocs/seg")
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
