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
//
// A Forwarder is bounded: MaxRelays and MaxRelaysPerSource cap the
// requests it handles at once (dial and relay), and Check can refuse a
// request before anything is dialed or accepted, as a forwarding loop
// must be (a destination whose upstream dial would come back into the
// stack's own device). A refused request is answered at once, RST or ICMP,
// and counted; no relay is made.
//
// A Forwarder relays UDP too (it is a synstack.UDPForwarder): each new
// 5-tuple is a flow, dialed with Dial ("udp"), relayed datagram by
// datagram and closed after conntrack's idle timeouts; see UDPOptions.
package forward

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/trace"
)

// DefaultDialTimeout is the default of Forwarder.DialTimeout.
const DefaultDialTimeout = 10 * time.Second

// DefaultMaxRelays is the default of Forwarder.MaxRelays. A relay holds two
// goroutines and two buffers of RelayOptions.BufSize (64 KiB by default)
// besides the stack's connection: 4096 relays hold about 256 MiB of relay
// buffers at most.
const DefaultMaxRelays = 4096

// ErrLoop is what a Check says of a request whose upstream dial would come
// back into the forwarding stack (its own address, or a route into its own
// device): wrap it so that the refusal counts in Stats.Loops.
var ErrLoop = errors.New("forwarding loop")

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
	// MaxRelays bounds the requests handled at once: each holds a slot
	// from the moment it is offered (dial included) until its relay ends.
	// A request beyond the bound is refused at once (RST) and counted in
	// Stats.LimitRefused. Default DefaultMaxRelays; negative: no bound.
	MaxRelays int
	// MaxRelaysPerSource, if positive, bounds the slots one client address
	// (req.Remote's address) holds; beyond it requests are refused (RST)
	// and counted in Stats.SourceLimitRefused. Zero: no bound but
	// MaxRelays (on a tun2socks host every connection comes from the
	// host's own address).
	MaxRelaysPerSource int
	// Check, if set, is asked about every request before anything is
	// dialed or accepted, with the address that would be dialed (Target's
	// answer). A non-nil error refuses the request at once as Reject
	// answers it (RST, or ICMP unreachable for an unreachable errno), with
	// no relay: an error wrapping ErrLoop counts in Stats.Loops, any other
	// in Stats.Denied. It runs on the request's goroutine, so it may take
	// the time of a route lookup.
	Check func(req *synstack.ForwardRequest, target string) error
	// Tracer, if set, receives a trace.Note event for each connection's
	// outcome: "forward: forwarded", "refused", "unreachable", "timeout",
	// "reset", "idle", "closed". Host names the stack in them.
	Tracer *trace.Tracer
	Host   string
	// UDP configures the UDP flows (see ForwardUDP): their upstream,
	// idle timeouts and bounds.
	UDP UDPOptions
	// Ping configures how echo requests for other addresses are answered
	// (see HandleEcho).
	Ping PingOptions

	mu     sync.Mutex
	ctx    context.Context
	cancel context.CancelFunc
	closed bool
	wg     sync.WaitGroup
	stats  statCounters
	// Guarded by mu: the slots of TCP requests and of UDP flows.
	tcpSlots, udpSlots, pingSlots slots
	udp                           udpCounters
	pings                         pingCounters
}

// Stats are a Forwarder's counters.
type Stats struct {
	Requests    uint64 // requests offered, refused ones included
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
	// LimitRefused counts requests refused because MaxRelays were
	// handled already, SourceLimitRefused those refused because their
	// client address held MaxRelaysPerSource.
	LimitRefused       uint64
	SourceLimitRefused uint64
	// Loops counts requests Check refused as forwarding loops (ErrLoop),
	// Denied those it refused for another reason.
	Loops  uint64
	Denied uint64
	// The UDP flows' and the pings' counters.
	UDPStats
	PingStats
}

