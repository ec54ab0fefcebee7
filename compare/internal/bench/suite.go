package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"
)

// Names of the groups of figures, for Options.Only.
const (
	NameBulk      = "bulk"
	NameBulkCsum  = "bulkcsum"
	NameMulti     = "multibulk"
	NameConnSetup = "connsetup"
	NamePingPong  = "pingpong"
	NameIdle      = "idle"
	NameAllocs    = "allocs"
	NameUDP       = "udp"
)

// Names lists the groups (Run runs idle first, then the others in this
// order, allocs with bulk).
var Names = []string{NameBulk, NameBulkCsum, NameMulti, NameConnSetup, NamePingPong, NameIdle, NameAllocs, NameUDP}

// ChartMTUs are the MTUs of the throughput chart.
var ChartMTUs = []int{1500, 4000, 9000, 16384, 32768, 65535}

// ChartConns are the idle connection counts of the heap chart (Quick
// uses ChartConnsQuick).
var (
	ChartConns      = []int{1000, 10000, 50000}
	ChartConnsQuick = []int{250, 500, 1000}
)

// Rounds is how many times Run measures each throughput and rate, the
// kinds interleaved (Quick: once); the figure is the median.
const Rounds = 3

// Default sizes of the idle-connection figure, in endpoints (two per
// connection).
const (
	DefaultIdleEndpoints      = 20000
	DefaultIdleEndpointsQuick = 2000
)

// GVisorIdleMax is the most idle connections gVisor is asked to hold:
// beyond it (about 1.2 GiB of heap at gVisor's cost per connection) only
// synstack runs, so that --idle 1000000 fits the machine.
const GVisorIdleMax = 100000

// Options choose what Run measures.
type Options struct {
	// Quick runs one round of short measurements (not Rounds of longer
	// ones) and the idle figure at DefaultIdleEndpointsQuick: a check
	// that all works, not figures to quote.
	Quick bool
	// Only, if not empty, restricts the run to these groups (Names).
	Only []string
	// Charts adds the sweeps the charts need: bulk at every ChartMTUs,
	// idle heap at every ChartConns.
	Charts bool
	// IdleEndpoints is the size of the idle figure, in endpoints (two
	// per connection, both held by this process); 0 is the default.
	IdleEndpoints int
	// Progress, if not nil, receives a line per measurement.
	Progress io.Writer
}

// Figure is one row of the table: a quantity measured for each kind.
type Figure struct {
	Name string `json:"name"`
	Unit string `json:"unit"`
	What string `json:"what"`
	// Better is "higher" or "lower", or empty for a figure that describes
	// rather than ranks (the cores a run kept busy).
	Better   string   `json:"better"`
	Synstack *float64 `json:"synstack"`
	GVisor   *float64 `json:"gvisor"`
	Kernel   *float64 `json:"kernel"`
	// SynstackOverGVisor and SynstackOverKernel are the ratios
	// synstack/gVisor and synstack/kernel, where both are measured.
	SynstackOverGVisor *float64 `json:"synstack_over_gvisor"`
	SynstackOverKernel *float64 `json:"synstack_over_kernel"`
	Note               string   `json:"note,omitempty"`
	// noRatio leaves the ratios out: for a figure whose ratio says
	// nothing (a share lost, often 0).
	noRatio bool
}

// Value returns the figure's value for k.
func (f *Figure) Value(k Kind) *float64 {
	switch k {
	case Synstack:
		return f.Synstack
	case GVisor:
		return f.GVisor
	}
	return f.Kernel
}

func (f *Figure) set(k Kind, v float64) {
	switch k {
	case Synstack:
		f.Synstack = &v
	case GVisor:
		f.GVisor = &v
	default:
		f.Kernel = &v
	}
}

func (f *Figure) ratios() {
	ratio := func(a, b *float64) *float64 {
		if a == nil || b == nil || *b == 0 {
			return nil
		}
		r := *a / *b
		return &r
	}
	if f.noRatio {
		return
	}
	f.SynstackOverGVisor = ratio(f.Synstack, f.GVisor)
	f.SynstackOverKernel = ratio(f.Synstack, f.Kernel)
}

// Point is one point of a chart's line.
type Point struct {
	Kind Kind    `json:"kind"`
	X    float64 `json:"x"`
	Y    float64 `json:"y"`
}

// Versions are what was measured.
type Versions struct {
	Go             string `json:"go"`
	Synstack       string `json:"synstack"`
	SynstackCommit string `json:"synstack_commit,omitempty"`
	SynstackTime   string `json:"synstack_commit_time,omitempty"`
	SynstackDirty  bool   `json:"synstack_modified,omitempty"`
	GVisor         string `json:"gvisor"`
	Kernel         string `json:"kernel"`
}

// Machine describes where it ran.
type Machine struct {
	GOOS        string `json:"goos"`
	GOARCH      string `json:"goarch"`
	CPUs        int    `json:"cpus"`
	GOMAXPROCS  int    `json:"gomaxprocs"`
	LoadBefore  string `json:"loadavg_before"`
	LoadAfter   string `json:"loadavg_after"`
	StartedUTC  string `json:"started_utc"`
	DurationSec int    `json:"duration_s"`
}

// Report is one run: every figure, the charts' points and the versions.
type Report struct {
	Versions Versions `json:"versions"`
	Machine  Machine  `json:"machine"`
	Quick    bool     `json:"quick"`
	// Rounds is how many times each throughput or rate was measured,
	// the kinds in turn; the figure is the median.
	Rounds  int       `json:"rounds"`
	Figures []*Figure `json:"figures"`
	// BulkByMTU is throughput (MB/s) against MTU; HeapByConns is heap per
	// connection (B) against idle connections.
	BulkByMTU   []Point  `json:"bulk_by_mtu,omitempty"`
	HeapByConns []Point  `json:"heap_by_conns,omitempty"`
	Errors      []string `json:"errors,omitempty"`
}

// Figure returns the figure named name, or nil.
func (r *Report) Figure(name string) *Figure {
	for _, f := range r.Figures {
		if f.Name == name {
			return f
		}
	}
	return nil
}

// Run measures the figures opts asks for, one after the other, each kind
// in turn, and returns them. A measurement that fails leaves its value
// out and is listed in Report.Errors; Run goes on with the next.
func Run(ctx context.Context, opts Options) (*Report, error) {
	for _, n := range opts.Only {
		if !slices.Contains(Names, n) {
			return nil, fmt.Errorf("bench: unknown figure %q (have %s)", n, strings.Join(Names, ", "))
		}
	}
	start := time.Now()
	r := &Report{Versions: versions(), Quick: opts.Quick}
	r.Machine = Machine{
		GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		LoadBefore: loadavg(), StartedUTC: start.UTC().Format(time.RFC3339),
	}
	s := &suite{ctx: ctx, opts: opts, r: r, rounds: Rounds, budget: Budget{Warmup: 200 * time.Millisecond, Duration: 400 * time.Millisecond}}
	if opts.Quick {
		s.rounds = 1
		s.budget = Budget{Warmup: 50 * time.Millisecond, Duration: 200 * time.Millisecond}
	}
	r.Rounds = s.rounds
	s.run()
	// The table in the order of Names, whatever order they ran in.
	rank := func(f *Figure) int {
		for i, n := range Names {
			if strings.HasPrefix(f.Name, n) {
				return i
			}
		}
		return len(Names)
	}
	slices.SortStableFunc(r.Figures, func(a, b *Figure) int { return rank(a) - rank(b) })
	r.Machine.LoadAfter = loadavg()
	r.Machine.DurationSec = int(time.Since(start).Seconds() + 0.5)
	for _, f := range r.Figures {
		f.ratios()
	}
	return r, ctx.Err()
}

type suite struct {
	ctx    context.Context
	opts   Options
	r      *Report
	budget Budget
	rounds int
}

func (s *suite) want(name string) bool {
	return len(s.opts.Only) == 0 || slices.Contains(s.opts.Only, name)
}

func (s *suite) progress(format string, args ...any) {
	if s.opts.Progress != nil {
		fmt.Fprintf(s.opts.Progress, "bench: "+format+"\n", args...)
	}
}

func (s *suite) fail(what string, k Kind, err error) {
	msg := strings.ReplaceAll(fmt.Sprintf("%s %s: %v", what, k, err), "\n", "; ")
	s.r.Errors = append(s.r.Errors, msg)
	s.progress("FAILED %s", msg)
}

func (s *suite) figure(f Figure) *Figure {
	s.r.Figures = append(s.r.Figures, &f)
	return &f
}

func (s *suite) run() {
	// The idle figure runs first, on a fresh heap: after the bulk
	// transfers, memory that earlier stacks released late (while the
	// connections were being made) made gVisor's figure come out at
	// 7.3 KB instead of 11.5 KB per connection in some runs.
	if s.want(NameIdle) {
		s.idle()
	}
	if s.ctx.Err() == nil && (s.want(NameBulk) || s.want(NameAllocs)) {
		s.bulk()
	}
	if s.ctx.Err() == nil && s.want(NameBulkCsum) {
		s.bulkChecksums()
	}
	if s.ctx.Err() == nil && s.want(NameMulti) {
		s.multiBulk()
	}
	if s.ctx.Err() == nil && s.want(NameConnSetup) {
		s.connSetup()
	}
	if s.ctx.Err() == nil && s.want(NamePingPong) {
		s.pingPong()
	}
	if s.ctx.Err() == nil && s.want(NameUDP) {
		s.udp()
	}
}

// interleave measures every kind in turn, s.rounds times over (A B C, A
// B C, ...), so that a change in the machine's load falls on all kinds
// alike, and returns for each kind the median over the rounds of each
// value measure returns. A kind that fails once is left out.
func (s *suite) interleave(what string, kinds []Kind, measure func(k Kind, round string) ([]float64, error)) map[Kind][]float64 {
	got := map[Kind][][]float64{}
	failed := map[Kind]bool{}
	for i := range s.rounds {
		round := ""
		if s.rounds > 1 {
			round = fmt.Sprintf(" [%d/%d]", i+1, s.rounds)
		}
		for _, k := range kinds {
			if s.ctx.Err() != nil || failed[k] {
				continue
			}
			v, err := measure(k, round)
			if err != nil {
				s.fail(what, k, err)
				failed[k] = true
				continue
			}
			got[k] = append(got[k], v)
		}
	}
	out := map[Kind][]float64{}
	for k, rows := range got {
		if failed[k] || len(rows) == 0 {
			continue
		}
		med := make([]float64, len(rows[0]))
		for j := range med {
			col := make([]float64, len(rows))
			for i, r := range rows {
				col[i] = r[j]
			}
			med[j] = median(col)
		}
		out[k] = med
	}
	return out
}

