package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Budget bounds one measurement, by work or by time. With Count set (as
// Go benchmarks do, with b.N) exactly that much work is done and all of it
// is measured. Otherwise the work runs for Warmup, unmeasured, and then
// for Duration, measured.
type Budget struct {
	Count    int
	Warmup   time.Duration
	Duration time.Duration
}

func (b Budget) check() error {
	if b.Count <= 0 && b.Duration <= 0 {
		return errors.New("bench: a budget needs a Count or a Duration")
	}
	return nil
}

// snapshot is what the measuring window is cut from.
type snapshot struct {
	at        time.Time
	bytes     int64
	mallocs   uint64
	segments  uint64
	cpu       time.Duration // the process's CPU time, user and system
	mutexWait time.Duration // the Go runtime's total wait on sync mutexes
}

func take(n network, bytes *atomic.Int64) snapshot {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	segs, _ := n.segments()
	return snapshot{at: time.Now(), bytes: bytes.Load(), mallocs: ms.Mallocs, segments: segs,
		cpu: processCPU(), mutexWait: mutexWait()}
}

// processCPU is the CPU time the process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// mutexWaitMetric is the Go runtime's count of the time goroutines have
// spent blocked on a sync.Mutex or sync.RWMutex (and runtime locks).
const mutexWaitMetric = "/sync/mutex/wait/total:seconds"

// mutexWait reads mutexWaitMetric.
func mutexWait() time.Duration {
	s := []metrics.Sample{{Name: mutexWaitMetric}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64 {
		return 0
	}
	return time.Duration(s[0].Value.Float64() * float64(time.Second))
}

// BulkResult is one bulk transfer's measured window.
type BulkResult struct {
	Kind    Kind
	MTU     int // the link's MTU (KernelMTU for the kernel)
	Bytes   int64
	Elapsed time.Duration
	// Mallocs are the heap allocations of the whole process during the
	// window (runtime.MemStats.Mallocs), Segments the TCP segments both
	// stacks sent in it (data and ACKs); Counted is false where the
	// network does not count segments (the kernel).
	Mallocs  uint64
	Segments uint64
	Counted  bool
	// CPU is the CPU time the whole process used in the window (user
	// and system: for the kernel, the loopback's work done in the
	// process's system calls), and MutexWait the time its goroutines
	// spent blocked on Go mutexes (mutexWaitMetric), summed over
	// goroutines: how much of the run was spent waiting for locks.
	CPU       time.Duration
	MutexWait time.Duration
}

// Cores is the CPU used per second of the window: how many cores the
// run kept busy.
func (r BulkResult) Cores() float64 { return r.CPU.Seconds() / r.Elapsed.Seconds() }

// MutexWaitRatio is the mutex wait per second of the window (seconds
// of goroutine blocking per second: above 1, several goroutines wait at
// once).
func (r BulkResult) MutexWaitRatio() float64 { return r.MutexWait.Seconds() / r.Elapsed.Seconds() }

// MBps is the throughput in MB/s (10^6 bytes a second).
func (r BulkResult) MBps() float64 { return float64(r.Bytes) / r.Elapsed.Seconds() / 1e6 }

// Gbps is the throughput in Gbit/s.
func (r BulkResult) Gbps() float64 { return float64(r.Bytes) * 8 / r.Elapsed.Seconds() / 1e9 }

// AllocsPerSegment is Mallocs divided by Segments; ok is false where
// segments are not counted.
func (r BulkResult) AllocsPerSegment() (v float64, ok bool) {
	if !r.Counted || r.Segments == 0 {
		return 0, false
	}
	return float64(r.Mallocs) / float64(r.Segments), true
}

// bulkChunk is the size of each Write and Read of a bulk transfer.
const bulkChunk = 64 << 10

// countMiB is the unit of Budget.Count in Bulk.
const countMiB = 1 << 20

// Bulk moves data one way over one connection, from the client to the
// server of a network of kind k on a link of the given MTU, and measures
// the bytes the server reads. With Budget.Count, Count MiB are moved.
func Bulk(ctx context.Context, k Kind, mtu int, b Budget) (BulkResult, error) {
	return bulk(ctx, k, mtu, b, false)
}

// BulkChecksums is Bulk with checksums on both userspace stacks' links
// (newNetworkWith): what a link that does not vouch for its packets
// costs, synstack's pipe against gVisor's channel.
func BulkChecksums(ctx context.Context, k Kind, mtu int, b Budget) (BulkResult, error) {
	return bulk(ctx, k, mtu, b, true)
}

func bulk(ctx context.Context, k Kind, mtu int, b Budget, checksums bool) (BulkResult, error) {
	if err := b.check(); err != nil {
		return BulkResult{}, err
	}
	res := BulkResult{Kind: k, MTU: mtu}
	if k == Kernel {
		res.MTU = KernelMTU
	}
	n, err := newNetworkWith(k, mtu, 1, checksums)
	if err != nil {
		return res, err
	}
	defer n.close()
	w, r, err := connect(ctx, n)
	if err != nil {
		return res, err
	}
	defer w.Close()
	defer r.Close()
	if b.Count <= 0 {
		// Anything stuck fails the run instead of hanging it.
		dl := time.Now().Add(b.Warmup + b.Duration + stepTimeout)
		w.SetDeadline(dl)
		r.SetDeadline(dl)
	}

	var got atomic.Int64
	readDone := make(chan error, 1)
	go func() {
		buf := make([]byte, bulkChunk)
		for {
			m, err := r.Read(buf)
			got.Add(int64(m))
			if err != nil {
				if err == io.EOF {
					err = nil
				}
				readDone <- err
				return
			}
		}
	}()
	var stop atomic.Bool
	writeDone := make(chan error, 1)
	begin := make(chan struct{})
	limit := int64(b.Count) * countMiB
	go func() {
		<-begin
		buf := make([]byte, bulkChunk)
		var sent int64
		for !stop.Load() && (limit == 0 || sent < limit) {
			m, err := w.Write(buf)
			sent += int64(m)
			if err != nil {
				writeDone <- err
				return
			}
		}
		writeDone <- closeWrite(w)
	}()

	var s0, s1 snapshot
	if b.Count > 0 {
		s0 = take(n, &got)
		close(begin)
		werr := <-writeDone
		rerr := <-readDone
		s1 = take(n, &got)
		if err := errors.Join(werr, rerr); err != nil {
			return res, fmt.Errorf("bench: bulk %s: %w", k, err)
		}
		if s1.bytes != limit {
			return res, fmt.Errorf("bench: bulk %s: read %d bytes of %d", k, s1.bytes, limit)
		}
	} else {
		close(begin)
		if err := sleep(ctx, b.Warmup, readDone); err != nil {
			return res, err
		}
		s0 = take(n, &got)
		if err := sleep(ctx, b.Duration, readDone); err != nil {
			return res, err
		}
		s1 = take(n, &got)
		stop.Store(true)
		werr := <-writeDone
		rerr := <-readDone
		if err := errors.Join(werr, rerr); err != nil {
			return res, fmt.Errorf("bench: bulk %s: %w", k, err)
		}
	}
	return res, res.window(n, s0, s1, "bulk")
}

// window fills r with what happened between the snapshots s0 and s1 on
// n; it is an error if no data arrived in between.
func (r *BulkResult) window(n network, s0, s1 snapshot, what string) error {
	r.Bytes = s1.bytes - s0.bytes
	r.Elapsed = s1.at.Sub(s0.at)
	r.Mallocs = s1.mallocs - s0.mallocs
	r.Segments = s1.segments - s0.segments
	r.CPU = s1.cpu - s0.cpu
	r.MutexWait = s1.mutexWait - s0.mutexWait
	_, r.Counted = n.segments()
	if r.Bytes <= 0 {
		return fmt.Errorf("bench: %s %s: no data arrived", what, r.Kind)
	}
	return nil
}

// sleep waits d, or until ctx is done, or until early says something
// ended before its time (which is then an error, or a nil one put back).
func sleep(ctx context.Context, d time.Duration, early chan error) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case err := <-early:
		if err == nil {
			err = errors.New("bench: the transfer ended early")
		}
		return err
	}
}

