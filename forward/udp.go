package forward

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/clock"
)

// UDP flows. A Forwarder is also the stack's synstack.UDPForwarder: the
// first datagram of a new 5-tuple is offered to ForwardUDP, which dials
// the upstream ("udp" with the Forwarder's Dial: a connected socket of the
// host, or a SOCKS5 UDP association), accepts the flow (a UDPConn bound to
// the original destination, connected to the client) and relays datagrams
// both ways, one goroutine each way, until the flow has been idle as long
// as Linux's conntrack keeps one: 30 s while the upstream has never
// answered, 120 s once it has (UDPOptions.Timeout, StreamTimeout). Both
// ends are then closed, and the flow's place in the stack's bounds
// (synstack.ForwardOptions.MaxUDPFlows) and in the Forwarder's
// (UDPOptions.MaxFlows) is free again.

// Conntrack's UDP timeouts (nf_conntrack_udp_timeout and
// nf_conntrack_udp_timeout_stream), the defaults of UDPOptions.
const (
	DefaultUDPTimeout       = 30 * time.Second
	DefaultUDPStreamTimeout = 120 * time.Second
)

// DefaultMaxUDPFlows is the default of UDPOptions.MaxFlows. A flow holds
// two goroutines and, while a datagram crosses each way, two buffers of
// UDPOptions.BufSize (64 KiB by default); waiting, it holds one on Linux
// (two elsewhere): 1024 flows hold 64 MiB of buffers waiting, 128 MiB at
// most.
const DefaultMaxUDPFlows = 1024

// DefaultUDPBufSize is the default of UDPOptions.BufSize: the largest UDP
// datagram, so that none is cut.
const DefaultUDPBufSize = 65535

// UDPOptions configure a Forwarder's UDP flows.
type UDPOptions struct {
	// Disabled refuses every flow (ICMP port unreachable), as a host with
	// nothing on the port would; nothing is dialed.
	Disabled bool
	// Target picks the address to dial for a flow, "host:port". Default:
	// the original destination (DirectUDP).
	Target func(req *synstack.UDPForwardRequest) string
	// Check, if set, is asked about every flow before anything is dialed
	// or accepted, with the address that would be dialed. A non-nil error
	// refuses the flow (ICMP port unreachable), counted in Stats.UDPLoops
	// if it wraps ErrLoop, else in Stats.UDPDenied.
	Check func(req *synstack.UDPForwardRequest, target string) error
	// Timeout closes a flow idle this long while its upstream has never
	// answered; StreamTimeout one idle this long after an answer.
	// Defaults DefaultUDPTimeout and DefaultUDPStreamTimeout.
	Timeout, StreamTimeout time.Duration
	// MaxFlows bounds the flows relayed at once (dial included); a flow
	// beyond it is dropped and counted in Stats.UDPLimitDrops (the
	// client's retry is offered again). Default DefaultMaxUDPFlows;
	// negative: no bound but the stack's.
	MaxFlows int
	// MaxFlowsPerSource, if positive, bounds those of one client address
	// (Stats.UDPSourceLimitDrops beyond it).
	MaxFlowsPerSource int
	// BufSize is the buffer of each direction: a longer datagram is cut
	// and counted (Stats.UDPTruncated). Default DefaultUDPBufSize.
	BufSize int
	// Clock measures the idle timeouts. Default clock.Real{}; a
	// clock.Virtual makes them pass when the test moves it.
	Clock clock.Clock
}

// DirectUDP is the UDP Target that dials the original destination.
func DirectUDP(req *synstack.UDPForwardRequest) string { return req.Local.String() }

// UDPStats are the counters of a Forwarder's UDP flows (in Stats).
type UDPStats struct {
	UDPRequests uint64 // flows offered
	UDPFlows    uint64 // flows relayed (upstream dialed, flow accepted)
	UDPActive   int64  // flows relayed now
	// UDPRefused counts flows refused (ICMP port unreachable) because
	// the dial failed with ECONNREFUSED or an unreachable errno, or
	// UDPOptions.Disabled; UDPDialDrops those dropped for another dial
	// error.
	UDPRefused, UDPDialDrops uint64
	// UDPLimitDrops and UDPSourceLimitDrops count flows dropped for
	// UDPOptions.MaxFlows and MaxFlowsPerSource.
	UDPLimitDrops, UDPSourceLimitDrops uint64
	// UDPLoops and UDPDenied count flows UDPOptions.Check refused.
	UDPLoops, UDPDenied uint64
	// UDPExpired counts flows closed by their idle timeout,
	// UDPUpstreamRefused those ended because the upstream refused (an
	// ICMP port unreachable) before it ever answered.
	UDPExpired, UDPUpstreamRefused uint64
	// Datagrams and bytes (UDP payload) each way: up is client to
	// upstream.
	UDPDatagramsUp, UDPDatagramsDown, UDPBytesUp, UDPBytesDown uint64
	// UDPWriteDrops counts datagrams a side did not take (its write
	// failed); UDPTruncated those longer than UDPOptions.BufSize.
	UDPWriteDrops, UDPTruncated uint64
}

type udpCounters struct {
	requests, flows, refused, dialDrops, limitDrops, sourceLimitDrops,
	loops, denied, expired, upstreamRefused, dgramsUp, dgramsDown,
	bytesUp, bytesDown, writeDrops, truncated atomic.Uint64
	active atomic.Int64
}

func (c *udpCounters) stats() UDPStats {
	return UDPStats{
		UDPRequests: c.requests.Load(), UDPFlows: c.flows.Load(), UDPActive: c.active.Load(),
		UDPRefused: c.refused.Load(), UDPDialDrops: c.dialDrops.Load(),
		UDPLimitDrops: c.limitDrops.Load(), UDPSourceLimitDrops: c.sourceLimitDrops.Load(),
		UDPLoops: c.loops.Load(), UDPDenied: c.denied.Load(),
		UDPExpired: c.expired.Load(), UDPUpstreamRefused: c.upstreamRefused.Load(),
		UDPDatagramsUp: c.dgramsUp.Load(), UDPDatagramsDown: c.dgramsDown.Load(),
		UDPBytesUp: c.bytesUp.Load(), UDPBytesDown: c.bytesDown.Load(),
		UDPWriteDrops: c.writeDrops.Load(), UDPTruncated: c.truncated.Load(),
	}
}

// ForwardUDP handles one new flow on a goroutine of its own (it is the
// synstack.UDPForwarder method).
func (f *Forwarder) ForwardUDP(req *synstack.UDPForwardRequest) {
	c := &f.udp
	c.requests.Add(1)
	if f.UDP.Disabled {
		c.refused.Add(1)
		_ = req.Refuse()
		return
	}
	src := req.Remote.Addr()
	ctx, err := f.start(&f.udpSlots, f.UDP.MaxFlows, DefaultMaxUDPFlows, f.UDP.MaxFlowsPerSource, src)
	if err != nil {
		switch err {
		case errLimit:
			c.limitDrops.Add(1)
		case errSourceLimit:
			c.sourceLimitDrops.Add(1)
		}
		_ = req.Drop()
		return
	}
	go func() {
		defer f.done(&f.udpSlots, src)
		f.handleUDP(ctx, req)
	}()
}

func (f *Forwarder) handleUDP(ctx context.Context, req *synstack.UDPForwardRequest) {
	c := &f.udp
	target := DirectUDP(req)
	if f.UDP.Target != nil {
		target = f.UDP.Target(req)
	}
	if f.UDP.Check != nil {
		if err := f.UDP.Check(req, target); err != nil {
			if errors.Is(err, ErrLoop) {
				c.loops.Add(1)
			} else {
				c.denied.Add(1)
			}
			_ = req.Refuse()
			return
		}
	}
	up, err := f.dial(ctx, "udp", target, ctx)
	if err != nil {
		if isRefused(err) || errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, syscall.EHOSTUNREACH) {
			c.refused.Add(1)
			_ = req.Refuse()
		} else {
			c.dialDrops.Add(1)
			_ = req.Drop()
		}
		return
	}
	cl, err := req.Accept()
	if err != nil {
		up.Close()
		return
	}
	c.flows.Add(1)
	c.active.Add(1)
	defer c.active.Add(-1)
	f.relayUDP(ctx, cl, up)
}

// udpFlow is one relayed flow: the client's side on the stack, the
// upstream's on the host, and the idle timer.
type udpFlow struct {
	f                *Forwarder
	client           *synstack.UDPConn
	up               net.Conn
	clk              clock.Clock
	timeout, stream  time.Duration
	last             atomic.Int64 // clock time of the last datagram, UnixNano
	replied, expired atomic.Bool
	once             sync.Once

	mu    sync.Mutex  // guards timer and ended; taken before the clock's
	timer clock.Timer // the idle timer, re-armed by check
	ended bool        // the relay returned: check must not re-arm
}

// relayUDP relays one flow until it expires, a side fails, or ctx ends;
// both sides are closed when it returns.
func (f *Forwarder) relayUDP(ctx context.Context, client *synstack.UDPConn, up net.Conn) {
	fl := &udpFlow{f: f, client: client, up: up, clk: f.UDP.Clock,
		timeout: orDur(f.UDP.Timeout, DefaultUDPTimeout), stream: orDur(f.UDP.StreamTimeout, DefaultUDPStreamTimeout)}
	if fl.clk == nil {
		fl.clk = clock.Real{}
	}
	fl.touch()
	fl.mu.Lock()
	fl.timer = fl.clk.AfterFunc(fl.timeout, fl.check)
	fl.mu.Unlock()
	stop := context.AfterFunc(ctx, fl.close)
	defer stop()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		fl.copy(false)
	}()
	fl.copy(true)
	fl.close()
	wg.Wait()
	fl.mu.Lock()
	fl.ended = true
	fl.timer.Stop()
	fl.mu.Unlock()
}

func orDur(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func (fl *udpFlow) touch() { fl.last.Store(fl.clk.Now().UnixNano()) }

// check runs when the idle timer fires: it closes the flow if it has been
// idle for its timeout, or re-arms the timer for the rest.
func (fl *udpFlow) check() {
	idle := fl.timeout
	if fl.replied.Load() {
		idle = fl.stream
	}
	since := fl.clk.Now().Sub(time.Unix(0, fl.last.Load()))
	fl.mu.Lock()
	if fl.ended {
		fl.mu.Unlock()
		return
	}
	if since < idle {
		fl.timer.Reset(idle - since)
		fl.mu.Unlock()
		return
	}
	fl.mu.Unlock()
	if fl.expired.CompareAndSwap(false, true) {
		fl.f.udp.expired.Add(1)
	}
	fl.close()
}

// close closes both sides once: the copies return.
func (fl *udpFlow) close() {
	fl.once.Do(func() {
		fl.client.Close()
		fl.up.Close()
	})
}

// copy moves datagrams one way, client to upstream if upward, until a
// read fails. The buffer is taken from the pool for each datagram: on the
// upstream's side, a socket of the host, the copy first waits for a
// datagram without one (readWaiter, on Linux), so that a flow whose
// upstream is silent holds one buffer, not two.
func (fl *udpFlow) copy(upward bool) {
	c := &fl.f.udp
	size := fl.f.UDP.BufSize
	if size <= 0 {
		size = DefaultUDPBufSize
	}
	src, dst := fl.up, net.Conn(fl.client)
	dgrams, bytes := &c.dgramsDown, &c.bytesDown
	if upward {
		src, dst = fl.client, fl.up
		dgrams, bytes = &c.dgramsUp, &c.bytesUp
	}
	var w *readWaiter
	if !upward {
		w = newReadWaiter(src)
	}
	for {
		if err := w.wait(); err != nil {
			if fl.readFailed(err, upward) {
				return
			}
			continue
		}
		n, err := fl.relayOne(src, dst, size, upward)
		switch {
		case err == errUDPEnd:
			return
		case err != nil:
			continue
		}
		dgrams.Add(1)
		bytes.Add(uint64(n))
	}
}

// readFailed handles a failed read of one side (or wait for one): it
// reports whether the flow ended (and closes it). An ICMP port
// unreachable from the client (its socket closed) or from an upstream
// that answered before does not end it, as conntrack's flow goes on; one
// from an upstream that never answered does (counted).
func (fl *udpFlow) readFailed(err error, upward bool) bool {
	if isRefused(err) && (upward || fl.replied.Load()) {
		return false
	}
	if isRefused(err) {
		fl.f.udp.upstreamRefused.Add(1)
	}
	fl.close()
	return true
}

// errUDPEnd says the flow ended; another error from relayOne that one
// datagram was not relayed.
var errUDPEnd = errors.New("flow ended")

// relayOne reads one datagram from src into a pooled buffer of size (one
// byte more tells a datagram was cut) and writes it to dst.
func (fl *udpFlow) relayOne(src, dst net.Conn, size int, upward bool) (int, error) {
	c := &fl.f.udp
	bp := getBuf(size + 1)
	defer putBuf(bp)
	buf := *bp
	n, err := src.Read(buf)
	if err != nil {
		if fl.readFailed(err, upward) {
			return 0, errUDPEnd
		}
		return 0, err
	}
	if n > size {
		c.truncated.Add(1)
		n = size
	}
	fl.touch()
	if !upward {
		fl.replied.Store(true)
	}
	if _, err := dst.Write(buf[:n]); err != nil {
		switch {
		case errors.Is(err, net.ErrClosed), errors.Is(err, os.ErrClosed):
			return 0, errUDPEnd
		case isRefused(err) && upward && !fl.replied.Load():
			c.upstreamRefused.Add(1)
			fl.close()
			return 0, errUDPEnd
		}
		c.writeDrops.Add(1)
		return 0, err
	}
	return n, nil
}