type statCounters struct {
	requests, forwarded, refused, unreachable, timeouts, acceptFails,
	resets, idle, bytesUp, bytesDown, limitRefused, sourceLimitRefused,
	loops, denied atomic.Uint64
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
		LimitRefused: c.limitRefused.Load(), SourceLimitRefused: c.sourceLimitRefused.Load(),
		Loops: c.loops.Load(), Denied: c.denied.Load(),
		UDPStats: f.udp.stats(), PingStats: f.pings.stats(),
	}
}

// To returns a Target that sends every connection to addr.
func To(addr string) func(*synstack.ForwardRequest) string {
	return func(*synstack.ForwardRequest) string { return addr }
}

// Direct is the Target that dials the original destination.
func Direct(req *synstack.ForwardRequest) string { return req.Local.String() }

// Why start refuses a request.
var (
	errClosed      = errors.New("forwarder closed")
	errLimit       = errors.New("MaxRelays reached")
	errSourceLimit = errors.New("MaxRelaysPerSource reached")
)

// slots counts the requests (or flows) a Forwarder handles, in all and
// per client address; the Forwarder's mu guards it.
type slots struct {
	n         int
	perSource map[netip.Addr]int
}

// start registers one request's goroutine and takes its slots in t, or
// says why not: the forwarder is closed, or limit (0: def; negative: no
// bound) or perSource (0: no bound) is reached.
func (f *Forwarder) start(t *slots, limit, def, perSource int, src netip.Addr) (context.Context, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, errClosed
	}
	if limit == 0 {
		limit = def
	}
	if limit > 0 && t.n >= limit {
		return nil, errLimit
	}
	if perSource > 0 && t.perSource[src] >= perSource {
		return nil, errSourceLimit
	}
	if f.ctx == nil {
		f.ctx, f.cancel = context.WithCancel(context.Background())
	}
	if t.perSource == nil {
		t.perSource = map[netip.Addr]int{}
	}
	t.n++
	t.perSource[src]++
	f.wg.Add(1)
	return f.ctx, nil
}

// done gives back the slots start took.
func (f *Forwarder) done(t *slots, src netip.Addr) {
	f.mu.Lock()
	t.n--
	if t.perSource[src]--; t.perSource[src] <= 0 {
		delete(t.perSource, src)
	}
	f.mu.Unlock()
	f.wg.Done()
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
	f.stats.requests.Add(1)
	src := req.Remote.Addr()
	ctx, err := f.start(&f.tcpSlots, f.MaxRelays, DefaultMaxRelays, f.MaxRelaysPerSource, src)
	if err != nil {
		switch err {
		case errLimit:
			f.stats.limitRefused.Add(1)
		case errSourceLimit:
			f.stats.sourceLimitRefused.Add(1)
		}
		f.note(req, "refused: "+err.Error())
		_ = req.Refuse()
		return
	}
	go func() {
		defer f.done(&f.tcpSlots, src)
		f.handle(ctx, req)
	}()
}

// target is the address to dial for req.
func (f *Forwarder) target(req *synstack.ForwardRequest) string {
	if f.Target != nil {
		return f.Target(req)
	}
	return Direct(req)
}

func (f *Forwarder) handle(ctx context.Context, req *synstack.ForwardRequest) {
	target := f.target(req)
	if f.Check != nil {
		if err := f.Check(req, target); err != nil {
			if errors.Is(err, ErrLoop) {
				f.stats.loops.Add(1)
			} else {
				f.stats.denied.Add(1)
			}
			f.note(req, "denied: "+err.Error())
			_ = req.Reject(err)
			return
		}
	}
	if f.Deferred {
		up, err := f.dial(ctx, "tcp", target, req.Context())
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
	up, err := f.dial(ctx, "tcp", target, ctx)
	if err != nil {
		f.dialFailed(req, err)
		Reset(c)
		return
	}
	f.relay(ctx, req, c, up)
}

// dial dials target on network within both contexts and the timeout.
func (f *Forwarder) dial(ctx context.Context, network, target string, reqCtx context.Context) (net.Conn, error) {
	timeout := f.DialTimeout
	if timeout <= 0 {
		timeout = DefaultDialTimeout
	}
	dctx, cancel := context.WithTimeout(reqCtx, timeout)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	dial := f.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	return dial(dctx, network, target)
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