func closeWrite(c net.Conn) error {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}

// connect makes one connection on n and returns its client and server
// ends.
func connect(ctx context.Context, n network) (client, server net.Conn, err error) {
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	ln, ap, err := n.listen()
	if err != nil {
		return nil, nil, err
	}
	defer ln.Close()
	type accepted struct {
		c   net.Conn
		err error
	}
	acc := make(chan accepted, 1)
	go func() {
		c, err := ln.Accept()
		acc <- accepted{c, err}
	}()
	c, err := n.dial(ctx, -1, ap)
	if err != nil {
		ln.Close()
		<-acc
		return nil, nil, fmt.Errorf("bench: dial: %w", err)
	}
	select {
	case a := <-acc:
		if a.err != nil {
			c.Close()
			return nil, nil, fmt.Errorf("bench: accept: %w", a.err)
		}
		return c, a.c, nil
	case <-ctx.Done():
		c.Close()
		ln.Close()
		if a := <-acc; a.c != nil {
			a.c.Close()
		}
		return nil, nil, fmt.Errorf("bench: accept: %w", errTimeout)
	}
}

// RateResult counts operations done in a measured time.
type RateResult struct {
	Kind    Kind
	N       int64
	Elapsed time.Duration
}

// PerSecond is the rate.
func (r RateResult) PerSecond() float64 { return float64(r.N) / r.Elapsed.Seconds() }

// ConnSetup opens and closes connections from dialers goroutines at once
// and counts the completed ones: each is a dial, an accept, and both
// closes. The server closes first, with a RST (SO_LINGER 0), and the
// client closes once it has seen the RST: no connection goes through
// TIME_WAIT, on either side, so neither ports nor TIME_WAIT entries pile
// up, whatever the rate (the same for all three kinds). With
// Budget.Count, Count connections are made.
func ConnSetup(ctx context.Context, k Kind, dialers int, b Budget) (RateResult, error) {
	res := RateResult{Kind: k}
	if err := b.check(); err != nil {
		return res, err
	}
	if dialers < 1 {
		dialers = 1
	}
	n, err := newNetwork(k, 1500, 1)
	if err != nil {
		return res, err
	}
	defer n.close()
	ln, ap, err := n.listen()
	if err != nil {
		return res, err
	}
	var srv sync.WaitGroup
	srv.Add(1)
	go func() {
		defer srv.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			abort(c)
		}
	}()
	defer func() {
		ln.Close()
		srv.Wait()
	}()

	// One warm-up round outside the measurement, for every budget: the
	// first connection pays for lazy set-up in every stack.
	if err := oneConn(ctx, n, ap); err != nil {
		return res, fmt.Errorf("bench: connsetup %s: %w", k, err)
	}
	if b.Count <= 0 && b.Warmup > 0 {
		if _, err := dialLoop(ctx, n, ap, dialers, Budget{Duration: b.Warmup}); err != nil {
			return res, fmt.Errorf("bench: connsetup %s: %w", k, err)
		}
	}
	start := time.Now()
	done, err := dialLoop(ctx, n, ap, dialers, b)
	res.Elapsed = time.Since(start)
	res.N = done
	if err != nil {
		return res, fmt.Errorf("bench: connsetup %s: %w", k, err)
	}
	return res, nil
}