// median is the middle value (the mean of the two middle ones for an even
// count).
func median(v []float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

func (s *suite) bulk() {
	mtus := []int{1500, 65535}
	if s.opts.Charts && s.want(NameBulk) {
		mtus = ChartMTUs
	}
	// Per kind and MTU: MB/s, Gbit/s, allocations per segment (NaN where
	// not counted).
	results := map[int]map[Kind][]float64{}
	for i, mtu := range mtus {
		kinds := []Kind{Synstack, GVisor}
		if i == 0 {
			kinds = Kinds // the kernel once, with the first MTU: lo's is fixed
		}
		results[mtu] = s.interleave(fmt.Sprintf("bulk mtu %d", mtu), kinds, func(k Kind, round string) ([]float64, error) {
			res, err := Bulk(s.ctx, k, mtu, s.budget)
			if err != nil {
				return nil, err
			}
			allocs, ok := res.AllocsPerSegment()
			if !ok {
				allocs = math.NaN()
			}
			s.progress("bulk mtu %d %s%s: %.0f MB/s (%.2f Gbit/s)", res.MTU, k, round, res.MBps(), res.Gbps())
			return []float64{res.MBps(), res.Gbps(), allocs}, nil
		})
		for _, k := range kinds {
			if v, ok := results[mtu][k]; ok {
				x := float64(mtu)
				if k == Kernel {
					x = KernelMTU
				}
				s.r.BulkByMTU = append(s.r.BulkByMTU, Point{Kind: k, X: x, Y: v[0]})
			}
		}
	}
	kernel, kernelOK := results[mtus[0]][Kernel]
	if s.want(NameBulk) {
		for _, mtu := range []int{1500, 65535} {
			what := fmt.Sprintf("bulk throughput, one connection one way, link MTU %d (kernel: lo, MTU %d)", mtu, KernelMTU)
			mb := s.figure(Figure{Name: fmt.Sprintf("bulk_mtu%d", mtu), Unit: "MB/s", Better: "higher", What: what})
			gb := s.figure(Figure{Name: fmt.Sprintf("bulk_mtu%d_gbit", mtu), Unit: "Gbit/s", Better: "higher", What: what})
			for _, k := range []Kind{Synstack, GVisor} {
				if v, ok := results[mtu][k]; ok {
					mb.set(k, v[0])
					gb.set(k, v[1])
				}
			}
			if kernelOK {
				mb.set(Kernel, kernel[0])
				gb.set(Kernel, kernel[1])
			}
		}
	}
	if s.want(NameAllocs) {
		f := s.figure(Figure{Name: "allocs_per_segment", Unit: "allocs/seg", Better: "lower",
			What: "heap allocations of the whole process per TCP segment sent (data and ACKs, both stacks), steady bulk transfer at MTU 1500",
			Note: "kernel: n/a, its segments are not Go's"})
		for _, k := range []Kind{Synstack, GVisor} {
			if v, ok := results[1500][k]; ok && !math.IsNaN(v[2]) {
				f.set(k, v[2])
				s.progress("allocs per segment %s: %.3f", k, v[2])
			}
		}
	}
}

// bulkChecksums measures bulk throughput with checksums on: synstack on
// link/pipe without ChecksumOffload (its default), gVisor on its channel
// link without checksum offload, MTU 1500 and 65535.
func (s *suite) bulkChecksums() {
	for _, mtu := range []int{1500, 65535} {
		kinds := []Kind{Synstack, GVisor}
		got := s.interleave(fmt.Sprintf("bulk with checksums mtu %d", mtu), kinds, func(k Kind, round string) ([]float64, error) {
			res, err := BulkChecksums(s.ctx, k, mtu, s.budget)
			if err != nil {
				return nil, err
			}
			s.progress("bulk with checksums mtu %d %s%s: %.0f MB/s (%.2f Gbit/s)", mtu, k, round, res.MBps(), res.Gbps())
			return []float64{res.MBps(), res.Gbps()}, nil
		})
		what := fmt.Sprintf("bulk throughput with every TCP checksum computed and verified, one connection one way, link MTU %d", mtu)
		note := "kernel: n/a, lo never checksums"
		mb := s.figure(Figure{Name: fmt.Sprintf("bulk_csum_mtu%d", mtu), Unit: "MB/s", Better: "higher", What: what, Note: note})
		gb := s.figure(Figure{Name: fmt.Sprintf("bulk_csum_mtu%d_gbit", mtu), Unit: "Gbit/s", Better: "higher", What: what, Note: note})
		for _, k := range kinds {
			if v, ok := got[k]; ok {
				mb.set(k, v[0])
				gb.set(k, v[1])
			}
		}
	}
}

// MultiConns is the number of connections of the multibulk figures.
const MultiConns = 8

// synstackOneShard names, within the multibulk figures only, synstack
// with a single lock per stack (Config.Shards 1).
const synstackOneShard Kind = "synstack-1shard"

// multiBulk measures the multibulk figures: aggregate throughput of
// MultiConns connections each carrying data both ways at once through
// one pair of hosts, with the cores the process kept busy and the time
// its goroutines waited for mutexes. synstack runs twice, with its
// default shards and on a single lock per stack, so that the table shows
// what the shards change.
func (s *suite) multiBulk() {
	kinds := []Kind{Synstack, synstackOneShard, GVisor, Kernel}
	got := s.interleave(fmt.Sprintf("multibulk %d conns", MultiConns), kinds, func(k Kind, round string) ([]float64, error) {
		var res BulkResult
		var err error
		if k == synstackOneShard {
			res, err = MultiBulkSynstack(s.ctx, 1500, MultiConns, s.budget, SynOptions{Shards: 1})
		} else {
			res, err = MultiBulk(s.ctx, k, 1500, MultiConns, s.budget)
		}
		if err != nil {
			return nil, err
		}
		s.progress("multibulk %d conns %s%s: %.0f MB/s, %.2f cores, mutex wait %.2f s/s",
			MultiConns, k, round, res.MBps(), res.Cores(), res.MutexWaitRatio())
		return []float64{res.MBps(), res.Cores(), res.MutexWaitRatio()}, nil
	})
	what := fmt.Sprintf("%d connections between one pair of hosts, each carrying data both ways at once (%d streams), link MTU 1500 (kernel: lo)", MultiConns, 2*MultiConns)
	one := "the same with Config.Shards 1 (a single lock per stack, as before shards)"
	rows := []struct {
		name, unit, better, what string
		col                      int
		kinds                    []Kind
	}{
		{"multibulk", "MB/s", "higher", "aggregate throughput, " + what, 0, []Kind{Synstack, GVisor, Kernel}},
		{"multibulk_one_shard", "MB/s", "higher", "aggregate throughput, " + one, 0, nil},
		{"multibulk_cores", "cores", "", "CPU time of the process (user and system) per second, " + what, 1, []Kind{Synstack, GVisor, Kernel}},
		{"multibulk_one_shard_cores", "cores", "", "CPU time per second, " + one, 1, nil},
		{"multibulk_mutex_wait", "s/s", "lower", "time goroutines spent blocked on Go mutexes (runtime/metrics " + mutexWaitMetric + ") per second, " + what, 2, []Kind{Synstack, GVisor}},
		{"multibulk_one_shard_mutex_wait", "s/s", "lower", "mutex wait per second, " + one, 2, nil},
	}
	for _, r := range rows {
		f := s.figure(Figure{Name: r.name, Unit: r.unit, Better: r.better, What: r.what})
		if r.kinds == nil {
			if v, ok := got[synstackOneShard]; ok {
				f.set(Synstack, v[r.col])
			}
			continue
		}
		for _, k := range r.kinds {
			if v, ok := got[k]; ok {
				f.set(k, v[r.col])
			}
		}
	}
}

func (s *suite) connSetup() {
	for _, d := range []int{1, 8} {
		f := s.figure(Figure{Name: fmt.Sprintf("connsetup_%d", d), Unit: "conns/s", Better: "higher",
			What: fmt.Sprintf("connections opened and closed per second, %d dialer(s): dial, accept, server closes with RST, client closes", d)})
		got := s.interleave(fmt.Sprintf("connsetup %d", d), Kinds, func(k Kind, round string) ([]float64, error) {
			res, err := ConnSetup(s.ctx, k, d, s.budget)
			if err != nil {
				return nil, err
			}
			s.progress("connsetup %d dialer(s) %s%s: %.0f conns/s", d, k, round, res.PerSecond())
			return []float64{res.PerSecond()}, nil
		})
		for k, v := range got {
			f.set(k, v[0])
		}
	}
}

func (s *suite) pingPong() {
	f := s.figure(Figure{Name: "pingpong", Unit: "round trips/s", Better: "higher",
		What: "1-byte request/response round trips per second on one connection, TCP_NODELAY"})
	got := s.interleave("pingpong", Kinds, func(k Kind, round string) ([]float64, error) {
		res, err := PingPong(s.ctx, k, s.budget)
		if err != nil {
			return nil, err
		}
		s.progress("pingpong %s%s: %.0f round trips/s", k, round, res.PerSecond())
		return []float64{res.PerSecond()}, nil
	})
	for k, v := range got {
		f.set(k, v[0])
	}
}

// udp measures the UDP figures: datagrams received per second and the
// share lost, for every size of UDPSizes and count of UDPFlows.
func (s *suite) udp() {
	for _, size := range UDPSizes {
		for _, flows := range UDPFlows {
			if s.ctx.Err() != nil {
				return
			}
			name := fmt.Sprintf("udp_%db_%dflow", size, flows)
			what := fmt.Sprintf("%d-byte payloads, %d flow(s) at once (a connected client socket sending to a server socket of its own each), "+
				"each sender keeping at most %d datagrams in flight, acknowledged by its receiver in memory; link MTU 1500 (kernel: lo)", size, flows, UDPWindow)
			rate := s.figure(Figure{Name: name, Unit: "datagrams/s", Better: "higher", What: "UDP datagrams received per second, " + what})
			loss := s.figure(Figure{Name: name + "_loss", Unit: "%", Better: "lower", noRatio: true,
				What: "share of the datagrams sent (the whole run, warm-up included) never received, " + what})
			got := s.interleave(fmt.Sprintf("udp %d B %d flow(s)", size, flows), Kinds, func(k Kind, round string) ([]float64, error) {
				res, err := UDP(s.ctx, k, size, flows, s.budget)
				if err != nil {
					return nil, err
				}
				s.progress("udp %d B %d flow(s) %s%s: %.0f datagrams/s, %.3f%% lost (%d of %d), %d stall(s)",
					size, flows, k, round, res.PerSecond(), res.LossPercent(), res.Lost, res.Sent, res.Stalls)
				return []float64{res.PerSecond(), res.LossPercent()}, nil
			})
			for k, v := range got {
				rate.set(k, v[0])
				loss.set(k, v[1])
			}
		}
	}
}

func (s *suite) idle() {
	eps := s.opts.IdleEndpoints
	if eps <= 0 {
		eps = DefaultIdleEndpoints
		if s.opts.Quick {
			eps = DefaultIdleEndpointsQuick
		}
	}
	conns := max(eps/2, 1)
	what := fmt.Sprintf("Go heap (live bytes, HeapAlloc after GC) per idle established connection, %d connections, both ends in this process", conns)
	pc := s.figure(Figure{Name: "idle_heap_per_conn", Unit: "B/conn", Better: "lower", What: what,
		Note: "kernel: n/a, its sockets are kernel memory, not Go heap"})
	pe := s.figure(Figure{Name: "idle_heap_per_endpoint", Unit: "B/endpoint", Better: "lower", What: what + ", divided by 2"})
	tot := s.figure(Figure{Name: "idle_heap_total", Unit: "MiB", Better: "lower",
		What: fmt.Sprintf("Go heap held by %d idle endpoints (%d connections)", 2*conns, conns)})
	used := s.figure(Figure{Name: "idle_used_heap_per_endpoint", Unit: "B/endpoint", Better: "lower",
		What: fmt.Sprintf("Go heap per endpoint of %d connections that each carried one byte each way before going idle (a kept-alive connection between requests), divided by 2", conns)})
	rate := s.figure(Figure{Name: "idle_setup", Unit: "conns/s", Better: "higher",
		What: fmt.Sprintf("rate at which the %d idle connections were established (%d dialers, connections kept): how demux and port tables scale", conns, idleDialers)})
	measure := func(what string, f func(context.Context, Kind, int) (HeapResult, error), k Kind) (HeapResult, bool) {
		if s.ctx.Err() != nil {
			return HeapResult{}, false
		}
		res, err := f(s.ctx, k, conns)
		if err != nil {
			s.fail(what, k, err)
			return res, false
		}
		return res, true
	}
	for _, k := range []Kind{Synstack, GVisor} {
		if k == GVisor && conns > GVisorIdleMax {
			pc.Note += fmt.Sprintf("; gvisor: not run above %d connections", GVisorIdleMax)
			continue
		}
		res, ok := measure("idle", IdleHeap, k)
		if !ok {
			continue
		}
		pc.set(k, res.PerConn())
		pe.set(k, res.PerEndpoint())
		tot.set(k, res.Total()/(1<<20))
		rate.set(k, float64(conns)/res.Setup.Seconds())
		s.progress("idle %d conns %s: %.0f B/conn, %.0f B/endpoint (HeapInuse: %.0f B/conn; set up in %v)",
			conns, k, res.PerConn(), res.PerEndpoint(), res.InusePerConn(), res.Setup.Round(time.Millisecond))
		s.r.HeapByConns = append(s.r.HeapByConns, Point{Kind: k, X: float64(conns), Y: res.PerConn()})
		ures, ok := measure("idle used", UsedIdleHeap, k)
		if !ok {
			continue
		}
		used.set(k, ures.PerEndpoint())
		s.progress("idle %d conns %s, after one exchange each: %.0f B/endpoint", conns, k, ures.PerEndpoint())
	}
	if !s.opts.Charts {
		return
	}
	counts := ChartConns
	if s.opts.Quick {
		counts = ChartConnsQuick
	}
	for _, n := range counts {
		if n == conns {
			continue
		}
		for _, k := range []Kind{Synstack, GVisor} {
			if s.ctx.Err() != nil {
				return
			}
			res, err := IdleHeap(s.ctx, k, n)
			if err != nil {
				s.fail(fmt.Sprintf("idle %d", n), k, err)
				continue
			}
			s.progress("idle %d conns %s: %.0f B/conn (HeapInuse: %.0f B/conn)", n, k, res.PerConn(), res.InusePerConn())
			s.r.HeapByConns = append(s.r.HeapByConns, Point{Kind: k, X: float64(n), Y: res.PerConn()})
		}
	}
	slices.SortStableFunc(s.r.HeapByConns, func(a, b Point) int {
		switch {
		case a.X < b.X:
			return -1
		case a.X > b.X:
			return 1
		}
		return 0
	})
}

func versions() Versions {
	v := Versions{Go: runtime.Version(), Synstack: "unknown", GVisor: "unknown", Kernel: "unknown"}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Path == "github.com/synstack/synstack" && bi.Main.Version != "" {
			v.Synstack = bi.Main.Version
		}
		for _, d := range bi.Deps {
			if d.Path == "gvisor.dev/gvisor" {
				v.GVisor = d.Version
				if d.Replace != nil {
					v.GVisor += " => " + d.Replace.Path + " " + d.Replace.Version
				}
			}
		}
		for _, st := range bi.Settings {
			switch st.Key {
			case "vcs.revision":
				v.SynstackCommit = st.Value
			case "vcs.time":
				v.SynstackTime = st.Value
			case "vcs.modified":
				v.SynstackDirty = st.Value == "true"
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		v.Kernel = runtime.GOOS + " " + strings.TrimSpace(string(b))
	} else {
		v.Kernel = runtime.GOOS
	}
	return v
}

// loadavg is the first three fields of /proc/loadavg: a busy machine
// makes figures that must be taken again.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
