package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// MultiBulk moves data both ways at once over conns connections between
// the same two hosts (one pair of stacks for the userspace kinds): 2*conns
// bulk streams, each end of each connection writing and reading
// concurrently. It measures the bytes read by all ends together, so
// Bytes/Elapsed is the pair's aggregate throughput: the figure that shows
// whether the work of one stack spreads over several cores. With
// Budget.Count, Count MiB are moved in all, split evenly over the
// streams (each gets at least one bulkChunk).
func MultiBulk(ctx context.Context, k Kind, mtu, conns int, b Budget) (BulkResult, error) {
	return multiBulk(ctx, k, mtu, conns, b, nil)
}

// MultiBulkSynstack is MultiBulk for synstack with options: checksum
// offload off (both stacks compute and verify every TCP checksum), or a
// given number of shards (one: a single lock per stack).
func MultiBulkSynstack(ctx context.Context, mtu, conns int, b Budget, o SynOptions) (BulkResult, error) {
	return multiBulk(ctx, Synstack, mtu, conns, b, &o)
}

func multiBulk(ctx context.Context, k Kind, mtu, conns int, b Budget, o *SynOptions) (BulkResult, error) {
	if err := b.check(); err != nil {
		return BulkResult{}, err
	}
	if conns < 1 {
		return BulkResult{}, errors.New("bench: multibulk: no connections")
	}
	res := BulkResult{Kind: k, MTU: mtu}
	if k == Kernel {
		res.MTU = KernelMTU
	}
	var n network
	var err error
	if o != nil {
		n, err = newSynNetWith(mtu, 1, *o)
	} else {
		n, err = newNetwork(k, mtu, 1)
	}
	if err != nil {
		return res, err
	}
	defer n.close()
	cli, srv, err := connectN(ctx, n, conns)
	defer func() {
		for _, c := range append(cli, srv...) {
			c.Close()
		}
	}()
	if err != nil {
		return res, err
	}
	ends := append(append([]net.Conn(nil), cli...), srv...)
	if b.Count <= 0 {
		// Anything stuck fails the run instead of hanging it.
		dl := time.Now().Add(b.Warmup + b.Duration + stepTimeout)
		for _, c := range ends {
			c.SetDeadline(dl)
		}
	}
	streams := 2 * conns
	var perStream int64
	if b.Count > 0 {
		perStream = max(int64(b.Count)*countMiB/int64(streams), bulkChunk)
	}

	var (
		got     atomic.Int64
		stop    atomic.Bool
		wg      sync.WaitGroup
		errOnce sync.Once
		first   error
	)
	fail := func(err error) {
		errOnce.Do(func() { first = err })
		stop.Store(true)
	}
	begin := make(chan struct{})
	for _, c := range ends {
		wg.Add(2)
		go func() { // reader
			defer wg.Done()
			buf := make([]byte, bulkChunk)
			for {
				m, err := c.Read(buf)
				got.Add(int64(m))
				if err == io.EOF {
					return
				}
				if err != nil {
					fail(fmt.Errorf("read: %w", err))
					c.Close() // the peer's writer must not wait for room
					return
				}
			}
		}()
		go func() { // writer
			defer wg.Done()
			<-begin
			buf := make([]byte, bulkChunk)
			var sent int64
			for !stop.Load() && (perStream == 0 || sent < perStream) {
				chunk := buf
				if perStream > 0 {
					chunk = buf[:min(int64(len(buf)), perStream-sent)]
				}
				m, err := c.Write(chunk)
				sent += int64(m)
				if err != nil {
					fail(fmt.Errorf("write: %w", err))
					c.Close() // the peer's reader must not wait for more
					return
				}
			}
			if err := closeWrite(c); err != nil {
				fail(fmt.Errorf("close write: %w", err))
			}
		}()
	}
	allDone := make(chan error, 1)
	go func() {
		wg.Wait()
		allDone <- first
	}()
	// abandon ends a run cut short: every end is closed, so every stream
	// goroutine returns, and waited for.
	abandon := func() {
		stop.Store(true)
		for _, c := range ends {
			c.Close()
		}
		wg.Wait()
	}

	var s0, s1 snapshot
	if b.Count > 0 {
		s0 = take(n, &got)
		close(begin)
		err := <-allDone
		s1 = take(n, &got)
		if err != nil {
			return res, fmt.Errorf("bench: multibulk %s: %w", k, err)
		}
		if want := perStream * int64(streams); s1.bytes != want {
			return res, fmt.Errorf("bench: multibulk %s: read %d bytes of %d", k, s1.bytes, want)
		}
	} else {
		close(begin)
		if err := sleep(ctx, b.Warmup, allDone); err != nil {
			abandon()
			return res, err
		}
		s0 = take(n, &got)
		if err := sleep(ctx, b.Duration, allDone); err != nil {
			abandon()
			return res, err
		}
		s1 = take(n, &got)
		stop.Store(true)
		if err := <-allDone; err != nil {
			return res, fmt.Errorf("bench: multibulk %s: %w", k, err)
		}
	}
	return res, res.window(n, s0, s1, "multibulk")
}

// connectN makes conns connections on n and returns their client and
// server ends (not in matching order: each side's ends are all read and
// written alike). On error the ends made so far are returned for the
// caller to close.
func connectN(ctx context.Context, n network, conns int) (cli, srv []net.Conn, err error) {
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	ln, ap, err := n.listen()
	if err != nil {
		return nil, nil, err
	}
	defer ln.Close()
	accepted := acceptAll(ln, conns, &srv)
	for range conns {
		c, err := n.dial(ctx, -1, ap)
		if err != nil {
			ln.Close()
			<-accepted
			return cli, srv, fmt.Errorf("bench: dial: %w", err)
		}
		cli = append(cli, c)
	}
	select {
	case err := <-accepted:
		if err != nil {
			return cli, srv, fmt.Errorf("bench: accept: %w", err)
		}
	case <-ctx.Done():
		ln.Close()
		<-accepted
		return cli, srv, fmt.Errorf("bench: accepted %d of %d: %w", len(srv), conns, errTimeout)
	}
	return cli, srv, nil
}

// acceptAll accepts conns connections on ln into *srv, on a goroutine of
// its own, and says on the channel it returns when it is done (nil) or
// failed. Closing ln ends it; *srv may be read once it has said.
func acceptAll(ln listener, conns int, srv *[]net.Conn) <-chan error {
	accepted := make(chan error, 1)
	go func() {
		for len(*srv) < conns {
			c, err := ln.Accept()
			if err != nil {
				accepted <- err
				return
			}
			*srv = append(*srv, c)
		}
		accepted <- nil
	}()
	return accepted
}
