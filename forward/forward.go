// Package forward relays the connections a synstack.Stack forwards
// (tun2socks-style) to their upstream: a Forwarder is the stack's
// synstack.Forwarder; for each connection request it dials the upstream
// (the original destination, a fixed address, or through a SOCKS5 proxy)
// and relays both ways with Relay, which keeps TCP's meaning end to end
// (half-close, reset, bounded buffers, idle timeout).
//
//	fw := &forward.Forwarder{Deferred: true, Target: forward.To("127.0.0.1:8080")}
//	st.SetForwarder(fw, synstack.ForwardOptions{})
//	defer fw.Close() // resets the relays, waits for every goroutine
//
// In deferred mode (Deferred true) the upstream is dialed before the
// client's SYN is answered: a refused upstream refuses the client (RST:
// ECONNREFUSED), an unreachable one answers with ICMP destination
// unreachable, a timed-out one with ICMP host unreachable (see
// synstack.ForwardRequest.Reject); the client only sees a connection when
// the upstream has one. In immediate mode the handshake completes first and
// a failed dial resets the connection the client already has.
package forward

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/trace"
)

// DefaultDialTimeout is the default of Forwarder.DialTimeout.
const DefaultDialTimeout = 10 * time.Second

// DialFunc dials an upstream: net.Dialer.DialContext and
// proxy.ContextDialer.DialContext have its signature.
type DialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// Forwarder is a synstack.Forwarder that dials an upstream for every
// request and relays. Set its fields before handing it to
// Stack.SetForwarder and do not change them after; Close stops it.
type Forwarder struct {
	// Dial dials the upstream. Default: a net.Dialer's DialContext.
	Dial DialFunc
	// Target picks the address to dial for a request, "host:port".
	// Default: the original destination (req.Local), as Direct.
	Target func(req *synstack.ForwardRequest) string
	// Deferred dials before answering the client's SYN (see the package
	// documentation); otherwise the handshake completes first.
	Deferred bool
	// DialTimeout bounds a dial. Default DefaultDialTimeout.
	DialTimeout time.Duration
	// Relay configures the relay of every connection (buffer size, idle
	// timeout).
	Relay RelayOptions
	// Tracer, if set, receives a trace.Note event for each connection's
	// outcome: "forward: forwarded", "refused", "unreachable", "timeout",
	// "reset", "idle", "closed". Host names the stack in them.
	Tracer *trace.Tracer
	Host   string

	mu     sync.Mutex
	ctx    context.Context
	cancel context.CancelFunc
	closed bool
	wg     sync.WaitGroup
	stats  statCounters
}

// Stats are a Forwarder's counters.
type Stats struct {
	Requests    uint64 // requests handled
	Forwarded   uint64 // connections relayed (upstream dialed, client accepted)
	Refused     uint64 // upstream refused: client refused (deferred) or reset (immediate)
	Unreachable uint64 // upstream unreachable: ICMP to the client (deferred) or reset (immediate)
	Timeouts    uint64 // upstream dial timed out
	AcceptFails uint64 // the client's handshake did not complete
	Resets      uint64 // relays ended by a reset of either side, passed on to the other
	Idle        uint64 // relays aborted by the idle timeout
	Active      int64  // relays running now
	BytesUp     uint64 // bytes from clients to upstreams
	BytesDown   uint64 // bytes from upstreams to clients
}

type statCounters struct {
	requests, forwarded, refused, unreachable, timeouts, acceptFails,
	resets, idle, bytesUp, bytesDown atomic.Uint64
	active atomic.Int64
}

// Stats returns the forwarder's counters.
func (f *Forwarder) Stats() Stats {
	c := &f.stats
	return Stats{
		Requests: c.requests.Load(), Forwarded: c.forwarded.Load(), Refused: c.refused.Load(),
		Unreachable: c.unreachable.Load(), Timeouts: c.timeouts.Load(), AcceptFails: c.acceptFails.Load(),
		Resets: c.resets.Load(), Idle: c.idle.Load(), Active: c.active.Load(),
		BytesUp: c.bytesUp.Load(), BytesDown: c.bytesDown.Load(),
	}
}

// To returns a Target that sends every connection to addr.
func To(addr string) func(*synstack.ForwardRequest) string {
	return func(*synstack.ForwardRequest) string { return addr }
}

// Direct is the Target that dials the original destination.
func Direct(req *synstack.ForwardRequest) string { return req.Local.String() }