// dialLoop runs dialers goroutines making connections until the budget
// is spent and returns how many completed. The first failure stops it.
func dialLoop(ctx context.Context, n network, ap netip.AddrPort, dialers int, b Budget) (int64, error) {
	var (
		done, left atomic.Int64
		stop       atomic.Bool
		wg         sync.WaitGroup
		errOnce    sync.Once
		firstErr   error
	)
	left.Store(int64(b.Count))
	deadline := time.Now().Add(b.Duration)
	for range dialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				if b.Count > 0 {
					if left.Add(-1) < 0 {
						return
					}
				} else if !time.Now().Before(deadline) {
					return
				}
				if err := oneConn(ctx, n, ap); err != nil {
					errOnce.Do(func() { firstErr = err })
					stop.Store(true)
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	return done.Load(), firstErr
}

// oneConn dials, waits for the server's RST and closes.
func oneConn(ctx context.Context, n network, ap netip.AddrPort) error {
	dctx, cancel := context.WithTimeout(ctx, stepTimeout)
	c, err := n.dial(dctx, -1, ap)
	cancel()
	if err != nil {
		if isReset(err) {
			// The server's RST came before the dialer looked: the
			// connection was made and closed all the same (Linux's
			// connect reports the same race the same way).
			return nil
		}
		return fmt.Errorf("dial: %w", err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(stepTimeout))
	var buf [1]byte
	m, err := c.Read(buf[:])
	if m != 0 || err == nil {
		return errors.New("read: data where the server sent none")
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("read: no RST from the server: %w", err)
	}
	return nil
}

// isReset reports whether err is ECONNRESET: a syscall.Errno in synstack
// and the kernel, the text of a tcpip.Error in gVisor's gonet.
func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || strings.Contains(err.Error(), "connection reset by peer")
}

// PingPong sends 1 byte and waits for 1 byte back, over and over on one
// connection with TCP_NODELAY on (every stack's default, set again
// here), and counts the round trips. With Budget.Count, Count round trips
// are made.
func PingPong(ctx context.Context, k Kind, b Budget) (RateResult, error) {
	res := RateResult{Kind: k}
	if err := b.check(); err != nil {
		return res, err
	}
	n, err := newNetwork(k, 1500, 1)
	if err != nil {
		return res, err
	}
	defer n.close()
	c, s, err := connect(ctx, n)
	if err != nil {
		return res, err
	}
	defer c.Close()
	for _, x := range []net.Conn{c, s} {
		if nd, ok := x.(interface{ SetNoDelay(bool) error }); ok {
			if err := nd.SetNoDelay(true); err != nil {
				s.Close()
				return res, err
			}
		}
	}
	echoed := make(chan error, 1)
	go func() {
		defer s.Close()
		var buf [1]byte
		for {
			if _, err := io.ReadFull(s, buf[:]); err != nil {
				if err == io.EOF {
					err = nil
				}
				echoed <- err
				return
			}
			if _, err := s.Write(buf[:]); err != nil {
				echoed <- err
				return
			}
		}
	}()
	var buf [1]byte
	trip := func() error {
		if _, err := c.Write(buf[:]); err != nil {
			return err
		}
		_, err := io.ReadFull(c, buf[:])
		return err
	}
	var loopErr error
	if b.Count > 0 {
		start := time.Now()
		for range b.Count {
			if loopErr = trip(); loopErr != nil {
				break
			}
			res.N++
		}
		res.Elapsed = time.Since(start)
	} else {
		c.SetDeadline(time.Now().Add(b.Warmup + b.Duration + stepTimeout))
		for end := time.Now().Add(b.Warmup); loopErr == nil && time.Now().Before(end); {
			loopErr = trip()
		}
		start := time.Now()
		end := start.Add(b.Duration)
		for loopErr == nil {
			if loopErr = trip(); loopErr != nil {
				break
			}
			res.N++
			if res.N%64 == 0 && !time.Now().Before(end) {
				break
			}
		}
		res.Elapsed = time.Since(start)
	}
	closeWrite(c)
	err = errors.Join(loopErr, <-echoed)
	if err != nil {
		return res, fmt.Errorf("bench: pingpong %s: %w", k, err)
	}
	if res.N == 0 {
		return res, fmt.Errorf("bench: pingpong %s: no round trip", k)
	}
	return res, nil
}

// ErrNotApplicable is returned for a figure that has no meaning for a
// kind (the Go heap of the kernel's sockets).
var ErrNotApplicable = errors.New("bench: not applicable")

// HeapResult is the Go heap that idle established connections hold.
type HeapResult struct {
	Kind  Kind
	Conns int
	// Before and After are the heap after a garbage collection, before
	// the connections are made and once they are all established.
	Before, After HeapStats
	Setup         time.Duration // the time taken to establish them
}

// HeapStats are the runtime.MemStats that IdleHeap reads.
type HeapStats struct {
	// Alloc (HeapAlloc) counts the bytes of live objects: the figure.
	Alloc uint64
	// Inuse (HeapInuse) counts the bytes of spans holding any live
	// object. After earlier work in the process, new objects fill holes
	// in spans already in use, so its growth can be well under what the
	// connections hold: it is kept for reference only.
	Inuse uint64
}

// PerConn is the heap (live bytes) per connection, both of its ends.
func (r HeapResult) PerConn() float64 {
	return (float64(r.After.Alloc) - float64(r.Before.Alloc)) / float64(r.Conns)
}

// Total is the heap (live bytes) that the connections hold.
func (r HeapResult) Total() float64 { return float64(r.After.Alloc) - float64(r.Before.Alloc) }

// InusePerConn is the growth of HeapInuse per connection.
func (r HeapResult) InusePerConn() float64 {
	return (float64(r.After.Inuse) - float64(r.Before.Inuse)) / float64(r.Conns)
}

// PerEndpoint is the heap per endpoint: PerConn / 2.
func (r HeapResult) PerEndpoint() float64 { return r.PerConn() / 2 }

// idleDialers is the number of goroutines dialing the idle connections.
const idleDialers = 8

// IdleHeap establishes conns connections between two stacks of kind k in
// this process, holds both ends of each, and measures the heap they take.
// Nothing is sent on them. The kernel's sockets are not in the Go heap:
// for Kernel it returns ErrNotApplicable.
func IdleHeap(ctx context.Context, k Kind, conns int) (HeapResult, error) {
	return idleHeap(ctx, k, conns, false)
}

// UsedIdleHeap is IdleHeap for connections that have each carried one
// exchange before going idle, as a kept-alive HTTP connection between
// requests: the client sends one byte, the server reads it and answers
// with one, the client reads it. The heap is measured once every
// exchange is done and acknowledged: quietAfterExchange after the last.
func UsedIdleHeap(ctx context.Context, k Kind, conns int) (HeapResult, error) {
	return idleHeap(ctx, k, conns, true)
}

func idleHeap(ctx context.Context, k Kind, conns int, exchange bool) (HeapResult, error) {
	res := HeapResult{Kind: k, Conns: conns}
	if k == Kernel {
		return res, ErrNotApplicable
	}
	if conns < 1 {
		return res, errors.New("bench: idle: no connections")
	}
	clients := (conns + connsPerClientAddr - 1) / connsPerClientAddr
	n, err := newNetwork(k, 1500, clients)
	if err != nil {
		return res, err
	}
	defer n.close()
	ln, ap, err := n.listen()
	if err != nil {
		return res, err
	}
	defer ln.Close()
	cli := make([]net.Conn, conns)
	srv := make([]net.Conn, 0, conns)

	res.Before = heapStats()
	start := time.Now()
	accepted := acceptAll(ln, conns, &srv)
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	for range idleDialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				j := int(next.Add(1) - 1)
				if j >= conns {
					return
				}
				from := -1
				if clients > 1 {
					from = j / connsPerClientAddr
				}
				dctx, cancel := context.WithTimeout(ctx, stepTimeout)
				c, err := n.dial(dctx, from, ap)
				cancel()
				if err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("bench: idle %s: dial %d: %w", k, j, err) })
					next.Store(int64(conns))
					return
				}
				cli[j] = c
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		ln.Close()
		<-accepted
		return res, firstErr
	}
	select {
	case err := <-accepted:
		if err != nil {
			return res, fmt.Errorf("bench: idle %s: accept: %w", k, err)
		}
	case <-time.After(stepTimeout):
		ln.Close()
		<-accepted
		return res, fmt.Errorf("bench: idle %s: accepted %d of %d: %w", k, len(srv), conns, errTimeout)
	}
	res.Setup = time.Since(start)
	if exchange {
		if err := exchangeOne(cli, srv); err != nil {
			return res, fmt.Errorf("bench: idle %s: %w", k, err)
		}
		// Idle means after the delayed ACKs of the answers (40 ms in
		// synstack and Linux, up to 200 ms in Linux's interactive mode):
		// until the server's answer is acknowledged it still holds the
		// byte and what tracks it in flight.
		time.Sleep(quietAfterExchange)
	}
	res.After = heapStats()
	runtime.KeepAlive(cli)
	runtime.KeepAlive(srv)
	return res, nil
}

// quietAfterExchange is how long UsedIdleHeap leaves the connections
// alone before measuring.
const quietAfterExchange = 300 * time.Millisecond

// exchangeOne makes every connection carry one byte each way, one
// connection at a time (so that no link queue overflows and nothing waits
// for a retransmission): the client writes, the server reads and answers,
// the client reads. Nothing sets a deadline (that would leave timers
// behind): a watchdog closes every connection if the whole takes over
// stepTimeout.
func exchangeOne(cli, srv []net.Conn) error {
	var stuck atomic.Bool
	watchdog := time.AfterFunc(stepTimeout, func() {
		stuck.Store(true)
		for _, c := range cli {
			c.Close()
		}
		for _, c := range srv {
			c.Close()
		}
	})
	defer watchdog.Stop()
	peer := make(map[string]net.Conn, len(srv))
	for _, c := range srv {
		peer[c.RemoteAddr().String()] = c
	}
	b := []byte{'x'}
	for i, c := range cli {
		s := peer[c.LocalAddr().String()]
		if s == nil {
			return fmt.Errorf("exchange: connection %d (%v): no server end", i, c.LocalAddr())
		}
		_, err := c.Write(b)
		if err == nil {
			_, err = io.ReadFull(s, b)
		}
		if err == nil {
			_, err = s.Write(b)
		}
		if err == nil {
			_, err = io.ReadFull(c, b)
		}
		if err != nil {
			if stuck.Load() {
				err = errTimeout
			}
			return fmt.Errorf("exchange: connection %d: %w", i, err)
		}
	}
	return nil
}

// heapStats reads the heap once it has settled: after garbage
// collections, until two readings 50 ms apart agree within 64 KiB (at
// most 40 tries). A stack torn down just before may still be releasing
// memory from its own goroutines and timers (gVisor's do), which would
// otherwise be counted against the next measurement.
func heapStats() HeapStats {
	read := func() HeapStats {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return HeapStats{Alloc: ms.HeapAlloc, Inuse: ms.HeapInuse}
	}
	prev := read()
	for range 40 {
		time.Sleep(50 * time.Millisecond)
		cur := read()
		d := int64(cur.Alloc) - int64(prev.Alloc)
		prev = cur
		if d > -64<<10 && d < 64<<10 {
			break
		}
	}
	return prev
}