// start registers one goroutine of the forwarder; false once closed.
func (f *Forwarder) start() (context.Context, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, false
	}
	if f.ctx == nil {
		f.ctx, f.cancel = context.WithCancel(context.Background())
	}
	f.wg.Add(1)
	return f.ctx, true
}

// Close stops the forwarder: dials in progress are abandoned, relays are
// reset, and requests offered later are refused. It returns when every
// goroutine the forwarder started has ended.
func (f *Forwarder) Close() error {
	f.mu.Lock()
	f.closed = true
	if f.cancel != nil {
		f.cancel()
	}
	f.mu.Unlock()
	f.wg.Wait()
	return nil
}

// Forward handles one request on a goroutine of its own (it is the
// synstack.Forwarder method).
func (f *Forwarder) Forward(req *synstack.ForwardRequest) {
	ctx, ok := f.start()
	if !ok {
		_ = req.Refuse()
		return
	}
	f.stats.requests.Add(1)
	go func() {
		defer f.wg.Done()
		f.handle(ctx, req)
	}()
}

func (f *Forwarder) handle(ctx context.Context, req *synstack.ForwardRequest) {
	if f.Deferred {
		up, err := f.dial(ctx, req, req.Context())
		switch {
		case err != nil && req.Context().Err() != nil:
			// The client reset the request, or the stack closed.
			f.note(req, "withdrawn: "+context.Cause(req.Context()).Error())
			return
		case err != nil && ctx.Err() != nil:
			_ = req.Refuse() // the forwarder is closing
			return
		case err != nil:
			f.dialFailed(req, err)
			_ = req.Reject(err)
			return
		}
		c, err := req.AcceptContext(ctx)
		if err != nil {
			f.stats.acceptFails.Add(1)
			f.note(req, "accept failed: "+err.Error())
			Reset(up)
			return
		}
		f.relay(ctx, req, c, up)
		return
	}
	c, err := req.AcceptContext(ctx)
	if err != nil {
		f.stats.acceptFails.Add(1)
		f.note(req, "accept failed: "+err.Error())
		return
	}
	up, err := f.dial(ctx, req, ctx)
	if err != nil {
		f.dialFailed(req, err)
		Reset(c)
		return
	}
	f.relay(ctx, req, c, up)
}

// dial dials the request's upstream within both contexts and the timeout.
func (f *Forwarder) dial(ctx context.Context, req *synstack.ForwardRequest, reqCtx context.Context) (net.Conn, error) {
	timeout := f.DialTimeout
	if timeout <= 0 {
		timeout = DefaultDialTimeout
	}
	dctx, cancel := context.WithTimeout(reqCtx, timeout)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	target := Direct
	if f.Target != nil {
		target = f.Target
	}
	dial := f.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	return dial(dctx, "tcp", target(req))
}

// dialFailed counts and traces a failed dial.
func (f *Forwarder) dialFailed(req *synstack.ForwardRequest, err error) {
	var ne net.Error
	switch {
	case isRefused(err):
		f.stats.refused.Add(1)
		f.note(req, "refused: "+err.Error())
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		f.stats.timeouts.Add(1)
		f.note(req, "timeout: "+err.Error())
	default:
		f.stats.unreachable.Add(1)
		f.note(req, "unreachable: "+err.Error())
	}
}

func (f *Forwarder) relay(ctx context.Context, req *synstack.ForwardRequest, c *synstack.TCPConn, up net.Conn) {
	f.stats.forwarded.Add(1)
	f.stats.active.Add(1)
	defer f.stats.active.Add(-1)
	f.note(req, "forwarded to "+up.RemoteAddr().String())
	res := Relay(ctx, c, up, f.Relay)
	f.stats.bytesUp.Add(uint64(res.AToB))
	f.stats.bytesDown.Add(uint64(res.BToA))
	switch {
	case res.Idle:
		f.stats.idle.Add(1)
		f.note(req, "idle")
	case res.Reset:
		f.stats.resets.Add(1)
		f.note(req, "reset")
	default:
		f.note(req, "closed")
	}
}

// note emits a trace.Note for the request's connection.
func (f *Forwarder) note(req *synstack.ForwardRequest, text string) {
	if !f.Tracer.Enabled() {
		return
	}
	f.Tracer.Emit(trace.Event{Host: f.Host, Kind: trace.Note, Local: req.Local, Remote: req.Remote,
		Text: "forward: " + text})
}

// isRefused reports whether a dial failed because the upstream refused.
func isRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }
